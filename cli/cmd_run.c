/* sol run: decode a GGUF model on the CPU and show each op group's time
 * against the analyzer's speed of light: live in a terminal view (--tui,
 * the default on a terminal), as a stats line every N tokens (--plain) or
 * as one JSON object per token (--json). Every mode ends with the summary:
 * prefill and decode speed, achieved GB/s, % of SOL and a logits hash. */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "db/db.h"
#include "engine/engine.h"
#include "models/tokenizer.h"
#include "tui/tui.h"
#include "util/hash.h"

void usage_run(FILE *f)
{
    fprintf(f, "usage: sol run MODEL.gguf [-p PROMPT] [-n N] [options]\n\n"
               "Decodes with the engine (CPU backend by default) and times every op of the plan against the speed of\n"
               "light the analyzer predicts for the `cpu` hardware entry (measured ceilings when\n"
               "`sol hw probe` ran). On a terminal a live view shows, per op group, predicted and\n"
               "measured time, achieved GB/s and GFLOP/s and %% of SOL, a roofline chart and the\n"
               "text; keys: q quit, p pause, s sort, r roofline/table, h help. Otherwise text\n"
               "streams to stdout. One summary line goes to stderr at the end: prefill and decode\n"
               "tok/s, ms/token, achieved GB/s (bytes from the op plan / measured time), %% of SOL\n"
               "and a hash of the final logits.\n\n"
               "options:\n"
               "  -p, --prompt TEXT     prompt (default \"The speed of light is\")\n"
               "  -n, --tokens N        tokens to generate (default 64)\n"
               "  -t, --threads N       CPU threads (default: physical cores)\n"
               CLI_BACKEND_HELP CLI_CUDA_HELP CLI_CUDA_COUNTERS_HELP
               "  --hw NAME             hardware entry the SOL columns use (default: this CPU, or\n"
               "                        the GPU's entry with its `sol hw probe` figures)\n"
               "  --chat                wrap the prompt in the model's chat template\n"
               "  --system TEXT         system prompt for --chat\n"
               "  --temp T              temperature (default 0.8; 0 = greedy)\n"
               "  --top-k K, --top-p P, --min-p P   sampling filters (40, 0.95, 0.05)\n"
               "  --repeat-penalty R    (default 1.0 = off), over the last 64 tokens\n"
               "  --seed S              sampling seed (default 80)\n"
               "  --kvtype T            KV cache storage: f32, f16 (default), q8_0, q4_0 (GGUF blocks\n"
               "                        with their scales) or fp8_e4m3; attention reads it as stored\n"
               "  --simlayer-threshold X  with --kv ...+simlayer:F: a layer whose attention mass on\n"
               "                        its sinks and recent window is below X never goes lazy (0)\n"
               "  --activations q8|f32  matmul inputs of quantised weights: 8-bit integer dots\n"
               "                        (default, faster) or f32 (exact up to float order)\n"
               "  --ctx T               context tokens to allocate (default: the model's limit)\n"
               "  --no-bos              do not prepend the BOS token\n"
               "  --tui                 the live view (default when stdin and stdout are a terminal)\n"
               "  --plain               text on stdout, a stats line every N tokens on stderr\n"
               "  --every N             tokens between --plain stats lines (default 16; 0 = none)\n"
               "  --json                one JSON object per token (id, text, per-op and per-group\n"
               "                        times), then a summary object (ids, timings) as the last line\n"
               "  --no-color            no colors in the live view (also when NO_COLOR is set)\n"
               "  --no-tuned            default kernel parameters, not the `sol tune` winners\n"
               "  --logits-out FILE     write f32 logits of every evaluated position to FILE\n"
               "  --kv SCHEME           KV scheme to run (the analyzer's grammar): on a GGUF its own or a\n"
               "                        narrower window; on a `sol synth` model also cla:S and local:W/E\n"
               "                        (the KV heads are the weights'; mla and simlayer: not yet)\n"
               "  --ubatch N            prompt rows per prefill step (default 64); --ubatch 1 runs\n"
               "                        the prompt as decode steps (teacher forcing)\n");
}

typedef enum run_mode { MODE_AUTO, MODE_TUI, MODE_PLAIN, MODE_JSON } run_mode;

/* Measured and predicted totals of one phase (prefill or decode). */
typedef struct {
    int steps, tokens;
    double seconds, bytes, predicted_s; /* predicted: the fused step bound (the speed of light) */
    double unfused_s;                   /* the per-op sum */
    double *step_s; /* decode step times, for the spread */
} phase_stats;

typedef struct {
    const char *model, *prompt, *system, *logits_out, *hw_name;
    long long n, threads, ctx, every, ubatch;
    int chat, no_bos, no_color, no_tuned;
    cli_backend_opts backend;
    run_mode mode;
    int auto_mode; /* no mode flag: the live view if the terminal takes it, else plain */
    sol_engine_config engine;
} run_opts;

