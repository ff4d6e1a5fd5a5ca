/* mpjson: msgpack values rendered as JSON text.
 *
 * The broker answers STATS, INFO and DEAD_LIST with nested msgpack maps;
 * programs and the trident CLI want JSON. mpjson_render walks one msgpack
 * value with the bounded reader of proto/mpread.h and appends its JSON to a
 * buf. The mapping, fixed so that scripts can rely on it:
 *
 *   nil -> null          bool -> true / false
 *   integer -> decimal, the whole uint64 and int64 range (never via double)
 *   float -> the shortest decimal that reads back as the same value;
 *            NaN and the infinities -> null (JSON has no such numbers)
 *   str -> a JSON string (escaping below)
 *   bin -> a JSON string of the bytes in base64 (RFC 4648, padded), which
 *          is how a task's result or payload appears
 *   array -> array, map -> object
 *   ext -> {"ext": TYPE, "data": "BASE64"}
 *
 * Strings: '"', '\' and the control characters are escaped (\n, \t, \r,
 * \b, \f, other bytes below 0x20 as \u00XX); valid UTF-8 passes through
 * unchanged; each byte that does not start a valid UTF-8 sequence becomes
 * U+FFFD, because msgpack strings carry bytes and JSON text must be UTF-8
 * (PROTOCOL.md: decode leniently). A map key that is not a str is rendered
 * as JSON and that text is used as the key: {1: 2} gives {"1":2}.
 *
 * Pure functions of their input; any thread.
 */
#ifndef TRIDENT_MPJSON_H
#define TRIDENT_MPJSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* mpjson_render flags */
#define MPJSON_PRETTY 0x1u /* newlines and two-space indentation */

/* Maps and arrays nested deeper than this are refused (the protocol allows 8). */
#define MPJSON_MAX_DEPTH 64

/* mpjson_render: appends the JSON of the msgpack value in data[0..len),
 * which must hold exactly one value. Returns 0, or -1 when the input is
 * truncated, malformed, nested deeper than MPJSON_MAX_DEPTH or followed by
 * more bytes; out is then exactly as it was. */
int mpjson_render(const uint8_t *data, size_t len, unsigned flags, buf *out);

/* mpjson_string: appends s[0..n) as a quoted JSON string, escaped as above. */
void mpjson_string(buf *out, const void *s, size_t n);

/* mpjson_base64: appends s[0..n) as a quoted JSON string of its base64. */
void mpjson_base64(buf *out, const void *s, size_t n);

#endif
