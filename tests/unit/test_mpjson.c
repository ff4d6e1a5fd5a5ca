/* Unit tests of client/mpjson: every msgpack type, string escaping and
 * UTF-8 repair, bin as base64, nesting (compact and pretty), map keys that
 * are not strings, and malformed input, which must fail without touching
 * the output. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mpjson.h"
#include "unit.h"

/* json: renders n bytes; returns a NUL-terminated copy, or NULL on -1. */
static char *json(const void *bytes, size_t n, unsigned flags)
{
    buf b = BUF_INIT;
    int rc = mpjson_render(bytes, n, flags, &b);
    char *s = NULL;
    if (rc == 0) {
        s = malloc(buf_used(&b) + 1);
        memcpy(s, buf_rptr(&b), buf_used(&b));
        s[buf_used(&b)] = '\0';
    }
    buf_free(&b);
    return s;
}

#define CHECK_JSON(bytes, want)                                  \
    do {                                                         \
        char *got_ = json(bytes, sizeof(bytes) - 1, 0);          \
        ck_assert_msg(got_ != NULL, "render failed for %s", want); \
        ck_assert_str_eq(got_, want);                            \
        free(got_);                                              \
    } while (0)

START_TEST(scalars)
{
    CHECK_JSON("\xc0", "null");
    CHECK_JSON("\xc3", "true");
    CHECK_JSON("\xc2", "false");
    CHECK_JSON("\x00", "0");
    CHECK_JSON("\x7f", "127");
    CHECK_JSON("\xcc\xff", "255");
    CHECK_JSON("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", "18446744073709551615");
    CHECK_JSON("\xff", "-1");
    CHECK_JSON("\xe0", "-32");
    CHECK_JSON("\xd0\x05", "5"); /* a signed encoding of a positive value */
    CHECK_JSON("\xd3\x80\x00\x00\x00\x00\x00\x00\x00", "-9223372036854775808");
}
END_TEST

START_TEST(floats)
{
    CHECK_JSON("\xca\x3f\xc0\x00\x00", "1.5");                 /* float32 */
    CHECK_JSON("\xca\x3d\xcc\xcc\xcd", "0.1");                 /* float32 0.1f: shortest */
    CHECK_JSON("\xcb\x3f\xb9\x99\x99\x99\x99\x99\x9a", "0.1"); /* float64 */
    CHECK_JSON("\xcb\xc0\x09\x21\xfb\x54\x44\x2d\x18", "-3.141592653589793");
    CHECK_JSON("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", "null"); /* NaN */
    CHECK_JSON("\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00", "null"); /* +inf */
    CHECK_JSON("\xca\xff\x80\x00\x00", "null");                 /* -inf */
}
END_TEST

START_TEST(string_escapes)
{
    CHECK_JSON("\xa5hello", "\"hello\"");
    CHECK_JSON("\xa0", "\"\"");
    CHECK_JSON("\xa4" "a\"b\\", "\"a\\\"b\\\\\"");
    CHECK_JSON("\xa5\n\t\r\b\f", "\"\\n\\t\\r\\b\\f\"");
    CHECK_JSON("\xa3\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\""); /* DEL needs no escape */
    CHECK_JSON("\xa3" "a/b", "\"a/b\"");
    CHECK_JSON("\xa3" "a\0b", "\"a\\u0000b\"");
    /* str8 and str16 headers */
    CHECK_JSON("\xd9\x02" "ok", "\"ok\"");
    CHECK_JSON("\xda\x00\x02" "ok", "\"ok\"");
}
END_TEST

