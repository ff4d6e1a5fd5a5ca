#include "settings.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "proto.h"

#define O(field) offsetof(broker_settings, field)
#define MS CONFIG_UNIT_MS
#define SEC CONFIG_UNIT_S

const config_option settings_table[] = {
    { "config", CONFIG_STRING, O(config), NULL, 0, 0, 'c', 0, "config file", MS },
    { "listen", CONFIG_LIST, O(listen), "127.0.0.1:7878", 0, 0, 'l', 0,
      "address to listen on: host:port, [ipv6]:port or unix:/path (repeatable)", MS },
    { "data-dir", CONFIG_STRING, O(data_dir), "./trident-data", 0, 0, 'd', 0,
      "directory of the embedded Redis (its socket, AOF and log)", MS },
    { "redis", CONFIG_STRING, O(redis), NULL, 0, 0, 0, 0,
      "external Redis: redis://[user:password@]host:port/db or unix:///path.sock; "
      "unset = run an embedded redis-server", MS },
    { "password-file", CONFIG_STRING, O(password_file), NULL, 0, 0, 0, 0,
      "file holding the password clients must give in HELLO", MS },
    { "password", CONFIG_STRING, O(password), NULL, 0, 0, 0, CONFIG_NO_FLAG,
      "the password itself (config file or TRIDENT_PASSWORD only)", MS },
    { "key-prefix", CONFIG_STRING, O(key_prefix), "trident", 0, 0, 0, 0,
      "Redis keys start with {prefix}:", MS },
    { "log-file", CONFIG_STRING, O(log_file), "-", 0, 0, 0, CONFIG_RELOADABLE,
      "log file, '-' for stderr; reopened on SIGHUP", MS },
    { "verbose", CONFIG_COUNT, O(verbose), NULL, 0, 3, 'v', CONFIG_RELOADABLE,
      "-v lifecycle, -vv requests, -vvv state transitions", MS },
    { "max-connections", CONFIG_INT, O(max_connections), "10000", 1, 1000000, 0, 0,
      "connections served at once; more are refused with TOO_MANY_CONNECTIONS", MS },
    { "max-frame", CONFIG_SIZE, O(max_frame), "17M", 8192, PROTO_FRAME_MAX_LIMIT, 0, 0,
      "largest frame accepted (leave room for a max-payload task and its fields)", MS },
    { "max-payload", CONFIG_SIZE, O(max_payload), "16M", 0, PROTO_FRAME_MAX_LIMIT, 0, 0,
      "largest payload or result; larger gets PAYLOAD_TOO_LARGE", MS },
    { "max-batch", CONFIG_INT, O(max_batch), "10000", 1, 1000000, 0, 0,
      "most tasks in one SUBMIT_BATCH", MS },
    { "output-limit", CONFIG_SIZE, O(output_limit), "64M", 65536, 4LL << 30, 0, 0,
      "bytes waiting to be sent to one connection before it is dropped", MS },
    { "idle-timeout", CONFIG_DURATION, O(idle_timeout), "30s", 100, 86400000, 0, 0,
      "how long a partial frame may sit before the connection is closed", MS },
    { "max-queue-length", CONFIG_INT, O(max_queue_length), "0", 0, INT64_MAX, 0, 0,
      "ready and scheduled tasks a queue may hold (0 = unlimited); more gets QUEUE_FULL", MS },
    { "queue-limit", CONFIG_LIST, O(queue_limit), NULL, 0, 0, 0, 0,
      "per-queue max length as name:N (repeatable), overriding max-queue-length", MS },
    { "max-retries", CONFIG_INT, O(max_retries), "3", 0, PROTO_RETRIES_MAX, 0, 0,
      "retries of a task that does not say (attempts = retries + 1)", MS },
    { "result-ttl", CONFIG_DURATION, O(result_ttl), "24h", 0, 365LL * 86400000, 0, 0,
      "how long a final task and its result are kept, for tasks that do not say", MS },
    { "lease", CONFIG_DURATION, O(lease), "10s", 100, 86400000, 0, 0,
      "a running task's lease; a worker silent for this long loses its tasks", MS },
    { "heartbeat", CONFIG_DURATION, O(heartbeat), "2s", 50, 3600000, 0, 0,
      "how often workers are asked to send HEARTBEAT (keep it well under lease)", MS },
    { "retry-base", CONFIG_DURATION, O(retry_base), "1s", 0, 86400000, 0, 0,
      "backoff before the first retry; doubles per attempt, with jitter", MS },
    { "retry-cap", CONFIG_DURATION, O(retry_cap), "5m", 0, 7LL * 86400000, 0, 0,
      "longest backoff between retries", MS },
    { "tick", CONFIG_DURATION, O(tick), "50ms", 5, 1000, 0, 0,
      "period of the scheduler (due tasks become ready) and the lease reaper", MS },
    { "busy-poll", CONFIG_INT, O(busy_poll), "0", 0, 10000, 0, 0,
      "microseconds to keep polling the sockets after activity before sleeping (0 = "
      "off): lower latency on virtual machines, for a busy core", MS },
    { "grace", CONFIG_DURATION, O(grace), "10s", 0, 3600000, 0, 0,
      "on SIGTERM, how long to wait for in-flight replies before exiting", MS },
    { "redis-maxmemory", CONFIG_SIZE, O(redis_maxmemory), "0", 0, 0, 0, 0,
      "embedded Redis memory limit (0 = none); writes then fail instead of evicting", MS },
    { "redis-appendfsync", CONFIG_STRING, O(redis_appendfsync), "everysec", 0, 0, 0, 0,
      "embedded Redis AOF fsync: everysec (lose at most ~1 s on power loss), always, no", MS },
    { "redis-server", CONFIG_STRING, O(redis_server), "redis-server", 0, 0, 0, 0,
      "the redis-server program for the embedded Redis", MS },
    { NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, MS },
};

