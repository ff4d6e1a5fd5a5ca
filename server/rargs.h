/* rargs: an argument vector for one Redis command.
 *
 * Arguments are either borrowed (the caller keeps the bytes alive until the
 * command is sent) or copied into the vector's own storage (numbers, and
 * bytes whose source goes away first, like a payload in a frame that is
 * drained before the loop turn ends). Not thread-safe.
 */
#ifndef TRIDENT_RARGS_H
#define TRIDENT_RARGS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct rargs {
    int n, cap;
    const char **argv;  /* valid after rargs_finish */
    size_t *lens;
    size_t *offs;       /* SIZE_MAX: borrowed argv[i]; else an offset into own */
    buf own;
} rargs;

void rargs_init(rargs *a);
void rargs_free(rargs *a);
void rargs_reset(rargs *a);

void rargs_borrow(rargs *a, const void *p, size_t len);
void rargs_str(rargs *a, const char *s);  /* borrowed, NUL-terminated */
void rargs_copy(rargs *a, const void *p, size_t len);
void rargs_u64(rargs *a, uint64_t v);
void rargs_i64(rargs *a, int64_t v);

/* rargs_finish: resolves the copied arguments to pointers; call it after
 * the last add and before reading argv. */
void rargs_finish(rargs *a);

/* rargs_resp: the command in Redis's wire format (an array of bulk
 * strings), in one buffer the caller frees with mem_free; its length goes
 * to *len. Finishes a. */
char *rargs_resp(rargs *a, size_t *len);

#endif
