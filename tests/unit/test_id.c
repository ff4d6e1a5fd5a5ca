/* id: the text form (known vectors, round trips, decoding errors), the order
 * of generated ids, and their uniqueness across threads and fork. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "id.h"
#include "unit.h"

/* The 128-bit value of an id, for arithmetic in the tests. */
static unsigned __int128 id_value(const uint8_t b[ID_BYTES])
{
    unsigned __int128 v = 0;
    for (int i = 0; i < ID_BYTES; i++)
        v = v << 8 | b[i];
    return v;
}

START_TEST(test_known_vectors)
{
    uint8_t bytes[ID_BYTES], back[ID_BYTES];
    char text[ID_TEXT_LEN + 1];

    memset(bytes, 0, sizeof bytes);
    id_encode(bytes, text);
    ck_assert_str_eq(text, "00000000000000000000000000");

    memset(bytes, 0xff, sizeof bytes);
    id_encode(bytes, text);
    ck_assert_str_eq(text, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");

    /* Time 1 ms, no random bits: 1 << 80 is digit 16 from the right. */
    memset(bytes, 0, sizeof bytes);
    bytes[5] = 1;
    id_encode(bytes, text);
    ck_assert_str_eq(text, "00000000010000000000000000");
    ck_assert_uint_eq(id_time_ms(bytes), 1);

    memset(bytes, 0, sizeof bytes);
    bytes[15] = 31;
    bytes[14] = 1; /* 287 = 8 * 32 + 31 */
    id_encode(bytes, text);
    ck_assert_str_eq(text, "0000000000000000000000008Z");
    ck_assert_int_eq(id_decode(text, ID_TEXT_LEN, back), 0);
    ck_assert_mem_eq(back, bytes, ID_BYTES);
}
END_TEST

START_TEST(test_round_trip)
{
    uint8_t bytes[ID_BYTES], back[ID_BYTES];
    char text[ID_TEXT_LEN + 1];
    unsigned seed = 12345;
    for (int n = 0; n < 10000; n++) {
        for (int i = 0; i < ID_BYTES; i++)
            bytes[i] = (uint8_t)rand_r(&seed);
        id_encode(bytes, text);
        ck_assert_uint_eq(strlen(text), ID_TEXT_LEN);
        ck_assert_int_le(text[0], '7');
        ck_assert_int_eq(id_decode(text, ID_TEXT_LEN, back), 0);
        ck_assert_mem_eq(back, bytes, ID_BYTES);
    }
}
END_TEST

START_TEST(test_decode_accepts_case_and_aliases)
{
    uint8_t want[ID_BYTES], got[ID_BYTES];
    ck_assert_int_eq(id_decode("01ARZ3NDEKTSV4RRFFQ69G5FAV", ID_TEXT_LEN, want), 0);
    ck_assert_int_eq(id_decode("01arz3ndektsv4rrffq69g5fav", ID_TEXT_LEN, got), 0);
    ck_assert_mem_eq(got, want, ID_BYTES);
    ck_assert_int_eq(id_decode("OIARZ3NDEKTSV4RRFFQ69G5FAV", ID_TEXT_LEN, got), 0);
    ck_assert_mem_eq(got, want, ID_BYTES);
    ck_assert_int_eq(id_decode("olARZ3NDEKTSV4RRFFQ69G5FAV", ID_TEXT_LEN, got), 0);
    ck_assert_mem_eq(got, want, ID_BYTES);
}
END_TEST

START_TEST(test_decode_rejects)
{
    uint8_t out[ID_BYTES];
    const char *ok = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    ck_assert_int_eq(id_decode(ok, 25, out), -1);
    ck_assert_int_eq(id_decode("01ARZ3NDEKTSV4RRFFQ69G5FAVX", 27, out), -1);
    ck_assert_int_eq(id_decode("", 0, out), -1);
    ck_assert_int_eq(id_decode("01ARZ3NDEKTSV4RRFFQ69G5FAU", ID_TEXT_LEN, out), -1);
    ck_assert_int_eq(id_decode("01ARZ3NDEKTSV4RRFFQ69G5FA!", ID_TEXT_LEN, out), -1);
    ck_assert_int_eq(id_decode("01ARZ3NDEKTSV4RRFFQ69G5F-V", ID_TEXT_LEN, out), -1);
    ck_assert_int_eq(id_decode("01ARZ3NDEKTSV4RR\0FQ69G5FAV", ID_TEXT_LEN, out), -1);
    /* The first digit holds 3 bits: 8 and above would overflow 128 bits. */
    ck_assert_int_eq(id_decode("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", ID_TEXT_LEN, out), 0);
    ck_assert_int_eq(id_decode("8ZZZZZZZZZZZZZZZZZZZZZZZZZ", ID_TEXT_LEN, out), -1);
    ck_assert_int_eq(id_decode("Z0000000000000000000000000", ID_TEXT_LEN, out), -1);
}
END_TEST

START_TEST(test_generated_ids_sort_by_creation)
{
    enum { N = 100000 };
    char(*texts)[ID_TEXT_LEN + 1] = malloc(N * sizeof *texts);
    uint64_t before = clock_wall_ms();
    for (int i = 0; i < N; i++)
        id_generate(texts[i]);
    uint64_t after = clock_wall_ms();

    uint8_t bytes[ID_BYTES];
    for (int i = 0; i < N; i++) {
        ck_assert_uint_eq(strlen(texts[i]), ID_TEXT_LEN);
        if (i > 0 && strcmp(texts[i - 1], texts[i]) >= 0)
            ck_abort_msg("id %d '%s' does not sort after '%s'", i, texts[i], texts[i - 1]);
        ck_assert_int_eq(id_decode(texts[i], ID_TEXT_LEN, bytes), 0);
    }
    ck_assert_int_eq(id_decode(texts[0], ID_TEXT_LEN, bytes), 0);
    ck_assert_uint_ge(id_time_ms(bytes), before);
    ck_assert_int_eq(id_decode(texts[N - 1], ID_TEXT_LEN, bytes), 0);
    ck_assert_uint_le(id_time_ms(bytes), after);
    free(texts);
}
END_TEST

START_TEST(test_same_millisecond_counts_up)
{
    uint8_t prev[ID_BYTES], next[ID_BYTES];
    int same_ms = 0;
    id_generate_bytes(prev);
    for (int i = 0; i < 100000; i++) {
        id_generate_bytes(next);
        if (id_time_ms(next) == id_time_ms(prev)) {
            ck_assert(id_value(next) == id_value(prev) + 1);
            same_ms++;
        } else {
            ck_assert_uint_gt(id_time_ms(next), id_time_ms(prev));
        }
        memcpy(prev, next, sizeof prev);
    }
    ck_assert_int_gt(same_ms, 0);
}
END_TEST

enum { THREADS = 4, PER_THREAD = 20000 };

static uint8_t thread_ids[THREADS][PER_THREAD][ID_BYTES];

static void *generate_many(void *arg)
{
    uint8_t(*ids)[ID_BYTES] = arg;
    for (int i = 0; i < PER_THREAD; i++)
        id_generate_bytes(ids[i]);
    return NULL;
}

static int compare_ids(const void *a, const void *b)
{
    return memcmp(a, b, ID_BYTES);
}

START_TEST(test_threads_get_distinct_increasing_ids)
{
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_create(&threads[t], NULL, generate_many, thread_ids[t]), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    for (int t = 0; t < THREADS; t++) {
        for (int i = 1; i < PER_THREAD; i++)
            ck_assert_int_lt(memcmp(thread_ids[t][i - 1], thread_ids[t][i], ID_BYTES), 0);
    }
    qsort(thread_ids, THREADS * PER_THREAD, ID_BYTES, compare_ids);
    uint8_t(*all)[ID_BYTES] = &thread_ids[0][0];
    for (int i = 1; i < THREADS * PER_THREAD; i++)
        ck_assert_int_ne(memcmp(all[i - 1], all[i], ID_BYTES), 0);
}
END_TEST

START_TEST(test_fork_child_gets_other_ids)
{
    /* Without a reseed, a child forked in the same millisecond would hand
     * out the parent's next id. Try many forks to meet that case. */
    for (int round = 0; round < 20; round++) {
        char parent_id[ID_TEXT_LEN + 1], child_id[ID_TEXT_LEN + 1] = "";
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        id_generate(parent_id);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            id_generate(child_id);
            _exit(write(fds[1], child_id, ID_TEXT_LEN) == ID_TEXT_LEN ? 0 : 1);
        }
        id_generate(parent_id);
        close(fds[1]);
        ck_assert_int_eq(read(fds[0], child_id, ID_TEXT_LEN), ID_TEXT_LEN);
        close(fds[0]);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert_str_ne(child_id, parent_id);
        /* Same prefix up to the random part would mean a shared sequence. */
        ck_assert_int_ne(memcmp(child_id + 10, parent_id + 10, 16), 0);
    }
}
END_TEST

