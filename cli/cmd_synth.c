/* sol synth: a valid GGUF with seeded random weights and a minimal
 * byte-level vocabulary for any architecture the analyzer knows, so shapes
 * we cannot download (a 1B or 7B Llama) can be run and measured. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cli/cli.h"
#include "kernels/formats.h"
#include "models/tensors.h"
#include "util/hash.h"

void usage_synth(FILE *f)
{
    fprintf(f, "usage: sol synth CONFIG|PRESET -o OUT.gguf [--wtype T] [--kv SCHEME] [--layers N] [--seed S]\n\n"
               "Writes a GGUF with the model's shapes and seeded random weights (uniform, scaled\n"
               "by 1/sqrt(fan-in) so activations stay finite), norms of 1, and a 258-token\n"
               "byte-level vocabulary padded with unused tokens to the model's size.\n\n"
               "options:\n"
               "  -o FILE          output path (written to FILE.tmp, then renamed)\n"
               "  --wtype T        matrix type: f32 f16 bf16 q8_0 q4_0 q4_1 q4_k q6_k (default q8_0), or\n"
               "                   q4_k_m: mixed as llama.cpp's Q4_K_M (Q4_K; attn_v, ffn_down on some\n"
               "                   layers and the output matrix in Q6_K)\n"
               "  --kv SCHEME      heads term (mha, gqa:G, mqa, or mla:C,R: DeepSeek-V2's latent\n"
               "                   attention tensors at the model's head size), local:W/E, cla:S\n"
               "  --layers N       keep the first N layers (DeepSeek's leading dense layers among them)\n"
               "  --seed S         weight seed (default 1)\n");
}


typedef struct {
    const sol_tensor_spec *spec;
    sol_dtype type;
    uint64_t seed;
    int index, total;
} fill_job;

/* Rows of dims[0] values; matrices U(-a, a) with a = sqrt(3 / fan_in) (unit
 * variance outputs), norm weights 1, biases 0. */
static int fill_tensor(void *user, const char *name, void *buf, uint64_t n_bytes)
{
    (void)name;
    const fill_job *job = user;
    const sol_tensor_spec *s = job->spec;
    int64_t cols = (int64_t)s->dims[0], rows = (int64_t)(n_bytes / sol_row_bytes(job->type, cols));
    float *row = malloc((size_t)cols * sizeof *row);
    if (!row)
        return -1;
    uint64_t state = job->seed ^ ((uint64_t)job->index * 0x2545f4914f6cdd1dULL);
    float a = sqrtf(3.0f / (float)cols);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) {
            double u = (double)(sol_splitmix64(&state) >> 11) / 9007199254740992.0; /* [0, 1) */
            row[c] = s->is_vector ? (s->is_bias ? 0.0f : 1.0f) : (float)((2 * u - 1) * a);
        }
        sol_quantize(job->type, row, (char *)buf + (size_t)r * sol_row_bytes(job->type, cols), cols);
    }
    free(row);
    if (isatty(2))
        fprintf(stderr, "\rsynth: tensor %d/%d", job->index + 1, job->total);
    return 0;
}

/* GPT-2 byte-to-unicode: printable bytes map to themselves, the rest to
 * U+0100 onwards, so every byte has a visible token string. */
static void byte_token(int byte, char *out)
{
    int cp = byte, extra = 0;
    int printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174);
    if (!printable) {
        for (int b = 0; b < byte; b++)
            extra += !((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174));
        cp = 256 + extra;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = 0;
    }
}

static int write_vocab(sol_gguf_writer *w, int vocab)
{
    char **tokens = calloc((size_t)vocab, sizeof *tokens);
    int32_t *types = calloc((size_t)vocab, sizeof *types);
    char *storage = calloc((size_t)vocab, 24);
    if (!tokens || !types || !storage) {
        free(tokens);
        free(types);
        free(storage);
        return -1;
    }
    for (int i = 0; i < vocab; i++) {
        tokens[i] = storage + (size_t)i * 24;
        if (i < 256) {
            byte_token(i, tokens[i]);
            types[i] = 1; /* normal */
        } else {
            snprintf(tokens[i], 24, i == 256 ? "<|endoftext|>" : i == 257 ? "<|begin_of_text|>" : "<|unused_%d|>", i);
            types[i] = i < 258 ? 3 : 5; /* control, unused */
        }
    }
    sol_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    sol_gguf_set_str(w, "tokenizer.ggml.pre", "default");
    sol_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tokens, (uint64_t)vocab);
    sol_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)vocab);
    sol_gguf_set_arr_str(w, "tokenizer.ggml.merges", NULL, 0);
    sol_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 256);
    sol_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 257);
    sol_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
    free(tokens);
    free(types);
    free(storage);
    return 0;
}

/* mla:C,R on a model with per-head keys: DeepSeek-V2's layout at the same
 * head size D (queries and keys of D = D - R nope + R RoPE dims, values of
 * D), a latent of C, no query compression. */
