/* Tokenizer: the real SmolLM2 vocabulary against ids and pre-token splits
 * from HF tokenizers (tests/fixtures/tokenizer/smollm2.json, written by
 * tests/ref/tokenizer_ref.py) under four pre-tokenizers, byte round trips,
 * special tokens, chat templates, and a hand-checked SentencePiece vocabulary
 * built in memory. $SOL_TEST_GGUF names the real model; tests that need it
 * are skipped without it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/gguf.h"
#include "models/tokenizer.h"
#include "models/tokenizer_impl.h"

#define FIXTURE "tests/fixtures/tokenizer/smollm2.json"
#define N_PRE 4

static const char *const pre_names[N_PRE] = {"smollm", "gpt2", "llama-bpe", "qwen2"};
static const sol_pre_kind pre_kinds[N_PRE] = {SOL_PRE_SMOLLM, SOL_PRE_GPT2, SOL_PRE_LLAMA3, SOL_PRE_QWEN2};

static char tmpdir[64];
static cJSON *fixture;

#define assert_contains(hay, needle)                                                  \
    do {                                                                              \
        if (!strstr((hay), (needle)))                                                 \
            fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle));              \
    } while (0)

static cJSON *read_fixture(void)
{
    FILE *f = fopen(FIXTURE, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    size_t got = text ? fread(text, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!text)
        return NULL;
    text[got] = '\0';
    cJSON *doc = cJSON_Parse(text);
    free(text);
    return doc;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sol_test_tok_XXXXXX");
    fixture = read_fixture();
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    cJSON_Delete(fixture);
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%.200s", tmpdir, e->d_name);
            remove(p);
        }
        closedir(d);
    }
    return rmdir(tmpdir);
}

static const cJSON *fixture_cases(void)
{
    if (!fixture)
        fail_msg("cannot read %s (run the tests from the repository root)", FIXTURE);
    const cJSON *cases = cJSON_GetObjectItem(fixture, "cases");
    assert_true(cJSON_IsArray(cases));
    assert_true(cJSON_GetArraySize(cases) >= 25);
    return cases;
}

/* ---- helpers ------------------------------------------------------------ */

static sol_tokenizer *load_path(const char *path)
{
    sol_gguf g;
    sol_err err = {0};
    sol_tokenizer *t = NULL;
    if (sol_gguf_open(&g, path, &err))
        fail_msg("%s", err.msg);
    if (sol_tokenizer_load(&g, &t, &err))
        fail_msg("%s", err.msg);
    sol_gguf_close(&g);
    return t;
}

