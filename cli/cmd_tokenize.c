/* sol tokenize: text -> token ids with the tokenizer a GGUF file carries
 * (optionally through its chat template), and ids -> text with --decode. */
#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "models/tokenizer.h"

#define CMD "tokenize"

void usage_tokenize(FILE *f)
{
    fprintf(f, "usage: sol tokenize MODEL.gguf [--no-bos] [--no-special] [--chat] [--system S]\n"
               "                    [--format table|json] TEXT\n"
               "       sol tokenize MODEL.gguf --decode ID,ID,... [--format table|json]\n\n"
               "Encodes TEXT (`-` reads standard input; `--` ends the options) with the model's own\n"
               "tokenizer: byte-level BPE (tokenizer.ggml.model gpt2) or SentencePiece (llama).\n"
               "The table gives one token per line: its id and the bytes it stands for; json gives\n"
               "{\"ids\", \"tokens\", \"text\", \"n_tokens\"} (invalid UTF-8 shows as U+FFFD there).\n\n"
               "  --no-bos         do not prepend BOS (default: the model's add_bos_token)\n"
               "  --no-special     control tokens written in TEXT (e.g. <|im_start|>) stay text\n"
               "  --chat           wrap TEXT as one user turn of the model's chat template (ChatML,\n"
               "                   Llama-2, Llama-3, Gemma), with the template's default system prompt\n"
               "  --system S       system prompt for --chat (implies --chat)\n"
               "  --decode IDS     print the text of comma-separated token ids instead\n"
               "  --format F       table (default) or json\n");
}

typedef struct opts {
    const char *model, *text, *system, *decode;
    int no_bos, no_special, chat;
    cli_format format;
} opts;

/* Strings for JSON: valid UTF-8 kept, every other byte (and NUL) as U+FFFD. */
static char *json_safe(const char *s, size_t n)
{
    char *out = malloc(3 * n + 1);
    if (!out)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = s[i] ? sol_utf8_next((const unsigned char *)s + i, n - i, &cp) : 0;
        if (len) {
            memcpy(out + m, s + i, (size_t)len);
            m += (size_t)len;
            i += (size_t)len;
        } else {
            memcpy(out + m, "\xef\xbf\xbd", 3);
            m += 3;
            i++;
        }
    }
    out[m] = '\0';
    return out;
}

/* A piece for the table: quoted, valid UTF-8 as it is, escapes for the rest. */
static void print_quoted(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        int len = sol_utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (len > 1) {
            fwrite(s + i, 1, (size_t)len, stdout);
            i += (size_t)len;
            continue;
        }
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
        i++;
    }
    putchar('"');
}

static int read_stdin(char **text, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
    }
    if (!buf || ferror(stdin)) {
        free(buf);
        fprintf(stderr, "sol %s: standard input: %s\n", CMD, buf ? strerror(errno) : "out of memory");
        return SOL_ERR_RUNTIME;
    }
    *text = buf;
    *len = n;
    return 0;
}

static int print_encoding(const sol_tokenizer *t, const opts *o, const char *text, size_t len,
                          const int32_t *ids, int n_ids)
{
    cJSON *doc = o->format == CLI_FORMAT_JSON ? cJSON_CreateObject() : NULL;
    cJSON *jids = NULL, *jtoks = NULL;
    if (doc) {
        jids = cJSON_AddArrayToObject(doc, "ids");
        jtoks = cJSON_AddArrayToObject(doc, "tokens");
    } else {
        printf("%7s  %s\n", "id", "text");
    }
    for (int i = 0; i < n_ids; i++) {
        int n;
        char *p = sol_tokenizer_piece(t, ids[i], &n);
        char *safe = p && doc ? json_safe(p, (size_t)n) : NULL;
        if (!p || (doc && !safe)) {
            free(p);
            cJSON_Delete(doc);
            fprintf(stderr, "sol %s: out of memory\n", CMD);
            return SOL_ERR_RUNTIME;
        }
        if (doc) {
            cJSON_AddItemToArray(jids, cJSON_CreateNumber(ids[i]));
            cJSON_AddItemToArray(jtoks, cJSON_CreateString(safe));
        } else {
            printf("%7d  ", ids[i]);
            print_quoted(p, (size_t)n);
            putchar('\n');
        }
        free(safe);
        free(p);
    }
    if (!doc)
        return 0;
    char *safe = json_safe(text, len);
    if (!safe) {
        cJSON_Delete(doc);
        return SOL_ERR_RUNTIME;
    }
    cJSON_AddStringToObject(doc, "text", safe);
    free(safe);
    cJSON_AddNumberToObject(doc, "n_tokens", n_ids);
    return cli_print_json(doc);
}