typedef struct {
    int32_t *prompt;
    int n_prompt;
    int32_t *generated;
    int n_generated;
    phase_stats prefill, decode;
    uint64_t logits_hash;
    int stopped; /* the user quit before the last token */
} run_result;

/* Everything a run shares between its steps, its tokens and its output. */
typedef struct run_state {
    const run_opts *o;
    sol_engine *e;
    const sol_tokenizer *tok;
    const sol_hw *hw;
    FILE *logits;
    run_result *r;
    phase_stats *phase;
    sol_frame_info info;
    /* the latest step, joined from the timing ring and the prediction */
    double *op_times;
    double *profiled;      /* the latest op-by-op step's times (CUDA graphs time only those) */
    uint64_t profiled_step;
    int profiled_ops;
    sol_frame_op *ops;
    int op_cap;
    sol_frame_step last;
    int step_failed;
    sol_err step_err;
    double kv_read_plan; /* the last step's attention KV bytes, as the plan counts them */
    /* --counters: the latest counted step's snapshot (counted_step 0: none
     * yet) and the plan's bytes of that same step; whether the notice that
     * counting turned off was given */
    sol_step_timing counted;
    double counted_plan_bytes;
    int notice_given;
    /* generated bytes (the TUI prints them at the end, --json sums them) */
    char *text;
    size_t text_len, text_cap;
    /* --plain: decode steps since the last stats line */
    sol_frame_totals span;
    int span_tokens, stderr_is_stdout;
    /* --json: the start of a character a token cut off */
    size_t json_pending;
    /* --tui */
    sol_live *live;
    int rc;
    sol_err err;
} run_state;

/* Set by SIGINT/SIGTERM: stop after the current token, print the summary. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* A step replayed as a CUDA graph has no op times of its own: it shows
 * those of the latest step that ran op by op with the same plan (zeros
 * before one); a timed step becomes that latest. */
static void ops_of_profiled_step(run_state *s, sol_step_timing *snap)
{
    size_t bytes = (size_t)snap->n_ops * sizeof *snap->op_s;
    if (snap->ops_timed) {
        memcpy(s->profiled, snap->op_s, bytes);
        s->profiled_step = snap->step;
        s->profiled_ops = snap->n_ops;
    } else if (snap->n_ops == s->profiled_ops) {
        memcpy(snap->op_s, s->profiled, bytes);
    }
}

/* --counters: a counted step's figures kept with its plan bytes, and the
 * notice that counting turned off given once: at once on stderr, or with
 * the live view in its header now and on stderr when the view is gone. */
static void note_counters(run_state *s, const sol_step_timing *snap, const sol_step_cost *cost)
{
    if (snap->counted) {
        s->counted = *snap;
        s->counted.op_s = NULL;
        s->counted_plan_bytes = cost->bytes;
    }
    const char *notice = sol_engine_counter_notice(s->e);
    if (notice && !s->notice_given) {
        s->notice_given = 1;
        if (!s->live)
            fprintf(stderr, "sol run: %s\n", notice);
    }
}

/* The built step to the live view and the --plain span. */
static void publish_step(run_state *s, const phase_stats *ph, const sol_step_timing *snap)
{
    s->last.prefill = ph == &s->r->prefill;
    s->last.counters_off = s->notice_given;
    if (!snap->ops_timed)
        s->last.ops_step = snap->n_ops == s->profiled_ops ? s->profiled_step : 0;
    if (s->live)
        sol_live_push_step(s->live, &s->last);
    if (!s->last.prefill) {
        sol_frame_totals_add(&s->span, &s->last.total);
        s->span_tokens++;
    }
}

static void on_step(void *user, const sol_plan *plan, double seconds)
{
    run_state *s = user;
    phase_stats *ph = s->phase;
    sol_step_cost cost;
    if (s->step_failed)
        return;
    if (sol_cost_plan(plan, s->hw, &cost, &s->step_err)) {
        s->step_failed = 1;
        return;
    }
    if (ph->step_s)
        ph->step_s[ph->steps] = seconds;
    s->kv_read_plan = 0;
    for (int i = 0; i < plan->n_ops; i++)
        s->kv_read_plan += plan->ops[i].kind == SOL_OP_ATTENTION ? plan->ops[i].kv_bytes : 0;
    ph->steps++;
    ph->tokens += plan->params.n_tokens;
    ph->seconds += seconds;
    ph->bytes += cost.bytes;
    ph->predicted_s += cost.sol_time_s;
    ph->unfused_s += cost.unfused_time_s;
    /* the step just published is the ring's latest: this thread wrote it */
    sol_step_timing snap;
    if (sol_timing_latest(sol_engine_timing(s->e), &snap, s->op_times, s->op_cap) != 0 || snap.total_s != seconds) {
        s->step_failed = 1;
        sol_fail(&s->step_err, SOL_ERR_RUNTIME, "the timing ring lost the step just run");
    } else {
        ops_of_profiled_step(s, &snap);
        note_counters(s, &snap, &cost);
        if (sol_frame_step_build(plan, &cost, &snap, s->o->mode == MODE_JSON ? s->ops : NULL, s->op_cap, &s->last,
                                 &s->step_err))
            s->step_failed = 1;
        else
            publish_step(s, ph, &snap);
    }
    sol_step_cost_free(&cost);
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

static int parse_float(const char *flag, const char *text, float *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !isfinite(v))
        return cli_usage_error("run", "%s: expected a number, got \"%s\"", flag, text);
    *out = (float)v;
    return 0;
}

