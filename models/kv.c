/* KV-cache schemes: the --kv grammar (mha, gqa:G, mqa, mla:C,R, local:W/E,
 * cla:S, simlayer:F[,W[,S]] joined with '+'), the scheme a config implies,
 * and what each layer stores and for how many tokens. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/models.h"

/* SimLayerKV keeps the first 4 tokens and the recent 1024 on lazy layers. */
enum { SIMLAYER_DEFAULT_WINDOW = 1024, SIMLAYER_DEFAULT_SINKS = 4 };

const char *sol_attn_kind_name(sol_attn_kind k)
{
    static const char *const names[] = {"global", "local", "lazy", "shared", "latent"};
    return names[k];
}

void sol_kv_from_model(const sol_model *m, sol_kv_scheme *kv)
{
    memset(kv, 0, sizeof *kv);
    kv->share = 1;
    if (m->kv_lora_rank > 0) {
        kv->heads = SOL_KV_MLA;
        kv->mla_rank = m->kv_lora_rank;
        kv->mla_rope = m->qk_rope_dim;
    } else if (m->n_kv_heads == m->n_heads) {
        kv->heads = SOL_KV_MHA;
    } else if (m->n_kv_heads == 1) {
        kv->heads = SOL_KV_MQA;
    } else {
        kv->heads = SOL_KV_GQA;
    }
    kv->n_kv_heads = m->n_kv_heads;
    if (m->sliding_window > 0) {
        kv->window = m->sliding_window;
        kv->global_every = m->swa_period;
    }
    if (m->kv_share > 1)
        kv->share = m->kv_share;
}

