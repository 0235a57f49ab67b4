/* sol chat: a multi-turn conversation that keeps its KV cache between
 * turns, so a turn prefills only its new tokens (character.ai's inter-turn
 * reuse, within one process). One user message per line on stdin; the
 * reply streams to stdout. The conversation's tokens are the cache's: a
 * later turn appends what the chat template writes after a reply
 * (sol_chat_next_turn), never a re-rendering of the history. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/conversation.h"
#include "engine/engine.h"
#include "models/tokenizer.h"
#include "util/clock.h"

void usage_chat(FILE *f)
{
    fprintf(f, "usage: sol chat MODEL.gguf [--system TEXT] [-n N] [--temp T] [--seed S] [--json]\n"
               "                [--kv SCHEME] [--kvtype T] [--ctx T] [-t N] [--backend B] [--no-reuse]\n"
               "                [--session NAME [--session-cap SIZE]]\n"
               "       sol chat --sessions | --rm-session NAME\n\n"
               "A conversation with the model's chat template: one user message per line on stdin\n"
               "(a \"> \" prompt on a terminal), the reply on stdout. The KV cache is kept between\n"
               "turns, so each turn prefills only its own tokens; stderr (or --json, one object per\n"
               "turn on stdout) says how many tokens were reused and prefilled and the time to the\n"
               "first token. --no-reuse prefills the whole conversation every turn instead (the\n"
               "comparison). Ends at end of input or when the context is full.\n"
               "--session NAME keeps the conversation's KV cache on disk as segments, after each\n"
               "message and each reply: a later `sol chat --session NAME` loads them instead of\n"
               "prefilling the history, and goes on from there. Segments are keyed by the model\n"
               "file, KV scheme and type and the tokens' rolling hash, hold only what the scheme\n"
               "keeps, and are checked whole (a mismatch or a bad checksum: one line, recomputed);\n"
               "the least recently used go past --session-cap (default 4G). The store is\n"
               "$SOL_SESSIONS, else $XDG_CACHE_HOME/sol/sessions, else ~/.cache/sol/sessions.\n\n"
               "options:\n"
               "  --system TEXT         system prompt\n"
               "  -n N                  reply tokens at most per turn (default 256)\n"
               "  --temp T, --seed S    sampling (default greedy: 0)\n"
               "  --json                per turn: {turn, tokens_reused, tokens_prefilled, bytes_loaded,\n"
               "                        ttft_s, logits_hash, ...}; last {turns, hit_rate, ...}\n"
               "  --kv SCHEME, --kvtype T, --ctx T, --activations q8|f32   as sol run\n"
               "  -t N, --threads N     CPU threads\n" CLI_BACKEND_HELP CLI_CUDA_HELP
               "  --no-reuse            every turn prefills the whole conversation\n"
               "  --session NAME        keep and resume the conversation on disk\n"
               "  --session-cap SIZE    bytes of segments kept at most (K, M, G suffixes; 0: no cap)\n"
               "  --sessions            list the sessions and the segments' bytes\n"
               "  --rm-session NAME     forget a session (its segments go by eviction)\n");
}

typedef struct {
    const char *model, *system, *session, *rm_session;
    int n, json, no_reuse, list_sessions;
    double session_cap;
    cli_backend_opts backend;
    sol_engine_config engine;
    long long ctx;
} chat_opts;

static int parse_opts(int argc, char **argv, chat_opts *o)
{
    enum { O_SYSTEM = 3000, O_TEMP, O_SEED, O_JSON, O_KV, O_KVTYPE, O_CTX, O_BACKEND, O_NOREUSE, O_ACT,
           O_SESSION, O_CAP, O_LIST, O_RM };
    static const struct option long_opts[] = {
        {"system", 1, 0, O_SYSTEM}, {"temp", 1, 0, O_TEMP},       {"seed", 1, 0, O_SEED},
        {"json", 0, 0, O_JSON},     {"kv", 1, 0, O_KV},           {"kvtype", 1, 0, O_KVTYPE},
        {"ctx", 1, 0, O_CTX},       {"backend", 1, 0, O_BACKEND}, {"no-reuse", 0, 0, O_NOREUSE},
        {"threads", 1, 0, 't'},     {"activations", 1, 0, O_ACT}, {"session", 1, 0, O_SESSION},
        {"session-cap", 1, 0, O_CAP}, {"sessions", 0, 0, O_LIST}, {"rm-session", 1, 0, O_RM}, CLI_CUDA_LONG_OPTS, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->n = 256;
    o->backend.profile_every = CLI_CUDA_PROFILE_EVERY;
    o->session_cap = 4.0 * (1 << 30);
    sol_engine_defaults(&o->engine);
    o->engine.sampler.temperature = 0;
    long long v;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":n:t:", long_opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (cli_parse_ll("chat", "-n", optarg, &v) || v < 1 || v > 1000000)
                return cli_usage_error("chat", "-n: expected 1..1000000 tokens, got \"%s\"", optarg);
            o->n = (int)v;
            break;
        case 't':
            if (cli_parse_ll("chat", "-t", optarg, &v) || v < 1 || v > 1024)
                return cli_usage_error("chat", "-t: expected 1..1024 threads, got \"%s\"", optarg);
            o->backend.threads = (int)v;
            break;
        case O_SYSTEM: o->system = optarg; break;
        case O_TEMP: {
            char *end;
            double t = strtod(optarg, &end);
            if (end == optarg || *end || !(t >= 0 && t <= 100))
                return cli_usage_error("chat", "--temp: expected 0..100, got \"%s\"", optarg);
            o->engine.sampler.temperature = (float)t;
            break;
        }
        case O_SEED:
            if (cli_parse_ll("chat", "--seed", optarg, &v))
                return SOL_ERR_USAGE;
            o->engine.sampler.seed = (uint64_t)v;
            break;
        case O_JSON: o->json = 1; break;
        case O_KV: o->engine.kv = optarg; break;
        case O_KVTYPE:
            if (cli_parse_kvtype("chat", optarg, &o->engine.kvtype))
                return SOL_ERR_USAGE;
            break;
        case O_CTX:
            if (cli_parse_ll("chat", "--ctx", optarg, &o->ctx) || o->ctx < 1)
                return cli_usage_error("chat", "--ctx: expected a positive token count, got \"%s\"", optarg);
            o->engine.ctx = o->ctx;
            break;
        case O_BACKEND:
            if (cli_parse_backend("chat", optarg, &o->backend.name))
                return SOL_ERR_USAGE;
            break;
        case O_NOREUSE: o->no_reuse = 1; break;
        case O_SESSION: o->session = optarg; break;
        case O_LIST: o->list_sessions = 1; break;
        case O_RM: o->rm_session = optarg; break;
        case O_CAP: {
            char *end;
            double v2 = strtod(optarg, &end), unit = 1;
            if (*end == 'K' || *end == 'k')
                unit = 1024.0, end++;
            else if (*end == 'M' || *end == 'm')
                unit = 1024.0 * 1024, end++;
            else if (*end == 'G' || *end == 'g')
                unit = 1024.0 * 1024 * 1024, end++;
            if (end == optarg || *end || !(v2 >= 0 && v2 * unit < 1e18))
                return cli_usage_error("chat", "--session-cap: expected bytes (K, M, G suffixes), got \"%s\"",
                                       optarg);
            o->session_cap = v2 * unit;
            break;
        }
        case O_ACT:
            if (cli_parse_activations("chat", optarg, &o->engine.activations))
                return SOL_ERR_USAGE;
            break;
        case ':': return cli_usage_error("chat", "%s needs a value", argv[optind - 1]);
        default:
            switch (cli_parse_cuda_opt("chat", c, optarg, &o->backend)) {
            case 1: break;
            case 2: return SOL_ERR_USAGE;
            default: return cli_usage_error("chat", "unknown option \"%s\" (see sol chat --help)", argv[optind - 1]);
            }
        }
    }
    const char *name = o->session ? o->session : o->rm_session;
    if (name && !sol_kv_session_name_ok(name))
        return cli_usage_error("chat", "--session: \"%s\" is not a session name (letters, digits, . _ -)", name);
    if (o->session && o->no_reuse)
        return cli_usage_error("chat", "--session keeps the cache; --no-reuse throws it away every turn");
    if (o->list_sessions || o->rm_session)
        return optind == argc ? 0 : cli_usage_error("chat", "--sessions and --rm-session take no model");
    if (optind != argc - 1)
        return cli_usage_error("chat", optind == argc ? "expected MODEL.gguf" : "one model only");
    o->model = argv[optind];
    return 0;
}

/* One line of stdin without its newline; NULL at the end of input. */
static char *read_message(char **line, size_t *cap, int prompt)
{
    if (prompt) {
        fputs("> ", stderr);
        fflush(stderr);
    }
    ssize_t n = getline(line, cap, stdin);
    if (n < 0)
        return NULL;
    while (n > 0 && ((*line)[n - 1] == '\n' || (*line)[n - 1] == '\r'))
        (*line)[--n] = '\0';
    return *line;
}

