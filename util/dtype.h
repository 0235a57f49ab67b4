/* Data types of weights, activations and KV cache, with their storage cost:
 * plain floats, fp8/int8/int4 with f16 group scales, and GGUF block formats. */
#ifndef SOL_UTIL_DTYPE_H
#define SOL_UTIL_DTYPE_H

#include <stdint.h>

typedef enum sol_dtype {
    SOL_DT_F32,
    SOL_DT_F16,
    SOL_DT_BF16,
    SOL_DT_FP8,  /* e4m3, per-tensor scale (not counted) */
    SOL_DT_INT8, /* one f16 scale per group of elements (counted) */
    SOL_DT_INT4, /* one f16 scale per group of elements (counted) */
    SOL_DT_Q8_0, /* GGUF blocks from here on */
    SOL_DT_Q4_0,
    SOL_DT_Q4_1,
    SOL_DT_Q5_0,
    SOL_DT_Q5_1,
    SOL_DT_Q2_K,
    SOL_DT_Q3_K,
    SOL_DT_Q4_K,
    SOL_DT_Q5_K,
    SOL_DT_Q6_K,
    SOL_DT_COUNT
} sol_dtype;

/* The FLOP ceilings a hardware entry lists; an op runs at the one of its
 * compute type. */
typedef enum sol_peak {
    SOL_PEAK_FP32,
    SOL_PEAK_FP16,
    SOL_PEAK_BF16,
    SOL_PEAK_FP8,
    SOL_PEAK_INT8,
    SOL_PEAK_COUNT
} sol_peak;

/* Group size of the f16 scales of int8/int4 weights (GPTQ/AWQ-style). KV
 * caches use head_dim as the group instead. */
#define SOL_WEIGHT_SCALE_GROUP 128

const char *sol_dtype_name(sol_dtype t);
/* 0 and *out set, or -1 when s names no dtype. Accepts "q4_1" and "Q4_1". */
int sol_dtype_parse(const char *s, sol_dtype *out);
/* Bytes to store elems elements; group is the scale group of int8/int4. */
double sol_dtype_bytes(sol_dtype t, double elems, int group);
/* Elements per storage block (1 for plain types, 32 or 256 for GGUF blocks). */
int sol_dtype_block_elems(sol_dtype t);
/* Bytes per storage block (fractional for int4 without scales). */
double sol_dtype_block_bytes(sol_dtype t);
/* GGML type id <-> dtype; -1 when the type has no sol dtype. */
int sol_dtype_from_ggml(uint32_t ggml_type, sol_dtype *out);
int sol_dtype_to_ggml(sol_dtype t);
/* Name of a GGML type id for messages ("IQ2_XXS"), or "type N". */
const char *sol_ggml_type_name(uint32_t ggml_type, char *buf, int cap);
/* True for the floating types an activation may have. */
int sol_dtype_is_float(sol_dtype t);

const char *sol_peak_name(sol_peak p);
/* Which FLOP ceiling a computation whose inputs are in type t runs at. */
sol_peak sol_peak_for(sol_dtype t);

#endif
