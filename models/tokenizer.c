/* Tokenizer from GGUF metadata: vocabulary tables, special tokens, byte-level
 * BPE (`gpt2`) and SentencePiece (`llama`) encoding, and decoding.
 *
 * BPE follows HF tokenizers: the text is split at special tokens, each piece
 * is pre-tokenized (tokenizer_pre.c), each pre-token's bytes become GPT-2
 * byte-level symbols, and the adjacent pair of lowest merge rank (leftmost on
 * ties) is merged until none is left, with a heap: O(n log n) per word.
 * SentencePiece follows llama.cpp's port: ' ' becomes ▁ (plus one in front
 * when add_space_prefix), UTF-8 chars merge by the highest score of the
 * resulting piece, and chars outside the vocabulary fall back to <0xNN>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/tokenizer_impl.h"
#include "util/quote.h"

#define SPM_SPACE "\xe2\x96\x81" /* ▁ U+2581 */
#define MAX_VOCAB (1 << 30)

/* ---- hashing ---------------------------------------------------------- */

/* Eight bytes at a time: token strings are short and hashed a lot at load. */
static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15u ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)(unsigned char)p[i] << (8 * i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdu;
    return h ^ (h >> 32);
}

static uint64_t hash_pair(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdu; /* murmur3 finalizer */
    key ^= key >> 33;
    return key;
}

static size_t table_cap(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    return cap;
}

static const char *tok_str(const sol_tokenizer *t, int id, size_t *len)
{
    *len = t->text_off[id + 1] - t->text_off[id] - 1;
    return t->text + t->text_off[id];
}

/* A slot holds id + 1 in its low half (0: empty) and the high half of the
 * string's hash as a tag, so most misses never touch the strings. */
static int lookup_hashed(const sol_tokenizer *t, const char *s, size_t n, uint64_t h)
{
    uint64_t tag = h >> 32;
    for (size_t i = h & t->tok_mask;; i = (i + 1) & t->tok_mask) {
        uint64_t v = t->tok_slots[i];
        if (v == 0)
            return -1;
        if (v >> 32 != tag)
            continue;
        size_t len;
        const char *p = tok_str(t, (int)(uint32_t)v - 1, &len);
        if (len == n && memcmp(p, s, n) == 0)
            return (int)(uint32_t)v - 1;
    }
}

int sol_tok_lookup(const sol_tokenizer *t, const char *s, size_t n)
{
    return lookup_hashed(t, s, n, hash_bytes(s, n));
}

/* Later duplicates of a string win, as in llama.cpp's token_to_id. */
static void tok_insert(sol_tokenizer *t, int id, uint64_t h)
{
    uint64_t tag = h >> 32;
    size_t n;
    const char *s = tok_str(t, id, &n);
    for (size_t i = h & t->tok_mask;; i = (i + 1) & t->tok_mask) {
        uint64_t v = t->tok_slots[i];
        size_t len = 0;
        const char *p = v >> 32 == tag ? tok_str(t, (int)(uint32_t)v - 1, &len) : NULL;
        if (v == 0 || (p && len == n && memcmp(p, s, n) == 0)) {
            t->tok_slots[i] = tag << 32 | (uint32_t)(id + 1);
            return;
        }
    }
}

static const struct sol_merge_slot *merge_find(const sol_tokenizer *t, int32_t a, int32_t b)
{
    if (a < 0 || b < 0 || !t->merges)
        return NULL;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t i = hash_pair(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        const struct sol_merge_slot *s = &t->merges[i];
        if (s->key == key)
            return s;
        if (s->key == UINT64_MAX)
            return NULL;
    }
}

/* ---- GPT-2 byte-level mapping ----------------------------------------- */

/* Bytes that stand for themselves; the others map to U+0100 onwards, in
 * byte order (GPT-2's bytes_to_unicode). */