static int set_mode(run_opts *o, run_mode mode, const char *flag)
{
    if (o->mode != MODE_AUTO && o->mode != mode)
        return cli_usage_error("run", "%s: choose one of --tui, --plain and --json", flag);
    o->mode = mode;
    return 0;
}

static int parse_opts(int argc, char **argv, run_opts *o)
{
    enum { O_CHAT = 2000, O_SYSTEM, O_TEMP, O_TOPK, O_TOPP, O_MINP, O_REPEAT, O_SEED, O_KVTYPE, O_ACT, O_CTX, O_NOBOS,
           O_JSON, O_LOGITS, O_TUI, O_PLAIN, O_EVERY, O_NOCOLOR, O_NOTUNED, O_BACKEND, O_HW, O_UBATCH, O_KV, O_SIMLAYER };
    static const struct option long_opts[] = {
        {"prompt", 1, 0, 'p'}, {"tokens", 1, 0, 'n'}, {"threads", 1, 0, 't'}, {"chat", 0, 0, O_CHAT},
        {"system", 1, 0, O_SYSTEM}, {"temp", 1, 0, O_TEMP}, {"top-k", 1, 0, O_TOPK}, {"top-p", 1, 0, O_TOPP},
        {"min-p", 1, 0, O_MINP}, {"repeat-penalty", 1, 0, O_REPEAT}, {"seed", 1, 0, O_SEED},
        {"kvtype", 1, 0, O_KVTYPE}, {"activations", 1, 0, O_ACT}, {"ctx", 1, 0, O_CTX}, {"no-bos", 0, 0, O_NOBOS}, {"json", 0, 0, O_JSON},
        {"logits-out", 1, 0, O_LOGITS}, {"tui", 0, 0, O_TUI}, {"plain", 0, 0, O_PLAIN}, {"every", 1, 0, O_EVERY},
        {"no-color", 0, 0, O_NOCOLOR}, {"no-tuned", 0, 0, O_NOTUNED}, {"backend", 1, 0, O_BACKEND}, {"hw", 1, 0, O_HW},
        {"ubatch", 1, 0, O_UBATCH}, {"kv", 1, 0, O_KV}, {"simlayer-threshold", 1, 0, O_SIMLAYER}, CLI_CUDA_LONG_OPTS, CLI_CUDA_COUNTERS_OPT,
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->prompt = "The speed of light is";
    o->n = 64;
    o->every = 16;
    o->backend.profile_every = CLI_CUDA_PROFILE_EVERY;
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
        case O_SIMLAYER: {
            float t;
            if (parse_float("--simlayer-threshold", optarg, &t))
                return SOL_ERR_USAGE;
            if (t < 0 || t > 1)
                return cli_usage_error("run", "--simlayer-threshold: an attention mass, 0..1; got %s", optarg);
            o->engine.simlayer_threshold = t;
            break;
        }
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
        case O_ACT:
            if (cli_parse_activations("run", optarg, &o->engine.activations))
                return SOL_ERR_USAGE;
            break;
        case O_KVTYPE:
            if (cli_parse_kvtype("run", optarg, &o->engine.kvtype))
                return SOL_ERR_USAGE;
            break;
        case O_CTX:
            if (cli_parse_ll("run", "--ctx", optarg, &o->ctx))
                return SOL_ERR_USAGE;
            if (o->ctx < 1)
                return cli_usage_error("run", "--ctx: must be at least 1 token");
            break;
        case O_KV: o->engine.kv = optarg; break;
        case O_UBATCH:
            if (cli_parse_ll("run", "--ubatch", optarg, &o->ubatch))
                return SOL_ERR_USAGE;
            if (o->ubatch < 1 || o->ubatch > 4096)
                return cli_usage_error("run", "--ubatch: expected 1 to 4096 rows, got %lld", o->ubatch);
            break;
        case O_NOBOS: o->no_bos = 1; break;
        case O_JSON:
            if (set_mode(o, MODE_JSON, "--json"))
                return SOL_ERR_USAGE;
            break;
        case O_TUI:
            if (set_mode(o, MODE_TUI, "--tui"))
                return SOL_ERR_USAGE;
            break;
        case O_PLAIN:
            if (set_mode(o, MODE_PLAIN, "--plain"))
                return SOL_ERR_USAGE;
            break;
        case O_EVERY:
            if (cli_parse_ll("run", "--every", optarg, &o->every))
                return SOL_ERR_USAGE;
            if (o->every < 0)
                return cli_usage_error("run", "--every: must be 0 (no stats lines) or more");
            break;
        case O_NOCOLOR: o->no_color = 1; break;
        case O_NOTUNED: o->no_tuned = 1; break;
        case O_LOGITS: o->logits_out = optarg; break;
        case O_BACKEND:
            if (cli_parse_backend("run", optarg, &o->backend.name))
                return SOL_ERR_USAGE;
            break;
        case O_HW: o->hw_name = optarg; break;
        case ':': return cli_usage_error("run", "%s needs a value", argv[optind - 1]);
        default:
            switch (cli_parse_cuda_opt("run", c, optarg, &o->backend)) {
            case 1: break;
            case 2: return SOL_ERR_USAGE;
            default: return cli_usage_error("run", "unknown option \"%s\" (see sol run --help)", argv[optind - 1]);
            }
        }
    }
    if (optind == argc)
        return cli_usage_error("run", "missing MODEL (a .gguf file)");
    if (optind != argc - 1)
        return cli_usage_error("run", "expected one MODEL, got extra \"%s\"", argv[optind + 1]);
    o->model = argv[optind];
    o->backend.threads = (int)o->threads;
    o->engine.ctx = o->ctx;
    if (o->ubatch)
        o->engine.chunk = (int)o->ubatch;
    return 0;
}

