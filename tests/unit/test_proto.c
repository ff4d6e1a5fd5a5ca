/* Unit tests of proto/proto: every message of every op round-trips, every
 * frame survives every split, bad input gets the right code naming the key,
 * limits hold at and over their values, and decoding costs no memory. */
#include <check.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "frame.h"
#include "proto.h"
#include "proto_samples.h"
#include "test_proto_helpers.h"
#include "unit.h"

/* ---- building bodies by hand with msgpack-c -------------------------- */

static int wr(void *data, const char *p, size_t n)
{
    buf_append(data, p, n);
    return 0;
}

typedef struct body {
    buf b;
    msgpack_packer pk;
} bodybuf;

static void body_start(bodybuf *x, size_t pairs)
{
    buf_init(&x->b);
    msgpack_packer_init(&x->pk, &x->b, wr);
    msgpack_pack_map(&x->pk, pairs);
}

static void p_str(bodybuf *x, const char *s)
{
    msgpack_pack_str(&x->pk, strlen(s));
    msgpack_pack_str_body(&x->pk, s, strlen(s));
}

static void kv_str(bodybuf *x, const char *k, const char *v) { p_str(x, k); p_str(x, v); }
static void kv_uint(bodybuf *x, const char *k, uint64_t v) { p_str(x, k); msgpack_pack_uint64(&x->pk, v); }
static void kv_int(bodybuf *x, const char *k, int64_t v) { p_str(x, k); msgpack_pack_int64(&x->pk, v); }

static proto_limits lim(void)
{
    proto_limits l;
    proto_limits_default(&l);
    return l;
}

static proto_status decode_body(bodybuf *x, proto_side side, const proto_limits *l, proto_msg *m,
                                proto_error *e)
{
    return proto_decode(buf_rptr(&x->b), buf_used(&x->b), side, l, m, e);
}

/* expect_error: the body fails with code and a message containing `needle`. */
static void expect_error(bodybuf *x, proto_side side, error_code code, const char *needle)
{
    proto_limits l = lim();
    proto_msg m;
    proto_error e;
    ck_assert_int_eq(decode_body(x, side, &l, &m, &e), PROTO_ERR);
    ck_assert_msg(e.code == code, "code %s, wanted %s (%s)", errors_name(e.code),
                  errors_name(code), e.message);
    ck_assert_msg(strstr(e.message, needle) != NULL, "message '%s' lacks '%s'", e.message, needle);
    buf_free(&x->b);
}

static void encode_sample(const proto_sample *s, buf *out)
{
    buf_init(out);
    ck_assert_int_eq(proto_encode(out, &s->msg, PROTO_FRAME_MAX_DEFAULT), 0);
}

/* ---- round trips ------------------------------------------------------ */

START_TEST(table_sorted)
{
    ck_assert(proto_fields_sorted());
}
END_TEST

START_TEST(roundtrip_every_sample)
{
    proto_limits l = lim();
    for (size_t i = 0; i < proto_samples_count(); i++) {
        const proto_sample *s = proto_samples_get(i);
        buf a, b;
        encode_sample(s, &a);
        uint32_t len;
        error_code err;
        ck_assert_int_eq(frame_check_header(buf_rptr(&a), l.max_frame, &len, &err), PROTO_OK);
        ck_assert_uint_eq(len + 4, buf_used(&a));
        proto_msg m;
        proto_error e;
        ck_assert_msg(proto_decode(buf_rptr(&a) + 4, len, s->side, &l, &m, &e) == PROTO_OK,
                      "%s: %s %s", s->label, errors_name(e.code), e.message);
        ck_assert_int_eq(m.op, s->msg.op);
        ck_assert_uint_eq(m.present, s->msg.present);
        ck_assert_uint_eq(m.task.present, s->msg.task.present);
        /* Re-encoding what was decoded gives the same bytes: every field
         * survived, and the encoding is canonical. */
        buf_init(&b);
        ck_assert_int_eq(proto_encode(&b, &m, l.max_frame), 0);
        ck_assert_msg(buf_used(&a) == buf_used(&b) && memcmp(buf_rptr(&a), buf_rptr(&b), buf_used(&a)) == 0,
                      "%s: re-encoding differs", s->label);
        buf_free(&a);
        buf_free(&b);
    }
}
END_TEST

static const proto_sample *sample(const char *label)
{
    for (size_t i = 0; i < proto_samples_count(); i++)
        if (strcmp(proto_samples_get(i)->label, label) == 0)
            return proto_samples_get(i);
    ck_abort_msg("no sample %s", label);
    return NULL;
}

