/* proto_bench: frames per second through the codec on one core.
 *
 * A SUBMIT with a 100-byte payload (the benchmark issue's task shape) is
 * encoded, decoded, and carried through the frame reader as a stream, each
 * for a fixed number of frames per run; the figure is the median of the runs
 * with min and max. Usage: proto_bench [runs] [frames-per-run]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "frame.h"
#include "proto.h"

typedef struct result {
    double per_s[32];
    int n;
} result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, result *r)
{
    qsort(r->per_s, (size_t)r->n, sizeof r->per_s[0], cmp_double);
    printf("%-28s median %10.0f/s   min %10.0f   max %10.0f   (%d runs)\n", what,
           r->per_s[r->n / 2], r->per_s[0], r->per_s[r->n - 1], r->n);
}

static void make_submit(proto_msg *m, const uint8_t *payload)
{
    memset(m, 0, sizeof *m);
    m->op = OP_SUBMIT;
    m->present = MF_RID | MF_PUSH_RESULT;
    m->rid = 123456;
    m->push_result = true;
    m->task.present = TF_QUEUE | TF_NAME | TF_PAYLOAD;
    m->task.queue = proto_slice_of("default");
    m->task.name = proto_slice_of("echo");
    m->task.payload = (proto_slice){ payload, 100 };
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    long frames = argc > 2 ? atol(argv[2]) : 2000000;
    if (runs < 1 || runs > 32 || frames < 1) {
        fprintf(stderr, "usage: proto_bench [runs 1..32] [frames-per-run]\n");
        return 2;
    }
    uint8_t payload[100];
    for (int i = 0; i < 100; i++)
        payload[i] = (uint8_t)('a' + i % 26);
    proto_msg m;
    make_submit(&m, payload);
    proto_limits lim;
    proto_limits_default(&lim);

    buf one;
    buf_init(&one);
    proto_encode(&one, &m, lim.max_frame);
    size_t flen = buf_used(&one);
    printf("SUBMIT frame: %zu bytes (100-byte payload); %ld frames per run\n", flen, frames);

    /* A stream of 10,000 frames for the reader path. */
    const int per_stream = 10000;
    buf stream;
    buf_init(&stream);
    for (int i = 0; i < per_stream; i++)
        buf_append(&stream, buf_rptr(&one), flen);

    result enc = { .n = runs }, dec = { .n = runs }, rd = { .n = runs };
    volatile uint64_t sink = 0;
    for (int r = 0; r < runs; r++) {
        buf out;
        buf_init(&out);
        uint64_t t0 = clock_mono_ns();
        for (long i = 0; i < frames; i++) {
            buf_reset(&out);
            m.rid = (uint64_t)i;
            proto_encode(&out, &m, lim.max_frame);
        }
        uint64_t t1 = clock_mono_ns();
        enc.per_s[r] = (double)frames * 1e9 / (double)(t1 - t0);
        buf_free(&out);

        t0 = clock_mono_ns();
        for (long i = 0; i < frames; i++) {
            proto_msg d;
            proto_error e;
            if (proto_decode(buf_rptr(&one) + 4, flen - 4, PROTO_SIDE_BROKER, &lim, &d, &e) != PROTO_OK)
                return 1;
            sink += d.task.payload.len;
        }
        t1 = clock_mono_ns();
        dec.per_s[r] = (double)frames * 1e9 / (double)(t1 - t0);

        /* Reader + decode, fed in 64 KiB reads as a socket would deliver. */
        long done = 0;
        t0 = clock_mono_ns();
        while (done < frames) {
            frame_reader fr;
            frame_reader_init(&fr, lim.max_frame);
            for (size_t off = 0; off < buf_used(&stream); off += 65536) {
                size_t n = buf_used(&stream) - off < 65536 ? buf_used(&stream) - off : 65536;
                frame_reader_feed(&fr, buf_rptr(&stream) + off, n);
                const uint8_t *body;
                size_t len;
                error_code err;
                while (frame_reader_next(&fr, &body, &len, &err) == PROTO_OK) {
                    proto_msg d;
                    proto_error e;
                    proto_decode(body, len, PROTO_SIDE_BROKER, &lim, &d, &e);
                    sink += d.rid;
                    done++;
                }
            }
            frame_reader_free(&fr);
        }
        t1 = clock_mono_ns();
        rd.per_s[r] = (double)done * 1e9 / (double)(t1 - t0);
    }
    report("encode SUBMIT", &enc);
    report("decode SUBMIT", &dec);
    report("frame reader + decode", &rd);
    buf_free(&one);
    buf_free(&stream);
    return sink == 0;
}
