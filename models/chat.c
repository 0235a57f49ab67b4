/* Chat templates: recognizes the family of tokenizer.chat_template (a Jinja
 * program we do not run) by the markers it writes, and renders one system +
 * user turn the way that family's template does, up to the assistant header,
 * and what a later turn appends after the assistant's reply. */
#include <stdlib.h>
#include <string.h>

#include "models/tokenizer_impl.h"

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Jinja's `| trim` and Python's strip() (left and right), or rstrip()
 * (right only), for ASCII whitespace. */
static void sb_stripped(sbuf *b, const char *s, int left)
{
    size_t n = strlen(s);
    while (n && is_space(s[n - 1]))
        n--;
    while (left && n && is_space(*s)) {
        s++;
        n--;
    }
    sb_add(b, s, n);
}

/* The system prompt a ChatML template writes when the conversation has
 * none, as SmolLM2's and Qwen's do: the first "<|im_start|>system\n...
 * <|im_end|>" whose text is a plain string literal (no quote or brace of
 * the Jinja around it). NULL when there is none. Escaped \n become newlines. */
static char *chatml_default_system(const char *tmpl, int *oom)
{
    static const char head[] = "<|im_start|>system";
    for (const char *p = strstr(tmpl, head); p; p = strstr(p + 1, head)) {
        const char *q = p + sizeof head - 1;
        if (*q == '\n')
            q++;
        else if (q[0] == '\\' && q[1] == 'n')
            q += 2;
        else
            continue;
        const char *end = strstr(q, "<|im_end|>");
        if (!end || end == q)
            continue;
        size_t n = (size_t)(end - q);
        int plain = 1;
        for (size_t i = 0; i < n && plain; i++)
            plain = !strchr("'\"{}", q[i]);
        if (!plain)
            continue;
        char *out = malloc(n + 1);
        if (!out) {
            *oom = 1;
            return NULL;
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (q[i] == '\\' && i + 1 < n && (q[i + 1] == 'n' || q[i + 1] == 't')) {
                out[m++] = q[i + 1] == 'n' ? '\n' : '\t';
                i++;
            } else {
                out[m++] = q[i];
            }
        }
        out[m] = '\0';
        return out;
    }
    return NULL;
}

static void chatml(sbuf *b, const char *tmpl, const char *system, const char *user)
{
    char *fallback = system ? NULL : chatml_default_system(tmpl, &b->oom);
    if (system || fallback) {
        sb_str(b, "<|im_start|>system\n");
        sb_str(b, system ? system : fallback);
        sb_str(b, "<|im_end|>\n");
    }
    free(fallback);
    sb_str(b, "<|im_start|>user\n");
    sb_str(b, user);
    sb_str(b, "<|im_end|>\n<|im_start|>assistant\n");
}

/* Llama-3: every content `| trim`. */
static void llama3(sbuf *b, const char *system, const char *user)
{
    if (system) {
        sb_str(b, "<|start_header_id|>system<|end_header_id|>\n\n");
        sb_stripped(b, system, 1);
        sb_str(b, "<|eot_id|>");
    }
    sb_str(b, "<|start_header_id|>user<|end_header_id|>\n\n");
    sb_stripped(b, user, 1);
    sb_str(b, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* Llama-2: '[INST] ' + content.strip() + ' [/INST]', the content starting
 * with the <<SYS>> block when there is a system prompt. */
static void llama2(sbuf *b, const char *system, const char *user)
{
    sb_str(b, "[INST] ");
    if (system) {
        sb_str(b, "<<SYS>>\n");
        sb_str(b, system);
        sb_str(b, "\n<</SYS>>\n\n");
    }
    sb_stripped(b, user, !system);
    sb_str(b, " [/INST]");
}

/* Gemma has no system role: the system prompt and a blank line open the
 * first user turn (Gemma 3's template); the content is trimmed. */
static void gemma(sbuf *b, const char *system, const char *user)
{
    sb_str(b, "<start_of_turn>user\n");
    if (system) {
        sb_str(b, system);
        sb_str(b, "\n\n");
    }
    sb_stripped(b, user, 1);
    sb_str(b, "<end_of_turn>\n<start_of_turn>model\n");
}

typedef enum { FAMILY_NONE, FAMILY_CHATML, FAMILY_LLAMA3, FAMILY_GEMMA, FAMILY_LLAMA2 } family;

static family family_of(const char *tmpl)
{
    if (!tmpl)
        return FAMILY_NONE;
    if (strstr(tmpl, "<|im_start|>"))
        return FAMILY_CHATML;
    if (strstr(tmpl, "<|start_header_id|>"))
        return FAMILY_LLAMA3;
    if (strstr(tmpl, "<start_of_turn>"))
        return FAMILY_GEMMA;
    if (strstr(tmpl, "[INST]") && strstr(tmpl, "<<SYS>>"))
        return FAMILY_LLAMA2;
    return FAMILY_NONE;
}

static int finish(sbuf *b, char **out, sol_err *err)
{
    if (b->oom) {
        free(b->p);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory applying the chat template");
    }
    *out = b->p;
    return 0;
}

/* What follows an assistant reply in each family: the reply's end of turn,
 * the next user turn, the assistant's header. */
int sol_chat_next_turn(const sol_tokenizer *t, const char *user, char **out, sol_err *err)
{
    *out = NULL;
    sbuf b = {0};
    switch (family_of(t->chat_template)) {
    case FAMILY_CHATML:
        sb_str(&b, "<|im_end|>\n<|im_start|>user\n");
        sb_str(&b, user);
        sb_str(&b, "<|im_end|>\n<|im_start|>assistant\n");
        break;
    case FAMILY_LLAMA3:
        sb_str(&b, "<|eot_id|>");
        llama3(&b, NULL, user);
        break;
    case FAMILY_GEMMA:
        sb_str(&b, "<end_of_turn>\n");
        gemma(&b, NULL, user);
        break;
    case FAMILY_LLAMA2: /* ' ' + answer + ' ' + eos, then bos + '[INST] ' + user + ' [/INST]' */
        sb_str(&b, " </s><s>");
        llama2(&b, NULL, user);
        break;
    case FAMILY_NONE:
        return 0;
    }
    return finish(&b, out, err);
}

int sol_chat_apply(const sol_tokenizer *t, const char *system, const char *user, char **out, sol_err *err)
{
    *out = NULL;
    const char *tmpl = t->chat_template;
    sbuf b = {0};
    switch (family_of(tmpl)) {
    case FAMILY_CHATML: chatml(&b, tmpl, system, user); break;
    case FAMILY_LLAMA3: llama3(&b, system, user); break;
    case FAMILY_GEMMA: gemma(&b, system, user); break;
    case FAMILY_LLAMA2: llama2(&b, system, user); break;
    case FAMILY_NONE: return 0;
    }
    return finish(&b, out, err);
}