static void decode_sample(const char *label, buf *frame, proto_msg *m)
{
    const proto_sample *s = sample(label);
    proto_limits l = lim();
    proto_error e;
    encode_sample(s, frame);
    ck_assert_int_eq(proto_decode(buf_rptr(frame) + 4, buf_used(frame) - 4, s->side, &l, m, &e),
                     PROTO_OK);
}

START_TEST(decoded_values)
{
    buf f;
    proto_msg m;
    decode_sample("submit", &f, &m);
    ck_assert(proto_slice_eq(m.task.queue, "emails"));
    ck_assert_uint_eq(m.task.payload.len, 17);
    ck_assert(memcmp(m.task.payload.ptr, "\x00\x01\xff{\"to\":", 8) == 0);
    /* Payloads are slices of the frame, not copies. */
    ck_assert(m.task.payload.ptr > buf_rptr(&f) && m.task.payload.ptr < buf_rptr(&f) + buf_used(&f));
    ck_assert_int_eq(m.task.priority, -5);
    ck_assert(m.push_result);
    ck_assert_uint_eq(m.wait, 250);
    ck_assert_uint_eq(m.rid, sample("submit")->msg.rid);
    buf_free(&f);

    decode_sample("submit-batch", &f, &m);
    ck_assert_uint_eq(m.tasks.n, 3);
    size_t pos = 0;
    proto_task t;
    int n = 0;
    while (proto_tasks_next(&m.tasks, &pos, &t) == PROTO_OK) {
        ck_assert(proto_slice_eq(t.name, "resize"));
        if (n == 1) {
            ck_assert(proto_slice_eq(t.id, "client-key-42"));
            ck_assert_int_eq(t.priority, 7);
            ck_assert_uint_eq(t.delay, 2000);
        }
        if (n == 2) {
            ck_assert(proto_slice_eq(t.queue, "thumbs"));
            ck_assert_uint_eq(t.present & TF_MAX_RETRIES, TF_MAX_RETRIES);
            ck_assert_uint_eq(t.max_retries, 0);
            ck_assert_uint_eq(t.payload.len, 0);
        }
        n++;
    }
    ck_assert_int_eq(n, 3);
    buf_free(&f);

    decode_sample("hello-worker", &f, &m);
    pos = 0;
    proto_slice q;
    ck_assert_int_eq(proto_strs_next(&m.queues, &pos, &q), PROTO_OK);
    ck_assert(proto_slice_eq(q, "emails"));
    ck_assert_int_eq(proto_strs_next(&m.queues, &pos, &q), PROTO_OK);
    ck_assert(proto_slice_eq(q, "default"));
    ck_assert_int_eq(proto_strs_next(&m.queues, &pos, &q), PROTO_AGAIN);
    uint64_t w;
    pos = 0;
    ck_assert_int_eq(proto_uints_next(&m.weights, &pos, &w), PROTO_OK);
    ck_assert_uint_eq(w, 5);
    buf_free(&f);

    decode_sample("error-no-rid", &f, &m);
    ck_assert_uint_eq(m.present & MF_RID, 0);
    ck_assert(proto_slice_eq(m.code, "BAD_FRAME"));
    buf_free(&f);
}
END_TEST

START_TEST(every_split_every_sample)
{
    proto_limits l = lim();
    for (size_t i = 0; i < proto_samples_count(); i++) {
        const proto_sample *s = proto_samples_get(i);
        buf a;
        encode_sample(s, &a);
        size_t total = buf_used(&a);
        for (size_t k = 0; k <= total; k++) {
            frame_reader fr;
            frame_reader_init(&fr, l.max_frame);
            const uint8_t *b;
            size_t n;
            error_code err;
            CHECK((frame_reader_feed(&fr, buf_rptr(&a), k)) == (PROTO_OK));
            if (k < total)
                CHECK((frame_reader_next(&fr, &b, &n, &err)) == (PROTO_AGAIN));
            CHECK((frame_reader_feed(&fr, buf_rptr(&a) + k, total - k)) == (PROTO_OK));
            CHECK((frame_reader_next(&fr, &b, &n, &err)) == (PROTO_OK));
            proto_msg m;
            proto_error e;
            CHECK((proto_decode(b, n, s->side, &l, &m, &e)) == (PROTO_OK));
            CHECK((m.op) == (s->msg.op));
            CHECK((m.present) == (s->msg.present));
            CHECK((frame_reader_next(&fr, &b, &n, &err)) == (PROTO_AGAIN));
            frame_reader_free(&fr);
        }
        buf_free(&a);
    }
}
END_TEST