static void latent_attention(sol_model *m, int rank, int rope)
{
    m->kv_lora_rank = rank;
    m->qk_rope_dim = rope;
    m->qk_nope_dim = m->head_dim - rope;
    m->v_head_dim = m->head_dim;
    m->q_lora_rank = 0;
    m->n_kv_heads = m->n_heads;
}

/* The scheme's heads go into the weights (KV projections of that many
 * heads); windows and cross-layer sharing need no weights of their own and
 * go into the metadata (sol.kv_scheme), which analyze and run read back. */
static int apply_kv(const char *text, sol_model *m, sol_err *err)
{
    sol_kv_scheme base, kv;
    sol_kv_from_model(m, &base);
    int rc = sol_kv_parse(text, &base, &kv, err);
    if (!rc)
        rc = sol_kv_check(&kv, m, err);
    if (rc)
        return rc;
    if (kv.lazy_fraction > 0)
        return sol_fail(err, SOL_ERR_USAGE,
                        "--kv %s: SimLayerKV needs no weights of its own; the engine chooses lazy layers when it "
                        "runs (sol run --kv ...+simlayer:F)",
                        text);
    if (kv.heads == SOL_KV_MLA && m->kv_lora_rank == 0)
        latent_attention(m, kv.mla_rank, kv.mla_rope);
    else if (kv.heads != SOL_KV_MLA && m->kv_lora_rank > 0)
        return sol_fail(err, SOL_ERR_USAGE, "--kv %s: %s has MLA; a synth file keeps it", text, m->name);
    else if (kv.heads != SOL_KV_MLA)
        m->n_kv_heads = kv.heads == SOL_KV_MHA ? m->n_heads : kv.heads == SOL_KV_MQA ? 1 : kv.n_kv_heads;
    else if (kv.mla_rank != m->kv_lora_rank || kv.mla_rope != m->qk_rope_dim)
        return sol_fail(err, SOL_ERR_USAGE, "--kv %s: %s's latent is mla:%d,%d; a synth file keeps it", text,
                        m->name, m->kv_lora_rank, m->qk_rope_dim);
    m->sliding_window = kv.window;
    m->swa_period = kv.window ? kv.global_every : 1;
    m->kv_share = kv.share;
    return 0;
}

/* Kept in f32 whatever --wtype says: norms, biases and the MoE router
 * (llama.cpp's quantize never rounds ffn_gate_inp either: the top-k choice
 * is the one step where rounding flips a decision, not a value). */
static int keeps_f32(const sol_tensor_spec *t)
{
    size_t n = strlen(t->name), k = strlen("ffn_gate_inp.weight");
    return t->is_vector || (n >= k && !strcmp(t->name + n - k, "ffn_gate_inp.weight"));
}

static int check_blocks(const sol_tensor_spec *t, int n, sol_dtype type, sol_err *err)
{
    int block = sol_dtype_block_elems(type);
    for (int i = 0; i < n; i++)
        if (!keeps_f32(&t[i]) && t[i].dims[0] % (uint64_t)block)
            return sol_fail(err, SOL_ERR_USAGE, "--wtype %s: tensor %s has rows of %llu, not a multiple of %d",
                            sol_dtype_name(type), t[i].name, (unsigned long long)t[i].dims[0], block);
    return 0;
}

/* Q4_K_M as llama.cpp lays it out: Q4_K matrices, but attn_v and ffn_down
 * in Q6_K on the first and last eighth of the layers and every third layer
 * between, and the output matrix in Q6_K. (phi3's fused attn_qkv, Q5_K in
 * llama.cpp, stays Q4_K: sol has no Q5_K kernels; expert tensors Q4_K.) */
static sol_dtype q4_k_m_type(const char *name, int n_layers)
{
    int layer = -1, at = 0;
    if (sscanf(name, "blk.%d.%n", &layer, &at) == 1 && at > 0) {
        const char *rest = name + at;
        int more_bits = layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
        if (more_bits && (!strcmp(rest, "attn_v.weight") || !strcmp(rest, "ffn_down.weight")))
            return SOL_DT_Q6_K;
        return SOL_DT_Q4_K;
    }
    return !strcmp(name, "output.weight") ? SOL_DT_Q6_K : SOL_DT_Q4_K;
}

/* --layers N: the model's first N layers, as they are in the full model.
 * DeepSeek's leading dense layers count among them (N at or below
 * first_k_dense_replace: all dense, no experts written); fewer layers than
 * one window period (gemma's 2 or 6) are all local, which period 1 says. */
static void keep_layers(sol_model *m, int layers)
{
    m->n_layers = layers;
    if (m->first_dense > layers)
        m->first_dense = layers;
    if (m->sliding_window > 0 && m->swa_period > layers)
        m->swa_period = 1;
}

