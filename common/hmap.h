/* hmap: a hash map from byte-string keys to pointers.
 *
 * Keys are copied in (the map owns its copies); values are borrowed: the
 * map never frees them. Chained buckets, doubled when the load passes one,
 * FNV-1a hashing. Iteration order is unspecified; deleting the entry an
 * iterator just returned is allowed, any other change during iteration is
 * not. Not thread-safe: one owner at a time.
 */
#ifndef TRIDENT_HMAP_H
#define TRIDENT_HMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct hmap hmap;

typedef struct hmap_iter {
    size_t bucket;
    void *next;  /* the entry to return next; internal */
} hmap_iter;

hmap *hmap_new(void);
/* hmap_free: frees the map and its key copies, not the values. NULL is fine. */
void hmap_free(hmap *m);

/* hmap_get: the value for key, or NULL. */
void *hmap_get(const hmap *m, const void *key, size_t klen);
/* hmap_put: sets key to val; returns the value it replaced, or NULL. */
void *hmap_put(hmap *m, const void *key, size_t klen, void *val);
/* hmap_del: removes key; returns its value, or NULL if it was absent. */
void *hmap_del(hmap *m, const void *key, size_t klen);
size_t hmap_count(const hmap *m);

/* hmap_iter_init / hmap_next: visit every entry; hmap_next returns false at
 * the end. key is borrowed from the map: valid until the entry is deleted. */
void hmap_iter_init(const hmap *m, hmap_iter *it);
bool hmap_next(const hmap *m, hmap_iter *it, const void **key, size_t *klen, void **val);

#endif