START_TEST(every_prefix_is_bad_frame)
{
    proto_limits l = lim();
    for (size_t i = 0; i < proto_samples_count(); i++) {
        const proto_sample *s = proto_samples_get(i);
        buf a;
        encode_sample(s, &a);
        for (size_t k = 1; k < buf_used(&a) - 4; k++) {
            proto_msg m;
            proto_error e;
            CHECK((proto_decode(buf_rptr(&a) + 4, k, s->side, &l, &m, &e)) == (PROTO_ERR));
            ck_assert_msg(e.code == ERR_BAD_FRAME, "%s prefix %zu: %s", s->label, k,
                          errors_name(e.code));
        }
        buf_free(&a);
    }
}
END_TEST

START_TEST(corruption_never_crashes)
{
    static const uint8_t bytes[] = { 0x00, 0x7f, 0x80, 0x9f, 0xa0, 0xc0, 0xc1, 0xc4, 0xc6,
                                     0xcf, 0xd3, 0xd9, 0xdb, 0xdd, 0xdf, 0xe0, 0xff };
    proto_limits l = lim();
    for (size_t i = 0; i < proto_samples_count(); i++) {
        const proto_sample *s = proto_samples_get(i);
        buf a;
        encode_sample(s, &a);
        size_t n = buf_used(&a) - 4;
        uint8_t *copy = malloc(n);
        for (size_t at = 0; at < n; at++) {
            for (size_t v = 0; v < sizeof bytes; v++) {
                memcpy(copy, buf_rptr(&a) + 4, n);
                copy[at] = bytes[v];
                proto_msg m;
                proto_error e;
                if (proto_decode(copy, n, s->side, &l, &m, &e) == PROTO_OK) {
                    buf re;
                    buf_init(&re);
                    CHECK((proto_encode(&re, &m, UINT32_MAX)) == (0));
                    buf_free(&re);
                } else {
                    CHECK(e.code == ERR_BAD_FRAME || e.code == ERR_BAD_REQUEST ||
                              e.code == ERR_UNKNOWN_OP);
                    CHECK(e.message[0] != '\0');
                }
            }
        }
        free(copy);
        buf_free(&a);
    }
}
END_TEST

/* ---- errors ----------------------------------------------------------- */

START_TEST(op_and_rid_errors)
{
    bodybuf x;
    body_start(&x, 1), kv_uint(&x, "rid", 1);
    expect_error(&x, PROTO_SIDE_BROKER, ERR_BAD_REQUEST, "missing key 'op'");
    body_start(&x, 2), kv_uint(&x, "op", 5), kv_uint(&x, "rid", 1);
    expect_error(&x, PROTO_SIDE_BROKER, ERR_BAD_REQUEST, "key 'op'");
    body_start(&x, 1), kv_str(&x, "op", "PING");
    expect_error(&x, PROTO_SIDE_BROKER, ERR_BAD_REQUEST, "missing key 'rid'");
    body_start(&x, 2), kv_str(&x, "op", "TASK"), kv_uint(&x, "rid", 3);
    expect_error(&x, PROTO_SIDE_BROKER, ERR_UNKNOWN_OP, "'TASK'");
    body_start(&x, 2), kv_str(&x, "op", "SUBMIT"), kv_str(&x, "name", "n");
    expect_error(&x, PROTO_SIDE_PEER, ERR_UNKNOWN_OP, "'SUBMIT'");
    body_start(&x, 3), kv_str(&x, "op", "PING"), kv_str(&x, "op", "PING"), kv_uint(&x, "rid", 1);
    expect_error(&x, PROTO_SIDE_BROKER, ERR_BAD_REQUEST, "'op': given twice");

    /* An unknown op keeps the connection and echoes the rid, wherever it is. */
    proto_limits l = lim();
    proto_msg m;
    proto_error e;
    body_start(&x, 3), kv_uint(&x, "rid", 99), kv_str(&x, "op", "FROBNICATE"), kv_uint(&x, "z", 1);
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_ERR);
    ck_assert_int_eq(e.code, ERR_UNKNOWN_OP);
    ck_assert_uint_eq(m.present & MF_RID, MF_RID);
    ck_assert_uint_eq(m.rid, 99);
    ck_assert(!errors_closes(e.code));
    buf_free(&x.b);
}
END_TEST