/* Fails with SOL_ERR_RUNTIME; returns the message. */
static void expect_load_error(const char *path, const char *needle)
{
    sol_gguf g;
    sol_err err = {0};
    sol_tokenizer *t = NULL;
    if (sol_gguf_open(&g, path, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(sol_tokenizer_load(&g, &t, &err), SOL_ERR_RUNTIME);
    assert_null(t);
    assert_contains(err.msg, path);
    assert_contains(err.msg, needle);
    sol_gguf_close(&g);
}

static const char *real_model(void)
{
    const char *p = getenv("SOL_TEST_GGUF");
    return p && *p ? p : NULL;
}

static void encode(const sol_tokenizer *t, const char *text, size_t len, int add_bos, int special, int32_t **ids,
                   int *n)
{
    sol_err err = {0};
    if (sol_tokenizer_encode(t, text, len, add_bos, special, ids, n, &err))
        fail_msg("encode: %s", err.msg);
}

/* decode(ids) into a malloc'd buffer of *len bytes. */
static char *decode_all(const sol_tokenizer *t, const int32_t *ids, int n, size_t *len)
{
    size_t cap = 64, m = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (int i = 0; i < n; i++) {
        char piece[512];
        int k = sol_tokenizer_decode(t, ids[i], piece, sizeof piece);
        assert_true(k >= 0 && k <= (int)sizeof piece);
        while (m + (size_t)k > cap)
            cap *= 2;
        out = realloc(out, cap);
        assert_non_null(out);
        memcpy(out + m, piece, (size_t)k);
        m += (size_t)k;
    }
    *len = m;
    return out;
}

static void assert_ids(const int32_t *got, int n_got, const int32_t *want, int n_want, const char *what)
{
    int ok = n_got == n_want;
    for (int i = 0; ok && i < n_got; i++)
        ok = got[i] == want[i];
    if (ok)
        return;
    char g[400] = "", w[400] = "";
    for (int i = 0; i < n_got && strlen(g) < 360; i++)
        snprintf(g + strlen(g), sizeof g - strlen(g), " %d", got[i]);
    for (int i = 0; i < n_want && strlen(w) < 360; i++)
        snprintf(w + strlen(w), sizeof w - strlen(w), " %d", want[i]);
    fail_msg("%s:\n  got [%s ]\n want [%s ]", what, g, w);
}

static void assert_json_ids(const sol_tokenizer *t, const char *text, const cJSON *want, const char *what)
{
    int32_t *ids;
    int n;
    encode(t, text, strlen(text), 0, 1, &ids, &n);
    int n_want = cJSON_GetArraySize(want);
    int32_t *w = malloc(sizeof *w * (size_t)(n_want ? n_want : 1));
    assert_non_null(w);
    for (int i = 0; i < n_want; i++)
        w[i] = (int32_t)cJSON_GetArrayItem(want, i)->valuedouble;
    char label[200];
    snprintf(label, sizeof label, "%s %.120s", what, text);
    assert_ids(ids, n, w, n_want, label);
    free(w);
    free(ids);
}

/* A tokenizer-only copy of the real vocabulary with another pre value. */
static void write_with_pre(const char *src, const char *dst, const char *pre)
{
    sol_gguf g;
    sol_err err = {0};
    if (sol_gguf_open(&g, src, &err))
        fail_msg("%s", err.msg);
    const sol_gguf_kv *tokens = sol_gguf_find(&g, "tokenizer.ggml.tokens");
    const sol_gguf_kv *types = sol_gguf_find(&g, "tokenizer.ggml.token_type");
    const sol_gguf_kv *merges = sol_gguf_find(&g, "tokenizer.ggml.merges");
    assert_non_null(tokens);
    assert_non_null(types);
    assert_non_null(merges);
    uint64_t n_tok = tokens->arr_count, n_merge = merges->arr_count;
    char **strs = calloc(n_tok + n_merge, sizeof *strs);
    int32_t *ty = calloc(n_tok, sizeof *ty);
    assert_non_null(strs);
    assert_non_null(ty);
    for (uint64_t i = 0; i < n_tok + n_merge; i++) {
        sol_gguf_str s;
        assert_int_equal(sol_gguf_arr_str(&g, i < n_tok ? tokens : merges, i < n_tok ? i : i - n_tok, &s), 0);
        strs[i] = strndup(s.ptr, (size_t)s.len);
        assert_non_null(strs[i]);
    }
    for (uint64_t i = 0; i < n_tok; i++) {
        int64_t v;
        assert_int_equal(sol_gguf_arr_i64(types, i, &v), 0);
        ty[i] = (int32_t)v;
    }
    sol_gguf_writer *w = sol_gguf_writer_new();
    sol_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    sol_gguf_set_str(w, "tokenizer.ggml.pre", pre);
    sol_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)strs, n_tok);
    sol_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", ty, n_tok);
    sol_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)strs + n_tok, n_merge);
    if (sol_gguf_writer_write(w, dst, &err))
        fail_msg("%s", err.msg);
    sol_gguf_writer_free(w);
    for (uint64_t i = 0; i < n_tok + n_merge; i++)
        free(strs[i]);
    free(strs);
    free(ty);
    sol_gguf_close(&g);
}

/* ---- the real model ------------------------------------------------------- */

static void test_real_metadata(void **state)
{
    (void)state;
    if (!real_model())
        skip();
    sol_tokenizer *t = load_path(real_model());
    assert_int_equal(sol_tokenizer_n_vocab(t), 49152);
    assert_int_equal(sol_tokenizer_bos(t), 1);
    assert_int_equal(sol_tokenizer_eos(t), 2);
    assert_int_equal(sol_tokenizer_add_bos(t), 0); /* add_bos_token = false in the file */
    assert_string_equal(sol_tokenizer_pre(t), "smollm");
    assert_true(sol_tokenizer_is_eog(t, 2));  /* <|im_end|> */
    assert_true(sol_tokenizer_is_eog(t, 0));  /* <|endoftext|> */
    assert_false(sol_tokenizer_is_eog(t, 1)); /* <|im_start|> */
    assert_false(sol_tokenizer_is_eog(t, 100));
    assert_false(sol_tokenizer_is_eog(t, -1));
    assert_false(sol_tokenizer_is_eog(t, 49152));
    size_t len;
    const char *s = sol_tokenizer_token_text(t, 1, &len);
    assert_int_equal(len, 12);
    assert_memory_equal(s, "<|im_start|>", 12);
    sol_tokenizer_free(t);
}

