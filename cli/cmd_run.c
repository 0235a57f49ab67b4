/* sol run: decode a GGUF model on the CPU, streaming text, and end with one
 * summary line: prefill and decode speed, achieved bandwidth from the
 * plan's bytes, % of the analyzer's speed of light, and a logits hash. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/engine.h"
#include "models/tokenizer.h"

void usage_run(FILE *f)
{
    fprintf(f, "usage: sol run MODEL.gguf [-p PROMPT] [-n N] [options]\n\n"
               "Decodes with the CPU engine, streaming text to stdout; one summary line goes\n"
               "to stderr: prefill and decode tok/s, ms/token, achieved GB/s (bytes from the\n"
               "op plan / measured time), %% of the speed of light predicted for the `cpu`\n"
               "hardware entry, and a hash of the final logits.\n\n"
               "options:\n"
               "  -p, --prompt TEXT     prompt (default \"The speed of light is\")\n"
               "  -n, --tokens N        tokens to generate (default 64)\n"
               "  -t, --threads N       CPU threads (default: physical cores)\n"
               "  --chat                wrap the prompt in the model's chat template\n"
               "  --system TEXT         system prompt for --chat\n"
               "  --temp T              temperature (default 0.8; 0 = greedy)\n"
               "  --top-k K, --top-p P, --min-p P   sampling filters (40, 0.95, 0.05)\n"
               "  --repeat-penalty R    (default 1.0 = off), over the last 64 tokens\n"
               "  --seed S              sampling seed (default 80)\n"
               "  --kvtype f32|f16      KV cache storage (default f16)\n"
               "  --ctx T               context tokens to allocate (default: the model's limit)\n"
               "  --no-bos              do not prepend the BOS token\n"
               "  --json                end with one JSON object (ids, timings) instead of the line\n"
               "  --logits-out FILE     write f32 logits of every evaluated position to FILE\n");
}

/* Measured and predicted totals of one phase (prefill or decode). */
typedef struct {
    int steps, tokens;
    double seconds, bytes, predicted_s;
    double *step_s; /* decode step times, for the spread */
} phase_stats;

typedef struct {
    const sol_hw *hw;
    phase_stats *phase;
    int failed;
} step_sink;

static void on_step(void *user, const sol_plan *plan, double seconds)
{
    step_sink *sink = user;
    phase_stats *ph = sink->phase;
    sol_step_cost cost;
    sol_err err = {0};
    if (sol_cost_plan(plan, sink->hw, &cost, &err)) {
        sink->failed = 1;
        return;
    }
    if (ph->step_s)
        ph->step_s[ph->steps] = seconds;
    ph->steps++;
    ph->tokens += plan->params.n_tokens;
    ph->seconds += seconds;
    ph->bytes += cost.bytes;
    ph->predicted_s += cost.time_s;
    sol_step_cost_free(&cost);
}

static uint64_t fnv1a(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static double stddev(const double *x, int n)
{
    if (n < 2)
        return 0;
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++)
        mean += x[i] / n;
    for (int i = 0; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean) / (n - 1);
    return sqrt(var);
}

typedef struct {
    const char *model, *prompt, *system, *logits_out;
    long long n, threads, ctx;
    int chat, json, no_bos;
    sol_engine_config engine;
} run_opts;

static int parse_float(const char *flag, const char *text, float *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !isfinite(v))
        return cli_usage_error("run", "%s: expected a number, got \"%s\"", flag, text);
    *out = (float)v;
    return 0;
}