/* Where sessions live: $SOL_SESSIONS, else the XDG cache. */
static int sessions_dir(char *buf, size_t cap)
{
    const char *env = getenv("SOL_SESSIONS"), *home = getenv("HOME");
    int n;
    if (env && *env)
        n = snprintf(buf, cap, "%s", env);
    else if ((env = getenv("XDG_CACHE_HOME")) && env[0] == '/')
        n = snprintf(buf, cap, "%s/sol/sessions", env);
    else if (home && *home)
        n = snprintf(buf, cap, "%s/.cache/sol/sessions", home);
    else
        return -1;
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int list_sessions(const char *dir)
{
    sol_kv_session_info *info = NULL;
    int n = 0, segments = 0;
    double bytes = 0;
    sol_err err = {0};
    if (sol_kv_sessions_list(dir, &info, &n, &bytes, &segments, &err))
        return cli_fail("chat", &err);
    printf("%s: %d segments, %.1f MiB\n", dir, segments, bytes / (1 << 20));
    for (int i = 0; i < n; i++) {
        char when[32];
        time_t t = (time_t)info[i].mtime;
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", gmtime(&t));
        printf("%-32s %3d turns  head %016llx  last saved %s UTC\n", info[i].name, info[i].turns,
               (unsigned long long)info[i].head, when);
    }
    free(info);
    return 0;
}

static cJSON *turn_json(const sol_chat_turn *t)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "turn", t->turn);
    cJSON_AddNumberToObject(j, "tokens_reused", t->tokens_reused);
    cJSON_AddNumberToObject(j, "tokens_prefilled", t->tokens_prefilled);
    char hash[24];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)t->logits_hash);
    cJSON_AddStringToObject(j, "logits_hash", hash);
    cJSON_AddNumberToObject(j, "bytes_loaded", t->bytes_loaded);
    cJSON_AddNumberToObject(j, "bytes_saved", t->bytes_saved);
    cJSON_AddNumberToObject(j, "ttft_s", t->ttft_s);
    cJSON_AddNumberToObject(j, "generated", t->generated);
    cJSON_AddNumberToObject(j, "decode_tokens_per_s", t->generated > 1 ? (t->generated - 1) / t->decode_s : 0);
    cJSON_AddBoolToObject(j, "reused", t->tokens_reused > 0);
    cJSON_AddBoolToObject(j, "context_full", t->context_full);
    return j;
}