static void test_fixture_ids(void **state)
{
    (void)state;
    if (!real_model())
        skip();
    const cJSON *cases = fixture_cases();
    for (int p = 0; p < N_PRE; p++) {
        char path[256];
        const char *model = real_model();
        if (p > 0) { /* the same vocabulary under another pre-tokenizer */
            snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, pre_names[p]);
            write_with_pre(real_model(), path, pre_names[p]);
            model = path;
        }
        sol_tokenizer *t = load_path(model);
        assert_string_equal(sol_tokenizer_pre(t), pre_names[p]);
        int n = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, cases) {
            const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
            const cJSON *want = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "ids"), pre_names[p]);
            assert_true(cJSON_IsArray(want));
            assert_json_ids(t, text, want, pre_names[p]);
            n++;
        }
        assert_true(n >= 25);
        sol_tokenizer_free(t);
    }
}

struct spans {
    size_t n, end;
    int bad;
    size_t len[4096];
};

static int collect(void *ctx, size_t begin, size_t end)
{
    struct spans *s = ctx;
    if (begin != s->end || end <= begin || s->n == 4096)
        s->bad = 1;
    else
        s->len[s->n++] = end - begin;
    s->end = end;
    return 0;
}

/* The pre-token splits themselves against HF's, no model needed. */
static void test_fixture_splits(void **state)
{
    (void)state;
    const cJSON *cases = fixture_cases();
    static struct spans sp;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        size_t len = strlen(text);
        sol_uchar *chars = malloc(sizeof *chars * (len + 1));
        assert_non_null(chars);
        size_t n = sol_utf8_chars(text, len, chars);
        for (int p = 0; p < N_PRE; p++) {
            const cJSON *want = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "split"), pre_names[p]);
            assert_true(cJSON_IsArray(want));
            memset(&sp, 0, sizeof sp);
            assert_int_equal(sol_pretokenize(pre_kinds[p], chars, n, collect, &sp), 0);
            assert_false(sp.bad);
            int ok = (int)sp.n == cJSON_GetArraySize(want);
            for (size_t i = 0; ok && i < sp.n; i++)
                ok = (double)sp.len[i] == cJSON_GetArrayItem(want, (int)i)->valuedouble;
            if (!ok) {
                char g[300] = "";
                for (size_t i = 0; i < sp.n && strlen(g) < 260; i++)
                    snprintf(g + strlen(g), sizeof g - strlen(g), " %zu", sp.len[i]);
                char *w = cJSON_PrintUnformatted(want);
                fail_msg("%s split of \"%.100s\": got [%s ], want %s", pre_names[p], text, g, w);
            }
        }
        free(chars);
    }
}

/* SmolLM2's vocabulary has no token for these bytes (none occurs in valid
 * UTF-8 text it was trained on): they are dropped, as HF and llama.cpp do. */
static const unsigned char missing_bytes[] = {0x04, 0x06, 0x13, 0x14, 0x16, 0x1d, 0xc0, 0xc1, 0xf1, 0xf2, 0xf5,
                                              0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff};

static int is_missing(unsigned char b) { return memchr(missing_bytes, b, sizeof missing_bytes) != NULL; }

