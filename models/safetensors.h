/* safetensors reader (mmap, validated before use): one file, or a Hugging Face
 * directory with model.safetensors or a sharded model.safetensors.index.json. */
#ifndef SOL_MODELS_SAFETENSORS_H
#define SOL_MODELS_SAFETENSORS_H

#include <stdint.h>

#include "util/dtype.h"
#include "util/err.h"

#define SOL_ST_MAX_DIMS 8
/* The reference implementation refuses headers above this many bytes. */
#define SOL_ST_MAX_HEADER_BYTES 100000000u

typedef struct sol_st_tensor {
    const char *name;     /* owned by the model */
    const char *path;     /* the file (shard) holding it */
    char dtype_name[12];  /* as in the file: "BF16", "I64", "F8_E4M3FNUZ", ... */
    int has_sol_dtype;    /* F32, F16, BF16, F8_E4M3 (SOL_DT_FP8); 0: caller's business */
    sol_dtype dtype;      /* valid when has_sol_dtype */
    int elem_bits;        /* 4 for F4, 6 for F6_*, else 8 x bytes per element */
    int n_dims;           /* 0 for a scalar */
    int64_t shape[SOL_ST_MAX_DIMS]; /* row-major: shape[n_dims - 1] is contiguous */
    uint64_t n_elems;
    uint64_t n_bytes;
    uint64_t offset;      /* data_offsets[0], relative to the file's data section */
    /* Into the read-only mapping, no copy. Not necessarily aligned to the
     * element size: read through memcpy unless (uintptr_t)data % size == 0. */
    const void *data;
} sol_st_tensor;

typedef struct sol_st_model sol_st_model;

/* path is a .safetensors file, a model.safetensors.index.json (shards are
 * looked up next to it), or a directory holding model.safetensors (preferred)
 * or model.safetensors.index.json. On failure *out is NULL and err names the
 * file and, where there is one, the tensor or key. */
int sol_st_open(const char *path, sol_st_model **out, sol_err *err);
void sol_st_close(sol_st_model *m); /* NULL is fine */

/* Tensors of every shard, sorted by name (strcmp). */
int sol_st_count(const sol_st_model *m);
const sol_st_tensor *sol_st_at(const sol_st_model *m, int i);
const sol_st_tensor *sol_st_find(const sol_st_model *m, const char *name);
/* Number of files opened (1, or the distinct shards of the index). */
int sol_st_file_count(const sol_st_model *m);
/* Value of key in the __metadata__ of the first file (shards sorted by file
 * name); NULL when absent. */
const char *sol_st_metadata(const sol_st_model *m, const char *key);

#endif
