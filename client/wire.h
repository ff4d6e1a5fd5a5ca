/* wire: what libtrident's blocking API (client.c), its Pool helpers
 * (pool.c) and its async API (async.c) share: requests built from the
 * public option structs, task infos built from decoded replies and pushes,
 * and the error codes of failures found on this side.
 */
#ifndef TRIDENT_CLIENT_WIRE_H
#define TRIDENT_CLIENT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "trident/client.h"

/* The codes of failures found on this side (trident_errcode). */
#define CODE_IO "IO"
#define CODE_TIMEOUT "TIMEOUT"
#define CODE_PROTOCOL "PROTOCOL"
#define CODE_INVALID "INVALID"

/* wire_err: a failure found while building a request. */
typedef struct wire_err {
    char code[32];
    char msg[320];
} wire_err;

/* wire_dup: n bytes as a NUL-terminated copy (mem.h; free() releases it). */
char *wire_dup(const void *p, size_t n);

/* wire_request: an empty request of op; queue may be NULL (borrowed). */
void wire_request(proto_msg *m, proto_op op, const char *queue);

/* wire_hello: the HELLO of a client (role admin when admin); password may
 * be NULL. Strings borrowed. */
void wire_hello(proto_msg *m, bool admin, const char *client_name, const char *password);

/* wire_task: the task fields of a submission, strings borrowed from o.
 * max_payload is the broker's limit; what prefixes a message ("" or
 * "tasks[3]: "). Returns TRIDENT_OK, or TRIDENT_EINVAL with *e filled. */
int wire_task(const trident_submit_opts *o, uint64_t max_payload, const char *what,
              proto_task *t, wire_err *e);

/* wire_info: fills out (zeroed first) from a decoded task and, for a GET
 * reply, its progress message (an empty slice otherwise). */
void wire_info(trident_task_info *out, const proto_task *t, proto_slice message);

/* wire_outcome: TRIDENT_OK for a task that succeeded, else TRIDENT_ETASK
 * with the code that says how it ended in *code (static or t's own). */
int wire_outcome(const trident_task_info *t, const char **code);

#endif