static int encode(const sol_tokenizer *t, const opts *o)
{
    char *input = NULL, *chat = NULL;
    size_t len = 0;
    sol_err err = {0};
    int rc = 0;
    if (!strcmp(o->text, "-")) {
        if ((rc = read_stdin(&input, &len)))
            return rc;
    } else {
        input = strdup(o->text);
        len = strlen(o->text);
        if (!input)
            return SOL_ERR_RUNTIME;
    }
    const char *text = input;
    if (o->chat) {
        if (strlen(input) != len) {
            free(input);
            return cli_usage_error(CMD, "--chat: TEXT holds a NUL byte");
        }
        if (sol_chat_apply(t, o->system, input, &chat, &err)) {
            free(input);
            return cli_fail(CMD, &err);
        }
        if (chat) {
            text = chat;
            len = strlen(chat);
        } else {
            fprintf(stderr, "sol %s: note: the model has no chat template sol knows; tokenizing TEXT as it is\n",
                    CMD);
        }
    }
    int32_t *ids = NULL;
    int n_ids = 0;
    if (sol_tokenizer_encode(t, text, len, !o->no_bos && sol_tokenizer_add_bos(t), !o->no_special, &ids, &n_ids,
                             &err))
        rc = cli_fail(CMD, &err);
    else
        rc = print_encoding(t, o, text, len, ids, n_ids);
    free(ids);
    free(chat);
    free(input);
    return rc;
}

/* "1,2, 3" -> ids; usage error on anything else or an id out of range. */
static int parse_ids(const char *text, int n_vocab, int32_t **ids, int *n_ids)
{
    int cap = (int)(strlen(text) / 2 + 1);
    long long *v = malloc((size_t)cap * sizeof *v);
    int32_t *out = malloc((size_t)cap * sizeof *out);
    if (!v || !out) {
        free(v);
        free(out);
        return SOL_ERR_RUNTIME;
    }
    int rc = 0;
    *n_ids = 0;
    if (text[strspn(text, " ")]) /* no ids at all decode to no text */
        rc = cli_parse_int_list(CMD, "--decode", text, 0, n_vocab - 1, v, cap, n_ids);
    for (int i = 0; !rc && i < *n_ids; i++)
        out[i] = (int32_t)v[i];
    free(v);
    if (rc)
        free(out);
    else
        *ids = out;
    return rc;
}