static void test_round_trip_bytes(void **state)
{
    (void)state;
    if (!real_model())
        skip();
    sol_tokenizer *t = load_path(real_model());
    /* pieces that exercise the splits and merges; then any byte */
    static const char *const bits[] = {"a", "the", " ", "  ", "\n", "\t", "\r\n", "'s", "'", "1", "42", "é",
                                       "中文", "😀", "\xe4", "\x80", "\xf0\x9f", ".", "<|im", "|>", "<|im_end|>",
                                       "Hello", " world", "\xed\xa0\x80"};
    uint64_t seed = 0x9e3779b97f4a7c15u;
    char s[256];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 0;
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        size_t target = (size_t)(seed >> 33) % 120;
        while (n < target) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            unsigned r = (unsigned)(seed >> 33);
            if (r % 3 == 0) {
                unsigned char b = (unsigned char)(r >> 8);
                if (!is_missing(b))
                    s[n++] = (char)b;
            } else {
                const char *bit = bits[(r >> 8) % (sizeof bits / sizeof bits[0])];
                size_t k = strlen(bit);
                if (n + k > sizeof s)
                    break;
                memcpy(s + n, bit, k);
                n += k;
            }
        }
        int32_t *ids;
        int n_ids;
        encode(t, s, n, 0, iter & 1, &ids, &n_ids);
        size_t back_len;
        char *back = decode_all(t, ids, n_ids, &back_len);
        if (back_len != n || memcmp(back, s, n) != 0)
            fail_msg("round trip %d: %zu bytes in, %zu out", iter, n, back_len);
        free(back);
        free(ids);
    }
    /* bytes without a token vanish and leave the rest intact */
    int32_t *ids;
    int n_ids;
    encode(t, "\xff", 1, 0, 1, &ids, &n_ids);
    assert_int_equal(n_ids, 0);
    free(ids);
    encode(t, "a\xff\xc0" "b", 4, 0, 1, &ids, &n_ids);
    size_t back_len;
    char *back = decode_all(t, ids, n_ids, &back_len);
    assert_int_equal(back_len, 2);
    assert_memory_equal(back, "ab", 2);
    free(back);
    free(ids);
    sol_tokenizer_free(t);
}

static void test_special_tokens(void **state)
{
    (void)state;
    if (!real_model())
        skip();
    sol_tokenizer *t = load_path(real_model());
    int32_t *ids;
    int n;
    encode(t, "<|im_start|>", 12, 0, 1, &ids, &n);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    free(ids);

    /* written as text when not parsed: several ordinary tokens, same bytes */
    encode(t, "<|im_start|>", 12, 0, 0, &ids, &n);
    assert_true(n > 1);
    for (int i = 0; i < n; i++)
        assert_true(ids[i] > 16);
    size_t len;
    char *back = decode_all(t, ids, n, &len);
    assert_int_equal(len, 12);
    assert_memory_equal(back, "<|im_start|>", 12);
    free(back);
    free(ids);

    /* longest match, adjacent specials, text around them */
    const char *text = "x<|im_end|><|endoftext|>y<|im_start|>";
    encode(t, text, strlen(text), 0, 1, &ids, &n);
    assert_true(n == 5);
    assert_int_equal(ids[1], 2);
    assert_int_equal(ids[2], 0);
    assert_int_equal(ids[4], 1);
    free(ids);

    /* BOS on request (SmolLM2's BOS is <|im_start|>), empty text */
    encode(t, "", 0, 1, 1, &ids, &n);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    free(ids);
    encode(t, "", 0, 0, 1, &ids, &n);
    assert_int_equal(n, 0);
    free(ids);

    /* decode: snprintf-like, special tokens as their text */
    char buf[4];
    assert_int_equal(sol_tokenizer_decode(t, 1, buf, sizeof buf), 12);
    assert_memory_equal(buf, "<|im", 4);
    assert_int_equal(sol_tokenizer_decode(t, -1, buf, sizeof buf), 0);
    assert_int_equal(sol_tokenizer_decode(t, 49152, buf, sizeof buf), 0);
    sol_tokenizer_free(t);
}