/* ---- tokens out ----------------------------------------------------------- */

static int keep_text(run_state *s, const char *bytes, size_t n)
{
    if (s->text_len + n + 1 > s->text_cap) {
        size_t cap = (s->text_cap ? 2 * s->text_cap : 4096) + n;
        char *text = realloc(s->text, cap);
        if (!text)
            return -1;
        s->text = text;
        s->text_cap = cap;
    }
    memcpy(s->text + s->text_len, bytes, n);
    s->text_len += n;
    s->text[s->text_len] = '\0';
    return 0;
}

static int same_file(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void plain_stats(run_state *s, int generated)
{
    char line[256];
    sol_plain_line(line, sizeof line, generated, (int)s->o->n, &s->span, s->span_tokens, &s->info);
    /* sharing a terminal with the text: start on a line of its own */
    int mid_line = s->stderr_is_stdout && s->text_len > 0 && s->text[s->text_len - 1] != '\n';
    fprintf(stderr, "%s%s\n", mid_line ? "\n" : "", line);
    s->span = (sol_frame_totals){0};
    s->span_tokens = 0;
}

/* Token `index` was sampled by s->last: out it goes, in the run's mode. */
static int emit_token(run_state *s, int index, int32_t id, int eog, sol_err *err)
{
    int n = 0;
    char *buf = eog ? strdup("") : sol_tokenizer_piece(s->tok, id, &n); /* a piece may be any length */
    if (!buf || keep_text(s, buf, (size_t)n)) {
        free(buf);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    }
    switch (s->o->mode) {
    case MODE_TUI: sol_live_push_text(s->live, buf, (size_t)n, index + 1); break;
    case MODE_JSON: {
        /* a character cut between tokens goes out with the token that ends it */
        const char *start = s->text + s->text_len - n - s->json_pending;
        size_t avail = (size_t)n + s->json_pending, whole = sol_text_complete(start, avail);
        cJSON *line = sol_json_token(&s->last, index, id, start, whole);
        char *text = line ? cJSON_PrintUnformatted(line) : NULL;
        cJSON_Delete(line);
        if (!text) {
            free(buf);
            return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
        }
        printf("%s\n", text);
        free(text);
        s->json_pending = avail - whole;
        break;
    }
    default:
        if (n > 0) {
            fwrite(buf, 1, (size_t)n, stdout);
            fflush(stdout);
        }
        if (s->o->every > 0 && s->span_tokens >= s->o->every)
            plain_stats(s, index + 1);
        break;
    }
    free(buf);
    return 0;
}

static int write_logits(FILE *f, sol_engine *e, sol_err *err)
{
    int n_vocab = sol_engine_model(e)->vocab;
    for (int r = 0; r < sol_engine_last_rows(e); r++) {
        const float *row;
        int rc = sol_engine_logits(e, r, &row, err);
        if (rc)
            return rc;
        if (fwrite(row, sizeof(float), (size_t)n_vocab, f) != (size_t)n_vocab)
            return sol_fail(err, SOL_ERR_RUNTIME, "--logits-out: write failed");
    }
    return 0;
}

/* True when the user asked to stop (q, Ctrl-C); waits while paused. */
static int should_stop(run_state *s)
{
    if (s->live)
        return sol_live_gate(s->live);
    return interrupted != 0;
}

/* A test hook: SOL_TEST_STEP_DELAY_MS sleeps after each decode step, so the
 * live view's tests can pause and quit while decoding on any machine
 * (tests/tui/run.sh). Outside the measured step: times are unchanged. */
static void test_step_delay(void)
{
    static long ms = -1;
    if (ms < 0) {
        const char *env = getenv("SOL_TEST_STEP_DELAY_MS");
        ms = env ? strtol(env, NULL, 10) : 0;
        ms = ms < 0 ? 0 : ms > 10000 ? 10000 : ms;
    }
    if (ms > 0)
        nanosleep(&(struct timespec){ms / 1000, ms % 1000 * 1000000}, NULL);
}

/* Prefill the prompt, then generate o->n tokens (stopping at end of turn). */
static int generate(run_state *s, sol_err *err)
{
    const run_opts *o = s->o;
    run_result *r = s->r;
    sol_engine *e = s->e;
    int32_t next = -1;
    int rc = 0;
    s->phase = &r->prefill;
    /* with --logits-out every prompt position is kept: chunk by hand */
    int chunk = s->logits ? o->engine.chunk : r->n_prompt;
    for (int done = 0; done < r->n_prompt && !rc; done += chunk) {
        int rows = r->n_prompt - done < chunk ? r->n_prompt - done : chunk;
        rc = sol_engine_eval(e, r->prompt + done, rows, s->logits != NULL, on_step, s, &next, err);
        if (!rc && s->logits)
            rc = write_logits(s->logits, e, err);
    }
    if (!rc) /* SimLayerKV decides on the prompt's last step */
        rc = sol_engine_prompt_done(e, err);
    s->phase = &r->decode;
    for (int i = 0; i < o->n && !rc && !s->step_failed; i++) {
        r->generated[r->n_generated++] = next;
        int eog = sol_tokenizer_is_eog(s->tok, next); /* the end-of-turn token is not text */
        if ((rc = emit_token(s, i, next, eog, err)) || eog)
            break;
        if (i == o->n - 1 || sol_engine_pos(e) >= sol_engine_ctx(e))
            break;
        if (should_stop(s)) {
            r->stopped = 1;
            break;
        }
        rc = sol_engine_eval(e, &next, 1, s->logits != NULL, on_step, s, &next, err);
        if (!rc && s->logits)
            rc = write_logits(s->logits, e, err);
        test_step_delay();
    }
    if (!rc && s->step_failed)
        rc = sol_fail(err, SOL_ERR_RUNTIME, "joining step timings with the %s prediction failed: %s", s->hw->name,
                      s->step_err.msg);
    const float *last = NULL;
    if (!rc && sol_engine_last_rows(e) > 0 && !(rc = sol_engine_logits(e, sol_engine_last_rows(e) - 1, &last, err)))
        r->logits_hash = sol_fnv1a(SOL_FNV1A_INIT, last, (size_t)sol_engine_model(e)->vocab * sizeof(float));
    return rc;
}

static void *decode_thread(void *arg)
{
    run_state *s = arg;
    s->rc = generate(s, &s->err);
    sol_live_finish(s->live, s->rc != 0);
    return NULL;
}

/* The live view (already open): decoding on its own thread, the view on
 * this one. */
static int generate_live(run_state *s, sol_err *err)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, decode_thread, s) != 0) {
        sol_live_close(s->live);
        s->live = NULL;
        return sol_fail(err, SOL_ERR_RUNTIME, "cannot start the decode thread");
    }
    sol_live_run(s->live, &interrupted);
    pthread_join(thread, NULL);
    sol_live_close(s->live); /* the terminal is back */
    s->live = NULL;
    if (s->notice_given) /* the view said "counters off"; here is why */
        fprintf(stderr, "sol run: %s\n", sol_engine_counter_notice(s->e));
    if (s->rc) {
        *err = s->err;
        return s->rc;
    }
    /* the text stays on the terminal after the view is gone */
    fwrite(s->text ? s->text : "", 1, s->text_len, stdout);
    fflush(stdout);
    return 0;
}

