/* clock: monotonic time never goes back, the units agree, wall time is the
 * time(2) of the system. */
#include <check.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "unit.h"

START_TEST(test_monotonic_never_goes_back)
{
    uint64_t ns = clock_mono_ns(), us = clock_mono_us(), ms = clock_mono_ms();
    for (int i = 0; i < 100000; i++) {
        uint64_t ns2 = clock_mono_ns(), us2 = clock_mono_us(), ms2 = clock_mono_ms();
        ck_assert_uint_ge(ns2, ns);
        ck_assert_uint_ge(us2, us);
        ck_assert_uint_ge(ms2, ms);
        ns = ns2;
        us = us2;
        ms = ms2;
    }
}
END_TEST

START_TEST(test_monotonic_units_agree)
{
    uint64_t ms1 = clock_mono_ms();
    uint64_t us = clock_mono_us();
    uint64_t ns = clock_mono_ns();
    uint64_t ms2 = clock_mono_ms();
    ck_assert_uint_le(ms1, us / 1000);
    ck_assert_uint_le(us, ns / 1000);
    ck_assert_uint_le(ns / 1000000, ms2);
}
END_TEST

START_TEST(test_monotonic_advances)
{
    uint64_t start = clock_mono_ns();
    uint64_t now = start;
    /* Spin until the clock ticks; a nanosecond clock does within a few reads. */
    for (int i = 0; i < 10000000 && now == start; i++)
        now = clock_mono_ns();
    ck_assert_uint_gt(now, start);
}
END_TEST

START_TEST(test_wall_is_system_time)
{
    time_t before = time(NULL);
    uint64_t ms = clock_wall_ms();
    uint64_t us = clock_wall_us();
    time_t after = time(NULL);
    /* time(2) may read a coarser clock: allow it a second either way. */
    ck_assert_uint_ge(ms / 1000 + 1, (uint64_t)before);
    ck_assert_uint_le(ms / 1000, (uint64_t)after + 1);
    ck_assert_uint_ge(us / 1000, ms);
    ck_assert_uint_le(us / 1000 - ms, 1000);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("clock");
    tcase_add_test(tc, test_monotonic_never_goes_back);
    tcase_add_test(tc, test_monotonic_units_agree);
    tcase_add_test(tc, test_monotonic_advances);
    tcase_add_test(tc, test_wall_is_system_time);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
