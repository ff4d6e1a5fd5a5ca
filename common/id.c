#include "id.h"

#include <pthread.h>
#include <sys/random.h>
#include <unistd.h>

#include "clock.h"

static const char id_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* ---- generator state ------------------------------------------------------
 * The previous id is kept as two 64-bit halves: hi holds the 48-bit time and
 * the first 16 random bits, lo the other 64. A new millisecond draws fresh
 * random bits; otherwise the pair is incremented as one 128-bit number (a
 * carry out of the random part moves the time by 1 ms, still increasing).
 * The PRNG is xoshiro256**: fast, 256 bits of state from getrandom().
 */

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;
static pid_t id_pid; /* the process the state belongs to; 0 = unseeded */
static uint64_t id_rng[4];
static uint64_t id_hi, id_lo;

static uint64_t id_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t id_next_random(void)
{
    uint64_t *s = id_rng;
    uint64_t result = id_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = id_rotl(s[3], 45);
    return result;
}

/* id_splitmix: one step of splitmix64, used to spread a weak fallback seed
 * over the whole state. */
static uint64_t id_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* id_seed: fills the PRNG state from getrandom(). If the kernel has none to
 * give (no getrandom, seccomp), falls back to the clocks and the pid: weaker,
 * but ids stay unique within the process, which is what the broker needs. */
static void id_seed(void)
{
    uint8_t *p = (uint8_t *)id_rng;
    size_t got = 0;
    while (got < sizeof id_rng) {
        ssize_t n = getrandom(p + got, sizeof id_rng - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof id_rng) {
        uint64_t x = clock_mono_ns() ^ (clock_wall_us() << 20) ^ (uint64_t)getpid();
        for (int i = 0; i < 4; i++)
            id_rng[i] = id_splitmix(&x);
    }
    if ((id_rng[0] | id_rng[1] | id_rng[2] | id_rng[3]) == 0)
        id_rng[0] = 1; /* the one state xoshiro cannot leave */
}

/* A fork while another thread holds id_lock would leave the child's copy
 * locked for good: hold it across fork so both sides start unlocked. */
static void id_fork_prepare(void)
{
    pthread_mutex_lock(&id_lock);
}

static void id_fork_release(void)
{
    pthread_mutex_unlock(&id_lock);
}

static void id_register_atfork(void)
{
    pthread_atfork(id_fork_prepare, id_fork_release, id_fork_release);
}

static void id_store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t id_load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

void id_generate_bytes(uint8_t out[ID_BYTES])
{
    pthread_once(&id_once, id_register_atfork);
    pthread_mutex_lock(&id_lock);
    pid_t pid = getpid();
    if (pid != id_pid) {
        /* A new process (or the first call): a fresh seed, and no counting
         * on from the parent's last id, which the parent will use too. */
        id_seed();
        id_pid = pid;
        id_hi = id_lo = 0;
    }
    uint64_t now = clock_wall_ms() & 0xffffffffffffu;
    if (now > id_hi >> 16) {
        id_hi = now << 16 | id_next_random() >> 48;
        id_lo = id_next_random();
    } else if (++id_lo == 0) {
        id_hi++;
    }
    id_store_be64(out, id_hi);
    id_store_be64(out + 8, id_lo);
    pthread_mutex_unlock(&id_lock);
}

void id_generate(char out[ID_TEXT_LEN + 1])
{
    uint8_t bytes[ID_BYTES];
    id_generate_bytes(bytes);
    id_encode(bytes, out);
}

/* ---- text -----------------------------------------------------------------
 * 26 digits of 5 bits hold 130 bits; the two extra are the top of the first
 * digit, which is why it never exceeds 7.
 */

void id_encode(const uint8_t bytes[ID_BYTES], char out[ID_TEXT_LEN + 1])
{
    uint64_t hi = id_load_be64(bytes), lo = id_load_be64(bytes + 8);
    for (int i = ID_TEXT_LEN - 1; i >= 0; i--) {
        out[i] = id_alphabet[lo & 31];
        lo = lo >> 5 | hi << 59;
        hi >>= 5;
    }
    out[ID_TEXT_LEN] = '\0';
}

/* id_digit: the value of one base32 character, or -1. */
static int id_digit(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    if (c == 'O')
        c = '0';
    else if (c == 'I' || c == 'L')
        c = '1';
    for (int v = 0; v < 32; v++) {
        if (id_alphabet[v] == c)
            return v;
    }
    return -1;
}

int id_decode(const char *s, size_t n, uint8_t out[ID_BYTES])
{
    if (n != ID_TEXT_LEN)
        return -1;
    uint64_t hi = 0, lo = 0;
    for (size_t i = 0; i < n; i++) {
        int v = id_digit(s[i]);
        if (v < 0 || (i == 0 && v > 7))
            return -1;
        hi = hi << 5 | lo >> 59;
        lo = lo << 5 | (uint64_t)v;
    }
    id_store_be64(out, hi);
    id_store_be64(out + 8, lo);
    return 0;
}

uint64_t id_time_ms(const uint8_t bytes[ID_BYTES])
{
    return id_load_be64(bytes) >> 16;
}

bool id_client_valid(const char *s, size_t n)
{
    if (n == 0 || n > ID_CLIENT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    }
    return true;
}
