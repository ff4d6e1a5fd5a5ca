/* proto: the messages of wire protocol v1, decoded and encoded.
 *
 * A message is one msgpack map with string keys (docs/PROTOCOL.md). Every
 * message of every direction is described by one struct, proto_msg: an op,
 * and the fields the op uses, each with a presence bit. Fields that describe
 * one task (queue, name, payload, id, options, state, result...) live in a
 * proto_task: the top-level ones in msg.task, and those of each element of a
 * `tasks` array are read one at a time with proto_tasks_next. One table in
 * proto.c maps wire keys to fields and types, and both directions use it, so
 * the encoder can write nothing the decoder would not read.
 *
 * Decoding is two passes over the frame body, with no allocation at all:
 * mpread_skip validates the structure against the limits (so a frame of N
 * bytes costs N bytes and nothing more), then the typed pass fills the
 * struct. Strings and payloads are borrowed slices of the frame: valid as
 * long as the frame's bytes are. Encoding appends one whole frame (header
 * included) to a buf. Reentrant; any thread.
 */
#ifndef TRIDENT_PROTO_H
#define TRIDENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "buf.h"
#include "errors.h"

#define PROTO_VERSION 1

/* Semantic limits of protocol v1 (docs/PROTOCOL.md, "Limits"). */
#define PROTO_QUEUE_MAX 128      /* bytes in a queue name */
#define PROTO_NAME_MAX 256       /* bytes in a task name */
#define PROTO_ID_MAX 128         /* bytes in a task id */
#define PROTO_PRIORITY_MAX 1000  /* priority is in [-1000, 1000] */
#define PROTO_RETRIES_MAX 1000
#define PROTO_TEXT_MAX 65536     /* bytes in a message, error, reason... */

typedef enum proto_status { PROTO_OK = 0, PROTO_AGAIN = 1, PROTO_ERR = -1 } proto_status;

typedef enum proto_op {
    OP_NONE = 0,
    /* requests from any role */
    OP_HELLO, OP_PING,
    /* requests from clients */
    OP_SUBMIT, OP_SUBMIT_BATCH, OP_GET, OP_CANCEL, OP_STATS, OP_INFO,
    /* requests from admins */
    OP_PAUSE, OP_RESUME, OP_PURGE, OP_DEAD_LIST, OP_DEAD_RETRY, OP_DEAD_PURGE,
    /* requests from workers */
    OP_CREDIT, OP_ACK, OP_FAIL, OP_HEARTBEAT, OP_PROGRESS,
    /* replies */
    OP_OK, OP_ERROR,
    /* pushes from the broker (OP_CANCEL is also pushed to workers) */
    OP_TASK, OP_RESULT, OP_SHUTDOWN,
    OP__COUNT
} proto_op;

/* A borrowed byte range: not NUL-terminated, valid as long as its source. */
typedef struct proto_slice {
    const uint8_t *ptr;
    uint32_t len;
} proto_slice;

/* A msgpack array of strings, unsigned integers or task maps. Decoded: raw
 * is the array's bytes (header included), already validated; read it with
 * the proto_*_next iterators. To encode, set n and one of strs, uints or
 * tasks, and leave raw empty. */
typedef struct proto_array {
    proto_slice raw;
    uint32_t n;
    const proto_slice *strs;
    const uint64_t *uints;
    const struct proto_task *tasks;
} proto_array;

/* Presence bits of proto_task fields. */
enum {
    TF_QUEUE = 1u << 0, TF_NAME = 1u << 1, TF_PAYLOAD = 1u << 2, TF_ID = 1u << 3,
    TF_PRIORITY = 1u << 4, TF_DELAY = 1u << 5, TF_RUN_AT = 1u << 6,
    TF_MAX_RETRIES = 1u << 7, TF_TIMEOUT = 1u << 8, TF_RESULT_TTL = 1u << 9,
    TF_ATTEMPT = 1u << 10, TF_STATE = 1u << 11, TF_RESULT = 1u << 12,
    TF_ERROR = 1u << 13, TF_ERROR_CODE = 1u << 14, TF_CREATED_AT = 1u << 15,
    TF_STARTED_AT = 1u << 16, TF_FINISHED_AT = 1u << 17, TF_PROGRESS = 1u << 18,
    TF_DEADLINE = 1u << 19,
};

/* proto_task: one task, as submitted, pushed to a worker, or reported. All
 * durations are milliseconds, all times unix milliseconds. */
