/* rargs: numbers in decimal, borrowed and copied arguments, and the wire
 * format of rargs_resp, checked against hiredis's own formatter. */
#include <check.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "rargs.h"
#include "unit.h"

static void assert_arg(rargs *a, int i, const char *want)
{
    rargs_finish(a);
    ck_assert_uint_eq(a->lens[i], strlen(want));
    ck_assert_mem_eq(a->argv[i], want, strlen(want));
}

START_TEST(test_numbers_in_decimal)
{
    rargs a;
    rargs_init(&a);
    const uint64_t u[] = { 0, 7, 10, 86400000, 1795663984452ULL, UINT64_MAX };
    const int64_t s[] = { 0, -1, 1000, -1000, INT64_MIN, INT64_MAX };
    for (size_t i = 0; i < 6; i++) {
        rargs_u64(&a, u[i]);
        rargs_i64(&a, s[i]);
    }
    char want[32];
    for (size_t i = 0; i < 6; i++) {
        snprintf(want, sizeof want, "%" PRIu64, u[i]);
        assert_arg(&a, (int)(2 * i), want);
        snprintf(want, sizeof want, "%" PRId64, s[i]);
        assert_arg(&a, (int)(2 * i + 1), want);
    }
    rargs_free(&a);
}
END_TEST

START_TEST(test_resp_is_what_hiredis_sends)
{
    rargs a;
    rargs_init(&a);
    static const char binary[] = { 'a', '\0', '\r', '\n', 'b' };
    char big[5000];
    memset(big, 'x', sizeof big);
    rargs_str(&a, "EVALSHA");
    rargs_borrow(&a, "", 0);
    rargs_copy(&a, binary, sizeof binary);
    rargs_u64(&a, 1795663984452ULL);
    rargs_i64(&a, -5);
    rargs_borrow(&a, big, sizeof big);
    for (int i = 0; i < 20; i++) /* past the first growth of the vector */
        rargs_u64(&a, (uint64_t)i);
    size_t len;
    char *got = rargs_resp(&a, &len);
    char *want;
    int wantlen = redisFormatCommandArgv(&want, a.n, a.argv, a.lens);
    ck_assert_int_gt(wantlen, 0);
    ck_assert_uint_eq(len, (size_t)wantlen);
    ck_assert_mem_eq(got, want, len);
    redisFreeCommand(want);
    mem_free(got);
    rargs_free(&a);
}
END_TEST

START_TEST(test_resp_of_no_arguments)
{
    rargs a;
    rargs_init(&a);
    size_t len;
    char *got = rargs_resp(&a, &len);
    ck_assert_uint_eq(len, 4);
    ck_assert_mem_eq(got, "*0\r\n", 4);
    mem_free(got);
    rargs_free(&a);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rargs");
    TCase *tc = tcase_create("rargs");
    tcase_add_test(tc, test_numbers_in_decimal);
    tcase_add_test(tc, test_resp_is_what_hiredis_sends);
    tcase_add_test(tc, test_resp_of_no_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
