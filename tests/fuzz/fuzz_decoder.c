/* fuzz_decoder: libFuzzer target for the frame reader and the decoder.
 *
 * The input is a byte stream as a peer would send it. The first byte picks
 * the read size the stream is fed in (so frame boundaries fall everywhere)
 * and the side that decodes it. Every frame that decodes is encoded again,
 * and that encoding must decode to the same bytes once more: a property,
 * not just "did not crash". Limits are small so the fuzzer reaches them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const proto_msg *m, proto_side side, const proto_limits *lim)
{
    buf a, b;
    buf_init(&a);
    buf_init(&b);
    if (proto_encode(&a, m, UINT32_MAX) < 0)
        abort();
    proto_msg again;
    proto_error e;
    if (proto_decode(buf_rptr(&a) + 4, buf_used(&a) - 4, side, lim, &again, &e) != PROTO_OK)
        abort();
    if (proto_encode(&b, &again, UINT32_MAX) < 0)
        abort();
    if (buf_used(&a) != buf_used(&b) || memcmp(buf_rptr(&a), buf_rptr(&b), buf_used(&a)) != 0)
        abort();
    /* Walk the arrays the way their users will. */
    size_t pos = 0;
    proto_task t;
    while (proto_tasks_next(&m->tasks, &pos, &t) == PROTO_OK)
        ;
    proto_slice s;
    pos = 0;
    while (proto_strs_next(&m->queues, &pos, &s) == PROTO_OK)
        ;
    buf_free(&a);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = 1 + (data[0] & 0x7f);
    proto_side side = (data[0] & 0x80) ? PROTO_SIDE_PEER : PROTO_SIDE_BROKER;
    data++, size--;

    proto_limits lim;
    proto_limits_default(&lim);
    lim.max_frame = 1u << 16;
    lim.max_elements = 4096;
    lim.max_string = 1024;
    lim.max_batch = 64;

    frame_reader fr;
    frame_reader_init(&fr, lim.max_frame);
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        proto_status fed = frame_reader_feed(&fr, data + off, n);
        const uint8_t *body;
        size_t len;
        error_code err;
        while (frame_reader_next(&fr, &body, &len, &err) == PROTO_OK) {
            proto_msg m;
            proto_error e;
            if (proto_decode(body, len, side, &lim, &m, &e) == PROTO_OK)
                check_round_trip(&m, side, &lim);
            else if (e.code == ERR_NONE || e.message[0] == '\0')
                abort();
        }
        if (fed == PROTO_ERR)
            break;
    }
    frame_reader_free(&fr);
    return 0;
}
