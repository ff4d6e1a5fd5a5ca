/* id: task ids.
 *
 * A task id is 128 bits: 48 bits of unix time in milliseconds, then 80
 * random bits, big-endian. As text it is 26 characters of Crockford base32
 * (0-9 and A-Z without I, L, O, U), the first carrying only the top 3 bits
 * (0-7), so ids sort as text the way they sort as bytes: by creation time.
 * Within one millisecond a process hands out the previous id plus one, so
 * the ids of one process strictly increase (even if the clock steps back).
 * The random part comes from a PRNG seeded by getrandom(), reseeded in a
 * forked child, so parent and child never share a sequence.
 *
 * Threads: all functions may be called from any thread (generation takes a
 * mutex, which is also safe across fork). Clients may choose their own ids
 * instead; id_client_valid says which are acceptable.
 */
#ifndef TRIDENT_ID_H
#define TRIDENT_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ID_TEXT_LEN 26
#define ID_BYTES 16
#define ID_CLIENT_MAX 128

/* id_generate: a new id as NUL-terminated text. */
void id_generate(char out[ID_TEXT_LEN + 1]);
/* id_generate_bytes: a new id as 16 big-endian bytes. */
void id_generate_bytes(uint8_t out[ID_BYTES]);

/* id_encode: 16 bytes to 26 characters plus a NUL. */
void id_encode(const uint8_t bytes[ID_BYTES], char out[ID_TEXT_LEN + 1]);
/* id_decode: the n characters at s (no NUL needed) to 16 bytes. Accepts
 * lower case and the Crockford aliases I and L for 1, O for 0. Returns 0, or
 * -1 for a length other than 26, a character outside the alphabet or a first
 * character above 7 (out is then unspecified). */
int id_decode(const char *s, size_t n, uint8_t out[ID_BYTES]);
/* id_time_ms: the unix time in ms an id was generated at. */
uint64_t id_time_ms(const uint8_t bytes[ID_BYTES]);

/* id_client_valid: true if the n bytes at s may serve as a client-chosen id:
 * 1 to ID_CLIENT_MAX printable ASCII bytes (0x21..0x7e, so no spaces). */
bool id_client_valid(const char *s, size_t n);

#endif
