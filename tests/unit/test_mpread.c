/* Unit tests of proto/mpread: typed reads, every integer width, and the
 * bounds that keep hostile headers from costing memory. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "mpread.h"
#include "unit.h"

static mpread rd(const char *bytes, size_t n)
{
    mpread r;
    mpread_init(&r, bytes, n, 8, 1000, 1000);
    return r;
}

START_TEST(integers_every_width)
{
    static const struct { const char *b; size_t n; uint64_t u; int64_t s; bool neg; } cases[] = {
        { "\x00", 1, 0, 0, false },
        { "\x7f", 1, 127, 0, false },
        { "\xcc\xff", 2, 255, 0, false },
        { "\xcd\x01\x00", 3, 256, 0, false },
        { "\xce\x00\x01\x00\x00", 5, 65536, 0, false },
        { "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, UINT64_MAX, 0, false },
        { "\xd0\x05", 2, 5, 0, false },          /* signed encoding, positive value */
        { "\xd1\x7f\xff", 3, 32767, 0, false },
        { "\xe0", 1, 0, -32, true },
        { "\xff", 1, 0, -1, true },
        { "\xd0\x80", 2, 0, -128, true },
        { "\xd1\x80\x00", 3, 0, -32768, true },
        { "\xd2\x80\x00\x00\x00", 5, 0, INT32_MIN, true },
        { "\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9, 0, INT64_MIN, true },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mpread r = rd(cases[i].b, cases[i].n);
        uint64_t u;
        int64_t s;
        if (cases[i].neg) {
            ck_assert_int_eq(mpread_peek(&r), MP_INT);
            ck_assert_int_eq(mpread_uint(&r, &u), -1);
            ck_assert_ptr_eq(r.p, (const uint8_t *)cases[i].b); /* nothing consumed */
            ck_assert_int_eq(mpread_int(&r, &s), 0);
            ck_assert_int_eq(s, cases[i].s);
        } else {
            ck_assert_int_eq(mpread_peek(&r), MP_UINT);
            ck_assert_int_eq(mpread_uint(&r, &u), 0);
            ck_assert_uint_eq(u, cases[i].u);
            mpread r2 = rd(cases[i].b, cases[i].n);
            if (cases[i].u > INT64_MAX) {
                ck_assert_int_eq(mpread_int(&r2, &s), -1);
            } else {
                ck_assert_int_eq(mpread_int(&r2, &s), 0);
                ck_assert_int_eq(s, (int64_t)cases[i].u);
            }
        }
        ck_assert_uint_eq(mpread_left(&r), 0);
    }
}
END_TEST