static void test_chat_smollm2(void **state)
{
    (void)state;
    if (!real_model())
        skip();
    sol_tokenizer *t = load_path(real_model());
    char *out;
    sol_err err = {0};
    assert_int_equal(sol_chat_apply(t, NULL, "What is 2+2?", &out, &err), 0);
    assert_non_null(out);
    /* SmolLM2's template with add_generation_prompt and its default system prompt */
    assert_string_equal(out, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                             "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
    int32_t *ids;
    int n;
    encode(t, out, strlen(out), 0, 1, &ids, &n);
    int starts = 0, ends = 0;
    for (int i = 0; i < n; i++) {
        starts += ids[i] == 1;
        ends += ids[i] == 2;
    }
    assert_int_equal(ids[0], 1);
    assert_int_equal(starts, 3); /* system, user, assistant */
    assert_int_equal(ends, 2);
    free(ids);
    free(out);
    assert_int_equal(sol_chat_apply(t, "Be brief.", "Hi", &out, &err), 0);
    assert_string_equal(out, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                             "<|im_start|>assistant\n");
    free(out);
    sol_tokenizer_free(t);
}

/* ---- a SentencePiece vocabulary by hand ------------------------------------ */

#define SPM_SP "\xe2\x96\x81"

/* Ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then the pieces below. */
static const struct {
    const char *text;
    float score;
} spm_pieces[] = {
    {SPM_SP, -1},             /* 259 */
    {"h", -2},                /* 260 */
    {"e", -2},                /* 261 */
    {"l", -2},                /* 262 */
    {"o", -2},                /* 263 */
    {"w", -2},                /* 264 */
    {"r", -2},                /* 265 */
    {"d", -2},                /* 266 */
    {SPM_SP "h", -5},         /* 267 */
    {"el", -6},               /* 268 */
    {"ll", -3},               /* 269 */
    {"lo", -4},               /* 270 */
    {SPM_SP "he", -7},        /* 271 */
    {"llo", -8},              /* 272 */
    {SPM_SP "hello", -9},     /* 273 */
    {SPM_SP "w", -5},         /* 274 */
    {"or", -6},               /* 275 */
    {SPM_SP "wor", -7},       /* 276 */
    {"ld", -4},               /* 277 */
    {SPM_SP "world", -8},     /* 278 */
    {"\xe4\xb8\xad", -3},     /* 279 中 */
    {"<user>", 0},            /* 280 user-defined */
};
#define SPM_N (259 + (int)(sizeof spm_pieces / sizeof spm_pieces[0]))

static void write_spm(const char *path, const char *chat_template, int add_bos_key)
{
    static char names[SPM_N][16];
    const char *tokens[SPM_N];
    float scores[SPM_N];
    int32_t types[SPM_N];
    for (int i = 0; i < SPM_N; i++) {
        scores[i] = 0;
        types[i] = SOL_TT_NORMAL;
        if (i == 0) {
            tokens[i] = "<unk>";
            types[i] = SOL_TT_UNKNOWN;
        } else if (i == 1 || i == 2) {
            tokens[i] = i == 1 ? "<s>" : "</s>";
            types[i] = SOL_TT_CONTROL;
        } else if (i < 259) {
            snprintf(names[i], sizeof names[i], "<0x%02X>", i - 3);
            tokens[i] = names[i];
            types[i] = SOL_TT_BYTE;
        } else {
            tokens[i] = spm_pieces[i - 259].text;
            scores[i] = spm_pieces[i - 259].score;
            if (!strcmp(tokens[i], "<user>"))
                types[i] = SOL_TT_USER_DEFINED;
        }
    }
    sol_gguf_writer *w = sol_gguf_writer_new();
    sol_gguf_set_str(w, "general.architecture", "llama");
    sol_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    sol_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, SPM_N);
    sol_gguf_set_arr_f32(w, "tokenizer.ggml.scores", scores, SPM_N);
    sol_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, SPM_N);
    sol_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    sol_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    sol_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    if (add_bos_key >= 0)
        sol_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos_key);
    if (chat_template)
        sol_gguf_set_str(w, "tokenizer.chat_template", chat_template);
    sol_err err = {0};
    if (sol_gguf_writer_write(w, path, &err))
        fail_msg("%s", err.msg);
    sol_gguf_writer_free(w);
}

static void expect_spm(const sol_tokenizer *t, const char *text, int add_bos, const int32_t *want, int n_want)
{
    int32_t *ids;
    int n;
    encode(t, text, strlen(text), add_bos, 1, &ids, &n);
    assert_ids(ids, n, want, n_want, text);
    free(ids);
}

