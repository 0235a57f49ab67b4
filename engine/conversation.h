/* A conversation over an engine: turns of user messages and sampled
 * replies whose tokens stay in the KV cache between turns, so a turn
 * prefills only its own tokens (character.ai's inter-turn reuse, within a
 * process). The conversation's tokens are the cache's: a later turn appends
 * what the chat template writes after a reply, never a re-rendering of the
 * history. With reuse off every turn prefills the whole conversation (the
 * comparison). */
#ifndef SOL_ENGINE_CONVERSATION_H
#define SOL_ENGINE_CONVERSATION_H

#include "engine/engine.h"
#include "engine/kv_segments.h"
#include "models/tokenizer.h"

typedef struct sol_chat_options {
    const char *system; /* may be NULL */
    int max_reply;      /* tokens per reply at most */
    int reuse;          /* keep the cache between turns */
} sol_chat_options;

/* What one turn did. */
typedef struct sol_chat_turn {
    int turn;               /* 1-based */
    int tokens_reused;      /* in the cache already when the turn began */
    int tokens_prefilled;   /* evaluated to reach the first reply token */
    double ttft_s;          /* the message's tokens in, to the first reply token sampled */
    uint64_t logits_hash;   /* FNV-1a of the logits the first reply token came from */
    int generated;          /* reply tokens (the end-of-turn token not counted) */
    double decode_s;        /* the reply's steps after the first token */
    int context_full;       /* the reply stopped at the end of the context */
    int64_t ctx;
    double bytes_saved;     /* segments written after the message and after the reply */
    double bytes_loaded;    /* KV rows read from the store for this turn (a resume, a stored prefix found) */
    char notice[512];       /* a segment that could not be written (the conversation goes on), else "" */
} sol_chat_turn;

typedef struct sol_chat sol_chat;
typedef void (*sol_chat_piece_fn)(const sol_tokenizer *tok, int32_t id, void *user);

/* e and tok are borrowed and must outlive the conversation. */
int sol_chat_new(sol_engine *e, const sol_tokenizer *tok, const sol_chat_options *o, sol_chat **out, sol_err *err);
void sol_chat_free(sol_chat *c);
/* 1 when the model has no chat template sol knows: messages go in raw. */
int sol_chat_raw(const sol_chat *c);
/* One user message and the model's reply, each reply token handed to
 * piece (may be NULL) as it is sampled. */
int sol_chat_say(sol_chat *c, const char *message, sol_chat_piece_fn piece, void *user, sol_chat_turn *out,
                 sol_err *err);
/* Segments of the conversation go to store (borrowed) after each message
 * and each reply, the head of session `name` (may be NULL) following. */
void sol_chat_attach_store(sol_chat *c, sol_kv_store *store, const char *name);
/* Before the first message: the conversation of session `name` brought back
 * from the store (its segments instead of a prefill). *out says what was
 * loaded; out->n = 0 with a notice when a segment was refused (then the
 * conversation starts empty). */
int sol_chat_resume(sol_chat *c, sol_kv_loaded *out, sol_err *err);
/* The conversation's tokens so far (those in the cache, then a reply token
 * not yet evaluated, if any). */
const int32_t *sol_chat_tokens(const sol_chat *c, int *n);

#endif