static int parse_opts(int argc, char **argv, run_opts *o)
{
    enum { O_CHAT = 2000, O_SYSTEM, O_TEMP, O_TOPK, O_TOPP, O_MINP, O_REPEAT, O_SEED, O_KVTYPE, O_CTX, O_NOBOS,
           O_JSON, O_LOGITS };
    static const struct option long_opts[] = {
        {"prompt", 1, 0, 'p'}, {"tokens", 1, 0, 'n'}, {"threads", 1, 0, 't'}, {"chat", 0, 0, O_CHAT},
        {"system", 1, 0, O_SYSTEM}, {"temp", 1, 0, O_TEMP}, {"top-k", 1, 0, O_TOPK}, {"top-p", 1, 0, O_TOPP},
        {"min-p", 1, 0, O_MINP}, {"repeat-penalty", 1, 0, O_REPEAT}, {"seed", 1, 0, O_SEED},
        {"kvtype", 1, 0, O_KVTYPE}, {"ctx", 1, 0, O_CTX}, {"no-bos", 0, 0, O_NOBOS}, {"json", 0, 0, O_JSON},
        {"logits-out", 1, 0, O_LOGITS}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->prompt = "The speed of light is";
    o->n = 64;
    sol_engine_defaults(&o->engine);
    sol_sampler_config *s = &o->engine.sampler;
    long long v;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":p:n:t:", long_opts, NULL)) != -1) {
        switch (c) {
        case 'p': o->prompt = optarg; break;
        case 'n':
            if (cli_parse_ll("run", "-n", optarg, &o->n))
                return SOL_ERR_USAGE;
            if (o->n < 0 || o->n > 1000000)
                return cli_usage_error("run", "-n: %lld is out of range (0..1000000)", o->n);
            break;
        case 't':
            if (cli_parse_ll("run", "--threads", optarg, &o->threads))
                return SOL_ERR_USAGE;
            if (o->threads < 1 || o->threads > 1024)
                return cli_usage_error("run", "--threads: %lld is out of range (1..1024)", o->threads);
            break;
        case O_CHAT: o->chat = 1; break;
        case O_SYSTEM: o->system = optarg; break;
        case O_TEMP:
            if (parse_float("--temp", optarg, &s->temperature))
                return SOL_ERR_USAGE;
            break;
        case O_TOPK:
            if (cli_parse_ll("run", "--top-k", optarg, &v))
                return SOL_ERR_USAGE;
            s->top_k = v < 0 ? 0 : (int)v;
            break;
        case O_TOPP:
            if (parse_float("--top-p", optarg, &s->top_p))
                return SOL_ERR_USAGE;
            break;
        case O_MINP:
            if (parse_float("--min-p", optarg, &s->min_p))
                return SOL_ERR_USAGE;
            break;
        case O_REPEAT:
            if (parse_float("--repeat-penalty", optarg, &s->repeat_penalty))
                return SOL_ERR_USAGE;
            if (s->repeat_penalty <= 0)
                return cli_usage_error("run", "--repeat-penalty: must be positive");
            break;
        case O_SEED:
            if (cli_parse_ll("run", "--seed", optarg, &v))
                return SOL_ERR_USAGE;
            s->seed = (uint64_t)v;
            break;
        case O_KVTYPE:
            if (sol_dtype_parse(optarg, &o->engine.kvtype) ||
                (o->engine.kvtype != SOL_DT_F32 && o->engine.kvtype != SOL_DT_F16))
                return cli_usage_error("run", "--kvtype: expected f32 or f16, got \"%s\"", optarg);
            break;
        case O_CTX:
            if (cli_parse_ll("run", "--ctx", optarg, &o->ctx))
                return SOL_ERR_USAGE;
            if (o->ctx < 1)
                return cli_usage_error("run", "--ctx: must be at least 1 token");
            break;
        case O_NOBOS: o->no_bos = 1; break;
        case O_JSON: o->json = 1; break;
        case O_LOGITS: o->logits_out = optarg; break;
        case ':': return cli_usage_error("run", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("run", "unknown option \"%s\" (see sol run --help)", argv[optind - 1]);
        }
    }
    if (optind == argc)
        return cli_usage_error("run", "missing MODEL (a .gguf file)");
    if (optind != argc - 1)
        return cli_usage_error("run", "expected one MODEL, got extra \"%s\"", argv[optind + 1]);
    o->model = argv[optind];
    o->engine.threads = (int)o->threads;
    o->engine.ctx = o->ctx;
    return 0;
}