static void report_turn(const chat_opts *o, const sol_chat_turn *t)
{
    if (t->notice[0])
        fprintf(stderr, "sol chat: %s\n", t->notice);
    if (o->json) {
        cJSON *j = turn_json(t);
        char *text = cJSON_PrintUnformatted(j);
        if (text)
            printf("%s\n", text);
        free(text);
        cJSON_Delete(j);
        fflush(stdout);
        return;
    }
    fprintf(stderr,
            "[turn %d: %d tokens reused%s, %d prefilled, first token after %.1f ms; %d generated, %.1f tok/s]\n",
            t->turn, t->tokens_reused, t->bytes_loaded > 0 ? " (loaded from the store)" : "", t->tokens_prefilled,
            1e3 * t->ttft_s, t->generated,
            t->generated > 1 ? (t->generated - 1) / t->decode_s : 0);
}

static void print_piece(const sol_tokenizer *tok, int32_t id, void *user)
{
    const chat_opts *o = user;
    if (o->json)
        return;
    int n = 0;
    char *piece = sol_tokenizer_piece(tok, id, &n);
    if (piece)
        fwrite(piece, 1, (size_t)n, stdout);
    free(piece);
    fflush(stdout);
}

/* The conversation's totals: the share of turns that found their history
 * in the cache (the hit rate), tokens reused and prefilled. */