static int byte_is_visible(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

static void build_byte_map(sol_tokenizer *t)
{
    uint32_t next = 256;
    for (int cp = 0; cp < SOL_BYTE_CPS; cp++)
        t->cp_byte[cp] = -1;
    for (int b = 0; b < 256; b++) {
        t->byte_cp[b] = (uint16_t)(byte_is_visible(b) ? (uint32_t)b : next++);
        t->cp_byte[t->byte_cp[b]] = (int16_t)b;
    }
}

static int utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int reserve(void *pp, size_t *cap, size_t n, size_t size);

/* ---- loading ---------------------------------------------------------- */

typedef struct loader {
    const sol_gguf *g;
    sol_tokenizer *t;
    sol_err *err;
} loader;

static int oom(loader *ld, const char *what)
{
    return sol_fail(ld->err, SOL_ERR_RUNTIME, "%s: out of memory for the tokenizer's %s", ld->g->path, what);
}

/* An optional array key of n elements (strings when want_str): 0 with *kv
 * NULL when absent, an error when it has the wrong type or length. */
static int array_key(loader *ld, const char *key, int want_str, uint64_t n, const sol_gguf_kv **kv)
{
    *kv = sol_gguf_find(ld->g, key);
    if (!*kv)
        return 0;
    const sol_gguf_kv *a = *kv;
    int is_str = a->type == SOL_GGUF_ARRAY && a->arr_type == SOL_GGUF_STRING;
    int is_num = a->type == SOL_GGUF_ARRAY && a->arr_type != SOL_GGUF_STRING && a->arr_type != SOL_GGUF_BOOL;
    if (want_str ? !is_str : !is_num)
        return sol_fail(ld->err, SOL_ERR_RUNTIME, "%s: key \"%s\" is not an array of %s", ld->g->path, key,
                        want_str ? "strings" : "numbers");
    if (n && a->arr_count != n)
        return sol_fail(ld->err, SOL_ERR_RUNTIME, "%s: key \"%s\" has %llu elements for %llu tokens",
                        ld->g->path, key, (unsigned long long)a->arr_count, (unsigned long long)n);
    return 0;
}

/* An optional token id key: *out stays as it is when absent; -1 is kept
 * for ids out of range (some converters write -1 or a too-large id). */
static int id_key(loader *ld, const char *key, int *out)
{
    int64_t v;
    int rc = sol_gguf_get_i64(ld->g, key, &v, ld->err);
    if (rc > 0)
        return rc;
    if (rc == 0)
        *out = v >= 0 && v < ld->t->n_vocab ? (int)v : -1;
    return 0;
}

static int bool_key(loader *ld, const char *key, int *out)
{
    int rc = sol_gguf_get_bool(ld->g, key, out, ld->err);
    return rc > 0 ? rc : 0;
}

static int read_tokens(loader *ld)
{
    sol_tokenizer *t = ld->t;
    const sol_gguf_kv *kv = sol_gguf_find(ld->g, "tokenizer.ggml.tokens");
    if (!kv)
        return sol_fail(ld->err, SOL_ERR_RUNTIME, "%s: no tokenizer (key \"tokenizer.ggml.tokens\" is missing)",
                        ld->g->path);
    if (array_key(ld, "tokenizer.ggml.tokens", 1, 0, &kv))
        return SOL_ERR_RUNTIME;
    if (kv->arr_count == 0 || kv->arr_count >= MAX_VOCAB)
        return sol_fail(ld->err, SOL_ERR_RUNTIME, "%s: key \"tokenizer.ggml.tokens\" holds %llu tokens",
                        ld->g->path, (unsigned long long)kv->arr_count);
    t->n_vocab = (int)kv->arr_count;
    size_t total = 0;
    sol_gguf_str s;
    for (int i = 0; i < t->n_vocab; i++) {
        sol_gguf_arr_str(ld->g, kv, (uint64_t)i, &s);
        total += (size_t)s.len + 1;
    }
    if (total >= UINT32_MAX)
        return sol_fail(ld->err, SOL_ERR_RUNTIME, "%s: key \"tokenizer.ggml.tokens\": %zu bytes of tokens",
                        ld->g->path, total);
    t->text = malloc(total);
    t->text_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->text_off);
    t->type = malloc((size_t)t->n_vocab);
    t->eog = calloc((size_t)t->n_vocab, 1);
    t->tok_mask = table_cap((size_t)t->n_vocab) - 1;
    t->tok_slots = calloc(t->tok_mask + 1, sizeof *t->tok_slots);
    if (!t->text || !t->text_off || !t->type || !t->eog || !t->tok_slots)
        return oom(ld, "vocabulary");
    size_t off = 0;
    for (int i = 0; i < t->n_vocab; i++) {
        sol_gguf_arr_str(ld->g, kv, (uint64_t)i, &s);
        t->text_off[i] = (uint32_t)off;
        memcpy(t->text + off, s.ptr, (size_t)s.len);
        off += (size_t)s.len;
        t->text[off++] = '\0';
    }
    t->text_off[t->n_vocab] = (uint32_t)off;
    /* hashes first, then inserts with the slot a few tokens ahead prefetched */
    uint64_t *hashes = malloc((size_t)t->n_vocab * sizeof *hashes);
    if (!hashes)
        return oom(ld, "vocabulary");
    for (int i = 0; i < t->n_vocab; i++) {
        size_t len;
        const char *str = tok_str(t, i, &len);
        hashes[i] = hash_bytes(str, len);
    }
    for (int i = 0; i < t->n_vocab; i++) {
        if (i + 16 < t->n_vocab)
            __builtin_prefetch(&t->tok_slots[hashes[i + 16] & t->tok_mask], 1);
        tok_insert(t, i, hashes[i]);
    }
    free(hashes);

    const sol_gguf_kv *types;
    if (array_key(ld, "tokenizer.ggml.token_type", 0, (uint64_t)t->n_vocab, &types))
        return SOL_ERR_RUNTIME;
    for (int i = 0; i < t->n_vocab; i++) {
        int64_t v = SOL_TT_NORMAL;
        if (types)
            sol_gguf_arr_i64(types, (uint64_t)i, &v);
        t->type[i] = (uint8_t)(v >= SOL_TT_UNDEFINED && v <= SOL_TT_BYTE ? v : SOL_TT_NORMAL);
    }
    return 0;
}

