/* test_proto_helpers: small tools shared by the proto suites: a cheap
 * assertion for loops, and the heap in use (libc or ASan). */
#ifndef TRIDENT_TEST_PROTO_HELPERS_H
#define TRIDENT_TEST_PROTO_HELPERS_H

#include <malloc.h>
#include <stddef.h>

#include "buf.h"
#include "proto.h"

/* CHECK: an assertion for hot loops. Check records the place of every
 * passing ck_assert with a write(2), which makes a million of them slow;
 * this one costs nothing until it fails. */
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond))                                                                 \
            ck_abort_msg("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);      \
    } while (0)

#if defined(__SANITIZE_ADDRESS__)
#define HEAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_ASAN 1
#endif
#endif

#ifdef HEAP_ASAN
/* The sanitizer runtime's public API (its header ships only with clang). */
size_t __sanitizer_get_current_allocated_bytes(void);
static inline size_t heap_in_use(void) { return __sanitizer_get_current_allocated_bytes(); }
#else
static inline size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
#endif

#endif
