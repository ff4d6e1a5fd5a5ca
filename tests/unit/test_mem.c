/* mem: the hooks see every call, and a failed allocation always takes the
 * out-of-memory path (a replaced handler here, abort by default). */
#include <check.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"
#include "unit.h"

static int n_malloc, n_realloc, n_free;
static size_t last_size;
static bool fail_all;

static void *counting_malloc(size_t size)
{
    n_malloc++;
    last_size = size;
    return fail_all ? NULL : malloc(size);
}

static void *counting_realloc(void *p, size_t size)
{
    n_realloc++;
    last_size = size;
    return fail_all ? NULL : realloc(p, size);
}

static void counting_free(void *p)
{
    n_free++;
    free(p);
}

static const mem_hooks counting = { counting_malloc, counting_realloc, counting_free };

static jmp_buf oom_jump;
static size_t oom_size;

static void oom_longjmp(size_t size)
{
    oom_size = size;
    longjmp(oom_jump, 1);
}

static void setup(void)
{
    n_malloc = n_realloc = n_free = 0;
    last_size = oom_size = 0;
    fail_all = false;
    mem_set_hooks(&counting);
    mem_set_oom_handler(oom_longjmp);
}

static void teardown(void)
{
    mem_set_hooks(NULL);
    mem_set_oom_handler(NULL);
}

START_TEST(test_hooks_see_every_call)
{
    char *p = mem_malloc(10);
    int *zeros = mem_calloc(4, sizeof(int));
    char *dup = mem_strdup("abc");
    char *cut = mem_strndup("abcdef", 3);
    p = mem_realloc(p, 100);
    ck_assert_int_eq(n_malloc, 4);
    ck_assert_int_eq(n_realloc, 1);
    ck_assert_uint_eq(last_size, 100);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(zeros[i], 0);
    ck_assert_str_eq(dup, "abc");
    ck_assert_str_eq(cut, "abc");
    mem_free(p);
    mem_free(zeros);
    mem_free(dup);
    mem_free(cut);
    mem_free(NULL);
    ck_assert_int_eq(n_free, 4);
}
END_TEST

START_TEST(test_zero_size_is_one_byte)
{
    void *p = mem_malloc(0);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(last_size, 1);
    p = mem_realloc(p, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(last_size, 1);
    mem_free(p);
}
END_TEST

START_TEST(test_failed_malloc_calls_oom_handler)
{
    fail_all = true;
    if (setjmp(oom_jump) == 0) {
        mem_malloc(1234);
        ck_abort_msg("mem_malloc returned after a failed allocation");
    }
    ck_assert_uint_eq(oom_size, 1234);
}
END_TEST

START_TEST(test_failed_realloc_calls_oom_handler)
{
    char *p = mem_malloc(8);
    fail_all = true;
    if (setjmp(oom_jump) == 0) {
        mem_realloc(p, 4321);
        ck_abort_msg("mem_realloc returned after a failed allocation");
    }
    ck_assert_uint_eq(oom_size, 4321);
    fail_all = false;
    mem_free(p); /* a failed realloc leaves the block alone */
}
END_TEST

START_TEST(test_failed_strdup_calls_oom_handler)
{
    fail_all = true;
    if (setjmp(oom_jump) == 0) {
        mem_strdup("four");
        ck_abort_msg("mem_strdup returned after a failed allocation");
    }
    ck_assert_uint_eq(oom_size, 5);
}
END_TEST

START_TEST(test_calloc_overflow_is_oom)
{
    if (setjmp(oom_jump) == 0) {
        mem_calloc(SIZE_MAX / 2, 4);
        ck_abort_msg("mem_calloc returned for an overflowing size");
    }
    ck_assert_uint_eq(oom_size, SIZE_MAX);
    ck_assert_int_eq(n_malloc, 0);
}
END_TEST

START_TEST(test_restored_hooks_are_libc)
{
    mem_set_hooks(NULL);
    void *p = mem_malloc(16);
    mem_free(p);
    ck_assert_int_eq(n_malloc + n_free, 0);
}
END_TEST

/* Runs with tcase_add_test_raise_signal: the default policy aborts. */
START_TEST(test_default_oom_aborts)
{
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDERR_FILENO);
    mem_set_oom_handler(NULL);
    fail_all = true;
    mem_malloc(77);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mem");
    TCase *tc = tcase_create("mem");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_hooks_see_every_call);
    tcase_add_test(tc, test_zero_size_is_one_byte);
    tcase_add_test(tc, test_failed_malloc_calls_oom_handler);
    tcase_add_test(tc, test_failed_realloc_calls_oom_handler);
    tcase_add_test(tc, test_failed_strdup_calls_oom_handler);
    tcase_add_test(tc, test_calloc_overflow_is_oom);
    tcase_add_test(tc, test_restored_hooks_are_libc);
    tcase_add_test_raise_signal(tc, test_default_oom_aborts, SIGABRT);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