static int read_scores(loader *ld)
{
    sol_tokenizer *t = ld->t;
    const sol_gguf_kv *kv;
    if (array_key(ld, "tokenizer.ggml.scores", 0, (uint64_t)t->n_vocab, &kv))
        return SOL_ERR_RUNTIME;
    t->score = malloc((size_t)t->n_vocab * sizeof *t->score);
    if (!t->score)
        return oom(ld, "scores");
    for (int i = 0; i < t->n_vocab; i++) {
        double v = 0;
        if (kv)
            sol_gguf_arr_f64(kv, (uint64_t)i, &v);
        t->score[i] = (float)v;
    }
    return 0;
}

/* Merges "A B" in rank order; the pair maps to its rank and the id of AB.
 * Merges naming strings outside the vocabulary are skipped (HF refuses
 * them; such files do not come out of the converters). Merges go in batches
 * whose table slots are prefetched before they are probed: the lookups are
 * random accesses to tables larger than the caches, and most of the load. */
#define MERGE_BATCH 64

typedef struct pending_merge {
    const char *a, *b;
    size_t la, lb, joined; /* A+B at joined in the batch buffer */
    uint64_t ha, hb, hab, key, slot;
    int32_t rank, ab;
} pending_merge;

static void insert_merge(sol_tokenizer *t, const pending_merge *p)
{
    for (size_t i = p->slot;; i = (i + 1) & t->merge_mask) {
        struct sol_merge_slot *slot = &t->merges[i];
        if (slot->key == p->key)
            return; /* a repeated merge keeps its first rank */
        if (slot->key == UINT64_MAX) {
            slot->key = p->key;
            slot->rank = p->rank;
            slot->merged = p->ab;
            return;
        }
    }
}

static int read_merges(loader *ld)
{
    sol_tokenizer *t = ld->t;
    const sol_gguf_kv *kv;
    if (array_key(ld, "tokenizer.ggml.merges", 1, 0, &kv))
        return SOL_ERR_RUNTIME;
    if (!kv)
        return sol_fail(ld->err, SOL_ERR_RUNTIME, "%s: BPE tokenizer without merges (key \"tokenizer.ggml.merges\" "
                        "is missing)", ld->g->path);
    if (kv->arr_count >= MAX_VOCAB)
        return sol_fail(ld->err, SOL_ERR_RUNTIME, "%s: key \"tokenizer.ggml.merges\" holds %llu merges",
                        ld->g->path, (unsigned long long)kv->arr_count);
    t->merge_mask = table_cap((size_t)kv->arr_count) - 1;
    t->merges = malloc((t->merge_mask + 1) * sizeof *t->merges);
    if (!t->merges)
        return oom(ld, "merges");
    for (size_t i = 0; i <= t->merge_mask; i++)
        t->merges[i].key = UINT64_MAX;
    pending_merge batch[MERGE_BATCH];
    char *buf = NULL;
    size_t cap = 0;
    for (uint64_t r0 = 0; r0 < kv->arr_count; r0 += MERGE_BATCH) {
        int n = 0;
        size_t used = 0;
        for (uint64_t r = r0; r < kv->arr_count && r < r0 + MERGE_BATCH; r++) {
            sol_gguf_str s;
            sol_gguf_arr_str(ld->g, kv, r, &s);
            const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', (size_t)s.len - 1) : NULL;
            if (!sp)
                continue;
            pending_merge *p = &batch[n++];
            p->a = s.ptr;
            p->la = (size_t)(sp - s.ptr);
            p->b = sp + 1;
            p->lb = (size_t)s.len - p->la - 1;
            p->rank = (int32_t)r;
            if (reserve(&buf, &cap, used + p->la + p->lb, 1)) {
                free(buf);
                return oom(ld, "merges");
            }
            p->joined = used;
            memcpy(buf + used, p->a, p->la);
            memcpy(buf + used + p->la, p->b, p->lb);
            used += p->la + p->lb;
            p->ha = hash_bytes(p->a, p->la);
            p->hb = hash_bytes(p->b, p->lb);
            p->hab = hash_bytes(buf + p->joined, p->la + p->lb);
            __builtin_prefetch(&t->tok_slots[p->ha & t->tok_mask]);
            __builtin_prefetch(&t->tok_slots[p->hb & t->tok_mask]);
            __builtin_prefetch(&t->tok_slots[p->hab & t->tok_mask]);
        }
        for (int i = 0; i < n; i++) {
            pending_merge *p = &batch[i];
            int a = lookup_hashed(t, p->a, p->la, p->ha), b = lookup_hashed(t, p->b, p->lb, p->hb);
            p->ab = a < 0 || b < 0 ? -1 : lookup_hashed(t, buf + p->joined, p->la + p->lb, p->hab);
            if (p->ab < 0)
                continue;
            p->key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
            p->slot = hash_pair(p->key) & t->merge_mask;
            __builtin_prefetch(&t->merges[p->slot], 1);
        }
        for (int i = 0; i < n; i++)
            if (batch[i].ab >= 0)
                insert_merge(t, &batch[i]);
    }
    free(buf);
    return 0;
}

