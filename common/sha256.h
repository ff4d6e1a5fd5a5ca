/* sha256: the SHA-256 hash of FIPS 180-4.
 *
 * It owns nothing but the state of one running hash: a context is fed any
 * number of byte ranges with sha256_update, in pieces of any size, and
 * sha256_final gives the 32-byte digest of their concatenation. The one-shot
 * sha256_hex hashes one buffer and writes the digest as lower-case hex, the
 * form `sha256sum` prints and Trident stores.
 *
 * Threads: any thread may call these. A context is plain data with no lock:
 * one owner at a time. No allocation, no failure.
 */
#ifndef TRIDENT_SHA256_H
#define TRIDENT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA256_HEX_LEN 64  /* characters, without the NUL */

typedef struct sha256_ctx {
    uint32_t h[8];       /* the intermediate hash value */
    uint64_t total;      /* bytes fed so far */
    uint8_t block[64];   /* a partial block waiting for more bytes */
    size_t fill;         /* bytes in block, always < 64 between calls */
} sha256_ctx;

/* sha256_init: starts a new hash in ctx (any earlier state is dropped). */
void sha256_init(sha256_ctx *ctx);
/* sha256_update: feeds n bytes at data (only read; NULL is fine when n is 0). */
void sha256_update(sha256_ctx *ctx, const void *data, size_t n);
/* sha256_final: pads, writes the digest to out and wipes ctx; call
 * sha256_init before using ctx again. */
void sha256_final(sha256_ctx *ctx, uint8_t out[SHA256_DIGEST_LEN]);
/* sha256_hex: the digest of the n bytes at data as 64 lower-case hex
 * characters and a NUL in out. */
void sha256_hex(const void *data, size_t n, char out[SHA256_HEX_LEN + 1]);

#endif