static void print_totals(const chat_opts *o, int turns, int hits, long long reused, long long prefilled)
{
    if (!o->json || turns == 0)
        return;
    printf("{\"turns\":%d,\"hit_rate\":%.6g,\"tokens_reused\":%lld,\"tokens_prefilled\":%lld}\n", turns,
           (double)hits / turns, reused, prefilled);
}

static int converse(sol_chat *chat, const chat_opts *o, sol_err *err)
{
    char *line = NULL;
    size_t cap = 0;
    int rc = 0, prompt = isatty(STDIN_FILENO), turns = 0, hits = 0;
    long long reused = 0, prefilled = 0;
    const char *msg;
    while (!rc && (msg = read_message(&line, &cap, prompt))) {
        if (!*msg)
            continue;
        sol_chat_turn t;
        rc = sol_chat_say(chat, msg, print_piece, (void *)o, &t, err);
        if (!o->json) {
            printf("\n");
            fflush(stdout);
        }
        if (!rc) {
            report_turn(o, &t);
            turns++;
            hits += t.tokens_reused > 0;
            reused += t.tokens_reused;
            prefilled += t.tokens_prefilled;
        }
        if (!rc && t.context_full) {
            fprintf(stderr, "sol chat: the context (%lld tokens) is full\n", (long long)t.ctx);
            break;
        }
    }
    free(line);
    if (!rc)
        print_totals(o, turns, hits, reused, prefilled);
    return rc;
}

/* The store, and the session's conversation brought back. */
static int open_session(sol_chat *chat, sol_engine *e, const chat_opts *o, sol_kv_store *store, sol_err *err)
{
    char dir[2048];
    if (sessions_dir(dir, sizeof dir))
        return sol_fail(err, SOL_ERR_USAGE, "--session: no place for sessions (set SOL_SESSIONS or HOME)");
    int rc = sol_kv_store_open(dir, e, o->session_cap, store, err);
    if (rc)
        return rc;
    sol_chat_attach_store(chat, store, o->session);
    sol_kv_loaded l;
    double t0 = sol_now_s();
    if ((rc = sol_chat_resume(chat, &l, err)))
        return rc;
    if (l.notice[0])
        fprintf(stderr, "sol chat: %s\n", l.notice);
    if (l.n > 0)
        fprintf(stderr, "sol chat: session %s: %lld tokens from %d segments (%.2f MiB) in %.1f ms\n", o->session,
                (long long)l.n, l.segments, l.bytes / (1 << 20), 1e3 * (sol_now_s() - t0));
    sol_kv_loaded_free(&l);
    return 0;
}

int cmd_chat(int argc, char **argv)
{
    chat_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc;
    if (o.list_sessions || o.rm_session) {
        char dir[2048];
        sol_err err0 = {0};
        if (sessions_dir(dir, sizeof dir))
            return cli_usage_error("chat", "no place for sessions (set SOL_SESSIONS or HOME)");
        if (o.list_sessions)
            return list_sessions(dir);
        return sol_kv_session_remove(dir, o.rm_session, &err0) ? cli_fail("chat", &err0) : 0;
    }
    sol_kv_store store;
    sol_err err = {0};
    sol_backend *be = NULL;
    sol_engine *e = NULL;
    sol_tokenizer *tok = NULL;
    sol_chat *chat = NULL;
    o.backend.model = o.model;
    if ((rc = cli_backend_open(&o.backend, &be, &err)))
        goto exit;
    o.engine.backend = be;
    if ((rc = sol_engine_open(o.model, &o.engine, &e, &err)) ||
        (rc = sol_tokenizer_load(sol_engine_gguf(e), &tok, &err)))
        goto exit;
    sol_chat_options copt = {.system = o.system, .max_reply = o.n, .reuse = !o.no_reuse};
    if ((rc = sol_chat_new(e, tok, &copt, &chat, &err)))
        goto exit;
    if (o.session && (rc = open_session(chat, e, &o, &store, &err)))
        goto exit;
    if (sol_chat_raw(chat))
        fprintf(stderr, "sol chat: no known chat template in the model; messages go in as raw text\n");
    rc = converse(chat, &o, &err);
exit:
    if (rc)
        cli_fail("chat", &err);
    sol_chat_free(chat);
    sol_tokenizer_free(tok);
    sol_engine_close(e);
    if (be)
        be->destroy(be);
    return rc;
}