static void find_byte_tokens(sol_tokenizer *t)
{
    build_byte_map(t);
    for (int b = 0; b < 256; b++) {
        char s[8];
        int n;
        if (t->model == SOL_TOK_BPE)
            n = utf8_put(s, t->byte_cp[b]);
        else
            n = snprintf(s, sizeof s, "<0x%02X>", b);
        t->byte_token[b] = sol_tok_lookup(t, s, (size_t)n);
    }
}

/* Tokens matched literally in the text: control and user-defined ones. */
static int is_special(const sol_tokenizer *t, int id)
{
    return (t->type[id] == SOL_TT_CONTROL || t->type[id] == SOL_TT_USER_DEFINED) &&
           t->text_off[id + 1] - t->text_off[id] > 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The special ids ordered by first byte, longest first, with the start of
 * each first byte's run, so the scan tries few candidates per position. */
static int collect_specials(loader *ld)
{
    sol_tokenizer *t = ld->t;
    int n = 0;
    for (int i = 0; i < t->n_vocab; i++)
        n += is_special(t, i);
    uint64_t *keys = malloc((size_t)(n ? n : 1) * sizeof *keys);
    t->special = malloc((size_t)(n ? n : 1) * sizeof *t->special);
    if (!keys || !t->special) {
        free(keys);
        return oom(ld, "special tokens");
    }
    int k = 0;
    for (int i = 0; i < t->n_vocab; i++) {
        if (!is_special(t, i))
            continue;
        size_t len;
        const unsigned char *str = (const unsigned char *)tok_str(t, i, &len);
        uint64_t shorter = 0xffffff - (len < 0xffffff ? len : 0xffffff);
        keys[k++] = (uint64_t)str[0] << 56 | shorter << 32 | (uint32_t)i;
    }
    qsort(keys, (size_t)n, sizeof *keys, cmp_u64);
    memset(t->special_start, 0, sizeof t->special_start);
    for (int i = 0; i < n; i++) {
        t->special[i] = (int32_t)(uint32_t)keys[i];
        t->special_start[(keys[i] >> 56) + 1]++;
    }
    for (int b = 0; b < 256; b++)
        t->special_start[b + 1] += t->special_start[b];
    t->n_special = n;
    free(keys);
    return 0;
}

static void mark_eog(sol_tokenizer *t, int eot, int eom)
{
    static const char *const names[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
        "<|end_of_text|>", "<|end\xe2\x96\x81of\xe2\x96\x81sentence|>",
    };
    if (t->eos >= 0)
        t->eog[t->eos] = 1;
    if (eot >= 0)
        t->eog[eot] = 1;
    if (eom >= 0)
        t->eog[eom] = 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int id = sol_tok_lookup(t, names[i], strlen(names[i]));
        if (id >= 0 && (t->type[id] == SOL_TT_CONTROL || t->type[id] == SOL_TT_USER_DEFINED))
            t->eog[id] = 1;
    }
}

/* tokenizer.ggml.pre -> the split it needs. Values we do not know fall back
 * to GPT-2's split: most BPE vocabularies were trained with a close variant. */
