#include "frame.h"

#include <assert.h>

proto_status frame_check_header(const uint8_t hdr[FRAME_HEADER_LEN], uint32_t max_frame,
                                uint32_t *body_len, error_code *err)
{
    uint32_t n = buf_read_be32(hdr);
    if (n > max_frame) {
        *err = ERR_FRAME_TOO_LARGE;
        return PROTO_ERR;
    }
    if (n == 0) {
        *err = ERR_BAD_FRAME;
        return PROTO_ERR;
    }
    *body_len = n;
    return PROTO_OK;
}

void frame_reader_init(frame_reader *fr, uint32_t max_frame)
{
    buf_init(&fr->in);
    fr->max_frame = max_frame;
    fr->checked = 0;
    fr->pending = 0;
    fr->error = ERR_NONE;
    fr->error_at = 0;
}

void frame_reader_free(frame_reader *fr)
{
    buf_free(&fr->in);
    frame_reader_init(fr, fr->max_frame);
}

/* drop_pending: forgets the frame returned last; its bytes may now move. */
static void drop_pending(frame_reader *fr)
{
    if (fr->pending == 0)
        return;
    buf_consume(&fr->in, fr->pending);
    fr->checked -= fr->pending;
    if (fr->error != ERR_NONE)
        fr->error_at -= fr->pending;
    fr->pending = 0;
}

proto_status frame_reader_feed(frame_reader *fr, const void *data, size_t n)
{
    drop_pending(fr);
    if (fr->error != ERR_NONE)
        return PROTO_ERR;
    const uint8_t *src = data;
    size_t have = buf_used(&fr->in);
    /* Walk the headers over the virtual concatenation of what is held and
     * the new bytes, so that a bad header stops us before its bytes are
     * copied. `checked` is the start of the first frame not yet walked. */
    size_t pos = fr->checked;
    size_t total = have + n;
    while (total - pos >= FRAME_HEADER_LEN) {
        uint8_t hdr[FRAME_HEADER_LEN];
        for (size_t i = 0; i < FRAME_HEADER_LEN; i++) {
            size_t at = pos + i;
            hdr[i] = at < have ? buf_rptr(&fr->in)[at] : src[at - have];
        }
        uint32_t body;
        error_code err;
        if (frame_check_header(hdr, fr->max_frame, &body, &err) != PROTO_OK) {
            fr->error = err;
            fr->error_at = pos;
            break;
        }
        if (total - pos - FRAME_HEADER_LEN < body)
            break;
        pos += FRAME_HEADER_LEN + body;
    }
    fr->checked = pos;
    size_t keep = fr->error != ERR_NONE ? (pos > have ? pos - have : 0) : n;
    buf_append(&fr->in, src, keep);
    return fr->error != ERR_NONE ? PROTO_ERR : PROTO_OK;
}

proto_status frame_reader_next(frame_reader *fr, const uint8_t **body, size_t *len,
                               error_code *err)
{
    drop_pending(fr);
    size_t used = buf_used(&fr->in);
    size_t limit = fr->error != ERR_NONE ? fr->error_at : fr->checked;
    if (limit >= FRAME_HEADER_LEN) {
        /* The headers up to `checked` were validated by feed. */
        const uint8_t *p = buf_rptr(&fr->in);
        uint32_t n = buf_read_be32(p);
        assert((size_t)FRAME_HEADER_LEN + n <= used);
        *body = p + FRAME_HEADER_LEN;
        *len = n;
        fr->pending = FRAME_HEADER_LEN + (size_t)n;
        return PROTO_OK;
    }
    if (fr->error != ERR_NONE) {
        *err = fr->error;
        return PROTO_ERR;
    }
    /* Give back memory once a large frame has gone. */
    if (used == 0)
        buf_shrink(&fr->in, 64 * 1024);
    return PROTO_AGAIN;
}

size_t frame_reader_buffered(const frame_reader *fr)
{
    return buf_used(&fr->in) - fr->pending;
}

size_t frame_begin(buf *out)
{
    /* Relative to the read offset: appending may compact the buffer. */
    size_t at = buf_used(out);
    buf_append_be32(out, 0);
    return at;
}

void frame_end(buf *out, size_t header_at)
{
    size_t body = buf_used(out) - header_at - FRAME_HEADER_LEN;
    assert(body <= UINT32_MAX);
    buf_write_be32(out->data + out->off + header_at, (uint32_t)body);
}