/* wrong_type: a PING with key k of a wrong type, the rid after it. */
static void wrong_type(const char *k, void (*val)(bodybuf *), const char *needle)
{
    bodybuf x;
    body_start(&x, 3);
    kv_str(&x, "op", "PING");
    p_str(&x, k);
    val(&x);
    kv_uint(&x, "rid", 42);
    proto_limits l = lim();
    proto_msg m;
    proto_error e;
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_ERR);
    ck_assert_msg(e.code == ERR_BAD_REQUEST, "%s: %s", k, errors_name(e.code));
    char want[128];
    snprintf(want, sizeof want, "key '%s': %s", k, needle);
    ck_assert_msg(strstr(e.message, want), "'%s' lacks '%s'", e.message, want);
    ck_assert_uint_eq(m.rid, 42); /* read after the bad value */
    buf_free(&x.b);
}

static void v_str(bodybuf *x) { p_str(x, "text"); }
static void v_int(bodybuf *x) { msgpack_pack_int64(&x->pk, -1); }
static void v_uint(bodybuf *x) { msgpack_pack_uint64(&x->pk, 1); }
static void v_map(bodybuf *x) { msgpack_pack_map(&x->pk, 1); p_str(x, "a"); msgpack_pack_array(&x->pk, 2); msgpack_pack_nil(&x->pk); msgpack_pack_true(&x->pk); }
static void v_int_array(bodybuf *x) { msgpack_pack_array(&x->pk, 2); msgpack_pack_uint64(&x->pk, 1); msgpack_pack_uint64(&x->pk, 2); }
static void v_neg_array(bodybuf *x) { msgpack_pack_array(&x->pk, 1); msgpack_pack_int64(&x->pk, -3); }
static void v_float(bodybuf *x) { msgpack_pack_double(&x->pk, 1.5); }

START_TEST(wrong_types_name_the_key)
{
    wrong_type("rid", v_str, "must be an unsigned integer");
    wrong_type("delay", v_int, "must be an unsigned integer");
    wrong_type("wait", v_float, "must be an unsigned integer");
    wrong_type("priority", v_str, "must be an integer");
    wrong_type("name", v_uint, "must be a string");
    wrong_type("payload", v_uint, "must be binary or a string");
    wrong_type("push_result", v_uint, "must be a boolean");
    wrong_type("queues", v_str, "must be an array");
    wrong_type("queues", v_int_array, "must be an array of strings");
    wrong_type("weights", v_neg_array, "must be an array of unsigned integers");
    wrong_type("tasks", v_int_array, "must be an array of maps");
    wrong_type("stats", v_int_array, "must be a map");
    wrong_type("retryable", v_map, "must be a boolean");
}
END_TEST

START_TEST(nil_absent_unknown_ignored)
{
    bodybuf x;
    body_start(&x, 5);
    kv_str(&x, "op", "PING");
    kv_uint(&x, "rid", 1);
    p_str(&x, "queue"), msgpack_pack_nil(&x.pk);
    p_str(&x, "future_key"), v_map(&x);
    p_str(&x, "other"), msgpack_pack_ext(&x.pk, 3, 5), msgpack_pack_ext_body(&x.pk, "\x01\x02\x03", 3);
    proto_limits l = lim();
    proto_msg m;
    proto_error e;
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_OK);
    ck_assert_int_eq(m.op, OP_PING);
    ck_assert_uint_eq(m.task.present, 0);
    buf_free(&x.b);

    body_start(&x, 4), kv_str(&x, "op", "PING"), kv_uint(&x, "rid", 1);
    kv_str(&x, "queue", "a"), kv_str(&x, "queue", "b");
    expect_error(&x, PROTO_SIDE_BROKER, ERR_BAD_REQUEST, "'queue': given twice");
}
END_TEST