static void test_spm(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/spm.gguf", tmpdir);
    write_spm(path, NULL, -1);
    sol_tokenizer *t = load_path(path);
    assert_string_equal(sol_tokenizer_pre(t), "spm");
    assert_int_equal(sol_tokenizer_add_bos(t), 1); /* SentencePiece default */
    assert_true(sol_tokenizer_is_eog(t, 2));
    assert_false(sol_tokenizer_is_eog(t, 1));

    /* "▁hello": ll (-3) first, then ▁h (-5); el is then stale; ▁he (-7),
     * llo (-8), ▁hello (-9). */
    expect_spm(t, "hello", 0, (const int32_t[]){273}, 1);
    /* highest score first: ll before el, so "▁ello" is ▁ e llo, not ▁ el lo */
    expect_spm(t, "ello", 0, (const int32_t[]){259, 261, 272}, 3);
    /* no "▁hell": ▁he + ll */
    expect_spm(t, "hell", 0, (const int32_t[]){271, 269}, 2);
    /* two spaces: the first stays a lone ▁ */
    expect_spm(t, "hello  world", 0, (const int32_t[]){273, 259, 278}, 3);
    /* BOS, a piece outside the Latin pieces, byte fallback for é (C3 A9) */
    expect_spm(t, "hello \xe4\xb8\xad\xc3\xa9", 1, (const int32_t[]){1, 273, 259, 279, 3 + 0xc3, 3 + 0xa9}, 6);
    /* invalid UTF-8 goes through byte fallback too */
    expect_spm(t, "\xff" "d", 0, (const int32_t[]){259, 3 + 0xff, 266}, 3);
    /* control and user-defined tokens in the text; a space prefix follows a special */
    expect_spm(t, "<s>hello</s>", 0, (const int32_t[]){1, 273, 2}, 3);
    expect_spm(t, "hello<user>world", 0, (const int32_t[]){273, 280, 278}, 3);
    int32_t *ids;
    int n;
    encode(t, "<s>", 3, 0, 0, &ids, &n); /* not parsed: pieces and bytes, never id 1 */
    for (int i = 0; i < n; i++)
        assert_int_not_equal(ids[i], 1);
    free(ids);
    expect_spm(t, "", 1, (const int32_t[]){1}, 1);

    /* decode: ▁ is a space, <0xNN> its byte */
    char buf[16];
    assert_int_equal(sol_tokenizer_decode(t, 273, buf, sizeof buf), 6);
    assert_memory_equal(buf, " hello", 6);
    assert_int_equal(sol_tokenizer_decode(t, 3 + 0xc3, buf, sizeof buf), 1);
    assert_int_equal((unsigned char)buf[0], 0xc3);
    assert_int_equal(sol_tokenizer_decode(t, 1, buf, sizeof buf), 3);
    assert_memory_equal(buf, "<s>", 3);

    /* round trip: the text comes back after the prefix space */
    const char *text = "hello  w\xc3\xa9rld \xff\x80 \xe4\xb8\xad!";
    encode(t, text, strlen(text), 0, 1, &ids, &n);
    size_t len;
    char *back = decode_all(t, ids, n, &len);
    assert_int_equal(len, strlen(text) + 1);
    assert_memory_equal(back, " ", 1);
    assert_memory_equal(back + 1, text, strlen(text));
    free(back);
    free(ids);
    sol_tokenizer_free(t);

    write_spm(path, NULL, 0); /* add_bos_token = false overrides the default */
    t = load_path(path);
    assert_int_equal(sol_tokenizer_add_bos(t), 0);
    sol_tokenizer_free(t);
}

/* ---- chat template families -------------------------------------------------- */

/* The rendering of turn 1 (system + user), or with system == LATER of a
 * later turn (what the template writes after the assistant's reply). */
static const char LATER[] = "(later turn)";

static void expect_chat(const char *tmpl, const char *system, const char *user, const char *want)
{
    char path[256];
    snprintf(path, sizeof path, "%s/chat.gguf", tmpdir);
    write_spm(path, tmpl, -1);
    sol_tokenizer *t = load_path(path);
    char *out = (char *)"x";
    sol_err err = {0};
    if (system == LATER)
        assert_int_equal(sol_chat_next_turn(t, user, &out, &err), 0);
    else
        assert_int_equal(sol_chat_apply(t, system, user, &out, &err), 0);
    if (!want)
        assert_null(out);
    else
        assert_string_equal(out, want);
    free(out);
    sol_tokenizer_free(t);
}

static void expect_next(const char *tmpl, const char *user, const char *want) { expect_chat(tmpl, LATER, user, want); }

/* A piece of any length comes out whole (a 300-byte token once overflowed
 * sol run's 256-byte buffer). */