/* Parses a decimal integer that must fill [s, end) and be >= min. */
static int parse_int(const char *s, const char *end, long min, long *out)
{
    if (s == end)
        return -1;
    char *stop;
    errno = 0;
    long v = strtol(s, &stop, 10);
    if (errno || stop != end || v < min || v > 1000000000L)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, const char *end, double *out)
{
    if (s == end)
        return -1;
    char *stop;
    errno = 0;
    double v = strtod(s, &stop);
    if (errno || stop != end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Splits args at sep into at most max_parts [begin, end) ranges. */
static int split_args(const char *s, const char *end, char sep, const char **parts, const char **ends,
                      int max_parts)
{
    int n = 0;
    while (n < max_parts) {
        const char *next = memchr(s, sep, (size_t)(end - s));
        parts[n] = s;
        ends[n] = next ? next : end;
        n++;
        if (!next)
            return n;
        s = next + 1;
    }
    return -1; /* too many parts */
}

typedef struct {
    const char *term; /* the whole term, for messages */
    int term_len;
    int position;     /* 1-based */
    sol_err *err;
} term_ctx;

static int bad_term(const term_ctx *t, const char *why)
{
    return sol_fail(t->err, SOL_ERR_USAGE, "--kv: term %d \"%.*s\": %s", t->position, t->term_len,
                    t->term, why);
}

static int parse_term(const term_ctx *t, const char *name_end, sol_kv_scheme *kv, term_ctx *heads_term)
{
    const char *s = t->term, *end = t->term + t->term_len;
    size_t name_len = (size_t)(name_end - s);
    const char *args = name_end < end ? name_end + 1 : NULL;
    const char *part[3], *part_end[3];
    long a = 0, b = 0, c = 0;
    int n;

#define IS(name) (name_len == strlen(name) && memcmp(s, name, name_len) == 0)
    if (IS("mha") || IS("mqa") || IS("gqa") || IS("mla")) {
        if (heads_term->position)
            return sol_fail(t->err, SOL_ERR_USAGE,
                            "--kv: term %d \"%.*s\" contradicts term %d \"%.*s\": a scheme has one of "
                            "mha, gqa, mqa, mla",
                            t->position, t->term_len, t->term, heads_term->position, heads_term->term_len,
                            heads_term->term);
        *heads_term = *t;
        if (IS("mha") || IS("mqa")) {
            if (args)
                return bad_term(t, "takes no arguments");
            kv->heads = IS("mha") ? SOL_KV_MHA : SOL_KV_MQA;
            if (kv->heads == SOL_KV_MQA)
                kv->n_kv_heads = 1;
            return 0;
        }
        if (IS("gqa")) {
            if (!args || parse_int(args, end, 1, &a))
                return bad_term(t, "expected gqa:G with G >= 1 KV heads");
            kv->heads = SOL_KV_GQA;
            kv->n_kv_heads = (int)a;
            return 0;
        }
        if (!args || split_args(args, end, ',', part, part_end, 2) != 2 ||
            parse_int(part[0], part_end[0], 1, &a) || parse_int(part[1], part_end[1], 0, &b))
            return bad_term(t, "expected mla:C,R (latent rank C >= 1, RoPE key width R >= 0)");
        kv->heads = SOL_KV_MLA;
        kv->mla_rank = (int)a;
        kv->mla_rope = (int)b;
        return 0;
    }
    if (IS("local")) {
        n = args ? split_args(args, end, '/', part, part_end, 2) : -1;
        if (n < 1 || parse_int(part[0], part_end[0], 1, &a) ||
            (n == 2 && parse_int(part[1], part_end[1], 1, &b)))
            return bad_term(t, "expected local:W/E (window W >= 1 tokens; 1 global layer in every E "
                               ">= 1 layers, E=1 or local:W: all local)");
        kv->window = (int)a;
        kv->global_every = n == 2 ? (int)b : 1;
        return 0;
    }
    if (IS("cla")) {
        if (!args || parse_int(args, end, 1, &a))
            return bad_term(t, "expected cla:S (S >= 1 adjacent layers share one KV)");
        kv->share = (int)a;
        return 0;
    }
    if (IS("simlayer")) {
        double f;
        n = args ? split_args(args, end, ',', part, part_end, 3) : -1;
        if (n < 1 || parse_double(part[0], part_end[0], &f) || !(f > 0 && f <= 1) ||
            (n >= 2 && parse_int(part[1], part_end[1], 1, &b)) ||
            (n >= 3 && parse_int(part[2], part_end[2], 0, &c)))
            return bad_term(t, "expected simlayer:F[,W[,S]] (lazy fraction 0 < F <= 1, W >= 1 "
                               "recent tokens, S >= 0 sink tokens)");
        kv->lazy_fraction = f;
        kv->lazy_window = n >= 2 ? (int)b : SIMLAYER_DEFAULT_WINDOW;
        kv->lazy_sinks = n >= 3 ? (int)c : SIMLAYER_DEFAULT_SINKS;
        return 0;
    }
#undef IS
    return bad_term(t, "unknown term (known: mha, gqa:G, mqa, mla:C,R, local:W/E, cla:S, "
                       "simlayer:F[,W[,S]])");
}

/* A term whose name (name .. name_end) an earlier term of text already
 * had: cla:2+cla:4 would silently keep the last (and a check on the
 * values misses cla:1+cla:1). */
static int repeated_term(const char *text, const char *name, const char *name_end, const term_ctx *t)
{
    size_t len = (size_t)(name_end - name);
    int earlier = 1;
    for (const char *s = text; s < name; earlier++) {
        const char *end = strchr(s, '+');
        const char *colon = memchr(s, ':', (size_t)(end - s));
        const char *e = colon ? colon : end;
        if ((size_t)(e - s) == len && memcmp(s, name, len) == 0) {
            char why[64];
            snprintf(why, sizeof why, "given twice (repeats term %d)", earlier);
            return bad_term(t, why);
        }
        s = end + 1;
    }
    return 0;
}

int sol_kv_parse(const char *text, const sol_kv_scheme *base, sol_kv_scheme *kv, sol_err *err)
{
    sol_kv_scheme out = *base;
    out.window = 0;
    out.global_every = 0;
    out.share = 1;
    out.lazy_fraction = 0;
    out.lazy_window = 0;
    out.lazy_sinks = 0;
    out.lazy_layers = NULL;
    term_ctx heads_term = {0};
    int position = 0;
    const char *s = text;
    if (!*text)
        return sol_fail(err, SOL_ERR_USAGE, "--kv: empty scheme");
    for (;;) {
        const char *end = strchr(s, '+');
        if (!end)
            end = s + strlen(s);
        position++;
        term_ctx t = {s, (int)(end - s), position, err};
        if (end == s)
            return bad_term(&t, "empty term");
        const char *colon = memchr(s, ':', (size_t)(end - s));
        int rc = repeated_term(text, s, colon ? colon : end, &t);
        if (!rc)
            rc = parse_term(&t, colon ? colon : end, &out, &heads_term);
        if (rc)
            return rc;
        if (!*end)
            break;
        s = end + 1;
    }
    *kv = out;
    return 0;
}

static int kv_heads_of(const sol_kv_scheme *kv, const sol_model *m)
{
    switch (kv->heads) {
    case SOL_KV_MHA: return m->n_heads;
    case SOL_KV_MQA: return 1;
    case SOL_KV_GQA: return kv->n_kv_heads;
    default: return 0;
    }
}

int sol_kv_check(const sol_kv_scheme *kv, const sol_model *m, sol_err *err)
{
    int g = kv_heads_of(kv, m);
    if (kv->heads == SOL_KV_GQA && (g > m->n_heads || m->n_heads % g != 0))
        return sol_fail(err, SOL_ERR_USAGE, "--kv: gqa:%d does not divide the model's %d query heads",
                        g, m->n_heads);
    /* an MLA model's own rope dims are part of its key; elsewhere R of the d_h dims rotate */
    if (kv->heads == SOL_KV_MLA && m->kv_lora_rank == 0 && kv->mla_rope > m->head_dim)
        return sol_fail(err, SOL_ERR_USAGE, "--kv: mla:%d,%d rotates more dims than the model's head_dim %d",
                        kv->mla_rank, kv->mla_rope, m->head_dim);
    if (kv->share > m->n_layers)
        return sol_fail(err, SOL_ERR_USAGE, "--kv: cla:%d shares more layers than the model has (%d)",
                        kv->share, m->n_layers);
    if (kv->window && kv->global_every > m->n_layers)
        return sol_fail(err, SOL_ERR_USAGE,
                        "--kv: local:%d/%d puts one global layer in more layers than the model has (%d)",
                        kv->window, kv->global_every, m->n_layers);
    return 0;
}

void sol_kv_format(const sol_kv_scheme *kv, char *buf, int cap)
{
    int n = 0;
    switch (kv->heads) {
    case SOL_KV_MHA: n = snprintf(buf, (size_t)cap, "mha"); break;
    case SOL_KV_MQA: n = snprintf(buf, (size_t)cap, "mqa"); break;
    case SOL_KV_GQA: n = snprintf(buf, (size_t)cap, "gqa:%d", kv->n_kv_heads); break;
    case SOL_KV_MLA: n = snprintf(buf, (size_t)cap, "mla:%d,%d", kv->mla_rank, kv->mla_rope); break;
    }
    if (kv->window && n < cap)
        n += snprintf(buf + n, (size_t)(cap - n), "+local:%d/%d", kv->window, kv->global_every);
    if (kv->share > 1 && n < cap)
        n += snprintf(buf + n, (size_t)(cap - n), "+cla:%d", kv->share);
    if (kv->lazy_fraction > 0 && n < cap)
        snprintf(buf + n, (size_t)(cap - n), "+simlayer:%g,%d,%d", kv->lazy_fraction, kv->lazy_window,
                 kv->lazy_sinks);
}

/* Head sizes of keys and values; MLA models have distinct K and V widths. */
static int key_dim(const sol_model *m) { return m->head_dim; }
static int value_dim(const sol_model *m) { return m->v_head_dim > 0 ? m->v_head_dim : m->head_dim; }

static int64_t layer_elems(const sol_kv_scheme *kv, const sol_model *m)
{
    if (kv->heads == SOL_KV_MLA)
        return (int64_t)kv->mla_rank + kv->mla_rope;
    return (int64_t)kv_heads_of(kv, m) * (key_dim(m) + value_dim(m));
}

/* Lazy layers spread evenly: layer i is lazy when floor((i+1)F) > floor(iF),
 * which marks floor(L*F) of L layers. */
static bool layer_is_lazy(const sol_kv_scheme *kv, int i)
{
    if (kv->lazy_fraction <= 0)
        return false;
    if (kv->lazy_layers)
        return kv->lazy_layers[i] != 0;
    double f = kv->lazy_fraction;
    return floor((i + 1) * f + 1e-9) > floor(i * f + 1e-9);
}

static bool layer_is_local(const sol_kv_scheme *kv, int i)
{
    return kv->window > 0 && (kv->global_every == 1 || (i + 1) % kv->global_every != 0);
}

static void own_layer_info(const sol_kv_scheme *kv, const sol_model *m, int i, sol_kv_layer *out)
{
    out->kind = kv->heads == SOL_KV_MLA ? SOL_ATTN_LATENT : SOL_ATTN_GLOBAL;
    out->tokens_cap = 0;
    if (layer_is_local(kv, i)) {
        out->kind = SOL_ATTN_LOCAL;
        out->tokens_cap = kv->window;
    }
    if (layer_is_lazy(kv, i)) {
        int64_t cap = (int64_t)kv->lazy_window + kv->lazy_sinks;
        out->kind = SOL_ATTN_LAZY;
        if (out->tokens_cap == 0 || cap < out->tokens_cap)
            out->tokens_cap = cap;
    }
    out->stores_kv = true;
    out->owner = i;
    out->elems_per_token = layer_elems(kv, m);
}

/* The layer whose cache `layer` reads under cla:S. Sharing groups layers
 * of the same kind (docs/DESIGN-NOTES.md): the layers of one kind, in
 * order, form runs of S; the first of each run owns the cache and the rest
 * read it. Local layers so share with the neighbouring local layers, global
 * layers with the global layers of the next blocks, and a global layer
 * never reads a windowed cache. */
static int cache_owner(const sol_kv_scheme *kv, const sol_model *m, int layer)
{
    if (kv->share <= 1)
        return layer;
    sol_kv_layer mine, other;
    own_layer_info(kv, m, layer, &mine);
    int same_before[SOL_MAX_LAYERS], n = 0; /* layers of this kind before it, in order */
    for (int i = 0; i < layer; i++) {
        own_layer_info(kv, m, i, &other);
        if (other.kind == mine.kind && other.tokens_cap == mine.tokens_cap)
            same_before[n++] = i;
    }
    int first = n - n % kv->share; /* the rank that starts this layer's run */
    return first == n ? layer : same_before[first];
}

void sol_kv_layer_info(const sol_kv_scheme *kv, const sol_model *m, int layer, sol_kv_layer *out)
{
    int owner = cache_owner(kv, m, layer);
    own_layer_info(kv, m, owner, out);
    if (owner != layer) {
        out->kind = SOL_ATTN_SHARED;
        out->stores_kv = false;
        out->elems_per_token = 0;
    }
}

int sol_kv_scale_group(const sol_kv_scheme *kv, const sol_model *m)
{
    (void)kv;
    return m->head_dim;
}

int64_t sol_kv_elems_per_token(const sol_kv_scheme *kv, const sol_model *m)
{
    int64_t total = 0;
    for (int i = 0; i < m->n_layers; i++) {
        sol_kv_layer info;
        sol_kv_layer_info(kv, m, i, &info);
        total += info.elems_per_token;
    }
    return total;
}

/* Bytes of one token in one layer; int scales are per head_dim group. */
static double layer_token_bytes(const sol_kv_layer *info, sol_dtype kvtype, int group)
{
    return sol_dtype_bytes(kvtype, (double)info->elems_per_token, group);
}

double sol_kv_bytes_per_token(const sol_kv_scheme *kv, const sol_model *m, sol_dtype kvtype)
{
    double total = 0;
    int group = sol_kv_scale_group(kv, m);
    for (int i = 0; i < m->n_layers; i++) {
        sol_kv_layer info;
        sol_kv_layer_info(kv, m, i, &info);
        total += layer_token_bytes(&info, kvtype, group);
    }
    return total;
}

double sol_kv_cache_bytes(const sol_kv_scheme *kv, const sol_model *m, sol_dtype kvtype, int64_t ctx)
{
    double total = 0;
    int group = sol_kv_scale_group(kv, m);
    for (int i = 0; i < m->n_layers; i++) {
        sol_kv_layer info;
        sol_kv_layer_info(kv, m, i, &info);
        int64_t tokens = info.tokens_cap && info.tokens_cap < ctx ? info.tokens_cap : ctx;
        total += layer_token_bytes(&info, kvtype, group) * (double)tokens;
    }
    return total;
}