/* Writes text for one token to stdout at once (streaming). */
static void emit_token(const sol_tokenizer *tok, int32_t id)
{
    char buf[256];
    int n = sol_tokenizer_decode(tok, id, buf, sizeof buf);
    if (n > 0) {
        fwrite(buf, 1, (size_t)n, stdout);
        fflush(stdout);
    }
}

typedef struct {
    int32_t *prompt;
    int n_prompt;
    int32_t *generated;
    int n_generated;
    phase_stats prefill, decode;
    uint64_t logits_hash;
} run_result;

static int write_logits(FILE *f, const sol_engine *e, sol_err *err)
{
    int n_vocab = sol_engine_model(e)->vocab;
    for (int r = 0; r < sol_engine_last_rows(e); r++)
        if (fwrite(sol_engine_logits(e, r), sizeof(float), (size_t)n_vocab, f) != (size_t)n_vocab)
            return sol_fail(err, SOL_ERR_RUNTIME, "--logits-out: write failed");
    return 0;
}

/* Prefill the prompt, then generate o->n tokens (stopping at end of turn). */
static int generate(sol_engine *e, const sol_tokenizer *tok, const run_opts *o, const sol_hw *hw, FILE *logits,
                    run_result *r, sol_err *err)
{
    step_sink sink = {hw, &r->prefill, 0};
    int32_t next = -1;
    int rc = 0;
    /* with --logits-out every prompt position is kept: chunk by hand */
    int chunk = logits ? 64 : r->n_prompt;
    for (int done = 0; done < r->n_prompt && !rc; done += chunk) {
        int rows = r->n_prompt - done < chunk ? r->n_prompt - done : chunk;
        rc = sol_engine_eval(e, r->prompt + done, rows, logits != NULL, on_step, &sink, &next, err);
        if (!rc && logits)
            rc = write_logits(logits, e, err);
    }
    sink.phase = &r->decode;
    for (int i = 0; i < o->n && !rc; i++) {
        r->generated[r->n_generated++] = next;
        if (sol_tokenizer_is_eog(tok, next))
            break; /* the end-of-turn token is not text */
        emit_token(tok, next);
        if (i == o->n - 1 || sol_engine_pos(e) >= sol_engine_ctx(e))
            break;
        rc = sol_engine_eval(e, &next, 1, logits != NULL, on_step, &sink, &next, err);
        if (!rc && logits)
            rc = write_logits(logits, e, err);
    }
    if (!rc && sink.failed)
        rc = sol_fail(err, SOL_ERR_RUNTIME, "costing the plan on %s failed", hw->name);
    if (!rc && sol_engine_last_rows(e) > 0) {
        const float *last = sol_engine_logits(e, sol_engine_last_rows(e) - 1);
        r->logits_hash = fnv1a(last, (size_t)sol_engine_model(e)->vocab * sizeof(float));
    }
    return rc;
}

