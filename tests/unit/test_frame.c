/* Unit tests of proto/frame: headers, the incremental reader at every split,
 * and rejection of oversized frames before their bodies are kept. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "test_proto_helpers.h"
#include "unit.h"

/* stream_of: frames with bodies of the given lengths, body byte i = i. */
static size_t stream_of(buf *out, const uint32_t *lens, size_t n)
{
    buf_init(out);
    for (size_t i = 0; i < n; i++) {
        buf_append_be32(out, lens[i]);
        for (uint32_t j = 0; j < lens[i]; j++)
            buf_append_u8(out, (uint8_t)(j + i));
    }
    return buf_used(out);
}

static void expect_frame(frame_reader *fr, uint32_t len, size_t index)
{
    const uint8_t *body;
    size_t n;
    error_code err;
    CHECK((frame_reader_next(fr, &body, &n, &err)) == (PROTO_OK));
    CHECK((n) == (len));
    for (uint32_t j = 0; j < len; j++)
        CHECK((body[j]) == ((uint8_t)(j + index)));
}

START_TEST(header_checks)
{
    uint8_t h[4];
    uint32_t len;
    error_code err;
    buf_write_be32(h, 100);
    ck_assert_int_eq(frame_check_header(h, 100, &len, &err), PROTO_OK);
    ck_assert_uint_eq(len, 100);
    buf_write_be32(h, 101);
    ck_assert_int_eq(frame_check_header(h, 100, &len, &err), PROTO_ERR);
    ck_assert_int_eq(err, ERR_FRAME_TOO_LARGE);
    buf_write_be32(h, 0);
    ck_assert_int_eq(frame_check_header(h, 100, &len, &err), PROTO_ERR);
    ck_assert_int_eq(err, ERR_BAD_FRAME);
    buf_write_be32(h, 0xffffffffu);
    ck_assert_int_eq(frame_check_header(h, PROTO_FRAME_MAX_LIMIT, &len, &err), PROTO_ERR);
    ck_assert_int_eq(err, ERR_FRAME_TOO_LARGE);
}
END_TEST

START_TEST(every_split_of_a_stream)
{
    static const uint32_t lens[] = { 1, 7, 300, 2, 4096, 3 };
    const size_t nf = sizeof lens / sizeof lens[0];
    buf s;
    size_t total = stream_of(&s, lens, nf);
    for (size_t k = 0; k <= total; k++) {
        frame_reader fr;
        frame_reader_init(&fr, 4096);
        size_t got = 0;
        const uint8_t *body;
        size_t n;
        error_code err;
        CHECK((frame_reader_feed(&fr, buf_rptr(&s), k)) == (PROTO_OK));
        while (frame_reader_next(&fr, &body, &n, &err) == PROTO_OK) {
            CHECK((n) == (lens[got]));
            CHECK((body[0]) == ((uint8_t)got));
            got++;
        }
        CHECK((frame_reader_feed(&fr, buf_rptr(&s) + k, total - k)) == (PROTO_OK));
        while (got < nf)
            expect_frame(&fr, lens[got], got), got++;
        CHECK((frame_reader_next(&fr, &body, &n, &err)) == (PROTO_AGAIN));
        CHECK((frame_reader_buffered(&fr)) == (0));
        frame_reader_free(&fr);
    }
    buf_free(&s);
}
END_TEST

START_TEST(byte_by_byte)
{
    static const uint32_t lens[] = { 5, 1, 1000, 9 };
    buf s;
    size_t total = stream_of(&s, lens, 4);
    frame_reader fr;
    frame_reader_init(&fr, 1000);
    size_t got = 0;
    for (size_t i = 0; i < total; i++) {
        CHECK((frame_reader_feed(&fr, buf_rptr(&s) + i, 1)) == (PROTO_OK));
        const uint8_t *body;
        size_t n;
        error_code err;
        if (frame_reader_next(&fr, &body, &n, &err) == PROTO_OK) {
            CHECK((n) == (lens[got]));
            got++;
        }
    }
    CHECK((got) == (4));
    frame_reader_free(&fr);
    buf_free(&s);
}
END_TEST

START_TEST(oversized_rejected_from_header)
{
    /* Two good frames, then a header one byte over the limit, then body. */
    buf s;
    static const uint32_t lens[] = { 10, 1024 };
    stream_of(&s, lens, 2);
    size_t good = buf_used(&s);
    buf_append_be32(&s, 1025);
    for (int i = 0; i < 4000; i++)
        buf_append_u8(&s, 0xab);

    frame_reader fr;
    frame_reader_init(&fr, 1024);
    ck_assert_int_eq(frame_reader_feed(&fr, buf_rptr(&s), buf_used(&s)), PROTO_ERR);
    /* Nothing from the bad header on was kept. */
    ck_assert_uint_eq(frame_reader_buffered(&fr), good);
    expect_frame(&fr, 10, 0);
    expect_frame(&fr, 1024, 1);
    const uint8_t *body;
    size_t n;
    error_code err = ERR_NONE;
    ck_assert_int_eq(frame_reader_next(&fr, &body, &n, &err), PROTO_ERR);
    ck_assert_int_eq(err, ERR_FRAME_TOO_LARGE);
    ck_assert_int_eq(frame_reader_feed(&fr, "x", 1), PROTO_ERR);
    frame_reader_free(&fr);

    /* The same header split over two feeds: still nothing of it kept. */
    frame_reader_init(&fr, 1024);
    ck_assert_int_eq(frame_reader_feed(&fr, buf_rptr(&s) + good, 2), PROTO_OK);
    ck_assert_int_eq(frame_reader_feed(&fr, buf_rptr(&s) + good + 2, 2000), PROTO_ERR);
    ck_assert_uint_eq(frame_reader_buffered(&fr), 2);
    ck_assert_int_eq(frame_reader_next(&fr, &body, &n, &err), PROTO_ERR);
    frame_reader_free(&fr);
    buf_free(&s);
}
END_TEST

START_TEST(zero_length_is_bad_frame)
{
    frame_reader fr;
    frame_reader_init(&fr, 100);
    ck_assert_int_eq(frame_reader_feed(&fr, "\0\0\0\0", 4), PROTO_ERR);
    const uint8_t *body;
    size_t n;
    error_code err;
    ck_assert_int_eq(frame_reader_next(&fr, &body, &n, &err), PROTO_ERR);
    ck_assert_int_eq(err, ERR_BAD_FRAME);
    frame_reader_free(&fr);
}
END_TEST

START_TEST(frame_writer)
{
    buf b;
    buf_init(&b);
    buf_append(&b, "junk", 4);
    buf_consume(&b, 4); /* a read offset, so a later append compacts */
    buf_append(&b, "xy", 2);
    buf_consume(&b, 1);
    size_t at = frame_begin(&b);
    for (int i = 0; i < 5000; i++)
        buf_append_u8(&b, (uint8_t)i);
    frame_end(&b, at);
    ck_assert_uint_eq(buf_read_be32(buf_rptr(&b) + 1), 5000);
    buf_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("frame");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, header_checks);
    tcase_add_test(tc, every_split_of_a_stream);
    tcase_add_test(tc, byte_by_byte);
    tcase_add_test(tc, oversized_rejected_from_header);
    tcase_add_test(tc, zero_length_is_bad_frame);
    tcase_add_test(tc, frame_writer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