static sol_pre_kind pre_kind(sol_gguf_str pre)
{
    static const struct {
        const char *name;
        sol_pre_kind kind;
    } known[] = {
        {"default", SOL_PRE_GPT2},       {"gpt2", SOL_PRE_GPT2},         {"gpt-2", SOL_PRE_GPT2},
        {"phi-2", SOL_PRE_GPT2},         {"smollm", SOL_PRE_SMOLLM},     {"starcoder", SOL_PRE_SMOLLM},
        {"refact", SOL_PRE_SMOLLM},      {"codeshell", SOL_PRE_SMOLLM},  {"command-r", SOL_PRE_SMOLLM},
        {"exaone", SOL_PRE_SMOLLM},      {"minerva-7b", SOL_PRE_SMOLLM}, {"llama-bpe", SOL_PRE_LLAMA3},
        {"llama3", SOL_PRE_LLAMA3},      {"llama-v3", SOL_PRE_LLAMA3},   {"falcon3", SOL_PRE_LLAMA3},
        {"qwen2", SOL_PRE_QWEN2},        {"deepseek-r1-qwen", SOL_PRE_QWEN2},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (sol_gguf_str_eq(pre, known[i].name))
            return known[i].kind;
    return SOL_PRE_GPT2;
}

static int read_model(loader *ld)
{
    sol_tokenizer *t = ld->t;
    sol_gguf_str s;
    int rc = sol_gguf_get_str(ld->g, "tokenizer.ggml.model", &s, ld->err);
    if (rc > 0)
        return rc;
    if (rc < 0)
        return sol_fail(ld->err, SOL_ERR_RUNTIME, "%s: no tokenizer (key \"tokenizer.ggml.model\" is missing)",
                        ld->g->path);
    if (sol_gguf_str_eq(s, "gpt2"))
        t->model = SOL_TOK_BPE;
    else if (sol_gguf_str_eq(s, "llama"))
        t->model = SOL_TOK_SPM;
    else
        return sol_fail(ld->err, SOL_ERR_RUNTIME,
                        "%s: key \"tokenizer.ggml.model\": tokenizer %s is not supported (sol reads gpt2 "
                        "and llama)", ld->g->path, sol_quote(&(sol_qbuf){0}, s.ptr, s.len));
    sol_gguf_str pre = {"default", 7};
    rc = sol_gguf_get_str(ld->g, "tokenizer.ggml.pre", &pre, ld->err);
    if (rc > 0)
        return rc;
    t->pre = pre_kind(pre);
    return 0;
}

static int load(loader *ld)
{
    sol_tokenizer *t = ld->t;
    int rc = read_model(ld);
    if (!rc)
        rc = read_tokens(ld);
    if (!rc && t->model == SOL_TOK_SPM)
        rc = read_scores(ld);
    if (!rc && t->model == SOL_TOK_BPE)
        rc = read_merges(ld);
    if (rc)
        return rc;
    find_byte_tokens(t);

    int eot = -1, eom = -1;
    t->bos = t->eos = t->unk = -1;
    if (t->model == SOL_TOK_SPM)
        t->unk = sol_tok_lookup(t, "<unk>", 5);
    /* llama.cpp's defaults: SentencePiece adds BOS and a space prefix,
     * Llama-3's BPE adds BOS and takes whole-word tokens before merges. */
    t->add_bos = t->model == SOL_TOK_SPM || t->pre == SOL_PRE_LLAMA3;
    t->add_space_prefix = t->model == SOL_TOK_SPM;
    t->ignore_merges = t->model == SOL_TOK_BPE && t->pre == SOL_PRE_LLAMA3;
    if ((rc = id_key(ld, "tokenizer.ggml.bos_token_id", &t->bos)) ||
        (rc = id_key(ld, "tokenizer.ggml.eos_token_id", &t->eos)) ||
        (rc = id_key(ld, "tokenizer.ggml.unknown_token_id", &t->unk)) ||
        (rc = id_key(ld, "tokenizer.ggml.eot_token_id", &eot)) ||
        (rc = id_key(ld, "tokenizer.ggml.eom_token_id", &eom)) ||
        (rc = bool_key(ld, "tokenizer.ggml.add_bos_token", &t->add_bos)) ||
        (rc = bool_key(ld, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix)))
        return rc;
    if (t->model == SOL_TOK_BPE)
        t->add_space_prefix = 0; /* llama.cpp ignores it for BPE too */
    mark_eog(t, eot, eom);
    if ((rc = collect_specials(ld)))
        return rc;

    sol_gguf_str tmpl;
    rc = sol_gguf_get_str(ld->g, "tokenizer.chat_template", &tmpl, ld->err);
    if (rc > 0)
        return rc;
    if (rc == 0) {
        t->chat_template = malloc((size_t)tmpl.len + 1);
        if (!t->chat_template)
            return oom(ld, "chat template");
        memcpy(t->chat_template, tmpl.ptr, (size_t)tmpl.len);
        t->chat_template[tmpl.len] = '\0';
    }
    return 0;
}

int sol_tokenizer_load(const sol_gguf *g, sol_tokenizer **out, sol_err *err)
{
    *out = NULL;
    sol_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: out of memory for the tokenizer", g->path);
    loader ld = {g, t, err};
    int rc = load(&ld);
    if (rc) {
        sol_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void sol_tokenizer_free(sol_tokenizer *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->text_off);
    free(t->type);
    free(t->score);
    free(t->eog);
    free(t->tok_slots);
    free(t->merges);
    free(t->special);
    free(t->chat_template);
    free(t);
}

/* ---- accessors -------------------------------------------------------- */

int sol_tokenizer_n_vocab(const sol_tokenizer *t) { return t->n_vocab; }
int sol_tokenizer_bos(const sol_tokenizer *t) { return t->bos; }
int sol_tokenizer_eos(const sol_tokenizer *t) { return t->eos; }
int sol_tokenizer_add_bos(const sol_tokenizer *t) { return t->add_bos && t->bos >= 0; }

int sol_tokenizer_is_eog(const sol_tokenizer *t, int id)
{
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

const char *sol_tokenizer_pre(const sol_tokenizer *t)
{
    static const char *const names[] = {"gpt2", "smollm", "llama-bpe", "qwen2"};
    return t->model == SOL_TOK_SPM ? "spm" : names[t->pre];
}

const char *sol_tokenizer_token_text(const sol_tokenizer *t, int id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return "";
    }
    return tok_str(t, id, len);
}

/* ---- encoding --------------------------------------------------------- */

typedef struct symbol {
    int32_t start, len; /* bytes of the word */
    int32_t prev, next;
    int32_t id;         /* BPE: current token */
} symbol;

/* A candidate merge of symbols left and right: lower prio first, then the
 * leftmost. size (their byte total when pushed) tells a stale entry. */
typedef struct candidate {
    double prio;
    int32_t left, right, size, merged;
} candidate;

typedef struct encoder {
    const sol_tokenizer *t;
    int32_t *ids;
    size_t n_ids, cap_ids;
    symbol *sym;
    size_t cap_sym;
    candidate *heap;
    size_t n_heap, cap_heap;
    sol_uchar *chars;
    size_t cap_chars;
    char *buf;
    size_t cap_buf;
    const char *frag; /* the fragment being pre-tokenized */
} encoder;

/* Grows *p to hold n elements of size each; -1 when out of memory. */
static int reserve(void *pp, size_t *cap, size_t n, size_t size)
{
    void **p = pp;
    if (n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < n)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int push_id(encoder *e, int32_t id)
{
    if (id < 0)
        return 0;
    if (reserve(&e->ids, &e->cap_ids, e->n_ids + 1, sizeof *e->ids))
        return -1;
    e->ids[e->n_ids++] = id;
    return 0;
}

static int cand_less(const candidate *a, const candidate *b)
{
    return a->prio < b->prio || (a->prio == b->prio && a->left < b->left);
}

static int heap_push(encoder *e, candidate c)
{
    if (reserve(&e->heap, &e->cap_heap, e->n_heap + 1, sizeof *e->heap))
        return -1;
    size_t i = e->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_less(&c, &e->heap[parent]))
            break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = c;
    return 0;
}

static candidate heap_pop(encoder *e)
{
    candidate top = e->heap[0], last = e->heap[--e->n_heap];
    size_t i = 0, n = e->n_heap;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && cand_less(&e->heap[child + 1], &e->heap[child]))
            child++;
        if (!cand_less(&e->heap[child], &last))
            break;
        e->heap[i] = e->heap[child];
        i = child;
    }
    if (n)
        e->heap[i] = last;
    return top;
}

