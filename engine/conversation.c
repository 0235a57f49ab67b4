/* A conversation (conversation.h): the tokens, the turns, the timing. */
#include "engine/conversation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kv_state.h"
#include "util/clock.h"
#include "util/hash.h"

struct sol_chat {
    sol_engine *e;
    const sol_tokenizer *tok;
    sol_chat_options o;
    int raw, turns;
    int32_t *tokens; /* the conversation: in the cache [0, in_cache), then a pending reply token */
    int n_tokens, cap, in_cache;
    sol_kv_store *store; /* may be NULL */
    const char *session;
    int64_t saved_to;    /* the stored prefix: [0, saved_to), hashed saved_hash */
    uint64_t saved_hash;
    double resumed_bytes; /* loaded by sol_chat_resume, counted with the next turn */
};

int sol_chat_new(sol_engine *e, const sol_tokenizer *tok, const sol_chat_options *o, sol_chat **out, sol_err *err)
{
    sol_chat *c = calloc(1, sizeof *c);
    if (!c)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    c->e = e;
    c->tok = tok;
    c->o = *o;
    char *probe = NULL;
    int rc = sol_chat_apply(tok, NULL, "", &probe, err);
    c->raw = !rc && !probe;
    free(probe);
    sol_engine_reset(e);
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void sol_chat_free(sol_chat *c)
{
    if (!c)
        return;
    free(c->tokens);
    free(c);
}

static int append(sol_chat *c, const int32_t *ids, int n, sol_err *err);

int sol_chat_raw(const sol_chat *c) { return c->raw; }

void sol_chat_attach_store(sol_chat *c, sol_kv_store *store, const char *name)
{
    c->store = store;
    c->session = name;
    c->saved_to = 0;
    c->saved_hash = store ? store->key : 0;
}

int sol_chat_resume(sol_chat *c, sol_kv_loaded *out, sol_err *err)
{
    uint64_t head;
    int turns = 0;
    memset(out, 0, sizeof *out);
    if (!c->store || !c->session || c->turns > 0 || !sol_kv_session_head(c->store, c->session, &head, &turns))
        return 0;
    int rc = sol_kv_segment_load(c->store, c->e, head, out, err);
    if (rc || out->n == 0)
        return rc;
    c->n_tokens = 0;
    if ((rc = append(c, out->tokens, (int)out->n, err)))
        return rc;
    c->in_cache = (int)out->n;
    c->saved_to = out->n;
    c->saved_hash = head;
    c->resumed_bytes = out->bytes;
    c->turns = turns > 0 ? turns : 1; /* what follows is a later turn */
    return 0;
}

/* The cache's new positions as a segment, the session's head moved to it;
 * a failure is a notice (the conversation goes on without it). */
static void save(sol_chat *c, sol_chat_turn *t)
{
    if (!c->store || c->in_cache <= c->saved_to)
        return;
    sol_err err = {0};
    uint64_t hash;
    double bytes = 0;
    int rc = sol_kv_segment_save(c->store, c->e, c->tokens, c->saved_to, c->in_cache, c->saved_hash, &hash, &bytes,
                                 &err);
    if (!rc && c->session)
        rc = sol_kv_session_set(c->store, c->session, hash, c->turns, &err);
    if (rc) {
        snprintf(t->notice, sizeof t->notice, "%.470s; the conversation goes on unsaved", err.msg);
        return;
    }
    c->saved_to = c->in_cache;
    c->saved_hash = hash;
    t->bytes_saved += bytes;
}

const int32_t *sol_chat_tokens(const sol_chat *c, int *n)
{
    *n = c->n_tokens;
    return c->tokens;
}

static int append(sol_chat *c, const int32_t *ids, int n, sol_err *err)
{
    if (c->n_tokens + n > c->cap) {
        int cap = c->cap ? c->cap : 256;
        while (cap < c->n_tokens + n)
            cap *= 2;
        int32_t *p = realloc(c->tokens, (size_t)cap * sizeof *p);
        if (!p)
            return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
        c->tokens = p;
        c->cap = cap;
    }
    memcpy(c->tokens + c->n_tokens, ids, (size_t)n * sizeof *ids);
    c->n_tokens += n;
    return 0;
}

/* The message's tokens as the template puts them after what came before. */
static int message_tokens(sol_chat *c, const char *message, sol_err *err)
{
    char *text = NULL;
    int first = c->turns == 0, rc;
    if (c->raw)
        rc = 0;
    else if (first)
        rc = sol_chat_apply(c->tok, c->o.system, message, &text, err);
    else
        rc = sol_chat_next_turn(c->tok, message, &text, err);
    if (rc)
        return rc;
    const char *in = text ? text : message;
    char *raw = NULL;
    if (!text && !first && (raw = malloc(strlen(message) + 2))) { /* raw turns one per line */
        raw[0] = '\n';
        strcpy(raw + 1, message);
        in = raw;
    }
    int32_t *ids = NULL;
    int n = 0;
    rc = sol_tokenizer_encode(c->tok, in, strlen(in), first && sol_tokenizer_add_bos(c->tok), 1, &ids, &n, err);
    if (!rc)
        rc = append(c, ids, n, err);
    free(ids);
    free(text);
    free(raw);
    return rc;
}

/* A conversation starting with an empty cache whose tokens so far are
 * found in the store (another conversation, or an earlier run of this one,
 * stored the same prefix): the chain loaded
 * and the last token given back, to be evaluated again for the logits the
 * reply starts from. Nothing changes when there is none or it is refused
 * (t->notice says why). */
static int find_stored(sol_chat *c, sol_chat_turn *t, sol_err *err)
{
    if (!c->store || !c->o.reuse || c->in_cache > 0 || c->n_tokens < 2)
        return 0;
    uint64_t h = sol_kv_prefix_hash(c->store->key, c->tokens, c->n_tokens);
    if (!sol_kv_segment_exists(c->store, h))
        return 0;
    sol_kv_loaded l;
    int rc = sol_kv_segment_load(c->store, c->e, h, &l, err);
    if (!rc && l.n == c->n_tokens && memcmp(l.tokens, c->tokens, (size_t)l.n * sizeof *c->tokens) == 0) {
        rc = sol_engine_kv_set_prefix(c->e, c->tokens, l.n - 1, err);
        c->in_cache = (int)l.n - 1;
        c->saved_to = l.n;
        c->saved_hash = h;
        t->bytes_loaded += l.bytes;
    } else if (!rc) { /* refused (or not this prefix): the cache was reset; the history is prefilled */
        snprintf(t->notice, sizeof t->notice, "%.500s", l.notice[0] ? l.notice : "a stored prefix did not match");
        c->in_cache = 0;
    }
    sol_kv_loaded_free(&l);
    return rc;
}

/* The tokens not in the cache yet, evaluated (all of them again without
 * reuse); *next is the first reply token. */
static int prefill(sol_chat *c, sol_chat_turn *t, int32_t *next, sol_err *err)
{
    if (!c->o.reuse) {
        sol_engine_reset(c->e);
        c->in_cache = 0;
    }
    double t0 = sol_now_s();
    int rc = find_stored(c, t, err);
    if (rc)
        return rc;
    t->tokens_reused = c->in_cache;
    t->tokens_prefilled = c->n_tokens - c->in_cache;
    if (t->tokens_prefilled < 1)
        return sol_fail(err, SOL_ERR_USAGE, "the message encodes to no tokens");
    if (c->n_tokens >= sol_engine_ctx(c->e))
        return sol_fail(err, SOL_ERR_USAGE, "the conversation (%d tokens) does not fit the %lld-token context",
                        c->n_tokens, (long long)sol_engine_ctx(c->e));
    rc = sol_engine_eval(c->e, c->tokens + c->in_cache, t->tokens_prefilled, 0, NULL, NULL, next, err);
    if (!rc)
        rc = sol_engine_prompt_done(c->e, err);
    t->ttft_s = sol_now_s() - t0;
    const float *logits;
    if (!rc && !(rc = sol_engine_logits(c->e, 0, &logits, err))) /* what the first reply token came from */
        t->logits_hash = sol_fnv1a(SOL_FNV1A_INIT, logits, (size_t)sol_engine_model(c->e)->vocab * sizeof *logits);
    if (!rc)
        c->in_cache = c->n_tokens;
    return rc;
}

int sol_chat_say(sol_chat *c, const char *message, sol_chat_piece_fn piece, void *user, sol_chat_turn *out,
                 sol_err *err)
{
    sol_chat_turn t = {.turn = c->turns + 1, .ctx = sol_engine_ctx(c->e), .bytes_loaded = c->resumed_bytes};
    c->resumed_bytes = 0;
    int32_t next = -1;
    int rc = message_tokens(c, message, err);
    if (rc || (rc = prefill(c, &t, &next, err)))
        return rc;
    c->turns++;
    save(c, &t);
    double t0 = sol_now_s();
    /* every reply token goes into the cache, the last one too (its sample
     * is dropped): a turn ends at a message boundary whatever stopped it.
     * An end-of-turn token comes back in the next turn's text. */
    while (!rc && !sol_tokenizer_is_eog(c->tok, next)) {
        if (piece)
            piece(c->tok, next, user);
        t.generated++;
        if ((rc = append(c, &next, 1, err)))
            break;
        if (c->in_cache + 1 >= t.ctx) {
            t.context_full = 1;
            break; /* no room to evaluate it: it stays pending */
        }
        rc = sol_engine_eval(c->e, &next, 1, 0, NULL, NULL, &next, err);
        c->in_cache += !rc;
        if (t.generated == c->o.max_reply)
            break;
    }
    t.decode_s = sol_now_s() - t0;
    if (!rc)
        save(c, &t);
    *out = t;
    return rc;
}
