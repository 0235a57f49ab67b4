/* Storage cost and names of data types. Block sizes are ggml's
 * (ggml-common.h layouts: e.g. Q4_1 = f16 d + f16 m + 16 bytes of nibbles). */
#include "util/dtype.h"

#include <math.h>
#include <stdio.h>
#include <strings.h>

static const struct {
    const char *name;
    int block_elems;
    double block_bytes;
    int ggml_type; /* -1: not a GGUF type */
} dtypes[SOL_DT_COUNT] = {
    [SOL_DT_F32] = {"f32", 1, 4, 0},
    [SOL_DT_F16] = {"f16", 1, 2, 1},
    [SOL_DT_BF16] = {"bf16", 1, 2, 30},
    [SOL_DT_FP8] = {"fp8", 1, 1, -1},
    [SOL_DT_INT8] = {"int8", 1, 1, -1},
    [SOL_DT_INT4] = {"int4", 1, 0.5, -1},
    [SOL_DT_Q8_0] = {"q8_0", 32, 34, 8},
    [SOL_DT_Q4_0] = {"q4_0", 32, 18, 2},
    [SOL_DT_Q4_1] = {"q4_1", 32, 20, 3},
    [SOL_DT_Q5_0] = {"q5_0", 32, 22, 6},
    [SOL_DT_Q5_1] = {"q5_1", 32, 24, 7},
    [SOL_DT_Q2_K] = {"q2_k", 256, 84, 10},
    [SOL_DT_Q3_K] = {"q3_k", 256, 110, 11},
    [SOL_DT_Q4_K] = {"q4_k", 256, 144, 12},
    [SOL_DT_Q5_K] = {"q5_k", 256, 176, 13},
    [SOL_DT_Q6_K] = {"q6_k", 256, 210, 14},
};

/* ggml type names by id, for messages about types sol cannot use. */
static const char *const ggml_names[] = {
    "F32",     "F16",    "Q4_0",   "Q4_1",  "Q4_2",    "Q4_3",   "Q5_0",
    "Q5_1",    "Q8_0",   "Q8_1",   "Q2_K",  "Q3_K",    "Q4_K",   "Q5_K",
    "Q6_K",    "Q8_K",   "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",
    "IQ3_S",   "IQ2_S",  "IQ4_XS", "I8",    "I16",     "I32",    "I64",
    "F64",     "IQ1_M",  "BF16",
};

const char *sol_dtype_name(sol_dtype t)
{
    return (unsigned)t < SOL_DT_COUNT ? dtypes[t].name : "?";
}

int sol_dtype_parse(const char *s, sol_dtype *out)
{
    for (int i = 0; i < SOL_DT_COUNT; i++)
        if (strcasecmp(s, dtypes[i].name) == 0) {
            *out = (sol_dtype)i;
            return 0;
        }
    return -1;
}

double sol_dtype_bytes(sol_dtype t, double elems, int group)
{
    double bytes = elems / dtypes[t].block_elems * dtypes[t].block_bytes;
    if ((t == SOL_DT_INT8 || t == SOL_DT_INT4) && group > 0)
        bytes += 2.0 * ceil(elems / group); /* f16 scales */
    return bytes;
}

int sol_dtype_block_elems(sol_dtype t) { return dtypes[t].block_elems; }

double sol_dtype_block_bytes(sol_dtype t) { return dtypes[t].block_bytes; }

int sol_dtype_from_ggml(uint32_t ggml_type, sol_dtype *out)
{
    for (int i = 0; i < SOL_DT_COUNT; i++) /* -1 marks types GGML has no id for: never a match */
        if (dtypes[i].ggml_type >= 0 && (uint32_t)dtypes[i].ggml_type == ggml_type) {
            *out = (sol_dtype)i;
            return 0;
        }
    return -1;
}

int sol_dtype_to_ggml(sol_dtype t) { return dtypes[t].ggml_type; }

const char *sol_ggml_type_name(uint32_t ggml_type, char *buf, int cap)
{
    if (ggml_type < sizeof ggml_names / sizeof ggml_names[0])
        return ggml_names[ggml_type];
    snprintf(buf, (size_t)cap, "type %u", ggml_type);
    return buf;
}

int sol_dtype_is_float(sol_dtype t)
{
    return t == SOL_DT_F32 || t == SOL_DT_F16 || t == SOL_DT_BF16 || t == SOL_DT_FP8;
}

const char *sol_peak_name(sol_peak p)
{
    static const char *const names[SOL_PEAK_COUNT] = {"fp32", "fp16", "bf16", "fp8", "int8"};
    return (unsigned)p < SOL_PEAK_COUNT ? names[p] : "?";
}

sol_peak sol_peak_for(sol_dtype t)
{
    switch (t) {
    case SOL_DT_F32: return SOL_PEAK_FP32;
    case SOL_DT_BF16: return SOL_PEAK_BF16;
    case SOL_DT_FP8: return SOL_PEAK_FP8;
    case SOL_DT_INT8: return SOL_PEAK_INT8;
    default: return SOL_PEAK_FP16; /* block formats are dequantised to f16 */
    }
}
