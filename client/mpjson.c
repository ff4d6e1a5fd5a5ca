#include "mpjson.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpread.h"

static void put(buf *out, const char *s)
{
    buf_append(out, s, strlen(s));
}

/* ------------------------------------------------------------------------
 * Strings and bytes
 * ------------------------------------------------------------------------ */

/* utf8_len: the length of the valid UTF-8 sequence that starts at p (at
 * most n bytes available), or 0 if p[0] does not start one. Overlong forms,
 * surrogates and code points above U+10FFFF are invalid (RFC 3629). */
static size_t utf8_len(const uint8_t *p, size_t n)
{
    uint8_t b = p[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        if (b == 0xe0)
            lo = 0xa0;
        else if (b == 0xed)
            hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        if (b == 0xf0)
            lo = 0x90;
        else if (b == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

void mpjson_string(buf *out, const void *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_append_u8(out, '"');
    if (n == 0) { /* s may then be NULL, which takes no offset */
        buf_append_u8(out, '"');
        return;
    }
    const uint8_t *p = s, *end = p + n;
    while (p < end) {
        /* Copy the longest run that needs no escaping in one append. */
        const uint8_t *run = p;
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80)
            p++;
        buf_append(out, run, (size_t)(p - run));
        if (p == end)
            break;
        uint8_t b = *p;
        if (b >= 0x80) {
            size_t len = utf8_len(p, (size_t)(end - p));
            if (len) {
                buf_append(out, p, len);
                p += len;
            } else {
                put(out, "\\ufffd");
                p++;
            }
            continue;
        }
        p++;
        switch (b) {
        case '"': put(out, "\\\""); break;
        case '\\': put(out, "\\\\"); break;
        case '\n': put(out, "\\n"); break;
        case '\r': put(out, "\\r"); break;
        case '\t': put(out, "\\t"); break;
        case '\b': put(out, "\\b"); break;
        case '\f': put(out, "\\f"); break;
        default: {
            char u[7] = { '\\', 'u', '0', '0', hex[b >> 4], hex[b & 15], '\0' };
            put(out, u);
        }
        }
    }
    buf_append_u8(out, '"');
}

void mpjson_base64(buf *out, const void *s, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *p = s;
    uint8_t *w = buf_reserve(out, 2 + (n + 2) / 3 * 4);
    uint8_t *start = w;
    *w++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *w++ = (uint8_t)abc[v >> 18];
        *w++ = (uint8_t)abc[(v >> 12) & 63];
        *w++ = (uint8_t)abc[(v >> 6) & 63];
        *w++ = (uint8_t)abc[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *w++ = (uint8_t)abc[v >> 18];
        *w++ = (uint8_t)abc[(v >> 12) & 63];
        *w++ = i + 1 < n ? (uint8_t)abc[(v >> 6) & 63] : '=';
        *w++ = '=';
    }
    *w++ = '"';
    buf_commit(out, (size_t)(w - start));
}

/* ------------------------------------------------------------------------
 * Values
 *
 * One recursive walk. mpread checks every declared length against the
 * bytes left before believing it, so a hostile header cannot make the walk
 * read past the input; the depth bound keeps the recursion short. Floats
 * and ext values, which mpread only skips, are read here.
 * ------------------------------------------------------------------------ */

typedef struct render {
    mpread r;
    buf *out;
    bool pretty;
} render;

static int render_value(render *x, unsigned depth);

static uint64_t be_bytes(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void newline(render *x, unsigned depth)
{
    if (!x->pretty)
        return;
    uint8_t *w = buf_reserve(x->out, 1 + 2 * (size_t)depth);
    w[0] = '\n';
    memset(w + 1, ' ', 2 * (size_t)depth);
    buf_commit(x->out, 1 + 2 * (size_t)depth);
}

/* render_float: 0xca (float32) or 0xcb (float64), in the fewest digits
 * that read back as the same value. */
static int render_float(render *x)
{
    bool single = *x->r.p == 0xca;
    size_t n = single ? 4 : 8;
    if (mpread_left(&x->r) < 1 + n)
        return -1;
    uint64_t bits = be_bytes(x->r.p + 1, n);
    x->r.p += 1 + n;
    double v;
    if (single) {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, sizeof f);
        v = f;
    } else {
        memcpy(&v, &bits, sizeof v);
    }
    if (!isfinite(v)) {
        put(x->out, "null");
        return 0;
    }
    char text[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(text, sizeof text, "%.*g", prec, v);
        double back = strtod(text, NULL);
        if (single ? (float)back == (float)v : back == v)
            break;
    }
    put(x->out, text);
    return 0;
}

/* render_ext: fixext 1..16 (0xd4..0xd8) or ext 8/16/32 (0xc7..0xc9). */
static int render_ext(render *x)
{
    uint8_t b = *x->r.p;
    size_t hdr, len;
    if (b >= 0xd4 && b <= 0xd8) {
        hdr = 1;
        len = (size_t)1 << (b - 0xd4);
    } else {
        size_t w = (size_t)1 << (b - 0xc7);
        if (mpread_left(&x->r) < 1 + w)
            return -1;
        hdr = 1 + w;
        len = (size_t)be_bytes(x->r.p + 1, w);
    }
    if (mpread_left(&x->r) < hdr + 1 || mpread_left(&x->r) - hdr - 1 < len)
        return -1;
    int8_t type = (int8_t)x->r.p[hdr];
    const uint8_t *data = x->r.p + hdr + 1;
    x->r.p += hdr + 1 + len;
    char head[32];
    snprintf(head, sizeof head, x->pretty ? "{\"ext\": %d, \"data\": " : "{\"ext\":%d,\"data\":",
             type);
    put(x->out, head);
    mpjson_base64(x->out, data, len);
    buf_append_u8(x->out, '}');
    return 0;
}

/* render_key: a map key; one that is not a str is rendered, then quoted. */
static int render_key(render *x, unsigned depth)
{
    const uint8_t *s;
    uint32_t n;
    if (mpread_peek(&x->r) == MP_STR) {
        if (mpread_str(&x->r, &s, &n) < 0)
            return -1;
        mpjson_string(x->out, s, n);
        return 0;
    }
    buf tmp = BUF_INIT;
    render sub = { x->r, &tmp, false };
    int rc = render_value(&sub, depth);
    if (rc == 0) {
        x->r = sub.r;
        mpjson_string(x->out, buf_rptr(&tmp), buf_used(&tmp));
    }
    buf_free(&tmp);
    return rc;
}

/* render_container: the n elements (array) or n pairs (map) after the header. */
static int render_container(render *x, bool map, uint32_t n, unsigned depth)
{
    if (depth >= MPJSON_MAX_DEPTH)
        return -1;
    buf_append_u8(x->out, map ? '{' : '[');
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            buf_append_u8(x->out, ',');
        newline(x, depth + 1);
        if (map) {
            if (render_key(x, depth + 1) < 0)
                return -1;
            put(x->out, x->pretty ? ": " : ":");
        }
        if (render_value(x, depth + 1) < 0)
            return -1;
    }
    if (n)
        newline(x, depth);
    buf_append_u8(x->out, map ? '}' : ']');
    return 0;
}

static int render_value(render *x, unsigned depth)
{
    mpread *r = &x->r;
    char num[32];
    const uint8_t *s;
    uint32_t n;
    bool bv;
    uint64_t uv;
    int64_t sv;
    switch (mpread_peek(r)) {
    case MP_NIL:
        mpread_nil(r);
        put(x->out, "null");
        return 0;
    case MP_BOOL:
        mpread_bool(r, &bv);
        put(x->out, bv ? "true" : "false");
        return 0;
    case MP_UINT:
        if (mpread_uint(r, &uv) < 0)
            return -1;
        snprintf(num, sizeof num, "%" PRIu64, uv);
        put(x->out, num);
        return 0;
    case MP_INT:
        if (mpread_int(r, &sv) < 0)
            return -1;
        snprintf(num, sizeof num, "%" PRId64, sv);
        put(x->out, num);
        return 0;
    case MP_FLOAT:
        return render_float(x);
    case MP_STR:
        if (mpread_str(r, &s, &n) < 0)
            return -1;
        mpjson_string(x->out, s, n);
        return 0;
    case MP_BIN:
        if (mpread_bin(r, &s, &n) < 0)
            return -1;
        mpjson_base64(x->out, s, n);
        return 0;
    case MP_ARRAY:
        if (mpread_array(r, &n) < 0)
            return -1;
        return render_container(x, false, n, depth);
    case MP_MAP:
        if (mpread_map(r, &n) < 0)
            return -1;
        return render_container(x, true, n, depth);
    case MP_EXT:
        return render_ext(x);
    case MP_EOF:
    case MP_INVALID:
        break;
    }
    return -1;
}

int mpjson_render(const uint8_t *data, size_t len, unsigned flags, buf *out)
{
    size_t before = buf_used(out);
    render x = { .out = out, .pretty = (flags & MPJSON_PRETTY) != 0 };
    mpread_init(&x.r, data, len, MPJSON_MAX_DEPTH, UINT32_MAX, UINT32_MAX);
    if (render_value(&x, 0) == 0 && mpread_left(&x.r) == 0)
        return 0;
    out->len = out->off + before;
    return -1;
}
