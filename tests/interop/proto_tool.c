/* proto_tool: the C side of the interop test.
 *
 *   proto_tool list               the samples: "label side" per line
 *   proto_tool encode             every sample, as frames, to stdout
 *   proto_tool decode broker|peer frames from stdin, one JSON line each
 *   proto_tool corpus DIR         one file per sample, seeds for fuzz_decoder
 *
 * decode prints what proto/ understood, in a form an independent decoder
 * can compare with: {"op": "SUBMIT", "fields": {...}} where str values are
 * JSON strings, bin values {"bin": "<hex>"}, arrays lists, task maps
 * objects, and the raw map fields (stats, info) {"raw": "<hex>"}; or
 * {"error": "CODE", "message": "...", "rid": N|null} for a frame it refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "mpread.h"
#include "proto.h"
#include "proto_samples.h"

static void json_str(const uint8_t *p, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void json_hex(const char *kind, const uint8_t *p, size_t n)
{
    printf("{\"%s\": \"", kind);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\"}");
}

/* print_value: one value at r, typed by what the decoder stored. Reading
 * the raw bytes again keeps this tool independent of the field table. */
static void print_any(mpread *r);

static void print_map(mpread *r, uint32_t n)
{
    putchar('{');
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *k;
        uint32_t kl;
        mpread_str(r, &k, &kl);
        printf(i ? ", " : "");
        json_str(k, kl);
        printf(": ");
        print_any(r);
    }
    putchar('}');
}

static void print_any(mpread *r)
{
    const uint8_t *s;
    uint32_t n;
    uint64_t u;
    int64_t i;
    bool b;
    switch (mpread_peek(r)) {
    case MP_UINT:
        mpread_uint(r, &u);
        printf("%llu", (unsigned long long)u);
        break;
    case MP_INT:
        mpread_int(r, &i);
        printf("%lld", (long long)i);
        break;
    case MP_BOOL:
        mpread_bool(r, &b);
        printf(b ? "true" : "false");
        break;
    case MP_STR:
        mpread_str(r, &s, &n);
        json_str(s, n);
        break;
    case MP_BIN:
        mpread_bin(r, &s, &n);
        json_hex("bin", s, n);
        break;
    case MP_ARRAY:
        mpread_array(r, &n);
        putchar('[');
        for (uint32_t k = 0; k < n; k++) {
            printf(k ? ", " : "");
            print_any(r);
        }
        putchar(']');
        break;
    case MP_MAP:
        mpread_map(r, &n);
        print_map(r, n);
        break;
    default:
        mpread_skip(r);
        printf("null");
        break;
    }
}

/* print_msg: re-encodes the decoded message (the encoder writes exactly the
 * fields the decoder stored) and prints that map, with raw fields as hex. */
static void print_msg(const proto_msg *m)
{
    buf b;
    buf_init(&b);
    proto_msg copy = *m;
    uint64_t raw_bits = m->present & (MF_STATS | MF_INFO);
    copy.present &= ~raw_bits;
    /* Task maps as proto/ reads them (proto_tasks_next), not as sent. */
    proto_task *tasks = NULL;
    if (m->present & MF_TASKS) {
        tasks = calloc(m->tasks.n ? m->tasks.n : 1, sizeof *tasks);
        size_t pos = 0;
        uint32_t n = 0;
        while (n < m->tasks.n && proto_tasks_next(&m->tasks, &pos, &tasks[n]) == PROTO_OK)
            n++;
        copy.tasks = (proto_array){ .n = n, .tasks = tasks };
    }
    proto_encode(&b, &copy, UINT32_MAX);
    free(tasks);
    mpread r;
    mpread_init(&r, buf_rptr(&b) + FRAME_HEADER_LEN, buf_used(&b) - FRAME_HEADER_LEN, 64,
                 UINT32_MAX, UINT32_MAX);
    uint32_t n;
    mpread_map(&r, &n);
    printf("{\"op\": \"%s\", \"fields\": {", proto_op_name(m->op));
    bool first = true;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *k;
        uint32_t kl;
        mpread_str(&r, &k, &kl);
        if (kl == 2 && memcmp(k, "op", 2) == 0) {
            mpread_skip(&r);
            continue;
        }
        printf(first ? "" : ", ");
        first = false;
        json_str(k, kl);
        printf(": ");
        print_any(&r);
    }
    if (m->present & MF_STATS) {
        printf(first ? "\"stats\": " : ", \"stats\": ");
        first = false;
        json_hex("raw", m->stats.ptr, m->stats.len);
    }
    if (m->present & MF_INFO) {
        printf(first ? "\"info\": " : ", \"info\": ");
        json_hex("raw", m->info.ptr, m->info.len);
    }
    printf("}}\n");
    buf_free(&b);
}