typedef struct proto_task {
    uint32_t present;       /* TF_* bits */
    proto_slice queue;      /* default "default" when submitting */
    proto_slice name;
    proto_slice payload;    /* msgpack bin (or str) */
    proto_slice id;         /* broker-made or client-chosen */
    int64_t priority;       /* higher first; FIFO within one priority */
    uint64_t delay;         /* ms from now until it may run */
    uint64_t run_at;        /* unix ms when it may run */
    uint64_t max_retries;
    uint64_t timeout;       /* execution time limit, ms; 0 = worker default */
    uint64_t result_ttl;    /* ms the result is kept */
    uint64_t attempt;       /* 1 on the first run */
    proto_slice state;      /* queued, scheduled, running, retrying, succeeded, dead, cancelled */
    proto_slice result;
    proto_slice error;      /* last error message */
    proto_slice error_code; /* last error code, an errors.h name */
    uint64_t created_at, started_at, finished_at, deadline;
    uint64_t progress;      /* 0..100 */
} proto_task;

/* Presence bits of proto_msg fields. */
enum {
    MF_RID = 1ull << 0, MF_VERSION = 1ull << 1, MF_ROLE = 1ull << 2,
    MF_CLIENT = 1ull << 3, MF_PASSWORD = 1ull << 4, MF_WORKER_ID = 1ull << 5,
    MF_HOST = 1ull << 6, MF_PID = 1ull << 7, MF_QUEUES = 1ull << 8,
    MF_WEIGHTS = 1ull << 9, MF_CAPACITY = 1ull << 10, MF_PUSH_RESULT = 1ull << 11,
    MF_WAIT = 1ull << 12, MF_TASKS = 1ull << 13, MF_IDS = 1ull << 14,
    MF_DUPLICATES = 1ull << 15, MF_DUPLICATE = 1ull << 16, MF_CREDITS = 1ull << 17,
    MF_RUNNING = 1ull << 18, MF_RSS = 1ull << 19, MF_DONE = 1ull << 20,
    MF_FAILED = 1ull << 21, MF_CODE = 1ull << 22, MF_MESSAGE = 1ull << 23,
    MF_RETRYABLE = 1ull << 24, MF_OUTCOME = 1ull << 25, MF_OFFSET = 1ull << 26,
    MF_LIMIT = 1ull << 27, MF_COUNT = 1ull << 28, MF_TOTAL = 1ull << 29,
    MF_TIME = 1ull << 30, MF_SERVER = 1ull << 31, MF_NODE = 1ull << 32,
    MF_MAX_FRAME = 1ull << 33, MF_MAX_PAYLOAD = 1ull << 34,
    MF_HEARTBEAT = 1ull << 35, MF_LEASE = 1ull << 36, MF_REASON = 1ull << 37,
    MF_STATS = 1ull << 38, MF_INFO = 1ull << 39, MF_PREFETCH = 1ull << 40,
};

typedef struct proto_msg {
    proto_op op;
    uint64_t present;        /* MF_* bits */
    uint64_t rid;            /* request id, echoed by the reply */
    /* HELLO and its reply */
    uint64_t version;
    proto_slice role;        /* client, worker, admin */
    proto_slice client;      /* free-form name of the peer program */
    proto_slice password;
    proto_slice worker_id;
    proto_slice host;
    uint64_t pid;
    proto_array queues;      /* strings, in priority order */
    proto_array weights;     /* unsigned, parallel to queues */
    uint64_t capacity;       /* task slots of the worker */
    uint64_t prefetch;
    proto_slice server;      /* reply: broker name and version */
    proto_slice node;        /* reply: broker instance id */
    uint64_t max_frame, max_payload, heartbeat, lease;
    /* SUBMIT, SUBMIT_BATCH, GET */
    bool push_result;
    uint64_t wait;           /* ms */
    proto_array tasks;       /* task maps */
    proto_array ids;         /* strings */
    proto_array duplicates;  /* unsigned: indices into a batch */
    bool duplicate;
    /* worker */
    uint64_t credits;
    proto_array running;     /* strings: ids of running tasks */
    uint64_t rss, done, failed;
    bool retryable;
    /* ERROR, and FAIL */
    proto_slice code;        /* an errors.h name */
    proto_slice message;
    /* other replies and admin */
    proto_slice outcome;
    uint64_t offset, limit, count, total, time;
    proto_slice reason;
    proto_slice stats;       /* raw msgpack map, validated */
    proto_slice info;        /* raw msgpack map, validated */
    proto_task task;         /* the task fields at the top level */
} proto_msg;

