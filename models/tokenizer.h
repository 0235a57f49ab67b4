/* The tokenizer a GGUF file carries (tokenizer.ggml.*): byte-level BPE
 * (`gpt2`) and SentencePiece (`llama`), special tokens, and chat templates. */
#ifndef SOL_MODELS_TOKENIZER_H
#define SOL_MODELS_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "models/gguf.h"
#include "util/err.h"
#include "util/utf8.h" /* sol_utf8_next, for callers that print pieces */

typedef struct sol_tokenizer sol_tokenizer;

/* Reads tokenizer.ggml.{model,pre,tokens,token_type,merges,scores,...} and
 * tokenizer.chat_template. Everything is copied: the tokenizer outlives g.
 * Encoding and decoding only read the tokenizer: threads may share one.
 * Fails (SOL_ERR_RUNTIME, naming the file and key) on a missing vocabulary,
 * an unsupported tokenizer.ggml.model, or keys of the wrong type. */
int sol_tokenizer_load(const sol_gguf *g, sol_tokenizer **out, sol_err *err);
void sol_tokenizer_free(sol_tokenizer *t);

int sol_tokenizer_n_vocab(const sol_tokenizer *t);
int sol_tokenizer_bos(const sol_tokenizer *t); /* -1 if none */
int sol_tokenizer_eos(const sol_tokenizer *t); /* -1 if none */
/* tokenizer.ggml.add_bos_token; when absent, true for SentencePiece and for
 * the llama-bpe pre-tokenizer (as llama.cpp), false otherwise. */
int sol_tokenizer_add_bos(const sol_tokenizer *t);
/* True for tokens that end a turn or the generation: eos, tokenizer.ggml.
 * eot_token_id / eom_token_id, and control tokens such as <|im_end|>,
 * <|eot_id|>, <|eom_id|>, <end_of_turn>, <|endoftext|>, <|end|>. */
int sol_tokenizer_is_eog(const sol_tokenizer *t, int id);
/* "gpt2", "smollm", "llama-bpe" or "qwen2" for BPE (the split actually used:
 * an unknown tokenizer.ggml.pre falls back to "gpt2"), "spm" for SentencePiece. */
const char *sol_tokenizer_pre(const sol_tokenizer *t);
/* The token's vocabulary string (not NUL-terminated in general: use *len). */
const char *sol_tokenizer_token_text(const sol_tokenizer *t, int id, size_t *len);

/* Encodes any bytes (invalid UTF-8 goes through byte-level BPE or byte
 * fallback, so decoding gives the bytes back; a byte a BPE vocabulary has no
 * token for, e.g. 0xFF in SmolLM2's, is dropped as HF tokenizers and
 * llama.cpp drop it; SentencePiece without <0xNN> gives the unknown token).
 * Control tokens written in the text (e.g. "<|im_start|>") become single ids
 * when parse_special; user-defined tokens always do (HF's non-special added
 * tokens, as llama.cpp). The BOS id is prepended when add_bos and the model
 * has one. *ids is malloc'd (possibly NULL when *n_ids is 0); free it. */
int sol_tokenizer_encode(const sol_tokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                         int32_t **ids, int *n_ids, sol_err *err);
/* Writes the bytes of token id into buf like snprintf: at most cap bytes (no
 * NUL), returns the piece's full length; 0 for an id out of range. A piece
 * may be part of a UTF-8 sequence; the caller streams bytes. Control tokens
 * decode to their text; SentencePiece pieces keep the space ▁ stands for,
 * including the one add_space_prefix put before the first word. */
int sol_tokenizer_decode(const sol_tokenizer *t, int32_t id, char *buf, int cap);
/* The same piece in a malloc'd buffer of *n bytes (NUL-terminated after
 * them), whatever its length: a file's token may be any size. NULL when
 * out of memory. */
char *sol_tokenizer_piece(const sol_tokenizer *t, int32_t id, int *n);

/* Renders one user message (and an optional system prompt) with the model's
 * chat template when tokenizer.chat_template is one of the common families:
 * ChatML (<|im_start|>; a default system prompt written in the template, as
 * SmolLM2's and Qwen's, is used when system is NULL), Llama-2 ([INST] with
 * <<SYS>>), Llama-3 (<|start_header_id|>) and Gemma (<start_of_turn>; the
 * system prompt is folded into the user turn). The text ends with the
 * assistant's header, and has no BOS (encode adds it per add_bos); encode it
 * with parse_special. *out = NULL (return 0) when the template is absent or
 * unknown: the caller uses the raw prompt. *out is malloc'd. */
int sol_chat_apply(const sol_tokenizer *t, const char *system, const char *user, char **out, sol_err *err);
/* A later turn of the same conversation: what the family's template writes
 * after an assistant reply (the reply's end of turn, which the engine never
 * evaluates when it samples it) for the next user message, up to the
 * assistant's header. Encode it without BOS and append it to the tokens in
 * the cache: the conversation's tokens are its cache's, never re-rendered.
 * *out = NULL (return 0) for an unknown template. */
int sol_chat_next_turn(const sol_tokenizer *t, const char *user, char **out, sol_err *err);


#endif