int settings_load(broker_settings *s, int argc, char **argv, bool *help, char *err, size_t errlen)
{
    config_result res;
    memset(s, 0, sizeof *s);
    if (config_load(settings_table, s, argc, argv, "TRIDENT_", &res) < 0) {
        snprintf(err, errlen, "%s", res.error);
        return -1;
    }
    *help = res.help;
    if (res.npositional > 0) {
        snprintf(err, errlen, "unexpected argument '%s'", res.positional[0]);
        return -1;
    }
    if (s->max_payload + 4096 > s->max_frame) {
        snprintf(err, errlen, "max-payload (%llu) must leave 4 KiB of max-frame (%llu) for the "
                 "rest of a message", (unsigned long long)s->max_payload,
                 (unsigned long long)s->max_frame);
        return -1;
    }
    if (s->password_file) {
        mem_free(s->password);
        s->password = NULL;
        if (config_read_secret("--password-file", s->password_file, &s->password, err, errlen) < 0)
            return -1;
    }
    if (s->password && s->password[0] == '\0') {
        mem_free(s->password);
        s->password = NULL;
    }
    if (strcmp(s->redis_appendfsync, "everysec") != 0 && strcmp(s->redis_appendfsync, "always") != 0 &&
        strcmp(s->redis_appendfsync, "no") != 0) {
        snprintf(err, errlen, "redis-appendfsync: '%s' is not everysec, always or no",
                 s->redis_appendfsync);
        return -1;
    }
    for (size_t i = 0; i < s->queue_limit.n; i++) {
        const char *colon = strrchr(s->queue_limit.items[i], ':');
        char *end;
        if (!colon || colon == s->queue_limit.items[i] || (strtoll(colon + 1, &end, 10), *end) ||
            colon[1] == '\0') {
            snprintf(err, errlen, "queue-limit: '%s' is not name:N", s->queue_limit.items[i]);
            return -1;
        }
    }
    return 0;
}

void settings_free(broker_settings *s)
{
    config_free(settings_table, s);
}