/* Merges the popped candidate into its left symbol when still current;
 * returns the left symbol's index, or -1 for a stale candidate. */
static int32_t apply_merge(encoder *e, const candidate *c)
{
    symbol *l = &e->sym[c->left], *r = &e->sym[c->right];
    if (l->len == 0 || r->len == 0 || l->len + r->len != c->size)
        return -1;
    l->len += r->len;
    l->id = c->merged;
    r->len = 0;
    l->next = r->next;
    if (r->next >= 0)
        e->sym[r->next].prev = c->left;
    return c->left;
}

static int bpe_pair(encoder *e, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return 0;
    const struct sol_merge_slot *m = merge_find(e->t, e->sym[left].id, e->sym[right].id);
    if (!m)
        return 0;
    candidate c = {m->rank, left, right, e->sym[left].len + e->sym[right].len, m->merged};
    return heap_push(e, c);
}

/* One pre-token: its bytes as byte-level symbols, merged by rank. */
static int bpe_word(encoder *e, const unsigned char *w, size_t n)
{
    const sol_tokenizer *t = e->t;
    if (n == 1)
        return push_id(e, t->byte_token[w[0]]);
    if (t->ignore_merges) { /* Llama-3: a word in the vocabulary is taken whole */
        if (reserve(&e->buf, &e->cap_buf, 2 * n, 1))
            return -1;
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            m += (size_t)utf8_put(e->buf + m, t->byte_cp[w[i]]);
        int id = sol_tok_lookup(t, e->buf, m);
        if (id >= 0)
            return push_id(e, id);
    }
    if (n > INT32_MAX / 2 || reserve(&e->sym, &e->cap_sym, n, sizeof *e->sym))
        return -1;
    /* A byte the vocabulary lacks (SmolLM2 has no token for 0xC0, 0xFF...)
     * is dropped and its neighbours may merge, as HF's BPE without an unk
     * token does (llama.cpp drops it too). */
    int32_t n_sym = 0;
    for (size_t i = 0; i < n; i++)
        if (t->byte_token[w[i]] >= 0) {
            e->sym[n_sym] = (symbol){(int32_t)i, 1, n_sym - 1, -1, t->byte_token[w[i]]};
            if (n_sym > 0)
                e->sym[n_sym - 1].next = n_sym;
            n_sym++;
        }
    e->n_heap = 0;
    for (int32_t i = 0; i + 1 < n_sym; i++)
        if (bpe_pair(e, i, i + 1))
            return -1;
    while (e->n_heap) {
        candidate c = heap_pop(e);
        int32_t l = apply_merge(e, &c);
        if (l >= 0 && (bpe_pair(e, e->sym[l].prev, l) || bpe_pair(e, l, e->sym[l].next)))
            return -1;
    }
    for (int32_t i = 0; i >= 0 && n_sym > 0; i = e->sym[i].next)
        if (push_id(e, e->sym[i].id))
            return -1;
    return 0;
}

