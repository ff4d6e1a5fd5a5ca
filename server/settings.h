/* settings: every setting of tridentd, in one config table.
 *
 * The same table serves --flags, the config file (--config) and TRIDENT_*
 * environment variables, and deploy/tridentd.conf lists every entry with its
 * default (a test keeps the two in step). Main thread only.
 */
#ifndef TRIDENT_SETTINGS_H
#define TRIDENT_SETTINGS_H

#include <stdint.h>

#include "config.h"

typedef struct broker_settings {
    char *config;               /* the config file, if any */
    config_list listen;         /* host:port, [v6]:port or unix:/path */
    char *data_dir;             /* the embedded Redis's home */
    char *redis;                /* redis://, unix://, sentinel://; NULL = embedded */
    char *password_file;
    char *password;             /* file or environment only */
    char *key_prefix;           /* Redis keys start with {prefix}: */
    char *log_file;             /* "-" = stderr */
    int verbose;
    int64_t max_connections;
    uint64_t max_frame;
    uint64_t max_payload;
    int64_t max_batch;
    uint64_t output_limit;      /* bytes queued to one connection before it is dropped */
    uint64_t idle_timeout;      /* ms a partial frame may sit */
    int64_t max_queue_length;   /* 0 = unlimited; per queue: queue-limit */
    config_list queue_limit;    /* name:N */
    int64_t max_retries;
    uint64_t result_ttl;
    uint64_t lease;
    uint64_t heartbeat;
    uint64_t retry_base;
    uint64_t retry_cap;
    uint64_t tick;              /* scheduler and reaper period */
    int64_t busy_poll;          /* µs to poll the sockets after activity, 0: off */
    uint64_t grace;             /* drain grace on SIGTERM */
    uint64_t redis_maxmemory;
    char *redis_appendfsync;
    char *redis_server;
} broker_settings;

extern const config_option settings_table[];

/* settings_load: defaults, file, environment, flags; then the checks that
 * span settings (max-payload fits in max-frame; the password file is read
 * into password). Returns 0, or -1 with err filled. *help is set for --help. */
int settings_load(broker_settings *s, int argc, char **argv, bool *help, char *err, size_t errlen);
void settings_free(broker_settings *s);

#endif