START_TEST(structure_errors)
{
    proto_limits l = lim();
    proto_msg m;
    proto_error e;
    static const struct { const char *b; size_t n; } bad[] = {
        { "\x92\x01\x02", 3 },                         /* an array, not a map */
        { "\x80\x00", 2 },                             /* bytes after the map */
        { "\x81\x01\x02", 3 },                         /* an integer key */
        { "\x81\xa2op\xc1", 5 },                       /* the reserved byte */
        { "\xa2op", 3 },                               /* a string */
        { "\xdf\xff\xff\xff\xff", 5 },                 /* a map claiming 2^32-1 pairs */
        /* an integer key after a field of the wrong type: still BAD_FRAME */
        { "\x83\xa2op\xa4PING\xa4name\x05\x01\x02", 17 },
        /* ...and inside a batch element after an earlier bad field */
        { "\x84\xa2op\xacSUBMIT_BATCH\xa3rid\x01\xa4wait\xa1x\xa5tasks\x91\x81\x01\x02", 39 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(proto_decode((const uint8_t *)bad[i].b, bad[i].n, PROTO_SIDE_BROKER, &l,
                                      &m, &e), PROTO_ERR);
        ck_assert_msg(e.code == ERR_BAD_FRAME, "case %zu: %s", i, errors_name(e.code));
        ck_assert(errors_closes(e.code));
    }
}
END_TEST

static void submit_with(const char *k, const char *v, bool ok)
{
    bodybuf x;
    body_start(&x, 4), kv_str(&x, "op", "SUBMIT"), kv_uint(&x, "rid", 1);
    kv_str(&x, "name", strcmp(k, "name") ? "echo" : v);
    kv_str(&x, strcmp(k, "name") ? k : "queue", strcmp(k, "name") ? v : "q");
    proto_limits l = lim();
    proto_msg m;
    proto_error e;
    proto_status st = decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e);
    ck_assert_msg((st == PROTO_OK) == ok, "%s=%.20s...: %s", k, v, e.message);
    if (!ok)
        ck_assert_int_eq(e.code, ERR_BAD_REQUEST);
    buf_free(&x.b);
}

START_TEST(value_rules)
{
    char s[300];
    memset(s, 'q', sizeof s);
    s[128] = '\0';
    submit_with("queue", s, true);
    s[128] = 'q', s[129] = '\0';
    submit_with("queue", s, false);
    submit_with("queue", "", false);
    submit_with("queue", "a b", false);
    submit_with("queue", "{tag}", false);
    submit_with("queue", "emails.high:eu-1", true);
    submit_with("id", s, false); /* 129 bytes */
    s[128] = '\0';
    submit_with("id", s, true);
    submit_with("id", "a\tb", false);
    submit_with("id", "{}", true);
    memset(s, 'n', sizeof s);
    s[256] = '\0';
    submit_with("name", s, true);
    s[256] = 'n', s[257] = '\0';
    submit_with("name", s, false);

    bodybuf x;
    body_start(&x, 4), kv_str(&x, "op", "SUBMIT"), kv_uint(&x, "rid", 1), kv_str(&x, "name", "n");
    kv_int(&x, "priority", 1001);
    expect_error(&x, PROTO_SIDE_BROKER, ERR_BAD_REQUEST, "'priority': must be in -1000..1000");
    body_start(&x, 4), kv_str(&x, "op", "SUBMIT"), kv_uint(&x, "rid", 1), kv_str(&x, "name", "n");
    kv_int(&x, "priority", -1000);
    proto_limits l = lim();
    proto_msg m;
    proto_error e;
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_OK);
    buf_free(&x.b);
    body_start(&x, 4), kv_str(&x, "op", "SUBMIT"), kv_uint(&x, "rid", 1), kv_str(&x, "name", "n");
    kv_uint(&x, "max_retries", 1001);
    expect_error(&x, PROTO_SIDE_BROKER, ERR_BAD_REQUEST, "'max_retries'");
    body_start(&x, 5), kv_str(&x, "op", "SUBMIT"), kv_uint(&x, "rid", 1), kv_str(&x, "name", "n");
    kv_uint(&x, "delay", 5), kv_uint(&x, "run_at", 5);
    expect_error(&x, PROTO_SIDE_BROKER, ERR_BAD_REQUEST, "not both");
    body_start(&x, 4), kv_str(&x, "op", "PROGRESS"), kv_uint(&x, "rid", 1), kv_str(&x, "id", "t");
    kv_uint(&x, "progress", 101);
    expect_error(&x, PROTO_SIDE_BROKER, ERR_BAD_REQUEST, "'progress'");
}
END_TEST

START_TEST(required_keys)
{
    static const struct { const char *op; const char *missing; } cases[] = {
        { "HELLO", "version" }, { "SUBMIT", "name" }, { "SUBMIT_BATCH", "tasks" },
        { "GET", "id" }, { "CANCEL", "id" }, { "PAUSE", "queue" }, { "RESUME", "queue" },
        { "PURGE", "queue" }, { "DEAD_LIST", "queue" }, { "DEAD_RETRY", "queue" },
        { "DEAD_PURGE", "queue" }, { "CREDIT", "credits" }, { "ACK", "id" }, { "FAIL", "id" },
        { "PROGRESS", "id" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bodybuf x;
        body_start(&x, 2), kv_str(&x, "op", cases[i].op), kv_uint(&x, "rid", 1);
        char want[64];
        snprintf(want, sizeof want, "missing key '%s'", cases[i].missing);
        expect_error(&x, PROTO_SIDE_BROKER, ERR_BAD_REQUEST, want);
    }
    static const char *const no_keys[] = { "PING", "STATS", "INFO", "HEARTBEAT" };
    for (size_t i = 0; i < 4; i++) {
        bodybuf x;
        body_start(&x, 2), kv_str(&x, "op", no_keys[i]), kv_uint(&x, "rid", 1);
        proto_limits l = lim();
        proto_msg m;
        proto_error e;
        ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_OK);
        buf_free(&x.b);
    }
}
END_TEST

