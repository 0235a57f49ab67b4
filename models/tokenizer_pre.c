/* Pre-tokenizers of byte-level BPE: the regex splits of GPT-2, SmolLM2
 * (digits alone), Llama-3 and Qwen2, written out as hand matchers over
 * classified characters (no regex engine). Each matcher follows its regex's
 * alternatives in order, with the backtracking Oniguruma (HF tokenizers)
 * would do; invalid UTF-8 bytes are single characters of class "other". */
#include <string.h>

#include "models/tokenizer_impl.h"

/* ---- UTF-8 and character classes -------------------------------------- */

static int is_white_space(uint32_t cp)
{
    /* Unicode White_Space: what Oniguruma's \s matches in Unicode mode. */
    return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
           cp == 0x3000;
}

int sol_uni_class(uint32_t cp)
{
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z')
            return SOL_UC_L;
        if (cp >= '0' && cp <= '9')
            return SOL_UC_N;
        return is_white_space(cp) ? SOL_UC_S : SOL_UC_OTHER;
    }
    if (is_white_space(cp))
        return SOL_UC_S;
    int lo = 0, hi = sol_uni_n_ranges - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < sol_uni_ranges[mid].lo)
            hi = mid - 1;
        else if (cp > sol_uni_ranges[mid].hi)
            lo = mid + 1;
        else
            return sol_uni_ranges[mid].cls;
    }
    return SOL_UC_OTHER;
}

size_t sol_utf8_chars(const char *text, size_t n_text, sol_uchar *chars)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = 0;
    for (size_t i = 0; i < n_text;) {
        uint32_t cp;
        int len = sol_utf8_next(s + i, n_text - i, &cp);
        sol_uchar *c = &chars[n++];
        c->off = (uint32_t)i;
        if (len == 0) {
            c->cp = -1;
            c->len = 1;
            c->cls = SOL_UC_OTHER;
            i++;
            continue;
        }
        c->cp = (int32_t)cp;
        c->len = (uint8_t)len;
        c->cls = (uint8_t)sol_uni_class(cp);
        i += (size_t)len;
    }
    return n;
}

/* ---- matchers: each returns the end (exclusive char index) of the match
 * starting at i, within the segment [i, e); always > i. ---------------- */

static int lower_ascii(int32_t cp) { return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp; }

/* 's 't 're 've 'm 'll 'd, optionally case-insensitive: end or 0. */
static size_t contraction(const sol_uchar *c, size_t i, size_t e, int fold)
{
    if (c[i].cp != '\'' || i + 1 >= e)
        return 0;
    int32_t a = fold ? lower_ascii(c[i + 1].cp) : c[i + 1].cp;
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return i + 2;
    if (i + 2 >= e)
        return 0;
    int32_t b = fold ? lower_ascii(c[i + 2].cp) : c[i + 2].cp;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return i + 3;
    return 0;
}

static size_t run_of(const sol_uchar *c, size_t j, size_t e, int cls)
{
    while (j < e && c[j].cls == cls)
        j++;
    return j;
}

static int is_crlf(int32_t cp) { return cp == '\r' || cp == '\n'; }

/* \s+(?!\S)|\s+ at a whitespace char i: a run followed by a non-space
 * leaves its last char to start the next pre-token (" word"). */
static size_t spaces(const sol_uchar *c, size_t i, size_t e)
{
    size_t k = run_of(c, i, e, SOL_UC_S);
    if (k == e || k - i == 1)
        return k;
    return k - 1;
}

static size_t match_gpt2(const sol_uchar *c, size_t i, size_t e)
{
    size_t m = contraction(c, i, e, 0);
    if (m)
        return m;
    /* ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+`: the space is only worth
     * taking when what follows matches; c[i] itself is then one of L, N,
     * other, or whitespace (which none of the three take). */
    size_t j = c[i].cp == ' ' && i + 1 < e && c[i + 1].cls != SOL_UC_S ? i + 1 : i;
    if (c[j].cls != SOL_UC_S)
        return run_of(c, j, e, c[j].cls);
    return spaces(c, i, e);
}

static size_t match_llama3(const sol_uchar *c, size_t i, size_t e, size_t max_digits)
{
    size_t m = contraction(c, i, e, 1);
    if (m)
        return m;
    int cls = c[i].cls;
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (cls == SOL_UC_L)
        return run_of(c, i, e, SOL_UC_L);
    if (cls != SOL_UC_N && !is_crlf(c[i].cp) && i + 1 < e && c[i + 1].cls == SOL_UC_L)
        return run_of(c, i + 1, e, SOL_UC_L);
    /* \p{N}{1,max} */
    if (cls == SOL_UC_N) {
        size_t j = i;
        while (j < e && j - i < max_digits && c[j].cls == SOL_UC_N)
            j++;
        return j;
    }
    /* ` ?[^\s\p{L}\p{N}]+[\r\n]*` */
    size_t j = c[i].cp == ' ' && i + 1 < e && c[i + 1].cls == SOL_UC_OTHER ? i + 1 : i;
    if (c[j].cls == SOL_UC_OTHER) {
        j = run_of(c, j, e, SOL_UC_OTHER);
        while (j < e && is_crlf(c[j].cp))
            j++;
        return j;
    }
    /* \s*[\r\n]+: up to the last line break of the whitespace run */
    size_t k = run_of(c, i, e, SOL_UC_S);
    for (size_t p = k; p > i; p--)
        if (is_crlf(c[p - 1].cp))
            return p;
    return spaces(c, i, e);
}

static int emit_range(const sol_uchar *c, size_t i, size_t m, sol_pre_emit emit, void *ctx)
{
    return emit(ctx, c[i].off, c[m - 1].off + c[m - 1].len);
}

static int split_gpt2(const sol_uchar *c, size_t i, size_t e, sol_pre_emit emit, void *ctx)
{
    while (i < e) {
        size_t m = match_gpt2(c, i, e);
        int rc = emit_range(c, i, m, emit, ctx);
        if (rc)
            return rc;
        i = m;
    }
    return 0;
}

int sol_pretokenize(sol_pre_kind kind, const sol_uchar *c, size_t n, sol_pre_emit emit, void *ctx)
{
    int rc = 0;
    switch (kind) {
    case SOL_PRE_GPT2:
        return split_gpt2(c, 0, n, emit, ctx);
    case SOL_PRE_SMOLLM:
        /* Each number char stands alone; the text between is a separate
         * string for the GPT-2 split (so its lookahead ends there). */
        for (size_t i = 0; i < n && !rc;) {
            if (c[i].cls == SOL_UC_N) {
                rc = emit_range(c, i, i + 1, emit, ctx);
                i++;
                continue;
            }
            size_t j = i;
            while (j < n && c[j].cls != SOL_UC_N)
                j++;
            rc = split_gpt2(c, i, j, emit, ctx);
            i = j;
        }
        return rc;
    case SOL_PRE_LLAMA3:
    case SOL_PRE_QWEN2:
        for (size_t i = 0; i < n && !rc;) {
            size_t m = match_llama3(c, i, n, kind == SOL_PRE_LLAMA3 ? 3 : 1);
            rc = emit_range(c, i, m, emit, ctx);
            i = m;
        }
        return rc;
    }
    return 0;
}
