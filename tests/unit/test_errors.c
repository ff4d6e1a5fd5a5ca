/* Unit tests of proto/errors: names round-trip and the close rule. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "unit.h"

START_TEST(names_round_trip)
{
    for (int c = 1; c < ERR__COUNT; c++) {
        const char *n = errors_name((error_code)c);
        ck_assert_str_ne(n, "UNKNOWN");
        for (const char *p = n; *p; p++)
            ck_assert(( *p >= 'A' && *p <= 'Z') || *p == '_');
        ck_assert_int_eq(errors_from_name(n, strlen(n)), c);
    }
    ck_assert_int_eq(errors_from_name("NOPE", 4), ERR_NONE);
    ck_assert_int_eq(errors_from_name("QUEUE_FUL", 9), ERR_NONE);
    ck_assert_str_eq(errors_name(ERR__COUNT), "UNKNOWN");
}
END_TEST

START_TEST(which_close)
{
    static const error_code closing[] = { ERR_BAD_FRAME, ERR_FRAME_TOO_LARGE,
                                          ERR_UNSUPPORTED_VERSION, ERR_AUTH_FAILED,
                                          ERR_TOO_MANY_CONNECTIONS, ERR_IDLE_TIMEOUT };
    int n = 0;
    for (int c = 0; c < ERR__COUNT; c++)
        n += errors_closes((error_code)c);
    ck_assert_int_eq(n, 6);
    for (size_t i = 0; i < 6; i++)
        ck_assert(errors_closes(closing[i]));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, names_round_trip);
    tcase_add_test(tc, which_close);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
