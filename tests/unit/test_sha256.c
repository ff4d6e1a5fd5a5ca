/* Unit tests of common/sha256: the FIPS 180-2 / NIST example vectors, every
 * message of 0..200 bytes split at every point across two updates (and fed
 * one byte at a time), and random buffers checked against coreutils'
 * sha256sum, run as a child process on a temporary file. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "sha256.h"
#include "unit.h"

/* hex_of: the digest in ctx as hex, the same form sha256_hex gives. */
static void hex_of(sha256_ctx *ctx, char out[SHA256_HEX_LEN + 1])
{
    uint8_t md[SHA256_DIGEST_LEN];
    sha256_final(ctx, md);
    for (int i = 0; i < SHA256_DIGEST_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static const struct {
    const char *msg;
    const char *digest;
} vectors[] = {
    { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
    { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
    /* 448 bits: the padding no longer fits the block, a second one follows. */
    { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
    /* 896 bits: two full blocks of message. */
    { "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopq"
      "rsmnopqrstnopqrstu",
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
};

START_TEST(nist_vectors)
{
    char hex[SHA256_HEX_LEN + 1];
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        memset(hex, 'x', sizeof hex);
        sha256_hex(vectors[i].msg, strlen(vectors[i].msg), hex);
        ck_assert_str_eq(hex, vectors[i].digest);  /* also proves the NUL */
    }
    /* An empty message may come as NULL. */
    sha256_hex(NULL, 0, hex);
    ck_assert_str_eq(hex, vectors[0].digest);
}
END_TEST

START_TEST(million_a)
{
    static const char want[] = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    enum { MILLION = 1000000 };
    char *a = malloc(MILLION);
    ck_assert_ptr_nonnull(a);
    memset(a, 'a', MILLION);
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex(a, MILLION, hex);
    ck_assert_str_eq(hex, want);

    /* The same million in odd pieces that straddle block boundaries. */
    sha256_ctx ctx;
    sha256_init(&ctx);
    size_t done = 0, piece = 1;
    while (done < MILLION) {
        size_t n = piece < MILLION - done ? piece : MILLION - done;
        sha256_update(&ctx, a + done, n);
        done += n;
        piece = piece * 7 % 1013 + 1;
    }
    hex_of(&ctx, hex);
    ck_assert_str_eq(hex, want);
    free(a);
}
END_TEST

START_TEST(every_split)
{
    uint8_t msg[200];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 131 + 7);
    for (size_t len = 0; len <= sizeof msg; len++) {
        char whole[SHA256_HEX_LEN + 1], split[SHA256_HEX_LEN + 1];
        sha256_hex(msg, len, whole);
        for (size_t at = 0; at <= len; at++) {
            sha256_ctx ctx;
            sha256_init(&ctx);
            sha256_update(&ctx, msg, at);
            sha256_update(&ctx, msg + at, len - at);
            hex_of(&ctx, split);
            if (strcmp(whole, split) != 0)
                ck_abort_msg("length %zu split at %zu: %s, whole %s", len, at, split, whole);
        }
        sha256_ctx ctx;
        sha256_init(&ctx);
        for (size_t i = 0; i < len; i++)
            sha256_update(&ctx, msg + i, 1);
        hex_of(&ctx, split);
        if (strcmp(whole, split) != 0)
            ck_abort_msg("length %zu byte by byte: %s, whole %s", len, split, whole);
    }
}
END_TEST

/* sha256sum_of: runs sha256sum on path and writes the digest it prints to
 * out. The output goes through a log file in dir (harness_spawn), so no
 * shell and no quoting is involved. */
static void sha256sum_of(const char *dir, const char *path, char out[SHA256_HEX_LEN + 1])
{
    char exe[4096], log_path[1024], line[256];
    if (harness_find_exe("sha256sum", exe, sizeof exe) != 0)
        ck_abort_msg("sha256sum (coreutils) is not on PATH");
    ck_assert_int_lt(snprintf(log_path, sizeof log_path, "%s/sha256sum.out", dir),
                     (int)sizeof log_path);
    unlink(log_path);
    const char *const argv[] = { "sha256sum", path, NULL };
    pid_t pid = harness_spawn(exe, argv, log_path);
    ck_assert_int_gt(pid, 0);
    int status;
    ck_assert_int_eq(harness_wait(pid, 30000, &status), 1);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ssize_t n = harness_log_tail(log_path, 0, line, sizeof line);
    ck_assert_int_gt(n, SHA256_HEX_LEN);
    ck_assert_int_eq(line[SHA256_HEX_LEN], ' ');
    memcpy(out, line, SHA256_HEX_LEN);
    out[SHA256_HEX_LEN] = '\0';
}

START_TEST(matches_sha256sum)
{
    /* Around the padding boundaries, and a few larger sizes. */
    static const size_t sizes[] = { 0, 1, 55, 56, 63, 64, 65, 119, 120, 4095, 65537, 1000003 };
    char dir[512], path[1024];
    ck_assert_int_eq(harness_tmpdir(dir, sizeof dir), 0);
    ck_assert_int_lt(snprintf(path, sizeof path, "%s/random.bin", dir), (int)sizeof path);
    unsigned seed = (unsigned)getpid();
    srand(seed);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t *data = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(data);
        for (size_t j = 0; j < n; j++)
            data[j] = (uint8_t)(rand() >> 7);
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);

        char ours[SHA256_HEX_LEN + 1], theirs[SHA256_HEX_LEN + 1];
        sha256_hex(data, n, ours);
        sha256sum_of(dir, path, theirs);
        if (strcmp(ours, theirs) != 0)
            ck_abort_msg("%zu random bytes (seed %u): %s, sha256sum says %s", n, seed, ours,
                         theirs);
        free(data);
    }
    ck_assert_int_eq(harness_rmtree(dir), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, nist_vectors);
    tcase_add_test(tc, million_a);
    tcase_add_test(tc, every_split);
    tcase_add_test(tc, matches_sha256sum);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