static int synth(const char *spec, const char *kv, const char *wtype_text, long long layers, uint64_t seed,
                 const char *out, sol_err *err)
{
    sol_model m;
    sol_dtype wtype = SOL_DT_Q8_0;
    int rc = sol_model_load(spec, &m, err);
    if (rc)
        return rc;
    int mixed = wtype_text && !strcmp(wtype_text, "q4_k_m");
    if (mixed)
        wtype = SOL_DT_Q4_K; /* Q6_K has the same 256-value blocks */
    else if (wtype_text && (sol_dtype_parse(wtype_text, &wtype) || !sol_format_supported(wtype)))
        return sol_fail(err, SOL_ERR_USAGE,
                        "--wtype: expected f32 f16 bf16 q8_0 q4_0 q4_1 q4_k q6_k q4_k_m, got \"%s\"", wtype_text);
    if (layers > 0 && layers < m.n_layers)
        keep_layers(&m, (int)layers);
    if (kv && (rc = apply_kv(kv, &m, err)))
        return rc;
    if (m.vocab < 258)
        return sol_fail(err, SOL_ERR_USAGE, "%s: vocabulary of %d is below the 258 tokens synth writes", spec, m.vocab);
    sol_tensor_spec *t = NULL;
    int n = 0;
    if ((rc = sol_model_tensors(&m, &t, &n, err)) || (rc = check_blocks(t, n, wtype, err))) {
        free(t);
        return rc;
    }
    sol_gguf_writer *w = sol_gguf_writer_new();
    fill_job *jobs = calloc((size_t)n, sizeof *jobs);
    double total = 0;
    if (!w || !jobs || write_vocab(w, m.vocab)) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
        goto exit;
    }
    sol_model_write_meta(&m, w);
    sol_gguf_set_u32(w, "general.alignment", 32);
    sol_gguf_set_bool(w, "sol.synth", 1); /* random weights: sol run --kv may share caches (engine/kv_rules.c) */
    char scheme[128];
    sol_kv_scheme written;
    sol_kv_from_model(&m, &written);
    sol_kv_format(&written, scheme, sizeof scheme);
    sol_gguf_set_str(w, "sol.kv_scheme", scheme); /* the whole scheme, beyond what llama.* keys say */
    for (int i = 0; i < n; i++) {
        sol_dtype type = keeps_f32(&t[i]) ? SOL_DT_F32 : mixed ? q4_k_m_type(t[i].name, m.n_layers) : wtype;
        uint64_t rows = t[i].dims[1] * t[i].dims[2];
        uint64_t bytes = rows * sol_row_bytes(type, (int64_t)t[i].dims[0]);
        jobs[i] = (fill_job){&t[i], type, seed, i, n};
        total += (double)bytes;
        sol_gguf_add_tensor_fill(w, t[i].name, (uint32_t)t[i].n_dims, t[i].dims, (uint32_t)sol_dtype_to_ggml(type),
                                 bytes, fill_tensor, &jobs[i]);
    }
    /* refuse before writing anything that cannot fit */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    struct statvfs fs;
    if (statvfs(slash ? (dir[0] ? dir : "/") : ".", &fs) == 0 && total > (double)fs.f_bavail * fs.f_frsize) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: needs %.1f GB but only %.1f GB are free", out, total / 1e9,
                      (double)fs.f_bavail * fs.f_frsize / 1e9);
        goto exit;
    }
    fprintf(stderr, "synth: %s, %d layers, %s weights, %.2f GB -> %s\n", m.name, m.n_layers,
            mixed ? "q4_k_m" : sol_dtype_name(wtype), total / 1e9, out);
    rc = sol_gguf_writer_write(w, out, err);
    if (isatty(2))
        fprintf(stderr, "\n");
exit:
    sol_gguf_writer_free(w);
    free(jobs);
    free(t);
    return rc;
}

int cmd_synth(int argc, char **argv)
{
    enum { O_WTYPE = 3000, O_KV, O_LAYERS, O_SEED };
    static const struct option long_opts[] = {{"output", 1, 0, 'o'}, {"wtype", 1, 0, O_WTYPE}, {"kv", 1, 0, O_KV},
                                              {"layers", 1, 0, O_LAYERS}, {"seed", 1, 0, O_SEED}, {0, 0, 0, 0}};
    const char *out = NULL, *kv = NULL, *wtype = NULL;
    long long layers = 0, seed = 1;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":o:", long_opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case O_WTYPE: wtype = optarg; break;
        case O_KV: kv = optarg; break;
        case O_LAYERS:
            if (cli_parse_ll("synth", "--layers", optarg, &layers))
                return SOL_ERR_USAGE;
            if (layers < 1)
                return cli_usage_error("synth", "--layers: must be at least 1");
            break;
        case O_SEED:
            if (cli_parse_ll("synth", "--seed", optarg, &seed))
                return SOL_ERR_USAGE;
            break;
        case ':': return cli_usage_error("synth", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("synth", "unknown option \"%s\" (see sol synth --help)", argv[optind - 1]);
        }
    }
    if (optind == argc)
        return cli_usage_error("synth", "missing CONFIG or PRESET");
    if (optind != argc - 1)
        return cli_usage_error("synth", "expected one CONFIG, got extra \"%s\"", argv[optind + 1]);
    if (!out)
        return cli_usage_error("synth", "missing -o OUT.gguf");
    sol_err err = {0};
    int rc = synth(argv[optind], kv, wtype, layers, (uint64_t)seed, out, &err);
    return rc ? cli_fail("synth", &err) : 0;
}