START_TEST(strings_and_bins)
{
    const uint8_t *s;
    uint32_t n;
    mpread r = rd("\xa3" "abc", 4);
    ck_assert_int_eq(mpread_str(&r, &s, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert(memcmp(s, "abc", 3) == 0);

    r = rd("\xc4\x02xy", 4);
    ck_assert_int_eq(mpread_str(&r, &s, &n), -1); /* bin is not a str */
    ck_assert_int_eq(mpread_bin(&r, &s, &n), 0);
    ck_assert_uint_eq(n, 2);

    r = rd("\xd9\x01z", 3);
    ck_assert_int_eq(mpread_bin(&r, &s, &n), 0); /* str is accepted as bin */
    ck_assert_uint_eq(n, 1);

    r = rd("\xda\x00\x05" "abc", 6); /* declares 5, has 3 */
    ck_assert_int_eq(mpread_str(&r, &s, &n), -1);
    ck_assert_ptr_nonnull(r.error);
}
END_TEST

START_TEST(containers_bounded_by_bytes_left)
{
    uint32_t n;
    /* An array32 claiming 2^32 - 1 elements in a 5-byte frame. */
    mpread r = rd("\xdd\xff\xff\xff\xff", 5);
    ck_assert_int_eq(mpread_array(&r, &n), -1);
    r = rd("\xdf\x00\x00\x00\x02\x01\x02\x03", 8); /* map of 2 needs 4 bytes, has 3 */
    ck_assert_int_eq(mpread_map(&r, &n), -1);
    r = rd("\xdf\x00\x00\x00\x02\x01\x02\x03\x04", 9);
    ck_assert_int_eq(mpread_map(&r, &n), 0);
    ck_assert_uint_eq(n, 2);
    r = rd("\x92\x01\x02", 3);
    ck_assert_int_eq(mpread_array(&r, &n), 0);
    ck_assert_uint_eq(n, 2);
}
END_TEST

START_TEST(skip_every_type)
{
    /* nil, bools, float32/64, fixext1..16, ext8/16/32, nested containers */
    static const char all[] =
        "\xdc\x00\x11" /* array16 of 17 */
        "\xc0\xc2\xc3"
        "\xca\x00\x00\x00\x00"
        "\xcb\x00\x00\x00\x00\x00\x00\x00\x00"
        "\xd4\x01\x00"
        "\xd5\x01\x00\x00"
        "\xd6\x01\x00\x00\x00\x00"
        "\xd7\x01\x00\x00\x00\x00\x00\x00\x00\x00"
        "\xd8\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        "\xc7\x01\x05\x00"
        "\xc8\x00\x01\x05\x00"
        "\xc9\x00\x00\x00\x01\x05\x00"
        "\x81\xa1k\x91\x90"
        "\xc4\x00"
        "\xa0"
        "\xe5";
    mpread r = rd(all, sizeof all - 1);
    ck_assert_int_eq(mpread_skip(&r), 0);
    ck_assert_uint_eq(mpread_left(&r), 0);
    /* Every strict prefix is truncated. */
    for (size_t k = 0; k < sizeof all - 1; k++) {
        mpread p = rd(all, k);
        ck_assert_int_eq(mpread_skip(&p), -1);
    }
}
END_TEST

START_TEST(skip_limits)
{
    /* Depth: 8 nested arrays pass with max_depth 8, 9 do not. */
    char deep[16];
    memset(deep, 0x91, sizeof deep);
    mpread r;
    mpread_init(&r, deep, 8, 8, 100, 100);
    deep[7] = (char)0x90;
    ck_assert_int_eq(mpread_skip(&r), 0);
    memset(deep, 0x91, sizeof deep);
    deep[8] = (char)0x90;
    mpread_init(&r, deep, 9, 8, 100, 100);
    ck_assert_int_eq(mpread_skip(&r), -1);
    ck_assert_str_eq(r.error, "nesting too deep");

    /* Elements: an array of 4 is 5 values. */
    mpread_init(&r, "\x94\x01\x02\x03\x04", 5, 8, 5, 100);
    ck_assert_int_eq(mpread_skip(&r), 0);
    mpread_init(&r, "\x94\x01\x02\x03\x04", 5, 8, 4, 100);
    ck_assert_int_eq(mpread_skip(&r), -1);
    ck_assert_str_eq(r.error, "too many elements");

    /* Strings: at the limit and one over; bins are not limited by it. */
    mpread_init(&r, "\xa3" "abc", 4, 8, 10, 3);
    ck_assert_int_eq(mpread_skip(&r), 0);
    mpread_init(&r, "\xa4" "abcd", 5, 8, 10, 3);
    ck_assert_int_eq(mpread_skip(&r), -1);
    mpread_init(&r, "\xc4\x04" "abcd", 6, 8, 10, 3);
    ck_assert_int_eq(mpread_skip(&r), 0);

    /* The reserved byte. */
    mpread_init(&r, "\xc1", 1, 8, 10, 3);
    ck_assert_int_eq(mpread_peek(&r), MP_INVALID);
    ck_assert_int_eq(mpread_skip(&r), -1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mpread");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, integers_every_width);
    tcase_add_test(tc, strings_and_bins);
    tcase_add_test(tc, containers_bounded_by_bytes_left);
    tcase_add_test(tc, skip_every_type);
    tcase_add_test(tc, skip_limits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
