/* GGUF v2/v3 reader (mmap, validated before use) and a small writer used by
 * `sol synth` and the tests. Pointers returned point into the mapping. */
#ifndef SOL_MODELS_GGUF_H
#define SOL_MODELS_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum sol_gguf_type {
    SOL_GGUF_U8 = 0, SOL_GGUF_I8 = 1, SOL_GGUF_U16 = 2, SOL_GGUF_I16 = 3,
    SOL_GGUF_U32 = 4, SOL_GGUF_I32 = 5, SOL_GGUF_F32 = 6, SOL_GGUF_BOOL = 7,
    SOL_GGUF_STRING = 8, SOL_GGUF_ARRAY = 9, SOL_GGUF_U64 = 10, SOL_GGUF_I64 = 11,
    SOL_GGUF_F64 = 12,
};

typedef struct sol_gguf_str {
    const char *ptr; /* not NUL-terminated */
    uint64_t len;
} sol_gguf_str;

typedef struct sol_gguf_kv {
    sol_gguf_str key;
    uint32_t type;           /* enum sol_gguf_type */
    const uint8_t *value;    /* raw little-endian value in the mapping */
    uint32_t arr_type;       /* element type when type == ARRAY */
    uint64_t arr_count;      /* element count when type == ARRAY */
} sol_gguf_kv;

typedef struct sol_gguf_tensor {
    sol_gguf_str name;
    uint32_t n_dims;
    uint64_t dims[4];        /* dims[0] is the contiguous one */
    uint64_t n_elems;
    uint32_t ggml_type;
    uint64_t offset;         /* relative to the data section */
    uint64_t n_bytes;        /* 0 when the type's block size is unknown */
    const uint8_t *data;     /* into the mapping; NULL when n_bytes is 0 */
} sol_gguf_tensor;

typedef struct sol_gguf {
    char path[1024];
    int fd;
    const uint8_t *map;
    size_t size;
    uint32_t version;
    uint64_t n_kv;
    uint64_t n_tensors;
    uint64_t alignment;
    sol_gguf_kv *kv;
    sol_gguf_tensor *tensors;
    const uint8_t *data;     /* start of the data section */
    struct sol_gguf_priv *priv; /* private to gguf.c: lookup tables, caches */
} sol_gguf;

int sol_gguf_open(sol_gguf *g, const char *path, sol_err *err);
void sol_gguf_close(sol_gguf *g);

const sol_gguf_kv *sol_gguf_find(const sol_gguf *g, const char *key);
const sol_gguf_tensor *sol_gguf_find_tensor(const sol_gguf *g, const char *name);
/* Scalar getters accept any integer (int) or numeric (f64) type; they return
 * 0, -1 when the key is absent, SOL_ERR_RUNTIME (err set) on a wrong type or
 * out-of-range value. */
int sol_gguf_get_i64(const sol_gguf *g, const char *key, int64_t *out, sol_err *err);
int sol_gguf_get_f64(const sol_gguf *g, const char *key, double *out, sol_err *err);
int sol_gguf_get_bool(const sol_gguf *g, const char *key, int *out, sol_err *err);
int sol_gguf_get_str(const sol_gguf *g, const char *key, sol_gguf_str *out, sol_err *err);
/* Element i of an array of strings, integers or floats (validated at open). */
int sol_gguf_arr_str(const sol_gguf *g, const sol_gguf_kv *kv, uint64_t i, sol_gguf_str *out);
int sol_gguf_arr_i64(const sol_gguf_kv *kv, uint64_t i, int64_t *out);
int sol_gguf_arr_f64(const sol_gguf_kv *kv, uint64_t i, double *out);
/* True when s equals the C string z. */
int sol_gguf_str_eq(sol_gguf_str s, const char *z);

/* ---- writer --------------------------------------------------------- */
typedef struct sol_gguf_writer sol_gguf_writer;

sol_gguf_writer *sol_gguf_writer_new(void);
void sol_gguf_writer_free(sol_gguf_writer *w);
void sol_gguf_set_u32(sol_gguf_writer *w, const char *key, uint32_t v);
void sol_gguf_set_i32(sol_gguf_writer *w, const char *key, int32_t v);
void sol_gguf_set_u64(sol_gguf_writer *w, const char *key, uint64_t v);
void sol_gguf_set_f32(sol_gguf_writer *w, const char *key, float v);
void sol_gguf_set_bool(sol_gguf_writer *w, const char *key, int v);
void sol_gguf_set_str(sol_gguf_writer *w, const char *key, const char *v);
void sol_gguf_set_arr_str(sol_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
void sol_gguf_set_arr_i32(sol_gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
void sol_gguf_set_arr_f32(sol_gguf_writer *w, const char *key, const float *v, uint64_t n);
/* data is copied lazily: it must stay valid until sol_gguf_writer_write. */
void sol_gguf_add_tensor(sol_gguf_writer *w, const char *name, uint32_t n_dims,
                         const uint64_t *dims, uint32_t ggml_type, const void *data, uint64_t n_bytes);
/* Data produced while writing (so huge files need not sit in memory):
 * fill writes n_bytes into buf; non-zero aborts the write. */
typedef int (*sol_gguf_fill_fn)(void *user, const char *name, void *buf, uint64_t n_bytes);
void sol_gguf_add_tensor_fill(sol_gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *dims,
                              uint32_t ggml_type, uint64_t n_bytes, sol_gguf_fill_fn fill, void *user);
/* Writes a GGUF v3 file with general.alignment (32 unless set). */
int sol_gguf_writer_write(sol_gguf_writer *w, const char *path, sol_err *err);

#endif
