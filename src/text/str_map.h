/* str_map.h — the two hash tables the tokenizer needs: byte string -> id (vocabulary)
 * and (id, id) -> (rank, id) (BPE merges).
 *
 * Defines: StrMap (owns copies of its keys) and PairMap, both open addressing with
 * linear probing, built once at load time and read-only afterwards (so lookups are
 * safe from several threads).
 * Must not: know about token semantics; hold global state.
 */
#ifndef SOFTCOT_TEXT_STR_MAP_H
#define SOFTCOT_TEXT_STR_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct StrMap StrMap;

StrMap *strmap_new(size_t expected);
void strmap_free(StrMap *m);
/* Inserts key -> value unless the key is present. Returns the value already stored
 * for the key, or -1 when the key was new. value must be >= 0. */
int strmap_put(StrMap *m, const char *key, size_t n, int value);
/* Value for key, or -1. */
int strmap_get(const StrMap *m, const char *key, size_t n);
size_t strmap_count(const StrMap *m);

typedef struct PairMap PairMap;

PairMap *pairmap_new(size_t expected);
void pairmap_free(PairMap *m);
/* Inserts or overwrites (a, b) -> (rank, id). */
void pairmap_put(PairMap *m, int a, int b, int rank, int id);
/* Returns 1 and fills rank/id if (a, b) is present, else 0. */
int pairmap_get(const PairMap *m, int a, int b, int *rank, int *id);

#endif