/* Which messages a decoder accepts: a broker reads requests (each must have
 * a rid), a peer (client or worker) reads replies and pushes. */
typedef enum proto_side { PROTO_SIDE_BROKER, PROTO_SIDE_PEER } proto_side;

typedef struct proto_limits {
    uint32_t max_frame;      /* bytes in a frame body; default 16 MiB, at most 512 MiB */
    uint32_t max_depth;      /* nesting of maps and arrays; default 8 */
    uint32_t max_elements;   /* values in one frame; default 1,048,576 */
    uint32_t max_string;     /* bytes in one str value; default 1 MiB */
    uint32_t max_batch;      /* tasks in one SUBMIT_BATCH; default 10,000 */
} proto_limits;

#define PROTO_FRAME_MAX_DEFAULT (16u << 20)
#define PROTO_FRAME_MAX_LIMIT (512u << 20)

/* proto_limits_default: the defaults above. */
void proto_limits_default(proto_limits *l);

/* The outcome of a failed decode: the code to send and why, naming the key. */
typedef struct proto_error {
    error_code code;
    char message[200];
} proto_error;

/* proto_decode: decodes one frame body into *m (zeroed first). Returns
 * PROTO_OK, or PROTO_ERR with *err filled: BAD_FRAME when the body is not one
 * valid msgpack map with string keys within the limits (close the
 * connection), BAD_REQUEST for a field of the wrong type or value, UNKNOWN_OP
 * for an op this side does not read. On BAD_REQUEST and UNKNOWN_OP, m->rid
 * and MF_RID are set if the rid could be read, so the error can echo it.
 * Slices in *m borrow from body. */
proto_status proto_decode(const uint8_t *body, size_t len, proto_side side,
                          const proto_limits *lim, proto_msg *m, proto_error *err);

/* proto_tasks_next: reads the next task of a decoded `tasks` array (or of
 * a DEAD_LIST reply) into *t. *pos starts at 0 and is advanced; returns
 * PROTO_OK, or PROTO_AGAIN when there are no more. Fields the element lacks
 * are not inherited: see proto_task_defaults. */
proto_status proto_tasks_next(const proto_array *a, size_t *pos, proto_task *t);
/* proto_strs_next / proto_uints_next: the same for arrays of strings and
 * unsigned integers (already type-checked by proto_decode). */
proto_status proto_strs_next(const proto_array *a, size_t *pos, proto_slice *s);
proto_status proto_uints_next(const proto_array *a, size_t *pos, uint64_t *v);

/* proto_encode: appends one frame (4-byte length and the map) holding the
 * op and every field whose presence bit is set. Returns 0, or -1 when the
 * body would exceed max_frame (then nothing is appended). Never fails
 * otherwise (allocation follows alloc.h). */
int proto_encode(buf *out, const proto_msg *m, uint32_t max_frame);

/* proto_encode_error: appends an ERROR reply; rid 0 with has_rid false for
 * an error that answers no request. message may be NULL (the code's name). */
void proto_encode_error(buf *out, bool has_rid, uint64_t rid, error_code code,
                        const char *message);

/* proto_op_name / proto_op_from_name: "SUBMIT_BATCH" <-> OP_SUBMIT_BATCH;
 * unknown names give OP_NONE, unknown values "NONE". */
const char *proto_op_name(proto_op op);
proto_op proto_op_from_name(const uint8_t *s, size_t len);

/* proto_packer_init: a msgpack-c packer that appends to out, for the nested
 * maps of replies (STATS, INFO) that are passed as raw fields. */
void proto_packer_init(msgpack_packer *pk, buf *out);
/* proto_pack_str / proto_pack_strn: a msgpack str. */
void proto_pack_str(msgpack_packer *pk, const char *s);
void proto_pack_strn(msgpack_packer *pk, const void *s, size_t n);

/* proto_queue_valid: n bytes at s make a queue name (1 to 128 printable
 * ASCII bytes, no spaces or braces). */
bool proto_queue_valid(const void *s, size_t n);

/* proto_fields_sorted: the key table is in order (a unit test asks). */
bool proto_fields_sorted(void);

/* proto_slice_eq: the slice holds exactly the NUL-terminated text s. */
bool proto_slice_eq(proto_slice a, const char *s);
/* proto_slice_cstr: s as a C string in a caller's buffer, truncated. */
const char *proto_slice_cstr(proto_slice a, char *out, size_t outlen);
/* proto_slice_of: a slice over a NUL-terminated string (borrowed). */
proto_slice proto_slice_of(const char *s);

#endif
