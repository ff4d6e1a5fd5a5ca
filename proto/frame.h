/* frame: the framing of wire protocol v1.
 *
 * A frame is a 4-byte big-endian body length, then the body (one msgpack map,
 * see proto.h). The maximum body length is a limit the caller gives; a frame
 * whose header declares more is rejected from the header alone, before any
 * of its body is kept, so a peer cannot make us reserve memory by claiming
 * a large frame.
 *
 * frame_reader is the incremental decoder for byte streams: feed it what
 * read() returned, take whole frame bodies out with frame_reader_next. It does
 * no IO. Not thread-safe: one reader per connection, used by its owner.
 */
#ifndef TRIDENT_FRAME_H
#define TRIDENT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "errors.h"
#include "proto.h"

#define FRAME_HEADER_LEN 4

/* frame_check_header: reads the body length from 4 header bytes. Returns
 * PROTO_OK with *body_len set, or PROTO_ERR with *err = ERR_FRAME_TOO_LARGE
 * (over max_frame) or ERR_BAD_FRAME (zero: a body is never empty). */
proto_status frame_check_header(const uint8_t hdr[FRAME_HEADER_LEN], uint32_t max_frame,
                                uint32_t *body_len, error_code *err);

typedef struct frame_reader {
    buf in;               /* bytes received and not yet returned */
    uint32_t max_frame;
    size_t checked;       /* bytes of `in` (from its read offset) whose headers passed */
    size_t pending;       /* body bytes of the frame just returned, dropped on the next call */
    error_code error;     /* ERR_NONE until a bad header is seen */
    size_t error_at;      /* offset from the read offset of the bad header */
} frame_reader;

void frame_reader_init(frame_reader *fr, uint32_t max_frame);
void frame_reader_free(frame_reader *fr);

/* frame_reader_feed: takes n bytes. Headers are checked as they arrive: when
 * one is bad, nothing from that header on is kept, the frames before it are
 * still returned, and then frame_reader_next reports the error. Returns
 * PROTO_OK, or PROTO_ERR once the stream is known to be bad (feeding more is
 * then pointless but harmless). */
proto_status frame_reader_feed(frame_reader *fr, const void *data, size_t n);

/* frame_reader_next: PROTO_OK with the next whole frame body in *body and *len
 * (borrowed, valid until the next feed or next call), PROTO_AGAIN when no
 * whole frame is buffered, or PROTO_ERR with *err once the frames before a
 * bad header are all returned. */
proto_status frame_reader_next(frame_reader *fr, const uint8_t **body, size_t *len,
                               error_code *err);

/* frame_reader_buffered: bytes held, for idle-timeout and memory checks. */
size_t frame_reader_buffered(const frame_reader *fr);

/* frame_begin / frame_end: write a frame into a buf around an encoder:
 * frame_begin reserves the header and returns its offset from the read
 * offset (which stays valid if the buffer compacts); frame_end fills
 * it in with the length of what was appended since. */
size_t frame_begin(buf *out);
void frame_end(buf *out, size_t header_at);

#endif