/* batch_of: a SUBMIT_BATCH of n tasks; `top_name` puts the name at the top. */
static void batch_of(bodybuf *x, uint32_t n, bool top_name, int bad_at)
{
    body_start(x, top_name ? 4 : 3);
    kv_str(x, "op", "SUBMIT_BATCH");
    kv_uint(x, "rid", 8);
    if (top_name)
        kv_str(x, "name", "echo");
    p_str(x, "tasks");
    msgpack_pack_array(&x->pk, n);
    for (uint32_t i = 0; i < n; i++) {
        bool bad = (int)i == bad_at;
        msgpack_pack_map(&x->pk, top_name ? 1 : 2);
        if (!top_name)
            kv_str(x, "name", "echo");
        if (bad)
            kv_str(x, "priority", "high");
        else
            kv_uint(x, "delay", i);
    }
}

START_TEST(batch_rules)
{
    proto_limits l = lim();
    l.max_batch = 50;
    proto_msg m;
    proto_error e;
    bodybuf x;
    batch_of(&x, 50, false, -1);
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_OK);
    ck_assert_uint_eq(m.tasks.n, 50);
    buf_free(&x.b);
    batch_of(&x, 51, false, -1);
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_ERR);
    ck_assert(strstr(e.message, "more than the limit of 50"));
    buf_free(&x.b);
    batch_of(&x, 10, true, -1); /* the top-level name serves every task */
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_OK);
    buf_free(&x.b);
    batch_of(&x, 10, false, 6);
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_ERR);
    ck_assert_int_eq(e.code, ERR_BAD_REQUEST);
    ck_assert(strstr(e.message, "key 'priority'"));
    ck_assert_uint_eq(m.rid, 8);
    buf_free(&x.b);
    batch_of(&x, 0, false, -1);
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_ERR);
    ck_assert(strstr(e.message, "at least one"));
    buf_free(&x.b);

    /* An element without a name, and one with both delay and run_at. */
    body_start(&x, 3), kv_str(&x, "op", "SUBMIT_BATCH"), kv_uint(&x, "rid", 1);
    p_str(&x, "tasks"), msgpack_pack_array(&x.pk, 2);
    msgpack_pack_map(&x.pk, 1), kv_str(&x, "name", "a");
    msgpack_pack_map(&x.pk, 1), kv_str(&x, "payload", "b");
    expect_error(&x, PROTO_SIDE_BROKER, ERR_BAD_REQUEST, "task 1 has no 'name'");
    body_start(&x, 3), kv_str(&x, "op", "SUBMIT_BATCH"), kv_uint(&x, "rid", 1);
    p_str(&x, "tasks"), msgpack_pack_array(&x.pk, 1);
    msgpack_pack_map(&x.pk, 3), kv_str(&x, "name", "a"), kv_uint(&x, "delay", 1);
    kv_uint(&x, "run_at", 1);
    expect_error(&x, PROTO_SIDE_BROKER, ERR_BAD_REQUEST, "task 0 gives both");
}
END_TEST