static void test_long_piece(void **state)
{
    (void)state;
    char path[256], long_token[301];
    snprintf(path, sizeof path, "%s/long.gguf", tmpdir);
    memset(long_token, 'a', 300);
    long_token[300] = '\0';
    const char *tokens[] = {"<unk>", "<s>", "</s>", long_token};
    float scores[] = {0, 0, 0, -1};
    int32_t types[] = {SOL_TT_UNKNOWN, SOL_TT_CONTROL, SOL_TT_CONTROL, SOL_TT_NORMAL};
    sol_gguf_writer *w = sol_gguf_writer_new();
    sol_gguf_set_str(w, "general.architecture", "llama");
    sol_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    sol_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, 4);
    sol_gguf_set_arr_f32(w, "tokenizer.ggml.scores", scores, 4);
    sol_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, 4);
    sol_err err = {0};
    if (sol_gguf_writer_write(w, path, &err))
        fail_msg("%s", err.msg);
    sol_gguf_writer_free(w);
    sol_tokenizer *t = load_path(path);
    int n = 0;
    char *piece = sol_tokenizer_piece(t, 3, &n);
    assert_non_null(piece);
    assert_int_equal(n, 300);
    assert_memory_equal(piece, long_token, 300);
    assert_int_equal(piece[300], '\0');
    free(piece);
    piece = sol_tokenizer_piece(t, 99, &n); /* out of range: empty */
    assert_non_null(piece);
    assert_int_equal(n, 0);
    free(piece);
    sol_tokenizer_free(t);
}