/* The KV scheme run, and its bytes: counted by the engine (allocated, read
 * by the last step's attention) beside the analyzer's (the cache at this
 * context, the plan's reads). A ring (local or lazy layer) has chunk - 1
 * slots beyond its window in steps of many rows, so the two are equal at
 * --ubatch 1; SimLayerKV's choice and scores follow. */
static void add_kv_json(cJSON *j, const run_state *s)
{
    const sol_engine *e = s->e;
    char scheme[128];
    sol_kv_format(sol_engine_kv(e), scheme, sizeof scheme);
    cJSON_AddStringToObject(j, "kv_scheme", scheme);
    cJSON_AddNumberToObject(j, "kv_bytes_allocated", sol_engine_kv_allocated(e));
    sol_kv_scheme priced = *sol_engine_kv(e);
    priced.lazy_layers = NULL; /* the analyzer's SimLayerKV: floor(L * F) lazy layers, whichever they are */
    cJSON_AddNumberToObject(j, "kv_bytes_predicted",
                            sol_kv_cache_bytes(&priced, sol_engine_model(e), s->o->engine.kvtype, sol_engine_ctx(e)));
    cJSON_AddNumberToObject(j, "kv_read_bytes_last_step", sol_engine_kv_read_last_step(e));
    cJSON_AddNumberToObject(j, "kv_read_bytes_last_step_plan", s->kv_read_plan);
    cli_add_simlayer_json(j, e);
    cli_add_experts_json(j, e);
}