static int bpe_emit(void *ctx, size_t begin, size_t end)
{
    encoder *e = ctx;
    return bpe_word(e, (const unsigned char *)e->frag + begin, end - begin);
}

static int bpe_fragment(encoder *e, const char *text, size_t len)
{
    if (reserve(&e->chars, &e->cap_chars, len, sizeof *e->chars))
        return -1;
    size_t n = sol_utf8_chars(text, len, e->chars);
    e->frag = text;
    return sol_pretokenize(e->t->pre, e->chars, n, bpe_emit, e);
}

/* SentencePiece pieces text may merge into or stand for. */
static int spm_piece(const sol_tokenizer *t, const char *s, size_t n)
{
    int id = sol_tok_lookup(t, s, n);
    return id >= 0 && (t->type[id] == SOL_TT_NORMAL || t->type[id] == SOL_TT_USER_DEFINED) ? id : -1;
}

static int spm_pair(encoder *e, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return 0;
    symbol *l = &e->sym[left], *r = &e->sym[right];
    int id = spm_piece(e->t, e->buf + l->start, (size_t)(l->len + r->len));
    if (id < 0)
        return 0;
    candidate c = {-(double)e->t->score[id], left, right, l->len + r->len, id};
    return heap_push(e, c);
}

static int spm_fragment(encoder *e, const char *text, size_t len, int prefix_space)
{
    const sol_tokenizer *t = e->t;
    if (len > INT32_MAX / 4 || reserve(&e->buf, &e->cap_buf, 3 * (len + 1), 1) ||
        reserve(&e->sym, &e->cap_sym, len + 1, sizeof *e->sym))
        return -1;
    size_t m = 0;
    if (prefix_space) {
        memcpy(e->buf, SPM_SPACE, 3);
        m = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(e->buf + m, SPM_SPACE, 3);
            m += 3;
        } else {
            e->buf[m++] = text[i];
        }
    }
    int32_t n = 0;
    for (size_t i = 0; i < m;) {
        uint32_t cp;
        int cl = sol_utf8_next((const unsigned char *)e->buf + i, m - i, &cp);
        if (cl == 0)
            cl = 1;
        e->sym[n] = (symbol){(int32_t)i, cl, n - 1, -1, -1};
        if (n > 0)
            e->sym[n - 1].next = n;
        n++;
        i += (size_t)cl;
    }
    e->n_heap = 0;
    for (int32_t i = 0; i + 1 < n; i++)
        if (spm_pair(e, i, i + 1))
            return -1;
    while (e->n_heap) {
        candidate c = heap_pop(e);
        int32_t l = apply_merge(e, &c);
        if (l >= 0 && (spm_pair(e, e->sym[l].prev, l) || spm_pair(e, l, e->sym[l].next)))
            return -1;
    }
    for (int32_t i = 0; i >= 0 && n > 0; i = e->sym[i].next) {
        const symbol *s = &e->sym[i];
        int id = spm_piece(t, e->buf + s->start, (size_t)s->len);
        if (id >= 0) {
            if (push_id(e, id))
                return -1;
            continue;
        }
        for (int32_t k = 0; k < s->len; k++) { /* byte fallback */
            int b = t->byte_token[(unsigned char)e->buf[s->start + k]];
            if (push_id(e, b >= 0 ? b : t->unk))
                return -1;
        }
    }
    return 0;
}