START_TEST(decoder_limits_at_and_over)
{
    proto_limits l = lim();
    proto_msg m;
    proto_error e;
    bodybuf x;
    /* max_string: the client name at the limit passes, one over fails. */
    l.max_string = 16;
    body_start(&x, 3), kv_str(&x, "op", "PING"), kv_uint(&x, "rid", 1);
    kv_str(&x, "client", "0123456789abcdef");
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_OK);
    buf_free(&x.b);
    body_start(&x, 3), kv_str(&x, "op", "PING"), kv_uint(&x, "rid", 1);
    kv_str(&x, "client", "0123456789abcdefg");
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_ERR);
    ck_assert_int_eq(e.code, ERR_BAD_FRAME);
    buf_free(&x.b);

    /* max_elements: root map (1) + 3 pairs (6) + array items. */
    l = lim();
    l.max_elements = 7 + 4;
    body_start(&x, 3), kv_str(&x, "op", "PING"), kv_uint(&x, "rid", 1);
    p_str(&x, "junk"), msgpack_pack_array(&x.pk, 4);
    for (int i = 0; i < 4; i++)
        msgpack_pack_nil(&x.pk);
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_OK);
    l.max_elements--;
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e), PROTO_ERR);
    ck_assert_int_eq(e.code, ERR_BAD_FRAME);
    buf_free(&x.b);

    /* max_depth: the root map is level 1. */
    l = lim();
    for (uint32_t depth = 2; depth <= 12; depth++) {
        body_start(&x, 3), kv_str(&x, "op", "PING"), kv_uint(&x, "rid", 1);
        p_str(&x, "junk");
        for (uint32_t d = 1; d < depth; d++)
            msgpack_pack_array(&x.pk, d + 1 < depth ? 1 : 0);
        proto_status st = decode_body(&x, PROTO_SIDE_BROKER, &l, &m, &e);
        ck_assert_msg((st == PROTO_OK) == (depth <= l.max_depth), "depth %u", depth);
        buf_free(&x.b);
    }
}
END_TEST

START_TEST(encode_respects_max_frame)
{
    const proto_sample *s = sample("submit");
    buf a;
    buf_init(&a);
    ck_assert_int_eq(proto_encode(&a, &s->msg, UINT32_MAX), 0);
    uint32_t need = (uint32_t)buf_used(&a) - 4;
    buf_free(&a);
    buf_init(&a);
    buf_append(&a, "keep", 4);
    ck_assert_int_eq(proto_encode(&a, &s->msg, need - 1), -1);
    ck_assert_uint_eq(buf_used(&a), 4); /* nothing appended */
    ck_assert_int_eq(proto_encode(&a, &s->msg, need), 0);
    ck_assert_uint_eq(buf_used(&a), 4 + 4 + need);
    buf_free(&a);

    buf_init(&a);
    proto_encode_error(&a, true, 77, ERR_QUEUE_FULL, "queue 'x' is full");
    proto_limits l = lim();
    proto_msg m;
    proto_error e;
    ck_assert_int_eq(proto_decode(buf_rptr(&a) + 4, buf_used(&a) - 4, PROTO_SIDE_PEER, &l, &m, &e),
                     PROTO_OK);
    ck_assert_int_eq(m.op, OP_ERROR);
    ck_assert_uint_eq(m.rid, 77);
    ck_assert(proto_slice_eq(m.code, "QUEUE_FULL"));
    ck_assert(proto_slice_eq(m.message, "queue 'x' is full"));
    buf_free(&a);
}
END_TEST

/* ---- memory ----------------------------------------------------------- */

static int counted_mallocs;
static void *count_malloc(size_t n) { counted_mallocs++; return malloc(n); }
static void *count_realloc(void *p, size_t n) { counted_mallocs++; return realloc(p, n); }

/* hostile: a body that is all header claims, and what it costs. */
static void hostile(const uint8_t *b, size_t n)
{
    proto_limits l = lim();
    proto_msg m;
    proto_error e;
    mem_hooks h = { count_malloc, count_realloc, free };
    mem_set_hooks(&h);
    counted_mallocs = 0;
    size_t before = heap_in_use();
    proto_status st = proto_decode(b, n, PROTO_SIDE_BROKER, &l, &m, &e);
    size_t after = heap_in_use();
    mem_set_hooks(NULL);
    ck_assert_int_eq(st, PROTO_ERR);
    ck_assert_int_eq(e.code, ERR_BAD_FRAME);
    ck_assert_int_eq(counted_mallocs, 0);
    ck_assert_uint_le(after, before); /* decoding holds no memory at all */
}

START_TEST(hostile_headers_cost_nothing)
{
    /* {"op": [2^32-1 elements...]} */
    hostile((const uint8_t *)"\x81\xa2op\xdd\xff\xff\xff\xff", 9);
    /* {"op": {2^32-1 pairs}} */
    hostile((const uint8_t *)"\x81\xa2op\xdf\xff\xff\xff\xff", 9);
    /* {"payload": str32 of 4 GiB} and bin32 */
    hostile((const uint8_t *)"\x81\xa7payload\xdb\xff\xff\xff\xff", 14);
    hostile((const uint8_t *)"\x81\xa7payload\xc6\xff\xff\xff\xff", 14);
    /* ext32 of 4 GiB */
    hostile((const uint8_t *)"\x81\xa1x\xc9\xff\xff\xff\xff\x01", 9);
    /* map16 claiming 65535 pairs in a few bytes */
    hostile((const uint8_t *)"\xde\xff\xff\xa1x\x01", 6);
    /* 1 MiB of nested one-element arrays: stopped by the depth limit
     * before the recursion goes deep. */
    size_t n = 1 << 20;
    uint8_t *deep = malloc(n);
    memset(deep, 0x91, n);
    memcpy(deep, "\x81\xa1x", 3);
    hostile(deep, n);
    /* 1 MiB of array16 headers each claiming 65535 elements. */
    for (size_t i = 3; i + 3 <= n; i += 3)
        memcpy(deep + i, "\xdc\xff\xff", 3);
    hostile(deep, n);
    free(deep);
}
END_TEST