/* SimLayerKV's choice in words: which layers went lazy, against F. */
static void print_simlayer(const sol_engine *e)
{
    sol_simlayer_state st;
    if (sol_engine_simlayer(e, &st) || !st.scored)
        return;
    fprintf(stderr, "sol run: simlayer: %d of %d layers lazy (F = %g, threshold %g):", st.n_lazy, st.n_layers,
            sol_engine_kv(e)->lazy_fraction, st.threshold);
    for (int i = 0; i < st.n_layers; i++)
        if (st.lazy[i])
            fprintf(stderr, " %d (%.3f)", i, st.score[i]);
    fprintf(stderr, "; scored on the prompt's last %d rows\n", st.query_rows);
}

/* --counters: the latest counted step's DRAM bytes beside the plan's bytes
 * of the same step, and the bandwidth over that step's own time. */
static double counted_gbs(const run_state *s)
{
    const sol_step_timing *c = &s->counted;
    return c->counted_step_s > 0 ? (c->dram_read_bytes + c->dram_write_bytes) / c->counted_step_s / 1e9 : 0;
}

static double counted_to_plan(const run_state *s)
{
    const sol_step_timing *c = &s->counted;
    return s->counted_plan_bytes > 0 ? (c->dram_read_bytes + c->dram_write_bytes) / s->counted_plan_bytes : 0;
}

static void print_counters(const run_state *s)
{
    const sol_step_timing *c = &s->counted;
    if (!s->o->backend.counters)
        return;
    if (c->counted_step == 0) {
        fprintf(stderr, "sol run: counters: no step counted%s\n",
                s->notice_given ? " (counting turned off)" : " (only decode steps replayed as a CUDA graph are)");
        return;
    }
    fprintf(stderr,
            "sol run: counters at step %llu: DRAM %.4g GB read + %.4g GB written, %.2f GB/s over the step's "
            "%.3f ms (GPU %.3f ms); plan %.4g GB, counted/plan %.3f\n",
            (unsigned long long)c->counted_step, c->dram_read_bytes / 1e9, c->dram_write_bytes / 1e9, counted_gbs(s),
            1e3 * c->counted_step_s, 1e3 * c->counted_gpu_s, s->counted_plan_bytes / 1e9, counted_to_plan(s));
}

static void add_counters_json(cJSON *j, const run_state *s)
{
    const sol_step_timing *c = &s->counted;
    if (!s->o->backend.counters)
        return;
    const char *notice = sol_engine_counter_notice(s->e);
    if (notice)
        cJSON_AddStringToObject(j, "counter_notice", notice);
    if (c->counted_step == 0)
        return;
    cJSON_AddNumberToObject(j, "counted_step", (double)c->counted_step);
    cJSON_AddNumberToObject(j, "counted_dram_read_bytes", c->dram_read_bytes);
    cJSON_AddNumberToObject(j, "counted_dram_write_bytes", c->dram_write_bytes);
    cJSON_AddNumberToObject(j, "counted_gpu_s", c->counted_gpu_s);
    cJSON_AddNumberToObject(j, "counted_step_s", c->counted_step_s);
    cJSON_AddNumberToObject(j, "counted_gb_per_s", counted_gbs(s));
    cJSON_AddNumberToObject(j, "counted_plan_bytes", s->counted_plan_bytes);
    cJSON_AddNumberToObject(j, "counted_to_plan", counted_to_plan(s));
}