/* The special token written at text[0..len), longest first, or -1. */
static int match_special(const sol_tokenizer *t, const char *text, size_t len, int parse_special)
{
    unsigned char b = (unsigned char)text[0];
    for (int k = t->special_start[b]; k < t->special_start[b + 1]; k++) {
        int id = t->special[k];
        if (!parse_special && t->type[id] == SOL_TT_CONTROL)
            continue;
        size_t n;
        const char *s = tok_str(t, id, &n);
        if (n <= len && memcmp(s, text, n) == 0)
            return id;
    }
    return -1;
}

static int encode_raw(encoder *e, const char *text, size_t len, int after_special)
{
    if (len == 0)
        return 0;
    if (e->t->model == SOL_TOK_BPE)
        return bpe_fragment(e, text, len);
    return spm_fragment(e, text, len, e->t->add_space_prefix && after_special);
}

int sol_tokenizer_encode(const sol_tokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                         int32_t **ids, int *n_ids, sol_err *err)
{
    encoder e = {.t = t};
    int rc = 0;
    *ids = NULL;
    *n_ids = 0;
    if (len > (size_t)INT32_MAX / 4) /* offsets are 32-bit */
        return sol_fail(err, SOL_ERR_USAGE, "text of %zu bytes is too long to tokenize", len);
    if (add_bos && t->bos >= 0)
        rc = push_id(&e, t->bos);
    size_t frag = 0;
    int after_special = 1; /* SentencePiece puts its space prefix at the start and after specials */
    for (size_t i = 0; i < len && !rc && t->n_special;) {
        int id = t->special_start[(unsigned char)text[i]] == t->special_start[(unsigned char)text[i] + 1]
                     ? -1
                     : match_special(t, text + i, len - i, parse_special);
        if (id < 0) {
            i++;
            continue;
        }
        rc = encode_raw(&e, text + frag, i - frag, after_special);
        if (!rc)
            rc = push_id(&e, id);
        i += t->text_off[id + 1] - t->text_off[id] - 1;
        frag = i;
        after_special = 1;
    }
    if (!rc)
        rc = encode_raw(&e, text + frag, len - frag, after_special);
    free(e.sym);
    free(e.heap);
    free(e.chars);
    free(e.buf);
    if (rc || e.n_ids > INT32_MAX) {
        free(e.ids);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory tokenizing %zu bytes", len);
    }
    *ids = e.ids;
    *n_ids = (int)e.n_ids;
    return 0;
}

/* ---- decoding --------------------------------------------------------- */

static int put(char *buf, int cap, int n, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++, n++)
        if (n < cap)
            buf[n] = s[i];
    return n;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int sol_tokenizer_decode(const sol_tokenizer *t, int32_t id, char *buf, int cap)
{
    if (id < 0 || id >= t->n_vocab)
        return 0;
    size_t len;
    const char *s = tok_str(t, id, &len);
    int type = t->type[id];
    if (type == SOL_TT_CONTROL || (t->model == SOL_TOK_BPE && type == SOL_TT_USER_DEFINED))
        return put(buf, cap, 0, s, len);
    int n = 0;
    if (t->model == SOL_TOK_SPM) {
        if (type == SOL_TT_BYTE && len == 6 && hex_digit(s[3]) >= 0 && hex_digit(s[4]) >= 0) {
            char b = (char)(hex_digit(s[3]) << 4 | hex_digit(s[4]));
            return put(buf, cap, 0, &b, 1);
        }
        for (size_t i = 0; i < len;) {
            if (len - i >= 3 && memcmp(s + i, SPM_SPACE, 3) == 0) {
                n = put(buf, cap, n, " ", 1);
                i += 3;
            } else {
                n = put(buf, cap, n, s + i, 1);
                i++;
            }
        }
        return n;
    }
    /* byte-level: each char stands for one byte; others are copied as they are */
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int cl = sol_utf8_next((const unsigned char *)s + i, len - i, &cp);
        int b = cl && cp < SOL_BYTE_CPS ? t->cp_byte[cp] : -1;
        if (b >= 0) {
            char c = (char)b;
            n = put(buf, cap, n, &c, 1);
        } else {
            cl = cl ? cl : 1;
            n = put(buf, cap, n, s + i, (size_t)cl);
        }
        i += (size_t)cl;
    }
    return n;
}

char *sol_tokenizer_piece(const sol_tokenizer *t, int32_t id, int *n)
{
    char small[64];
    *n = sol_tokenizer_decode(t, id, small, sizeof small);
    char *out = malloc((size_t)*n + 1);
    if (!out)
        return NULL;
    if (*n <= (int)sizeof small)
        memcpy(out, small, (size_t)*n);
    else
        sol_tokenizer_decode(t, id, out, *n);
    out[*n] = '\0';
    return out;
}