START_TEST(frame_memory_bounded_by_its_size)
{
    /* A 4 MiB frame costs the reader at most twice its size. */
    uint32_t n = 4u << 20;
    uint8_t *f = malloc(n + 4);
    buf_write_be32(f, n);
    memset(f + 4, 0xc0, n);
    size_t before = heap_in_use();
    frame_reader fr;
    frame_reader_init(&fr, PROTO_FRAME_MAX_DEFAULT);
    for (uint32_t off = 0; off < n + 4; off += 65536) {
        uint32_t chunk = n + 4 - off < 65536 ? n + 4 - off : 65536;
        ck_assert_int_eq(frame_reader_feed(&fr, f + off, chunk), PROTO_OK);
    }
    size_t peak = heap_in_use() - before;
    ck_assert_uint_le(peak, 2 * (size_t)n + 65536);
    const uint8_t *body;
    size_t len;
    error_code err;
    ck_assert_int_eq(frame_reader_next(&fr, &body, &len, &err), PROTO_OK);
    ck_assert_int_eq(frame_reader_next(&fr, &body, &len, &err), PROTO_AGAIN);
    /* ...and gives it back once the frame is consumed. */
    ck_assert_uint_le(heap_in_use() - before, 65536);
    frame_reader_free(&fr);
    free(f);
}
END_TEST

START_TEST(msgpack_c_bounded_after_validation)
{
    /* A stats map of a million one-byte values passes the validator with a
     * raised element limit. msgpack-c then spends one msgpack_object (24
     * bytes) per element, plus its zone's rounding: the element limit, not
     * the frame size, is what bounds it. */
    uint32_t count = 1000000;
    bodybuf x;
    body_start(&x, 3), kv_str(&x, "op", "OK"), kv_uint(&x, "rid", 1);
    p_str(&x, "stats"), msgpack_pack_map(&x.pk, 1), p_str(&x, "a");
    msgpack_pack_array(&x.pk, count);
    for (uint32_t i = 0; i < count; i++)
        msgpack_pack_nil(&x.pk);
    proto_limits l = lim();
    l.max_elements = count + 16;
    proto_msg m;
    proto_error e;
    ck_assert_int_eq(decode_body(&x, PROTO_SIDE_PEER, &l, &m, &e), PROTO_OK);
    size_t before = heap_in_use();
    msgpack_zone z;
    msgpack_zone_init(&z, 8192);
    msgpack_object o;
    size_t off = 0;
    ck_assert_int_eq(msgpack_unpack((const char *)m.stats.ptr, m.stats.len, &off, &z, &o),
                     MSGPACK_UNPACK_SUCCESS);
    size_t cost = heap_in_use() - before;
    ck_assert_uint_le(cost, 48 * (size_t)l.max_elements + 65536);
    msgpack_zone_destroy(&z);
    buf_free(&x.b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, table_sorted);
    tcase_add_test(tc, roundtrip_every_sample);
    tcase_add_test(tc, decoded_values);
    tcase_add_test(tc, every_split_every_sample);
    tcase_add_test(tc, every_prefix_is_bad_frame);
    tcase_add_test(tc, corruption_never_crashes);
    tcase_add_test(tc, op_and_rid_errors);
    tcase_add_test(tc, wrong_types_name_the_key);
    tcase_add_test(tc, nil_absent_unknown_ignored);
    tcase_add_test(tc, structure_errors);
    tcase_add_test(tc, value_rules);
    tcase_add_test(tc, required_keys);
    tcase_add_test(tc, batch_rules);
    tcase_add_test(tc, decoder_limits_at_and_over);
    tcase_add_test(tc, encode_respects_max_frame);
    tcase_add_test(tc, hostile_headers_cost_nothing);
    tcase_add_test(tc, frame_memory_bounded_by_its_size);
    tcase_add_test(tc, msgpack_c_bounded_after_validation);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