static void print_summary(const run_opts *o, const sol_engine *e, const sol_hw *hw, const run_result *r)
{
    const phase_stats *p = &r->prefill, *d = &r->decode;
    double prefill_tps = p->seconds > 0 ? p->tokens / p->seconds : 0;
    double decode_tps = d->seconds > 0 ? d->tokens / d->seconds : 0;
    double ms_per_tok = d->tokens ? 1e3 * d->seconds / d->tokens : 0;
    double spread_ms = 1e3 * stddev(d->step_s, d->steps);
    double gbs = d->seconds > 0 ? d->bytes / d->seconds / 1e9 : 0;
    double pct_sol = d->seconds > 0 ? 100 * d->predicted_s / d->seconds : 0;
    const sol_model *m = sol_engine_model(e);
    if (!o->json) {
        fprintf(stderr,
                "\nsol run: %s | %d threads | prompt %d tok, %.1f tok/s | generated %d tok, %.2f tok/s, "
                "%.2f ms/tok (sd %.2f) | %.2f GB/s from plan bytes | %.1f%% of SOL on %s (%.1f GB/s %s) | "
                "logits %016llx\n",
                m->name, sol_engine_backend(e)->threads, r->n_prompt, prefill_tps, r->n_generated, decode_tps,
                ms_per_tok, spread_ms, gbs, pct_sol, hw->name, hw->mem_bw.value / 1e9, hw->mem_bw.source,
                (unsigned long long)r->logits_hash);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", m->name);
    cJSON_AddNumberToObject(j, "threads", sol_engine_backend(e)->threads);
    cJSON_AddNumberToObject(j, "n_vocab", m->vocab);
    cJSON_AddItemToObject(j, "prompt_ids", cJSON_CreateIntArray(r->prompt, r->n_prompt));
    cJSON_AddItemToObject(j, "generated_ids", cJSON_CreateIntArray(r->generated, r->n_generated));
    cJSON_AddNumberToObject(j, "prefill_tokens_per_s", prefill_tps);
    cJSON_AddNumberToObject(j, "decode_tokens_per_s", decode_tps);
    cJSON_AddNumberToObject(j, "ms_per_token", ms_per_tok);
    cJSON_AddNumberToObject(j, "ms_per_token_stddev", spread_ms);
    cJSON_AddNumberToObject(j, "decode_bytes", d->bytes);
    cJSON_AddNumberToObject(j, "achieved_gb_per_s", gbs);
    cJSON_AddNumberToObject(j, "sol_percent", pct_sol);
    cJSON_AddStringToObject(j, "sol_hardware", hw->name);
    char hash[24];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)r->logits_hash);
    cJSON_AddStringToObject(j, "logits_hash", hash);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (text)
        printf("\n%s\n", text);
    free(text);
}

static int encode_prompt(const sol_tokenizer *tok, const run_opts *o, run_result *r, sol_err *err)
{
    char *chat = NULL;
    const char *text = o->prompt;
    if (o->chat) {
        int rc = sol_chat_apply(tok, o->system, o->prompt, &chat, err);
        if (rc)
            return rc;
        if (chat)
            text = chat;
        else
            fprintf(stderr, "sol run: no known chat template in the model; using the raw prompt\n");
    }
    int add_bos = !o->no_bos && sol_tokenizer_add_bos(tok);
    int rc = sol_tokenizer_encode(tok, text, strlen(text), add_bos, 1, &r->prompt, &r->n_prompt, err);
    free(chat);
    if (!rc && r->n_prompt == 0)
        rc = sol_fail(err, SOL_ERR_USAGE, "-p: the prompt encodes to no tokens");
    return rc;
}

int cmd_run(int argc, char **argv)
{
    run_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc;
    sol_err err = {0};
    sol_engine *e = NULL;
    sol_tokenizer *tok = NULL;
    sol_hw hw;
    FILE *logits = NULL;
    run_result r = {0};
    if ((rc = sol_hw_load("cpu", &hw, &err)) || (rc = cli_apply_probes(&hw, 0, &err)) ||
        (rc = sol_engine_open(o.model, &o.engine, &e, &err)) ||
        (rc = sol_tokenizer_load(sol_engine_gguf(e), &tok, &err)) || (rc = encode_prompt(tok, &o, &r, &err)))
        goto exit;
    r.generated = calloc((size_t)o.n + 1, sizeof *r.generated);
    r.decode.step_s = calloc((size_t)o.n + 1, sizeof *r.decode.step_s);
    if (!r.generated || !r.decode.step_s) {
        rc = sol_fail(&err, SOL_ERR_RUNTIME, "out of memory");
        goto exit;
    }
    if (o.logits_out && !(logits = fopen(o.logits_out, "wb"))) {
        rc = sol_fail(&err, SOL_ERR_RUNTIME, "--logits-out: cannot write %s", o.logits_out);
        goto exit;
    }
    if ((rc = generate(e, tok, &o, &hw, logits, &r, &err)) == 0)
        print_summary(&o, e, &hw, &r);
exit:
    if (logits && fclose(logits) != 0 && !rc)
        rc = sol_fail(&err, SOL_ERR_RUNTIME, "--logits-out: write failed");
    if (rc)
        cli_fail("run", &err);
    free(r.prompt);
    free(r.generated);
    free(r.decode.step_s);
    sol_tokenizer_free(tok);
    sol_engine_close(e);
    return rc;
}
