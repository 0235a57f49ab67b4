/* The engine's KV cache as positions, for storing a conversation's cache
 * and bringing it back (engine/kv_segments.h): which positions each layer
 * keeps, their rows copied out and in (whatever slot a ring put them in),
 * and the position, tokens and SimLayerKV choice that go with them. */
#ifndef SOL_ENGINE_KV_STATE_H
#define SOL_ENGINE_KV_STATE_H

#include "engine/engine.h"

/* Of the positions [from, to) of layer i's cache (to <= the engine's
 * position), the first one the layer still keeps: from for a full cache;
 * later on a window (local) or past the sinks (a lazy layer); the sinks
 * below (see sinks_kept) too. -1 when the layer stores nothing of its own
 * (it reads another's, cla). */
int64_t sol_engine_kv_first_kept(const sol_engine *e, int layer, int64_t from, int64_t to);
/* The sinks a lazy layer keeps for good (0 elsewhere). */
int64_t sol_engine_kv_sinks(const sol_engine *e, int layer);
/* Arrays of layer i's cache: 2 (K, V), or 1 (MLA's latent). */
int sol_engine_kv_arrays(const sol_engine *e, int layer);
/* Bytes of one position's rows in layer i's cache (K and V, or the latent). */
size_t sol_engine_kv_row_bytes(const sol_engine *e, int layer);
/* Rows of positions [t0, t1) of layer i into buf (t1 - t0 times
 * row_bytes: the K rows, then the V rows), and back. */
int sol_engine_kv_export(sol_engine *e, int layer, int64_t t0, int64_t t1, void *buf, sol_err *err);
int sol_engine_kv_import(sol_engine *e, int layer, int64_t t0, int64_t t1, const void *buf, sol_err *err);
/* After importing a prefix: the cache holds tokens[0, n); the next eval
 * continues at n. */
int sol_engine_kv_set_prefix(sol_engine *e, const int32_t *tokens, int64_t n, sol_err *err);
/* Benchmarks: the cache filled from its position to `depth` by repeating
 * the rows (and tokens) of positions 0.. pos - 1, as if those positions
 * had been prefilled (a decode step's cost does not depend on the values). */
int sol_engine_kv_repeat(sol_engine *e, int64_t depth, sol_err *err);
/* SimLayerKV: the choice a stored prefix was made with (lazy[i], score[i]
 * per layer), applied before its rows are imported; -1 without simlayer. */
int sol_engine_simlayer_restore(sol_engine *e, const unsigned char *lazy, const double *score, int query_rows,
                                sol_err *err);

#endif