START_TEST(utf8)
{
    /* Valid sequences of every length pass through as they are. */
    CHECK_JSON("\xa2\xc3\xa9", "\"\xc3\xa9\"");                 /* é */
    CHECK_JSON("\xa3\xe2\x82\xac", "\"\xe2\x82\xac\"");         /* € */
    CHECK_JSON("\xa4\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""); /* U+1F600 */
    CHECK_JSON("\xa3\xef\xbf\xbf", "\"\xef\xbf\xbf\"");         /* U+FFFF */
    CHECK_JSON("\xa4\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
    /* Each byte that starts no valid sequence becomes U+FFFD. */
    CHECK_JSON("\xa3" "a\xff" "b", "\"a\\ufffdb\"");
    CHECK_JSON("\xa2" "a\xc3", "\"a\\ufffd\"");                /* truncated at the end */
    CHECK_JSON("\xa3\xc3" "ab", "\"\\ufffdab\"");              /* bad continuation */
    CHECK_JSON("\xa2\xc0\x80", "\"\\ufffd\\ufffd\"");          /* overlong NUL */
    CHECK_JSON("\xa3\xe0\x80\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* overlong 3-byte */
    CHECK_JSON("\xa3\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* a surrogate */
    CHECK_JSON("\xa4\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
    CHECK_JSON("\xa1\x80", "\"\\ufffd\"");                     /* a lone continuation */
}
END_TEST

START_TEST(bin_is_base64)
{
    CHECK_JSON("\xc4\x00", "\"\"");
    CHECK_JSON("\xc4\x01" "f", "\"Zg==\"");
    CHECK_JSON("\xc4\x02" "fo", "\"Zm8=\"");
    CHECK_JSON("\xc4\x03" "foo", "\"Zm9v\"");
    CHECK_JSON("\xc4\x04" "foob", "\"Zm9vYg==\"");
    CHECK_JSON("\xc4\x06" "foobar", "\"Zm9vYmFy\"");
    CHECK_JSON("\xc4\x03\xfb\xff\xfe", "\"+//+\""); /* the last two letters */
    CHECK_JSON("\xc5\x00\x03" "foo", "\"Zm9v\"");   /* bin16 */
    CHECK_JSON("\xc6\x00\x00\x00\x01" "f", "\"Zg==\""); /* bin32 */
}
END_TEST

START_TEST(ext_values)
{
    CHECK_JSON("\xd4\x05\x01", "{\"ext\":5,\"data\":\"AQ==\"}");             /* fixext 1 */
    CHECK_JSON("\xd5\xff\x01\x02", "{\"ext\":-1,\"data\":\"AQI=\"}");        /* fixext 2 */
    CHECK_JSON("\xc7\x03\x07" "foo", "{\"ext\":7,\"data\":\"Zm9v\"}");       /* ext 8 */
    CHECK_JSON("\xc8\x00\x00\x07", "{\"ext\":7,\"data\":\"\"}");             /* ext 16, empty */
}
END_TEST

START_TEST(nesting_compact)
{
    /* {"a": [1, {"b": nil}], "c": {}, "d": []} */
    CHECK_JSON("\x83\xa1" "a\x92\x01\x81\xa1" "b\xc0\xa1" "c\x80\xa1" "d\x90",
               "{\"a\":[1,{\"b\":null}],\"c\":{},\"d\":[]}");
    /* map16 and array16 headers */
    CHECK_JSON("\xde\x00\x01\xa1k\xdc\x00\x02\xc3\xc2", "{\"k\":[true,false]}");
    /* a key that needs escaping */
    CHECK_JSON("\x81\xa3k\"y\x01", "{\"k\\\"y\":1}");
}
END_TEST

START_TEST(nesting_pretty)
{
    static const char in[] = "\x83\xa1" "a\x92\x01\x81\xa1" "b\xc0\xa1" "c\x80\xa1" "d\x90";
    char *got = json(in, sizeof in - 1, MPJSON_PRETTY);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, "{\n"
                          "  \"a\": [\n"
                          "    1,\n"
                          "    {\n"
                          "      \"b\": null\n"
                          "    }\n"
                          "  ],\n"
                          "  \"c\": {},\n"
                          "  \"d\": []\n"
                          "}");
    free(got);
}
END_TEST

START_TEST(keys_that_are_not_strings)
{
    CHECK_JSON("\x81\x01\x02", "{\"1\":2}");
    CHECK_JSON("\x81\xff\x02", "{\"-1\":2}");
    CHECK_JSON("\x81\xc0\x02", "{\"null\":2}");
    CHECK_JSON("\x81\xc3\x02", "{\"true\":2}");
    CHECK_JSON("\x81\x91\xa1x\x02", "{\"[\\\"x\\\"]\":2}"); /* an array key, quoted */
    CHECK_JSON("\x81\xc4\x01" "f\x02", "{\"\\\"Zg==\\\"\":2}");
}
END_TEST

/* A bad render leaves the buffer as it was, content and length. */
static void check_fails(const void *bytes, size_t n)
{
    buf b = BUF_INIT;
    buf_append(&b, "keep", 4);
    ck_assert_int_eq(mpjson_render(bytes, n, 0, &b), -1);
    ck_assert_uint_eq(buf_used(&b), 4);
    ck_assert_mem_eq(buf_rptr(&b), "keep", 4);
    buf_free(&b);
}

START_TEST(malformed_input_fails_cleanly)
{
    check_fails("", 0);
    check_fails("\xc1", 1);                      /* the reserved byte */
    check_fails("\x01\x02", 2);                  /* bytes after the value */
    check_fails("\x82\xa1" "a\x01", 4);          /* a map of 2 pairs holding 1 */
    check_fails("\xa5hell", 5);                  /* a short string */
    check_fails("\xc4\x05" "abc", 5);            /* a short bin */
    check_fails("\xcb\x00\x00", 3);              /* a short float */
    check_fails("\xc7\x09\x01" "abc", 6);        /* a short ext */
    check_fails("\xdd\xff\xff\xff\xff\xc0", 6);  /* a count larger than the bytes left */
    check_fails("\x81\xa1k", 3);                 /* a key without its value */
}
END_TEST

START_TEST(every_truncation_fails)
{
    /* Each proper prefix of a valid value is malformed: none renders, none
     * reads past its end (ASan watches the heap copy). */
    static const char in[] = "\x84\xa1" "a\x92\x01\x81\xa1" "b\xcb\x3f\xb9\x99\x99\x99\x99\x99"
                             "\x9a\xa1" "c\xc4\x03" "foo\xa1" "d\xd4\x05\x01\xa1" "e\xc3";
    size_t n = sizeof in - 1;
    char *whole = json(in, n, 0);
    ck_assert_ptr_nonnull(whole);
    ck_assert_str_eq(whole, "{\"a\":[1,{\"b\":0.1}],\"c\":\"Zm9v\","
                            "\"d\":{\"ext\":5,\"data\":\"AQ==\"},\"e\":true}");
    free(whole);
    for (size_t k = 0; k < n; k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, in, k);
        check_fails(copy, k);
        free(copy);
    }
}
END_TEST

START_TEST(depth_limit)
{
    uint8_t in[MPJSON_MAX_DEPTH + 2];
    memset(in, 0x91, sizeof in); /* arrays of one element, nested */
    in[MPJSON_MAX_DEPTH] = 0xc0;
    char *got = json(in, MPJSON_MAX_DEPTH + 1, 0); /* MPJSON_MAX_DEPTH arrays deep */
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(strlen(got), 2 * MPJSON_MAX_DEPTH + 4);
    free(got);
    in[MPJSON_MAX_DEPTH] = 0x91;
    in[MPJSON_MAX_DEPTH + 1] = 0xc0;
    check_fails(in, MPJSON_MAX_DEPTH + 2); /* one more */
}
END_TEST

START_TEST(string_and_base64_helpers)
{
    buf b = BUF_INIT;
    mpjson_string(&b, "x\"\n", 3);
    buf_append_u8(&b, ' ');
    mpjson_base64(&b, "hello", 5);
    ck_assert_uint_eq(buf_used(&b), 18);
    ck_assert_mem_eq(buf_rptr(&b), "\"x\\\"\\n\" \"aGVsbG8=\"", 18);
    buf_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mpjson");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, scalars);
    tcase_add_test(tc, floats);
    tcase_add_test(tc, string_escapes);
    tcase_add_test(tc, utf8);
    tcase_add_test(tc, bin_is_base64);
    tcase_add_test(tc, ext_values);
    tcase_add_test(tc, nesting_compact);
    tcase_add_test(tc, nesting_pretty);
    tcase_add_test(tc, keys_that_are_not_strings);
    tcase_add_test(tc, malformed_input_fails_cleanly);
    tcase_add_test(tc, every_truncation_fails);
    tcase_add_test(tc, depth_limit);
    tcase_add_test(tc, string_and_base64_helpers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