static void test_chat_families(void **state)
{
    (void)state;
    /* Llama-3-8B-Instruct's template */
    const char *llama3 =
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
        "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
        "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
        "{% endif %}";
    expect_chat(llama3, "Be brief. ", " Hi\n",
                "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user"
                "<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    expect_chat(llama3, NULL, "Hi",
                "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant"
                "<|end_header_id|>\n\n");
    /* a later turn closes the reply (<|eot_id|>, never evaluated when sampled) */
    expect_next(llama3, " Again\n",
                "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAgain<|eot_id|><|start_header_id|>assistant"
                "<|end_header_id|>\n\n");
    /* Llama-2-chat's */
    const char *llama2 =
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
        "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}"
        "{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}"
        "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}"
        "{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + "
        "'[INST] ' + content.strip() + ' [/INST]' }}{% endif %}{% endfor %}";
    expect_chat(llama2, "Be brief.", "Hi \n", "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
    expect_chat(llama2, NULL, " Hi ", "[INST] Hi [/INST]");
    /* the reply ends ' ' + eos; the next user turn opens with bos */
    expect_next(llama2, " Again ", " </s><s>[INST] Again [/INST]");
    /* Gemma-2's: no system role, so it opens the user turn */
    const char *gemma =
        "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = "
        "'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + "
        "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}"
        "{{'<start_of_turn>model\\n'}}{% endif %}";
    expect_chat(gemma, "Be brief.", "Hi", "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n");
    expect_chat(gemma, NULL, "\tHi\n", "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
    expect_next(gemma, "Again", "<end_of_turn>\n<start_of_turn>user\nAgain<end_of_turn>\n<start_of_turn>model\n");
    /* Qwen2.5's default system prompt sits in a string literal with \n escapes,
     * after two occurrences that are Jinja expressions */
    const char *qwen =
        "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- if messages[0]['role'] == 'system' %}{{- "
        "messages[0]['content'] }}{%- else %}{{- 'You are Qwen, created by Alibaba Cloud. You are a helpful "
        "assistant.' }}{%- endif %}{%- else %}{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' "
        "+ messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by "
        "Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- endif %}";
    expect_chat(qwen, NULL, "Hi",
                "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    /* plain ChatML: no default system prompt */
    const char *chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                         "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
    expect_chat(chatml, NULL, "Hi", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    expect_next(chatml, "Again", "<|im_end|>\n<|im_start|>user\nAgain<|im_end|>\n<|im_start|>assistant\n");
    expect_next(qwen, "Again", "<|im_end|>\n<|im_start|>user\nAgain<|im_end|>\n<|im_start|>assistant\n");
    /* unknown template, and none at all */
    expect_chat("{{ messages[0]['content'] }}", NULL, "Hi", NULL);
    expect_chat(NULL, NULL, "Hi", NULL);
    expect_next("{{ messages[0]['content'] }}", "Hi", NULL);
}

/* ---- load errors ------------------------------------------------------------- */

static void write_kv(const char *path, void (*fill)(sol_gguf_writer *))
{
    sol_gguf_writer *w = sol_gguf_writer_new();
    fill(w);
    sol_err err = {0};
    if (sol_gguf_writer_write(w, path, &err))
        fail_msg("%s", err.msg);
    sol_gguf_writer_free(w);
}

static const char *const few[] = {"a", "b", "ab"};

static void fill_none(sol_gguf_writer *w) { sol_gguf_set_str(w, "general.architecture", "llama"); }
static void fill_bert(sol_gguf_writer *w)
{
    sol_gguf_set_str(w, "tokenizer.ggml.model", "bert");
    sol_gguf_set_arr_str(w, "tokenizer.ggml.tokens", few, 3);
}
static void fill_no_tokens(sol_gguf_writer *w) { sol_gguf_set_str(w, "tokenizer.ggml.model", "llama"); }
static void fill_bad_tokens(sol_gguf_writer *w)
{
    sol_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    sol_gguf_set_arr_i32(w, "tokenizer.ggml.tokens", (const int32_t[]){1, 2}, 2);
}
static void fill_short_types(sol_gguf_writer *w)
{
    sol_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    sol_gguf_set_arr_str(w, "tokenizer.ggml.tokens", few, 3);
    sol_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", (const int32_t[]){1, 1}, 2);
}
static void fill_no_merges(sol_gguf_writer *w)
{
    sol_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    sol_gguf_set_arr_str(w, "tokenizer.ggml.tokens", few, 3);
}
static void fill_bad_bos(sol_gguf_writer *w)
{
    sol_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    sol_gguf_set_arr_str(w, "tokenizer.ggml.tokens", few, 3);
    sol_gguf_set_str(w, "tokenizer.ggml.bos_token_id", "one");
}
static void fill_unknown_pre(sol_gguf_writer *w)
{
    sol_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    sol_gguf_set_str(w, "tokenizer.ggml.pre", "some-future-model");
    sol_gguf_set_arr_str(w, "tokenizer.ggml.tokens", few, 3);
    sol_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const[]){"a b"}, 1);
}

static void test_load_errors(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/bad.gguf", tmpdir);
    write_kv(path, fill_none);
    expect_load_error(path, "no tokenizer (key \"tokenizer.ggml.model\" is missing)");
    write_kv(path, fill_bert);
    expect_load_error(path, "tokenizer \"bert\" is not supported");
    write_kv(path, fill_no_tokens);
    expect_load_error(path, "\"tokenizer.ggml.tokens\" is missing");
    write_kv(path, fill_bad_tokens);
    expect_load_error(path, "\"tokenizer.ggml.tokens\" is not an array of strings");
    write_kv(path, fill_short_types);
    expect_load_error(path, "\"tokenizer.ggml.token_type\" has 2 elements for 3 tokens");
    write_kv(path, fill_no_merges);
    expect_load_error(path, "\"tokenizer.ggml.merges\" is missing");
    write_kv(path, fill_bad_bos);
    expect_load_error(path, "\"tokenizer.ggml.bos_token_id\" has type string");

    /* an unknown pre falls back to GPT-2's split; merges still apply */
    write_kv(path, fill_unknown_pre);
    sol_tokenizer *t = load_path(path);
    assert_string_equal(sol_tokenizer_pre(t), "gpt2");
    assert_int_equal(sol_tokenizer_bos(t), -1);
    assert_int_equal(sol_tokenizer_add_bos(t), 0);
    int32_t *ids;
    int n;
    encode(t, "abba", 4, 1, 1, &ids, &n);
    assert_ids(ids, n, (const int32_t[]){2, 1, 0}, 3, "abba"); /* ab b a */
    free(ids);
    sol_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_metadata),  cmocka_unit_test(test_fixture_ids),
        cmocka_unit_test(test_fixture_splits), cmocka_unit_test(test_round_trip_bytes),
        cmocka_unit_test(test_special_tokens), cmocka_unit_test(test_chat_smollm2),
        cmocka_unit_test(test_spm),            cmocka_unit_test(test_chat_families),
        cmocka_unit_test(test_long_piece),
        cmocka_unit_test(test_long_piece),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests_name("tokenizer", tests, group_setup, group_teardown);
}