static void print_summary(const run_state *s)
{
    const run_result *r = s->r;
    const sol_engine *e = s->e;
    const sol_hw *hw = s->hw;
    const phase_stats *p = &r->prefill, *d = &r->decode;
    double prefill_tps = p->seconds > 0 ? p->tokens / p->seconds : 0;
    double decode_tps = d->seconds > 0 ? d->tokens / d->seconds : 0;
    double ms_per_tok = d->tokens ? 1e3 * d->seconds / d->tokens : 0;
    double spread_ms = 1e3 * stddev(d->step_s, d->steps);
    double gbs = d->seconds > 0 ? d->bytes / d->seconds / 1e9 : 0;
    double pct_sol = d->seconds > 0 ? 100 * d->predicted_s / d->seconds : 0;
    double pct_unfused = d->seconds > 0 ? 100 * d->unfused_s / d->seconds : 0;
    const sol_model *m = sol_engine_model(e);
    const sol_backend *be = sol_engine_backend(e);
    if (s->o->mode != MODE_JSON) {
        char where[96]; /* "2 threads" on the CPU; "cuda backend", "poison backend, 2 threads" */
        if (!strcmp(be->name, "cpu"))
            snprintf(where, sizeof where, "%d threads", be->threads);
        else
            snprintf(where, sizeof where, be->threads > 0 ? "%s backend, %d threads" : "%s backend", be->name,
                     be->threads);
        fprintf(stderr,
                "\nsol run: %s | %s | prompt %d tok, %.1f tok/s | generated %d tok%s, %.2f tok/s, "
                "%.2f ms/tok (sd %.2f) | %.2f GB/s from plan bytes | %.1f%% of SOL on %s (%.1f GB/s %s) | "
                "logits %016llx\n",
                m->name, where, r->n_prompt, prefill_tps, r->n_generated,
                r->stopped ? " (stopped)" : "", decode_tps, ms_per_tok, spread_ms, gbs, pct_sol, hw->name,
                hw->mem_bw.value / 1e9, hw->mem_bw.source, (unsigned long long)r->logits_hash);
        print_simlayer(e);
        print_counters(s);
        return;
    }
    /* flat but for simlayer: scripts find it as the last line's object */
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", m->name);
    cJSON_AddStringToObject(j, "backend", be->name);
    cJSON_AddNumberToObject(j, "threads", be->threads);
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
    cJSON_AddNumberToObject(j, "unfused_sol_percent", pct_unfused);
    cJSON_AddStringToObject(j, "sol_hardware", hw->name);
    add_kv_json(j, s);
    add_counters_json(j, s);
    cJSON_AddBoolToObject(j, "stopped", r->stopped);
    char hash[24];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)r->logits_hash);
    cJSON_AddStringToObject(j, "logits_hash", hash);
    char *clean = malloc(3 * s->text_len + 1);
    if (clean) {
        sol_text_sanitize(s->text ? s->text : "", s->text_len, clean, 3 * s->text_len + 1);
        cJSON_AddStringToObject(j, "text", clean);
        free(clean);
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (text)
        printf("%s\n", text);
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

/* How many of the decode plan's matmul shapes run with tuned parameters. */
static void count_tuned(const run_state *s, sol_frame_info *in)
{
    const sol_model *m = sol_engine_model(s->e);
    sol_kv_scheme kv;
    sol_kv_from_model(m, &kv);
    sol_plan plan;
    sol_plan_params p = {.batch = 1, .n_tokens = 1, .wtype = m->wtype, .atype = SOL_DT_F32,
                         .kvtype = s->o->engine.kvtype, .tp = 1};
    in->tuned_shapes = in->tuned_total = -1; /* n/a: only the CPU backend takes `sol tune` winners */
    if (cli_backend_is_cpu(&s->o->backend) && sol_plan_build(m, &kv, &p, &plan, NULL) == 0) {
        cli_tuned_shapes(s->o->backend.tuning, &plan, s->o->engine.activations, &in->tuned_shapes, &in->tuned_total);
        sol_plan_free(&plan);
    }
}

/* What the view's header shows; fixed for the run. */
static void fill_info(run_state *s)
{
    sol_frame_info *in = &s->info;
    const sol_model *m = sol_engine_model(s->e);
    const sol_backend *be = sol_engine_backend(s->e);
    sol_kv_scheme kv;
    sol_kv_from_model(m, &kv); /* what the engine caches */
    memset(in, 0, sizeof *in);
    snprintf(in->model, sizeof in->model, "%s", m->name);
    snprintf(in->backend, sizeof in->backend, "%s", be->name);
    snprintf(in->device, sizeof in->device, "%s", s->hw->display_name);
    sol_kv_format(&kv, in->kv, sizeof in->kv);
    snprintf(in->wtype, sizeof in->wtype, "%s", sol_dtype_name(m->wtype));
    /* matmuls of quantised weights take 8-bit activations unless --activations f32 */
    snprintf(in->atype, sizeof in->atype, "%s",
             s->o->engine.activations == SOL_ACT_Q8 && sol_dtype_block_elems(m->wtype) > 1 ? "q8" : "f32");
    snprintf(in->kvtype, sizeof in->kvtype, "%s", sol_dtype_name(s->o->engine.kvtype));
    in->threads = be->threads;
    in->counters = s->o->backend.counters;
    count_tuned(s, in);
    in->ctx = sol_engine_ctx(s->e);
    in->n_prompt = s->r->n_prompt;
    in->n_target = (int)s->o->n;
    in->mem_bw = s->hw->mem_bw.value;
    snprintf(in->mem_bw_source, sizeof in->mem_bw_source, "%s", s->hw->mem_bw.source);
    sol_peak used;
    in->peak_flops = sol_hw_peak(s->hw, sol_peak_for(SOL_DT_F32), &used);
    snprintf(in->peak_name, sizeof in->peak_name, "%s", sol_peak_name(used));
    snprintf(in->peak_source, sizeof in->peak_source, "%s", s->hw->peak[used].source);
    snprintf(in->prompt, sizeof in->prompt, "%s", s->o->prompt);
}

static int terminal_usable(void)
{
    const char *term = getenv("TERM");
    return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && term && *term && strcmp(term, "dumb") != 0;
}

int cmd_run(int argc, char **argv)
{
    run_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc;
    if (o.mode == MODE_AUTO) {
        o.mode = terminal_usable() ? MODE_TUI : MODE_PLAIN;
        o.auto_mode = 1;
    }
    sol_err err = {0};
    sol_engine *e = NULL;
    sol_tokenizer *tok = NULL;
    sol_hw hw, cpu_hw;
    sol_device_info dev;
    sol_tuning tuning = {0};
    sol_backend *be = NULL;
    run_result r = {0};
    run_state s = {.o = &o, .r = &r, .hw = &hw};
    struct sigaction act = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&act.sa_mask);
    /* --plain/--json: a second Ctrl-C ends the process at once */
    act.sa_flags = o.mode == MODE_TUI ? 0 : (int)SA_RESETHAND;
    interrupted = 0;
    sigaction(SIGINT, &act, &old_int);
    sigaction(SIGTERM, &act, &old_term);
    if ((rc = sol_hw_load("cpu", &cpu_hw, &err)) || (rc = cli_apply_probes(&cpu_hw, 0, &err)) ||
        (!o.no_tuned && cli_backend_is_cpu(&o.backend) && (rc = cli_load_tuning(&cpu_hw, &tuning, &err))))
        goto exit;
    o.backend.tuning = &tuning;
    o.backend.no_tuned = o.no_tuned;
    o.backend.model = o.model;
    if ((rc = cli_backend_open(&o.backend, &be, &err)) || (rc = cli_backend_hw(&o.backend, o.hw_name, &hw, &dev, &err)))
        goto exit;
    o.engine.backend = be;
    if ((rc = sol_engine_open(o.model, &o.engine, &e, &err)) ||
        (rc = sol_tokenizer_load(sol_engine_gguf(e), &tok, &err)) || (rc = encode_prompt(tok, &o, &r, &err)))
        goto exit;
    s.e = e;
    s.tok = tok;
    s.op_cap = sol_engine_timing(e)->max_ops;
    s.op_times = calloc((size_t)s.op_cap, sizeof *s.op_times);
    s.profiled = calloc((size_t)s.op_cap, sizeof *s.profiled);
    s.ops = o.mode == MODE_JSON ? calloc((size_t)s.op_cap, sizeof *s.ops) : NULL;
    r.generated = calloc((size_t)o.n + 1, sizeof *r.generated);
    r.decode.step_s = calloc((size_t)o.n + 1, sizeof *r.decode.step_s);
    if (!r.generated || !r.decode.step_s || !s.op_times || !s.profiled || (o.mode == MODE_JSON && !s.ops)) {
        rc = sol_fail(&err, SOL_ERR_RUNTIME, "out of memory");
        goto exit;
    }
    if (o.logits_out && !(s.logits = fopen(o.logits_out, "wb"))) {
        rc = sol_fail(&err, SOL_ERR_RUNTIME, "--logits-out: cannot write %s", o.logits_out);
        goto exit;
    }
    fill_info(&s);
    s.stderr_is_stdout = same_file(STDOUT_FILENO, STDERR_FILENO);
    if (o.mode == MODE_TUI) {
        const char *no_color = getenv("NO_COLOR");
        sol_tui_options topts = {.color = !o.no_color && !(no_color && *no_color)};
        rc = sol_live_open(&s.info, &topts, &s.live, &err);
        if (rc && o.auto_mode)
            o.mode = MODE_PLAIN, rc = 0; /* a terminal ncurses cannot drive: plain text */
        if (rc)
            goto exit;
    }
    rc = s.live ? generate_live(&s, &err) : generate(&s, &err);
    if (rc == 0)
        print_summary(&s);
exit:
    if (s.logits && fclose(s.logits) != 0 && !rc)
        rc = sol_fail(&err, SOL_ERR_RUNTIME, "--logits-out: write failed");
    if (rc)
        cli_fail("run", &err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(r.prompt);
    free(r.generated);
    free(r.decode.step_s);
    free(s.op_times);
    free(s.profiled);
    free(s.ops);
    free(s.text);
    sol_tokenizer_free(tok);
    sol_engine_close(e);
    if (be)
        be->destroy(be);
    cli_tuning_free(&tuning);
    return rc;
}