START_TEST(test_client_ids)
{
    char longest[ID_CLIENT_MAX + 1];
    memset(longest, 'x', sizeof longest);
    ck_assert(id_client_valid("a", 1));
    ck_assert(id_client_valid("order-42/retry:1", 16));
    ck_assert(id_client_valid("!~", 2));
    ck_assert(id_client_valid(longest, ID_CLIENT_MAX));
    ck_assert(!id_client_valid(longest, ID_CLIENT_MAX + 1));
    ck_assert(!id_client_valid("", 0));
    ck_assert(!id_client_valid("a b", 3));
    ck_assert(!id_client_valid("a\tb", 3));
    ck_assert(!id_client_valid("a\x7f", 2));
    ck_assert(!id_client_valid("caf\xc3\xa9", 5));
    ck_assert(!id_client_valid("a\0b", 3));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("id");
    TCase *tc = tcase_create("id");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_known_vectors);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_decode_accepts_case_and_aliases);
    tcase_add_test(tc, test_decode_rejects);
    tcase_add_test(tc, test_generated_ids_sort_by_creation);
    tcase_add_test(tc, test_same_millisecond_counts_up);
    tcase_add_test(tc, test_threads_get_distinct_increasing_ids);
    tcase_add_test(tc, test_fork_child_gets_other_ids);
    tcase_add_test(tc, test_client_ids);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
