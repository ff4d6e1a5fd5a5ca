/* Unit tests of common/hmap: put, get, replace, delete, growth, binary
 * keys, and iteration that deletes as it goes. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "hmap.h"
#include "unit.h"

START_TEST(put_get_replace_delete)
{
    hmap *m = hmap_new();
    int a = 1, b = 2;
    ck_assert_ptr_null(hmap_put(m, "k", 1, &a));
    ck_assert_ptr_eq(hmap_get(m, "k", 1), &a);
    ck_assert_ptr_eq(hmap_put(m, "k", 1, &b), &a); /* the replaced value */
    ck_assert_ptr_eq(hmap_get(m, "k", 1), &b);
    ck_assert_uint_eq(hmap_count(m), 1);
    ck_assert_ptr_null(hmap_get(m, "kk", 2));
    ck_assert_ptr_null(hmap_get(m, "", 0));
    ck_assert_ptr_eq(hmap_del(m, "k", 1), &b);
    ck_assert_ptr_null(hmap_del(m, "k", 1));
    ck_assert_uint_eq(hmap_count(m), 0);
    hmap_free(m);
    hmap_free(NULL);
}
END_TEST

START_TEST(binary_keys_and_growth)
{
    hmap *m = hmap_new();
    static int vals[20000];
    char key[32];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(key, sizeof key, "id%c%d", 0, i); /* a NUL inside the key */
        ck_assert_ptr_null(hmap_put(m, key, (size_t)n, &vals[i]));
    }
    ck_assert_uint_eq(hmap_count(m), 20000);
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(key, sizeof key, "id%c%d", 0, i);
        if (hmap_get(m, key, (size_t)n) != &vals[i])
            ck_abort_msg("key %d lost after growth", i);
    }
    /* The same bytes without the NUL are a different key. */
    ck_assert_ptr_null(hmap_get(m, "id5", 3));
    hmap_free(m);
}
END_TEST

START_TEST(iterate_and_delete)
{
    hmap *m = hmap_new();
    static int vals[500];
    char key[16];
    for (int i = 0; i < 500; i++) {
        int n = snprintf(key, sizeof key, "%d", i);
        hmap_put(m, key, (size_t)n, &vals[i]);
    }
    hmap_iter it;
    hmap_iter_init(m, &it);
    const void *k;
    size_t kl;
    void *v;
    int seen = 0;
    while (hmap_next(m, &it, &k, &kl, &v)) {
        int i = (int)((int *)v - vals);
        char want[16];
        int n = snprintf(want, sizeof want, "%d", i);
        ck_assert_uint_eq(kl, (size_t)n);
        ck_assert(memcmp(k, want, kl) == 0);
        if (i % 2 == 0)
            ck_assert_ptr_eq(hmap_del(m, k, kl), v); /* deleting the current entry is allowed */
        seen++;
    }
    ck_assert_int_eq(seen, 500);
    ck_assert_uint_eq(hmap_count(m), 250);
    hmap_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hmap");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, put_get_replace_delete);
    tcase_add_test(tc, binary_keys_and_growth);
    tcase_add_test(tc, iterate_and_delete);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
