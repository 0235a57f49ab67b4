/* Internals shared by the tokenizer's files (tokenizer.c, tokenizer_pre.c,
 * chat.c, tokenizer_unicode.c); not part of the models/ interface. */
#ifndef SOL_MODELS_TOKENIZER_IMPL_H
#define SOL_MODELS_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "models/tokenizer.h"

/* ---- Unicode ---------------------------------------------------------- */

typedef struct sol_uni_range {
    uint32_t lo, hi;
    uint8_t cls; /* SOL_UC_L or SOL_UC_N */
} sol_uni_range;

extern const sol_uni_range sol_uni_ranges[]; /* generated: tokenizer_unicode.c */
extern const int sol_uni_n_ranges;

enum { SOL_UC_OTHER = 0, SOL_UC_L = 1, SOL_UC_N = 2, SOL_UC_S = 4 };

/* One character of the text: a code point, or one byte of invalid UTF-8
 * (cp = -1, class other) so that any bytes tokenize and decode back. */
typedef struct sol_uchar {
    uint32_t off; /* byte offset in the text */
    int32_t cp;
    uint8_t len;  /* bytes: 1..4 */
    uint8_t cls;  /* SOL_UC_* */
} sol_uchar;

/* Class of a code point: L, N, S (White_Space, what Oniguruma's \s matches)
 * or other. */
int sol_uni_class(uint32_t cp);
/* Decodes text into chars (n_text entries are enough); returns the count. */
size_t sol_utf8_chars(const char *text, size_t n_text, sol_uchar *chars);

/* ---- pre-tokenizers (regex splits of byte-level BPE) ------------------ */

typedef enum sol_pre_kind {
    SOL_PRE_GPT2,   /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    SOL_PRE_SMOLLM, /* every \p{N} alone, then GPT2 on the rest (HF Digits(individual) + ByteLevel) */
    SOL_PRE_LLAMA3, /* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
                       ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
    SOL_PRE_QWEN2,  /* LLAMA3 with \p{N} one at a time */
} sol_pre_kind;

/* Calls emit(ctx, begin, end) with the byte ranges (relative to the text the
 * chars were decoded from) of the pre-tokens of chars[0..n), in order; they
 * cover the text. Stops and returns the first non-zero emit result. */
typedef int (*sol_pre_emit)(void *ctx, size_t begin, size_t end);
int sol_pretokenize(sol_pre_kind kind, const sol_uchar *chars, size_t n, sol_pre_emit emit, void *ctx);

/* ---- the tokenizer ---------------------------------------------------- */

enum { SOL_TOK_BPE, SOL_TOK_SPM };

/* llama.cpp's token types (tokenizer.ggml.token_type). */
enum {
    SOL_TT_UNDEFINED = 0, SOL_TT_NORMAL = 1, SOL_TT_UNKNOWN = 2, SOL_TT_CONTROL = 3,
    SOL_TT_USER_DEFINED = 4, SOL_TT_UNUSED = 5, SOL_TT_BYTE = 6,
};

#define SOL_BYTE_CPS (256 + 68) /* code points the byte-level map uses */

struct sol_merge_slot {
    uint64_t key; /* left id << 32 | right id; UINT64_MAX = empty */
    int32_t rank;
    int32_t merged;
};

struct sol_tokenizer {
    int model;          /* SOL_TOK_BPE or SOL_TOK_SPM */
    sol_pre_kind pre;   /* BPE only */
    int n_vocab;
    char *text;         /* every token string, each followed by a NUL */
    uint32_t *text_off; /* n_vocab + 1 offsets into text */
    uint8_t *type;      /* SOL_TT_* per id */
    float *score;       /* SPM: per id */
    uint8_t *eog;       /* per id: ends a turn */

    uint64_t *tok_slots; /* string -> hash tag << 32 | id + 1; open addressing, 0 = empty */
    size_t tok_mask;
    struct sol_merge_slot *merges; /* BPE: pair -> rank and merged id */
    size_t merge_mask;

    int32_t byte_token[256]; /* BPE: byte-level char of each byte; SPM: <0xNN>; -1: none */
    uint16_t byte_cp[256];           /* GPT-2 byte -> code point */
    int16_t cp_byte[SOL_BYTE_CPS];   /* and back; -1: not a byte's */
    int bos, eos, unk;
    int add_bos, add_space_prefix, ignore_merges;

    int32_t *special;   /* control and user-defined ids, by first byte, longest first */
    int n_special;
    int special_start[257];

    char *chat_template; /* NULL when absent */
};

/* Id of the token whose string is s[0..n), or -1. */
int sol_tok_lookup(const sol_tokenizer *t, const char *s, size_t n);

#endif