static int decode(const sol_tokenizer *t, const opts *o)
{
    int32_t *ids = NULL;
    int n_ids = 0;
    int rc = parse_ids(o->decode, sol_tokenizer_n_vocab(t), &ids, &n_ids);
    if (rc)
        return rc;
    size_t cap = 256, len = 0;
    char *text = malloc(cap);
    for (int i = 0; i < n_ids && text; i++) {
        int n;
        char *p = sol_tokenizer_piece(t, ids[i], &n);
        if (p && len + (size_t)n > cap) {
            while (len + (size_t)n > cap)
                cap *= 2;
            char *grown = realloc(text, cap);
            if (!grown) {
                free(p);
                p = NULL;
            } else {
                text = grown;
            }
        }
        if (!p) {
            free(text);
            text = NULL;
            break;
        }
        memcpy(text + len, p, (size_t)n);
        len += (size_t)n;
        free(p);
    }
    if (!text) {
        free(ids);
        fprintf(stderr, "sol %s: out of memory\n", CMD);
        return SOL_ERR_RUNTIME;
    }
    if (o->format == CLI_FORMAT_JSON) {
        cJSON *doc = cJSON_CreateObject();
        cJSON *jids = cJSON_AddArrayToObject(doc, "ids");
        for (int i = 0; i < n_ids; i++)
            cJSON_AddItemToArray(jids, cJSON_CreateNumber(ids[i]));
        char *safe = json_safe(text, len);
        cJSON_AddStringToObject(doc, "text", safe ? safe : "");
        free(safe);
        rc = safe ? cli_print_json(doc) : (cJSON_Delete(doc), SOL_ERR_RUNTIME);
    } else {
        fwrite(text, 1, len, stdout); /* the exact bytes, then a newline */
        putchar('\n');
    }
    free(text);
    free(ids);
    return rc;
}

static int parse_args(int argc, char **argv, opts *o)
{
    const char *pos[2];
    int n_pos = 0, options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (options_done || a[0] != '-' || !strcmp(a, "-")) {
            if (n_pos == 2)
                return cli_usage_error(CMD, "too many arguments (quote TEXT as one argument)");
            pos[n_pos++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            options_done = 1;
            continue;
        }
        if (!strcmp(a, "--no-bos")) {
            o->no_bos = 1;
            continue;
        }
        if (!strcmp(a, "--no-special")) {
            o->no_special = 1;
            continue;
        }
        if (!strcmp(a, "--chat")) {
            o->chat = 1;
            continue;
        }
        static const char *const with_value[] = {"--format", "--system", "--decode"};
        int k = -1;
        for (int j = 0; j < 3 && k < 0; j++) {
            size_t n = strlen(with_value[j]);
            if (!strncmp(a, with_value[j], n) && (a[n] == '\0' || a[n] == '=')) {
                k = j;
                if (a[n] == '=')
                    val = a + n + 1;
                else if (i + 1 < argc)
                    val = argv[++i];
                else
                    return cli_usage_error(CMD, "%s needs a value", with_value[j]);
            }
        }
        if (k < 0)
            return cli_usage_error(CMD, "unknown option \"%s\" (see sol tokenize --help)", a);
        if (k == 0 && cli_parse_format(CMD, val, &o->format))
            return SOL_ERR_USAGE;
        if (k == 1) {
            o->system = val;
            o->chat = 1;
        }
        if (k == 2)
            o->decode = val;
    }
    if (o->format == CLI_FORMAT_CSV)
        return cli_usage_error(CMD, "--format: csv is not offered here; use table or json");
    if (n_pos == 0)
        return cli_usage_error(CMD, "missing MODEL (a .gguf file; see sol tokenize --help)");
    o->model = pos[0];
    if (o->decode) {
        if (n_pos > 1)
            return cli_usage_error(CMD, "--decode takes ids, not TEXT");
        if (o->chat || o->no_bos || o->no_special)
            return cli_usage_error(CMD, "--decode does not combine with --chat, --system, --no-bos or --no-special");
        return 0;
    }
    if (n_pos < 2)
        return cli_usage_error(CMD, "missing TEXT (or - to read standard input)");
    o->text = pos[1];
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    opts o = {.format = CLI_FORMAT_TABLE};
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    sol_gguf g;
    sol_err err = {0};
    sol_tokenizer *t = NULL;
    if (sol_gguf_open(&g, o.model, &err))
        return cli_fail(CMD, &err);
    rc = sol_tokenizer_load(&g, &t, &err);
    sol_gguf_close(&g);
    if (rc)
        return cli_fail(CMD, &err);
    rc = o.decode ? decode(t, &o) : encode(t, &o);
    sol_tokenizer_free(t);
    return rc;
}
