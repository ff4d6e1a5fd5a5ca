/* Unit tests of client/fmt, the trident CLI's output: table alignment,
 * the JSON writer's separators and escaping, re-indenting JSON, times. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "unit.h"

/* capture: a FILE whose text can be read back with captured(). */
typedef struct capture {
    char *text;
    size_t len;
    FILE *f;
} capture;

static FILE *capture_open(capture *c)
{
    c->text = NULL;
    c->len = 0;
    c->f = open_memstream(&c->text, &c->len);
    ck_assert_ptr_nonnull(c->f);
    return c->f;
}

static const char *captured(capture *c)
{
    fflush(c->f);
    return c->text;
}

static void capture_close(capture *c)
{
    fclose(c->f);
    free(c->text);
}

START_TEST(table_aligns_columns)
{
    static const char *const head[] = { "NAME", "COUNT", "NOTE" };
    fmt_table t;
    fmt_table_init(&t, 3, head, 0x2u); /* COUNT flush right */
    fmt_table_cell(&t, "default");
    fmt_table_u64(&t, 7);
    fmt_table_cell(&t, "x");
    fmt_table_cell(&t, "q");
    fmt_table_u64(&t, 12345);
    fmt_table_cell(&t, ""); /* an empty last cell leaves no trailing spaces */
    capture c;
    fmt_table_print(&t, capture_open(&c));
    ck_assert_str_eq(captured(&c), "NAME     COUNT  NOTE\n"
                                   "default      7  x\n"
                                   "q        12345\n");
    capture_close(&c);
    fmt_table_free(&t);
}
END_TEST

START_TEST(table_header_only_and_partial_rows)
{
    static const char *const head[] = { "A", "B" };
    fmt_table t;
    fmt_table_init(&t, 2, head, 0);
    capture c;
    fmt_table_print(&t, capture_open(&c));
    ck_assert_str_eq(captured(&c), "A  B\n");
    capture_close(&c);
    fmt_table_cell(&t, "long value");
    fmt_table_cell(&t, "b");
    fmt_table_cell(&t, "c"); /* a row cut short still prints */
    fmt_table_print(&t, capture_open(&c));
    ck_assert_str_eq(captured(&c), "A           B\n"
                                   "long value  b\n"
                                   "c\n");
    capture_close(&c);
    fmt_table_free(&t);
}
END_TEST

static char *json_text(fmt_json *j)
{
    capture c;
    fmt_json_print(j, capture_open(&c));
    char *s = strdup(captured(&c));
    capture_close(&c);
    return s;
}

START_TEST(json_separators)
{
    fmt_json j;
    fmt_json_init(&j);
    fmt_json_open(&j, '{');
    fmt_json_key(&j, "id");
    fmt_json_str(&j, "a\"b");
    fmt_json_key(&j, "ids");
    fmt_json_open(&j, '[');
    fmt_json_u64(&j, 1);
    fmt_json_i64(&j, -2);
    fmt_json_open(&j, '{');
    fmt_json_close(&j, '}');
    fmt_json_open(&j, '[');
    fmt_json_close(&j, ']');
    fmt_json_close(&j, ']');
    fmt_json_key(&j, "ok");
    fmt_json_bool(&j, true);
    fmt_json_key(&j, "bytes");
    fmt_json_base64(&j, "foo", 3);
    fmt_json_key(&j, "raw");
    fmt_json_raw(&j, "{\"x\":1}");
    fmt_json_key(&j, "part");
    fmt_json_strn(&j, "abc", 2);
    fmt_json_close(&j, '}');
    char *s = json_text(&j);
    ck_assert_str_eq(s, "{\"id\":\"a\\\"b\",\"ids\":[1,-2,{},[]],\"ok\":true,\"bytes\":\"Zm9v\","
                        "\"raw\":{\"x\":1},\"part\":\"ab\"}\n");
    free(s);
}
END_TEST

START_TEST(json_top_level_array)
{
    fmt_json j;
    fmt_json_init(&j);
    fmt_json_open(&j, '[');
    for (int i = 0; i < 3; i++) {
        fmt_json_open(&j, '{');
        fmt_json_key(&j, "n");
        fmt_json_u64(&j, (uint64_t)i);
        fmt_json_close(&j, '}');
    }
    fmt_json_close(&j, ']');
    char *s = json_text(&j);
    ck_assert_str_eq(s, "[{\"n\":0},{\"n\":1},{\"n\":2}]\n");
    free(s);
}
END_TEST

START_TEST(json_pretty)
{
    capture c;
    fmt_json_pretty("{\"a\":[1,{\"b\":null}],\"c\":{},\"s\":\"x,{y}:[\\\"z\\\"]\",\"d\":[]}",
                    capture_open(&c));
    ck_assert_str_eq(captured(&c), "{\n"
                                   "  \"a\": [\n"
                                   "    1,\n"
                                   "    {\n"
                                   "      \"b\": null\n"
                                   "    }\n"
                                   "  ],\n"
                                   "  \"c\": {},\n"
                                   "  \"s\": \"x,{y}:[\\\"z\\\"]\",\n"
                                   "  \"d\": []\n"
                                   "}\n");
    capture_close(&c);
}
END_TEST

START_TEST(times)
{
    char out[40];
    ck_assert_str_eq(fmt_time(0, out, sizeof out), "-");
    ck_assert_str_eq(fmt_time(1795629600042ull, out, sizeof out), "2026-11-25T18:00:00.042Z");
    ck_assert_str_eq(fmt_time(1000, out, sizeof out), "1970-01-01T00:00:01.000Z");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fmt");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, table_aligns_columns);
    tcase_add_test(tc, table_header_only_and_partial_rows);
    tcase_add_test(tc, json_separators);
    tcase_add_test(tc, json_top_level_array);
    tcase_add_test(tc, json_pretty);
    tcase_add_test(tc, times);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
