/* buf: appending, consuming, reserving, compacting, shrinking and the
 * big-endian helpers. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "unit.h"

START_TEST(test_starts_empty)
{
    buf a = BUF_INIT, b;
    buf_init(&b);
    ck_assert_ptr_null(a.data);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(buf_used(&a), 0);
    ck_assert_uint_eq(b.cap, 0);
    buf_free(&a); /* freeing an unused buffer is fine */
}
END_TEST

START_TEST(test_append_and_consume)
{
    buf b = BUF_INIT;
    buf_append(&b, "hello ", 6);
    buf_append(&b, "world", 5);
    buf_append(&b, "ignored", 0);
    ck_assert_uint_eq(buf_used(&b), 11);
    ck_assert_mem_eq(buf_rptr(&b), "hello world", 11);
    buf_consume(&b, 6);
    ck_assert_uint_eq(buf_used(&b), 5);
    ck_assert_mem_eq(buf_rptr(&b), "world", 5);
    buf_consume(&b, 5);
    /* Consuming everything rewinds, so the next append starts at 0. */
    ck_assert_uint_eq(b.off, 0);
    ck_assert_uint_eq(b.len, 0);
    buf_free(&b);
}
END_TEST

START_TEST(test_reserve_and_commit)
{
    buf b = BUF_INIT;
    uint8_t *p = buf_reserve(&b, 10);
    ck_assert_uint_ge(b.cap, 10);
    ck_assert_uint_eq(buf_used(&b), 0);
    memcpy(p, "0123456789", 10);
    buf_commit(&b, 4);
    ck_assert_uint_eq(buf_used(&b), 4);
    ck_assert_mem_eq(buf_rptr(&b), "0123", 4);
    buf_free(&b);
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(test_reserve_compacts_before_growing)
{
    buf b = BUF_INIT;
    char chunk[200];
    memset(chunk, 'a', sizeof chunk);
    chunk[150] = 'b';
    buf_append(&b, chunk, sizeof chunk);
    size_t cap = b.cap;
    buf_consume(&b, 150);
    /* 50 unread + 200 wanted fit in the same memory once moved to the front. */
    buf_reserve(&b, cap - 50);
    ck_assert_uint_eq(b.cap, cap);
    ck_assert_uint_eq(b.off, 0);
    ck_assert_uint_eq(buf_used(&b), 50);
    ck_assert_int_eq(buf_rptr(&b)[0], 'b');
    buf_free(&b);
}
END_TEST

START_TEST(test_big_growth_keeps_content)
{
    buf b = BUF_INIT;
    uint8_t chunk[1000];
    size_t total = 0;
    while (total < 10u << 20) {
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk[i] = (uint8_t)((total + i) * 7);
        buf_append(&b, chunk, sizeof chunk);
        total += sizeof chunk;
    }
    ck_assert_uint_eq(buf_used(&b), total);
    ck_assert_uint_ge(b.cap, total);
    for (size_t i = 0; i < total; i++) {
        if (buf_rptr(&b)[i] != (uint8_t)(i * 7))
            ck_abort_msg("byte %zu differs", i);
    }
    buf_free(&b);
}
END_TEST

START_TEST(test_shrink_gives_memory_back)
{
    buf b = BUF_INIT;
    size_t big = 1u << 20;
    char *data = malloc(big);
    memset(data, 'x', big);
    memcpy(data + big - 10, "0123456789", 10);
    buf_append(&b, data, big);
    free(data);

    buf_consume(&b, big - 10);
    buf_shrink(&b, 4096);
    ck_assert_uint_eq(b.cap, 10 + 4096);
    ck_assert_uint_eq(b.off, 0);
    ck_assert_mem_eq(buf_rptr(&b), "0123456789", 10);

    size_t cap = b.cap;
    buf_shrink(&b, 8192); /* already small enough: nothing to do */
    ck_assert_uint_eq(b.cap, cap);

    buf_consume(&b, 10);
    buf_shrink(&b, 0);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(test_reset_keeps_memory)
{
    buf b = BUF_INIT;
    buf_append(&b, "abc", 3);
    uint8_t *data = b.data;
    buf_reset(&b);
    ck_assert_uint_eq(buf_used(&b), 0);
    ck_assert_ptr_eq(b.data, data);
    buf_append(&b, "d", 1);
    ck_assert_int_eq(buf_rptr(&b)[0], 'd');
    buf_free(&b);
}
END_TEST

START_TEST(test_be32_and_u8)
{
    uint8_t raw[4];
    buf_write_be32(raw, 0x01020304u);
    ck_assert_mem_eq(raw, "\x01\x02\x03\x04", 4);
    ck_assert_uint_eq(buf_read_be32(raw), 0x01020304u);
    buf_write_be32(raw, 0xfffffffeu);
    ck_assert_uint_eq(buf_read_be32(raw), 0xfffffffeu);

    buf b = BUF_INIT;
    buf_append_be32(&b, 0xdeadbeefu);
    buf_append_u8(&b, 0x7f);
    ck_assert_uint_eq(buf_used(&b), 5);
    ck_assert_mem_eq(buf_rptr(&b), "\xde\xad\xbe\xef\x7f", 5);
    ck_assert_uint_eq(buf_read_be32(buf_rptr(&b)), 0xdeadbeefu);
    buf_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("buf");
    tcase_add_test(tc, test_starts_empty);
    tcase_add_test(tc, test_append_and_consume);
    tcase_add_test(tc, test_reserve_and_commit);
    tcase_add_test(tc, test_reserve_compacts_before_growing);
    tcase_add_test(tc, test_big_growth_keeps_content);
    tcase_add_test(tc, test_shrink_gives_memory_back);
    tcase_add_test(tc, test_reset_keeps_memory);
    tcase_add_test(tc, test_be32_and_u8);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
