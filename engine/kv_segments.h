/* A conversation's KV cache on disk, as segments (character.ai's
 * inter-turn reuse across processes). A segment holds the positions
 * [from, to) of a token prefix: its tokens and, per layer that owns a
 * cache, the rows the scheme still keeps at `to` (a window's newest, a lazy
 * layer's sinks and window, every row of a full cache; the latent under
 * MLA; rows in the cache's type with its scales). It is named by the
 * rolling hash of the prefix [0, to), seeded with the key (model file,
 * scheme, KV type, format), and names its parent (the prefix [0, from)), so
 * a prefix is a chain of segments back to position 0 and conversations
 * sharing a beginning share its segments.
 *
 * Files are written to a temporary name and renamed (a crash or a full disk
 * leaves the previous ones whole); a lock file serialises writers and the
 * eviction. A segment whose magic, version, key, chain or checksum does not
 * match is never used: loading stops there with a one-line notice and the
 * caller recomputes. The store keeps at most cap bytes, evicting the least
 * recently used segments first. Sessions are names for a chain's head. */
#ifndef SOL_ENGINE_KV_SEGMENTS_H
#define SOL_ENGINE_KV_SEGMENTS_H

#include <stdint.h>

#include "engine/engine.h"

typedef struct sol_kv_store {
    char dir[3072];   /* holds segments/ and sessions/ */
    uint64_t key;     /* the prefix hash of the empty prefix */
    double cap_bytes; /* 0: no limit */
} sol_kv_store;

/* The store at dir (created) for engine e's model file, scheme and KV type. */
int sol_kv_store_open(const char *dir, const sol_engine *e, double cap_bytes, sol_kv_store *s, sol_err *err);
/* The rolling prefix hash: h over tokens. */
uint64_t sol_kv_prefix_hash(uint64_t h, const int32_t *tokens, int64_t n);

/* Stores the engine's positions [from, to) (to <= its position) of the
 * conversation tokens[0, to), after the prefix hashed `parent`; *hash is
 * the new prefix's. Then evicts down to the cap. *bytes: the file's size. */
int sol_kv_segment_save(sol_kv_store *s, sol_engine *e, const int32_t *tokens, int64_t from, int64_t to,
                        uint64_t parent, uint64_t *hash, double *bytes, sol_err *err);

/* What a load brought back. */
typedef struct sol_kv_loaded {
    int32_t *tokens; /* malloc'd, n of them */
    int64_t n;
    uint64_t hash;   /* of the prefix loaded */
    double bytes;    /* of rows read into the cache */
    int segments;
    char notice[512]; /* why a segment was refused (then the prefix stops before it), else "" */
} sol_kv_loaded;

/* Whether the segment of prefix `hash` exists (and its chain, valid). */
int sol_kv_segment_exists(const sol_kv_store *s, uint64_t hash);
/* The chain ending at prefix `hash` into the engine (reset first): its
 * rows, SimLayerKV choice, tokens and position. When a segment is refused
 * the engine is reset, nothing is loaded (n = 0), and notice says why. */
int sol_kv_segment_load(sol_kv_store *s, sol_engine *e, uint64_t hash, sol_kv_loaded *out, sol_err *err);
void sol_kv_loaded_free(sol_kv_loaded *l);

/* Sessions: a name for a chain's head: letters, digits, . _ - (not first
 * a dot), 128 at most. */
int sol_kv_session_name_ok(const char *name);
/* 1 and the head (and the turns it holds) when the session exists, else 0 */
int sol_kv_session_head(const sol_kv_store *s, const char *name, uint64_t *hash, int *turns);
int sol_kv_session_set(sol_kv_store *s, const char *name, uint64_t hash, int turns, sol_err *err);

/* Every session and segment under dir, for listing; remove a session (its
 * head; segments go by eviction or with all = 1, every file). */
typedef struct sol_kv_session_info {
    char name[256];
    uint64_t head;
    int turns;
    double mtime;
} sol_kv_session_info;
int sol_kv_sessions_list(const char *dir, sol_kv_session_info **out, int *n, double *segment_bytes, int *segments,
                         sol_err *err);
int sol_kv_session_remove(const char *dir, const char *name, sol_err *err);
/* The whole store at dir, every file and folder of it (a temporary one). */
void sol_kv_store_remove(const char *dir);

#endif
