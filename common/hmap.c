#include "hmap.h"

#include <stdint.h>
#include <string.h>

#include "mem.h"

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    void *val;
    size_t klen;
    char key[]; /* klen bytes, NUL-terminated for debugging */
} entry;

struct hmap {
    entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
};

static uint64_t hash_of(const void *key, size_t klen)
{
    const uint8_t *p = key;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < klen; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

hmap *hmap_new(void)
{
    hmap *m = mem_calloc(1, sizeof *m);
    m->nbuckets = 16;
    m->buckets = mem_calloc(m->nbuckets, sizeof *m->buckets);
    return m;
}

void hmap_free(hmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        entry *e = m->buckets[i];
        while (e) {
            entry *next = e->next;
            mem_free(e);
            e = next;
        }
    }
    mem_free(m->buckets);
    mem_free(m);
}

static entry **find(const hmap *m, const void *key, size_t klen, uint64_t h)
{
    entry **slot = &m->buckets[h & (m->nbuckets - 1)];
    for (; *slot; slot = &(*slot)->next)
        if ((*slot)->hash == h && (*slot)->klen == klen && memcmp((*slot)->key, key, klen) == 0)
            return slot;
    return slot;
}

void *hmap_get(const hmap *m, const void *key, size_t klen)
{
    entry **slot = find(m, key, klen, hash_of(key, klen));
    return *slot ? (*slot)->val : NULL;
}

static void grow(hmap *m)
{
    size_t n = m->nbuckets * 2;
    entry **b = mem_calloc(n, sizeof *b);
    for (size_t i = 0; i < m->nbuckets; i++) {
        entry *e = m->buckets[i];
        while (e) {
            entry *next = e->next;
            entry **slot = &b[e->hash & (n - 1)];
            e->next = *slot;
            *slot = e;
            e = next;
        }
    }
    mem_free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

void *hmap_put(hmap *m, const void *key, size_t klen, void *val)
{
    uint64_t h = hash_of(key, klen);
    entry **slot = find(m, key, klen, h);
    if (*slot) {
        void *old = (*slot)->val;
        (*slot)->val = val;
        return old;
    }
    entry *e = mem_malloc(sizeof *e + klen + 1);
    e->next = NULL;
    e->hash = h;
    e->val = val;
    e->klen = klen;
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    *slot = e;
    if (++m->count > m->nbuckets)
        grow(m);
    return NULL;
}

void *hmap_del(hmap *m, const void *key, size_t klen)
{
    entry **slot = find(m, key, klen, hash_of(key, klen));
    entry *e = *slot;
    if (!e)
        return NULL;
    void *val = e->val;
    *slot = e->next;
    mem_free(e);
    m->count--;
    return val;
}

size_t hmap_count(const hmap *m)
{
    return m->count;
}

void hmap_iter_init(const hmap *m, hmap_iter *it)
{
    it->bucket = 0;
    it->next = m->nbuckets ? m->buckets[0] : NULL;
}

bool hmap_next(const hmap *m, hmap_iter *it, const void **key, size_t *klen, void **val)
{
    while (!it->next) {
        if (++it->bucket >= m->nbuckets)
            return false;
        it->next = m->buckets[it->bucket];
    }
    entry *e = it->next;
    it->next = e->next; /* read before the caller may delete e */
    *key = e->key;
    *klen = e->klen;
    *val = e->val;
    return true;
}