static int decode(proto_side side)
{
    proto_limits lim;
    proto_limits_default(&lim);
    frame_reader fr;
    frame_reader_init(&fr, lim.max_frame);
    uint8_t chunk[65536];
    for (;;) {
        ssize_t n = read(0, chunk, sizeof chunk);
        if (n < 0) {
            perror("read");
            return 1;
        }
        bool eof = n == 0;
        proto_status fed = eof ? PROTO_OK : frame_reader_feed(&fr, chunk, (size_t)n);
        const uint8_t *body;
        size_t len;
        error_code err;
        proto_status st;
        while ((st = frame_reader_next(&fr, &body, &len, &err)) == PROTO_OK) {
            proto_msg m;
            proto_error e;
            if (proto_decode(body, len, side, &lim, &m, &e) == PROTO_OK) {
                print_msg(&m);
            } else {
                printf("{\"error\": \"%s\", \"message\": ", errors_name(e.code));
                json_str((const uint8_t *)e.message, strlen(e.message));
                if (m.present & MF_RID)
                    printf(", \"rid\": %llu}\n", (unsigned long long)m.rid);
                else
                    printf(", \"rid\": null}\n");
            }
        }
        if (st == PROTO_ERR || fed == PROTO_ERR) {
            printf("{\"error\": \"%s\", \"message\": \"frame rejected\", \"rid\": null}\n",
                   errors_name(err));
            break;
        }
        if (eof)
            break;
    }
    if (frame_reader_buffered(&fr))
        printf("{\"error\": \"TRUNCATED\", \"message\": \"stream ended inside a frame\", \"rid\": null}\n");
    frame_reader_free(&fr);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < proto_samples_count(); i++) {
            const proto_sample *s = proto_samples_get(i);
            printf("%s %s\n", s->label, s->side == PROTO_SIDE_BROKER ? "broker" : "peer");
        }
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "encode") == 0) {
        buf b;
        buf_init(&b);
        for (size_t i = 0; i < proto_samples_count(); i++)
            if (proto_encode(&b, &proto_samples_get(i)->msg, UINT32_MAX) < 0)
                return 1;
        fwrite(buf_rptr(&b), 1, buf_used(&b), stdout);
        buf_free(&b);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "corpus") == 0) {
        for (size_t i = 0; i < proto_samples_count(); i++) {
            const proto_sample *s = proto_samples_get(i);
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[2], s->label);
            FILE *f = fopen(path, "wb");
            if (!f) {
                perror(path);
                return 1;
            }
            buf b;
            buf_init(&b);
            /* First byte: the fuzz target's feed size and side. */
            buf_append_u8(&b, (uint8_t)((s->side == PROTO_SIDE_PEER ? 0x80 : 0) | 0x3f));
            proto_encode(&b, &s->msg, UINT32_MAX);
            fwrite(buf_rptr(&b), 1, buf_used(&b), f);
            fclose(f);
            buf_free(&b);
        }
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "decode") == 0) {
        if (strcmp(argv[2], "broker") == 0)
            return decode(PROTO_SIDE_BROKER);
        if (strcmp(argv[2], "peer") == 0)
            return decode(PROTO_SIDE_PEER);
    }
    fprintf(stderr, "usage: proto_tool list | encode | corpus DIR | decode broker|peer\n");
    return 2;
}
