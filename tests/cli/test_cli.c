/* CLI tests: run the built sol binary ($SOL_BIN) and check exit codes, the
 * one-line errors, and the numbers in its JSON/CSV output. $SOL_TEST_GGUF
 * names a real GGUF (SmolLM2-135M) fetched by `make test`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int status;
    char *out;
    char *err;
} result;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Runs `prefix $SOL_BIN args` through the shell (prefix: "" or a command
 * such as setpriv that runs it); args are trusted test strings. */
static result run_with(const char *prefix, const char *fmt, va_list ap)
{
    char args[2048], cmd[4096];
    vsnprintf(args, sizeof args, fmt, ap);
    const char *bin = getenv("SOL_BIN");
    if (!bin)
        fail_msg("SOL_BIN is not set");
    /* a limit, so that a hang fails a test (exit 124) instead of stalling CI */
    snprintf(cmd, sizeof cmd, "timeout 300 %s %s %s >/tmp/sol-cli-%d.out 2>/tmp/sol-cli-%d.err", prefix, bin, args,
             getpid(), getpid());
    int status = system(cmd);
    result r = {.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128};
    char path[64];
    snprintf(path, sizeof path, "/tmp/sol-cli-%d.out", getpid());
    r.out = slurp(path);
    unlink(path);
    snprintf(path, sizeof path, "/tmp/sol-cli-%d.err", getpid());
    r.err = slurp(path);
    unlink(path);
    return r;
}

static result run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static result run(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    result r = run_with("", fmt, ap);
    va_end(ap);
    return r;
}

static result run_as(const char *prefix, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static result run_as(const char *prefix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    result r = run_with(prefix, fmt, ap);
    va_end(ap);
    return r;
}

static void done(result *r)
{
    free(r->out);
    free(r->err);
}

/* Exit code `code`, stderr exactly one line containing each needle. */
static void expect_error(int code, const char *args, const char *needle1, const char *needle2)
{
    result r = run("%s", args);
    if (r.status != code)
        fail_msg("sol %s: exit %d, want %d (stderr: %s)", args, r.status, code, r.err);
    char *newline = strchr(r.err, '\n');
    if (!newline || newline[1] != '\0')
        fail_msg("sol %s: stderr is not one line: \"%s\"", args, r.err);
    if (!strstr(r.err, needle1) || (needle2 && !strstr(r.err, needle2)))
        fail_msg("sol %s: stderr \"%s\" lacks \"%s\"/\"%s\"", args, r.err, needle1, needle2 ? needle2 : "");
    if (r.out[0])
        fail_msg("sol %s: printed to stdout on error: %s", args, r.out);
    done(&r);
}

static cJSON *run_json(const char *args)
{
    result r = run("%s", args);
    if (r.status != 0)
        fail_msg("sol %s: exit %d: %s", args, r.status, r.err);
    cJSON *doc = cJSON_Parse(r.out);
    if (!doc)
        fail_msg("sol %s: output is not JSON", args);
    done(&r);
    return doc;
}

static double num(const cJSON *doc, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(doc, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    if (!cJSON_IsNumber(x))
        fail_msg("no number at %s.%s", a, b ? b : "");
    return x->valuedouble;
}

static void test_help_and_version(void **state)
{
    (void)state;
    result r = run("--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "analyze"));
    assert_non_null(strstr(r.out, "compare"));
    assert_non_null(strstr(r.out, "hw"));
    done(&r);
    r = run("--version");
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.out, "sol 0.", 6) == 0);
    done(&r);
    const char *cmds[] = {"analyze", "compare", "hw"};
    for (int i = 0; i < 3; i++) {
        result a = run("help %s", cmds[i]), b = run("%s --help", cmds[i]);
        assert_int_equal(a.status, 0);
        assert_int_equal(b.status, 0);
        assert_string_equal(a.out, b.out);
        assert_non_null(strstr(a.out, "usage: sol"));
        done(&a);
        done(&b);
    }
}

static void test_usage_errors(void **state)
{
    (void)state;
    result r = run("%s", "");
    assert_int_equal(r.status, 2);
    done(&r);
    expect_error(2, "frobnicate", "unknown command", "frobnicate");
    expect_error(2, "help frobnicate", "unknown command", "frobnicate");
    expect_error(2, "analyze", "missing MODEL", NULL);
    expect_error(2, "analyze llama-2-7b --bogus", "--bogus", NULL);
    expect_error(2, "analyze llama-2-7b --batch", "--batch", "needs a value");
    expect_error(2, "analyze llama-2-7b --batch 0", "--batch", "at least 1");
    expect_error(2, "analyze llama-2-7b --batch abc", "--batch", "abc");
    expect_error(2, "analyze llama-2-7b --ctx -1", "--ctx", NULL);
    expect_error(2, "analyze llama-2-7b --kv gqa:8+bogus", "term 2", "bogus");
    expect_error(2, "analyze llama-2-7b --kv mla:512,64+gqa:8", "contradicts term 1", NULL);
    expect_error(2, "analyze llama-2-7b --kv gqa:5", "gqa:5", NULL);
    expect_error(2, "analyze llama-2-7b --kvtype q4_1", "--kvtype", NULL);
    expect_error(2, "analyze llama-2-7b --wtype q9", "--wtype", "q9");
    expect_error(2, "analyze llama-2-7b --hw nope", "--hw", "nope");
    expect_error(2, "analyze llama-2-7b --format xml", "--format", "xml");
    expect_error(2, "analyze llama-2-7b --tp 0", "--tp", NULL);
    expect_error(2, "analyze no-such-model", "no-such-model", "--list-models");
    expect_error(2, "analyze llama-2-7b extra", "extra", NULL);
    expect_error(2, "compare llama-2-7b --kv mha", "at least two", NULL);
    expect_error(2, "hw", "missing subcommand", NULL);
    expect_error(2, "hw show", "NAME", NULL);
    expect_error(2, "hw show nope", "nope", NULL);
    /* values that must not be accepted (issue 18's probe): repeated KV
     * terms, RoPE dims beyond the key, empty list items, thread counts out
     * of range, a shape missing a dimension, a model and --shape at once */
    expect_error(2, "analyze llama-2-7b --kv cla:1+cla:1", "term 2", "repeats term 1");
    expect_error(2, "analyze llama-2-7b --kv gqa:8+local:64/2+local:32/2", "term 3", "repeats term 2");
    expect_error(2, "analyze llama-2-7b --kv mla:512,200", "mla:512,200", "head_dim 128");
    expect_error(2, "bench x.gguf -t 1,,2", "-t", "item 2");
    expect_error(2, "bench x.gguf -t 0", "-t", "out of range");
    expect_error(2, "tune --threads 0 --shape matvec:q8_0:64x64", "--threads", "out of range");
    expect_error(2, "tune --threads 10000 --shape matvec:q8_0:64x64", "--threads", "out of range");
    expect_error(2, "tune --shape matmul:q8_0:64x64", "--shape", "matmul:q8_0:64x64");
    expect_error(2, "tune llama-2-7b --shape matvec:q8_0:64x64", "llama-2-7b", "--shape");
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_bad_files(void **state)
{
    (void)state;
    expect_error(1, "analyze /tmp/sol-none/config.json", "/tmp/sol-none/config.json", "No such file");
    expect_error(1, "analyze /tmp/sol-none/model.gguf", "/tmp/sol-none/model.gguf", NULL);
    write_file("/tmp/sol-cli-bad.json", "{\"model_type\": \"llama\", ");
    expect_error(1, "analyze /tmp/sol-cli-bad.json", "/tmp/sol-cli-bad.json", "invalid JSON");
    write_file("/tmp/sol-cli-bad.json", "{\"model_type\": \"llama\", \"hidden_size\": 64}");
    expect_error(1, "analyze /tmp/sol-cli-bad.json", "/tmp/sol-cli-bad.json", "\"num_hidden_layers\"");
    write_file("/tmp/sol-cli-bad.json", "{\"model_type\": \"mamba\"}");
    expect_error(1, "analyze /tmp/sol-cli-bad.json", "unknown architecture", "mamba");
    write_file("/tmp/sol-cli-bad.gguf", "GGUF\x03");
    expect_error(1, "analyze /tmp/sol-cli-bad.gguf", "/tmp/sol-cli-bad.gguf", NULL);
    write_file("/tmp/sol-cli-bad.json", "{\"name\": \"x\"}");
    expect_error(1, "analyze llama-2-7b --hw /tmp/sol-cli-bad.json", "/tmp/sol-cli-bad.json", NULL);
    unlink("/tmp/sol-cli-bad.json");
    unlink("/tmp/sol-cli-bad.gguf");
}

static void test_analyze_json(void **state)
{
    (void)state;
    /* --efficiency scales the ceilings: memory-bound decode at half the
     * bandwidth is half the speed, labelled as no longer the speed of light */
    cJSON *sol = run_json("analyze llama-3-8b --format json");
    cJSON *half = run_json("analyze llama-3-8b --efficiency mem=0.5 --format json");
    assert_true(fabs(num(half, "decode", "tokens_per_s") * 2 - num(sol, "decode", "tokens_per_s")) <
                1e-9 * num(sol, "decode", "tokens_per_s"));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(sol, "config"), "speed_of_light")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(half, "config"), "speed_of_light")));
    cJSON_Delete(sol);
    cJSON_Delete(half);
    expect_error(2, "analyze llama-3-8b --efficiency mem=1.5", "--efficiency", "(0, 1]");
    expect_error(2, "analyze llama-3-8b --efficiency speed=2", "--efficiency", "mem=F");
    /* sweeps: one point per (ctx, batch), a knee per context, a plot */
    cJSON *sw = run_json("sweep llama-3-8b --batch 1,8,64 --ctx 1024,2048 --plot /tmp/sol-cli-sweep.svg --format json");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(sw, "points")), 6);
    const cJSON *knee = cJSON_GetArrayItem(cJSON_GetObjectItem(sw, "knees"), 1);
    assert_true(cJSON_GetObjectItem(knee, "ctx")->valuedouble == 2048);
    assert_true(cJSON_GetObjectItem(knee, "max_batch")->valuedouble > 64);
    cJSON_Delete(sw);
    FILE *svg = fopen("/tmp/sol-cli-sweep.svg", "r");
    assert_non_null(svg);
    char head[64] = "";
    assert_non_null(fgets(head, sizeof head, svg));
    fclose(svg);
    assert_non_null(strstr(head, "<svg") ? head : strstr(head, "<?xml"));
    unlink("/tmp/sol-cli-sweep.svg");
    expect_error(2, "sweep llama-3-8b --batch 1,,2", "--batch", NULL);
    expect_error(2, "sweep llama-2-7b --ctx 1024,8192", "--ctx 8192", "trained context");
    /* a request end to end and a draft model, on paper */
    cJSON *req = run_json("analyze llama-3-8b --gen 64 --draft smollm2-135m --format json");
    assert_true(num(req, "request", "ttft_s") == num(req, "prefill", "time_s"));
    assert_true(num(req, "request", "gen") == 64);
    assert_true(num(req, "speculative", "k") == 4 && num(req, "speculative", "acceptance") == 0.8);
    cJSON_Delete(req);
    expect_error(2, "analyze llama-3-8b --gen 0", "--gen", NULL);
    /* a conversation with KV reuse: 1024 tokens of 128 KiB each; under
     * mqa+local:1024/6+cla:2, 17 of the 32 layers own a cache (5 global
     * layers in runs of 2: 3 owners; 27 local: 14) of 1024 tokens x 1 KV
     * head x 128 x (K, V) x 2 bytes, the window not binding yet */
    cJSON *conv = run_json("analyze llama-3-8b --turns 4 --turn-tokens 256 --format json");
    cJSON *small = run_json("analyze llama-3-8b --kv mqa+local:1024/6+cla:2 --turns 4 --turn-tokens 256 "
                            "--format json");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(conv, "conversation"), "turns")), 4);
    assert_true(num(conv, "conversation", "stored_conversation_bytes") == 1024 * 131072.0);
    assert_true(num(small, "conversation", "stored_conversation_bytes") == 17 * 1024 * 512.0);
    cJSON_Delete(conv);
    cJSON_Delete(small);
    expect_error(2, "analyze llama-3-8b --turns 4 --hit-rate 2", "--hit-rate", NULL);
    expect_error(2, "analyze llama-3-8b --gen 4000 --prompt 512", "--gen 4000", "context");
    expect_error(2, "analyze llama-3-8b --draft smollm2-135m --accept 1.5", "--accept", NULL);
    expect_error(2, "analyze llama-3-8b --draft smollm2-135m --draft-k 0", "--draft-k", NULL);
    /* past the trained 4096 tokens only when asked for */
    expect_error(2, "analyze llama-2-7b --ctx 128000", "trained context of 4096 tokens", "--allow-long-context");
    cJSON *doc = run_json("analyze llama-2-7b --ctx 128000 --allow-long-context --format json");
    assert_true(num(doc, "kv", "bytes_per_token") == 524288);
    assert_true(num(doc, "kv", "cache_bytes") == 62.5 * 1024 * 1024 * 1024);
    assert_true(num(doc, "model", "params") == 6738415616.0);
    cJSON_Delete(doc);
    /* --kv replaces the config's scheme; MQA cuts Llama-2-7B's KV 32x */
    doc = run_json("analyze llama-2-7b --kv mqa --format json");
    assert_true(num(doc, "kv", "bytes_per_token") == 524288 / 32);
    cJSON_Delete(doc);
    doc = run_json("analyze deepseek-v2 --format json");
    assert_true(num(doc, "kv", "elements_per_token") == 34560);
    cJSON_Delete(doc);
}

static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
        n += strncmp(p, prefix, strlen(prefix)) == 0;
        if (!strchr(p, '\n'))
            break;
    }
    return n;
}

static void test_analyze_csv_and_table(void **state)
{
    (void)state;
    cJSON *doc = run_json("analyze mixtral-8x7b --format json");
    int ops = cJSON_GetArraySize(cJSON_GetObjectItem(doc, "ops"));
    const cJSON *layer;
    cJSON_ArrayForEach(layer, cJSON_GetObjectItem(doc, "layers")) ops += cJSON_GetArraySize(cJSON_GetObjectItem(layer, "ops"));
    cJSON_Delete(doc);
    result r = run("analyze mixtral-8x7b --format csv");
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.out, "phase,index,layer,name,", 23) == 0);
    assert_int_equal(count_lines(r.out, "decode,"), ops);
    assert_int_equal(count_lines(r.out, "prefill,"), ops);
    done(&r);
    r = run("analyze llama-3-8b");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "tokens/s at speed of light"));
    assert_non_null(strstr(r.out, "attn.qkv"));
    assert_non_null(strstr(r.out, "max batch"));
    done(&r);
}

static void test_list_models(void **state)
{
    (void)state;
    cJSON *doc = run_json("analyze --list-models --format json");
    assert_true(cJSON_GetArraySize(doc) >= 16);
    const char *want[] = {"smollm2-135m", "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b",
                          "llama-3-70b", "llama-3.1-405b", "mistral-7b", "mixtral-8x7b", "qwen2.5-7b",
                          "gemma-2-9b", "gemma-3-27b", "deepseek-v2-lite", "deepseek-v2", "deepseek-v3",
                          "phi-3-mini-4k"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int found = 0;
        const cJSON *m;
        cJSON_ArrayForEach(m, doc) found |= strcmp(cJSON_GetObjectItem(m, "preset")->valuestring, want[i]) == 0;
        if (!found)
            fail_msg("preset %s missing", want[i]);
    }
    cJSON_Delete(doc);
}

static void test_hw_commands(void **state)
{
    (void)state;
    result r = run("hw list");
    assert_int_equal(r.status, 0);
    const char *names[] = {"h100-sxm", "h100-pcie", "h200", "a100-40gb", "a100-80gb", "l40s", "rtx-4090", "a10g", "t4", "mi300x", "cpu"};
    for (int i = 0; i < 11; i++)
        if (!strstr(r.out, names[i]))
            fail_msg("hw list lacks %s", names[i]);
    done(&r);
    r = run("hw show h100-sxm");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "3.35 TB/s"));
    assert_non_null(strstr(r.out, "datasheet"));
    done(&r);
    cJSON *doc = run_json("hw show cpu --format json");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "mem_bw_bytes_per_s"), "source")->valuestring,
                        "estimate");
    cJSON_Delete(doc);
}

static void test_compare(void **state)
{
    (void)state;
    cJSON *doc = run_json("compare llama-3-8b --kv gqa:8 --kv mqa --kv mha --format json");
    assert_int_equal(cJSON_GetArraySize(doc), 3);
    assert_true(num(cJSON_GetArrayItem(doc, 1), "kv_ratio", NULL) == 0.125);
    assert_true(num(cJSON_GetArrayItem(doc, 2), "kv_ratio", NULL) == 4);
    /* MQA reads less KV: faster at long context */
    assert_true(num(cJSON_GetArrayItem(doc, 1), "tokens_per_s_ratio", NULL) > 1);
    cJSON_Delete(doc);
    /* the window caps Mistral's cache at 32k: the config scheme vs none */
    doc = run_json("compare mistral-7b --kv config --kv gqa:8 --ctx 32768 --format json");
    assert_true(num(cJSON_GetArrayItem(doc, 0), "kv_cache_bytes", NULL) == 4096.0 * 131072);
    assert_true(num(cJSON_GetArrayItem(doc, 1), "kv_cache_bytes", NULL) == 32768.0 * 131072);
    cJSON_Delete(doc);
    doc = run_json("compare llama-2-7b --hw h100-sxm --hw h200 --format json");
    assert_true(fabs(num(cJSON_GetArrayItem(doc, 1), "tokens_per_s_ratio", NULL) - 4.8 / 3.35) < 0.01);
    cJSON_Delete(doc);
}

/* The real SmolLM2 GGUF: metadata gives the published parameter count. */
static void test_real_gguf(void **state)
{
    (void)state;
    const char *gguf = getenv("SOL_TEST_GGUF");
    if (!gguf || !*gguf)
        skip(); /* reported as SKIPPED by cmocka, never as passed */
    char args[1200];
    snprintf(args, sizeof args, "analyze %s --format json", gguf);
    cJSON *doc = run_json(args);
    assert_true(num(doc, "model", "params") == 134515008);
    /* every tensor at its own type: the sum of the file's tensor data as
     * gguf-py reads it (Q4_1 layers, Q8_0 embedding, f32 norms) */
    assert_true(num(doc, "weights", "bytes") == 96576768);
    assert_int_equal((int)num(doc, "model", "layers"), 30);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "config"), "kv_scheme")->valuestring, "gqa:3");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "config"), "wtype")->valuestring, "q4_1");
    /* the tensor table's bytes: Q4_1 layers, Q8_0 tied embedding, f32 norms */
    assert_true(num(doc, "weights", "bytes") == 66355200 + 30081024 + 140544);
    /* 2 * 30 layers * 3 KV heads * 64 * 2 bytes */
    assert_true(num(doc, "kv", "bytes_per_token") == 23040);
    cJSON_Delete(doc);
}


/* ---- engine: sol run, sol synth, sol tokenize -------------------------- */

static const char *real_gguf(void)
{
    const char *gguf = getenv("SOL_TEST_GGUF");
    if (!gguf || !*gguf)
        skip(); /* reported as SKIPPED by cmocka, never as passed */
    return gguf;
}

/* The last non-empty line of text (sol run --json ends with its summary). */
static const char *last_line(char *text)
{
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '\n')
        text[--n] = '\0';
    char *nl = strrchr(text, '\n');
    return nl ? nl + 1 : text;
}

/* Greedy decoding of SmolLM2 gives the numpy reference's tokens
 * (tests/ref/ref_forward.py: " Paris." = 7042, 30). */
static void test_run_json(void **state)
{
    (void)state;
    const char *gguf = real_gguf();
    result r = run("run %s -p \"The capital of France is\" -n 4 --temp 0 --json", gguf);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, " Paris."));
    const char *last = last_line(r.out);
    cJSON *doc = cJSON_Parse(last);
    assert_non_null(doc);
    int prompt[] = {504, 3575, 282, 4649, 314};
    const cJSON *ids = cJSON_GetObjectItem(doc, "prompt_ids");
    assert_int_equal(cJSON_GetArraySize(ids), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cJSON_GetArrayItem(ids, i)->valueint, prompt[i]);
    const cJSON *gen = cJSON_GetObjectItem(doc, "generated_ids");
    assert_int_equal(cJSON_GetArrayItem(gen, 0)->valueint, 7042);
    assert_int_equal(cJSON_GetArrayItem(gen, 1)->valueint, 30);
    assert_true(num(doc, "achieved_gb_per_s", NULL) > 0);
    double pct = num(doc, "sol_percent", NULL);
    assert_true(pct > 0 && pct <= 100);
    assert_true(num(doc, "decode_bytes", NULL) > 3 * 90e6); /* 3 steps of ~96 MB of weights */
    cJSON_Delete(doc);
    done(&r);
    /* the human summary line names every figure */
    r = run("run %s -p \"Hi\" -n 3 --temp 0", gguf);
    assert_int_equal(r.status, 0);
    const char *needles[] = {"prompt 1 tok", "generated 3 tok", "ms/tok", "GB/s from plan bytes", "% of SOL on cpu", "logits "};
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++)
        if (!strstr(r.err, needles[i]))
            fail_msg("summary \"%s\" lacks \"%s\"", r.err, needles[i]);
    done(&r);
}

static void test_run_errors(void **state)
{
    (void)state;
    const char *gguf = real_gguf();
    char args[1400];
    expect_error(2, "run", "missing MODEL", NULL);
    expect_error(1, "run /tmp/sol-none.gguf", "/tmp/sol-none.gguf", NULL);
    snprintf(args, sizeof args, "run %s --kvtype q4_1", gguf);
    expect_error(2, args, "--kvtype", NULL);
    snprintf(args, sizeof args, "run %s --ctx 100000", gguf);
    expect_error(2, args, "--ctx", "8192");
    snprintf(args, sizeof args, "run %s -n -1", gguf);
    expect_error(2, args, "-n", NULL);
    snprintf(args, sizeof args, "run %s --temp hot", gguf);
    expect_error(2, args, "--temp", "hot");
    /* a prompt longer than the context is refused, not overrun */
    snprintf(args, sizeof args, "run %s --ctx 4 -p \"one two three four five six\" -n 1", gguf);
    expect_error(2, args, "context", NULL);
    /* backends: a usage error, a plugin file that is not there or not a
     * plugin, and cuda on a machine without a GPU (or its engine) */
    snprintf(args, sizeof args, "run %s --backend opencl", gguf);
    expect_error(2, args, "--backend", "opencl");
    snprintf(args, sizeof args, "run %s --backend /tmp/sol-none.so", gguf);
    expect_error(1, args, "/tmp/sol-none.so", "no such plugin file");
    snprintf(args, sizeof args, "run %s --backend tests/fixtures/configs/tiny-llama.json", gguf);
    expect_error(1, args, "cannot load the plugin", NULL);
    snprintf(args, sizeof args, "bench %s -p 8 -n 0 --backend cuda", gguf);
    expect_error(1, args, "CUDA", NULL);
    snprintf(args, sizeof args, "tune --shape matvec:q8_0:64x64 --backend cuda");
    expect_error(1, args, "CUDA", NULL);
    snprintf(args, sizeof args, "tokenize %s --decode 1,,2", gguf);
    expect_error(2, args, "--decode", "item 2");
    snprintf(args, sizeof args, "run %s --hw nope -n 1", gguf);
    expect_error(2, args, "--hw", "nope");
    /* --counters: CUPTI's, so the CPU backend refuses it in one line before
     * decoding; only sol run shows counted figures, so only it takes it */
    snprintf(args, sizeof args, "run %s -n 1 --counters", gguf);
    expect_error(2, args, "--counters needs --backend cuda (CUPTI hardware counters)", NULL);
    snprintf(args, sizeof args, "run %s -n 1 --backend cpu --counters --plain", gguf);
    expect_error(2, args, "--counters needs --backend cuda", NULL);
    snprintf(args, sizeof args, "bench %s -p 8 -n 1 --counters", gguf);
    expect_error(2, args, "unknown option", "--counters");
}

/* A FIFO (or any file that is not regular) as model, config or hardware
 * file is refused at once, never waited on; synth never renames over one.
 * run() has a time limit: a hang fails the test (exit 124). */
static void test_special_files(void **state)
{
    (void)state;
    char fifo[64], args[256];
    snprintf(fifo, sizeof fifo, "/tmp/sol-cli-fifo-%d", getpid());
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *commands[] = {"analyze %s", "run %s -n 1", "tokenize %s hi", "analyze llama-2-7b --hw %s",
                              "synth %s -o /tmp/sol-cli-none.gguf"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, commands[i], fifo);
        snprintf(args, sizeof args, "%s", cmd);
        expect_error(1, args, fifo, "not a regular file");
    }
    snprintf(args, sizeof args, "synth tests/fixtures/configs/tiny-llama.json -o %s", fifo);
    result r = run("%s", args);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "not a regular file"));
    done(&r);
    struct stat st;
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode)); /* still the FIFO */
    unlink(fifo);
}

/* File-derived names reach the terminal printable: a config's model name
 * and a hardware entry's name carrying escape sequences print as '?'. */
static void test_hostile_names(void **state)
{
    (void)state;
    char config[64], hw[64];
    snprintf(config, sizeof config, "/tmp/sol-cli-esc-%d.json", getpid());
    snprintf(hw, sizeof hw, "/tmp/sol-cli-eschw-%d.json", getpid());
    char *tiny = slurp("tests/fixtures/configs/tiny-llama.json");
    char *at = strstr(tiny, "tiny-llama (test shape)");
    assert_non_null(at);
    FILE *f = fopen(config, "w");
    fprintf(f, "%.*s%s%s", (int)(at - tiny), tiny, "evil\\u001b[2J\\u0007name", at + strlen("tiny-llama (test shape)"));
    fclose(f);
    write_file(hw, "{\"name\": \"x\\u001b]0;pwn\\u0007\", \"display_name\": \"GPU\\u001b[31m\", \"kind\": \"gpu\", "
                   "\"mem_bw_bytes_per_s\": {\"value\": 1e12, \"source\": \"datasheet\"}, "
                   "\"mem_bytes\": {\"value\": 8e10, \"source\": \"datasheet\"}, "
                   "\"peak_flops\": {\"fp32\": {\"value\": 1e14, \"source\": \"datasheet\"}}}");
    result r = run("analyze %s --hw %s", config, hw);
    if (r.status != 0)
        fail_msg("analyze: exit %d: %s", r.status, r.err);
    assert_null(strchr(r.out, '\x1b'));
    assert_null(strchr(r.out, '\x07'));
    assert_non_null(strstr(r.out, "evil?[2J?name"));
    assert_non_null(strstr(r.out, "GPU?[31m"));
    done(&r);
    free(tiny);
    unlink(config);
    unlink(hw);
}

static void test_synth(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/sol-cli-synth-%d.gguf", getpid());
    result r = run("synth tests/fixtures/configs/tiny-llama.json --wtype q4_k --seed 3 -o %s", path);
    assert_int_equal(r.status, 0);
    done(&r);
    char args[256];
    snprintf(args, sizeof args, "analyze %s --format json", path);
    cJSON *doc = run_json(args);
    /* embeddings 2*512*256 + 2 layers of (2 norms, q/o 256^2, k/v 256*128, 3*256*768) + norm */
    double want = 2 * 512.0 * 256 + 2 * (512 + 2 * 65536.0 + 2 * 32768.0 + 3 * 196608.0) + 256;
    assert_true(num(doc, "model", "params") == want);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "config"), "wtype")->valuestring, "q4_k");
    cJSON_Delete(doc);
    r = run("run %s -p \"abc\" -n 5 --temp 0 --json", path);
    assert_int_equal(r.status, 0);
    doc = cJSON_Parse(last_line(r.out));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "generated_ids")), 5);
    cJSON_Delete(doc);
    done(&r);
    /* --kv on a synth model: a window and a shared cache run; the attention
     * bytes the engine counts are the plan's; the heads are the weights' */
    r = run("run %s -p \"abc def ghi\" -n 24 --temp 0 --json --kv gqa:2+local:8+cla:2", path);
    assert_int_equal(r.status, 0);
    doc = cJSON_Parse(last_line(r.out));
    assert_string_equal(cJSON_GetObjectItem(doc, "kv_scheme")->valuestring, "gqa:2+local:8/1+cla:2");
    assert_true(num(doc, "kv_read_bytes_last_step", NULL) == num(doc, "kv_read_bytes_last_step_plan", NULL));
    /* both layers read the window of layer 0's cache: 2 x 8 tokens x 128
     * values (2 KV heads of 64) x (K, V) x 2 bytes (f16) */
    assert_true(num(doc, "kv_read_bytes_last_step", NULL) == 2 * 8 * 128 * 2 * 2.0);
    cJSON_Delete(doc);
    done(&r);
    /* a scheme written by synth is the file's own: analyze and run use it */
    r = run("synth tests/fixtures/configs/tiny-llama.json --kv gqa:2+local:8+cla:2 -o %s.cla", path);
    assert_int_equal(r.status, 0);
    done(&r);
    char kv_args[256];
    snprintf(kv_args, sizeof kv_args, "analyze %s.cla --format json", path);
    doc = run_json(kv_args);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "config"), "kv_scheme")->valuestring,
                        "gqa:2+local:8/1+cla:2");
    cJSON_Delete(doc);
    r = run("run %s.cla -p \"abc def ghi\" -n 4 --temp 0 --json", path);
    assert_int_equal(r.status, 0);
    doc = cJSON_Parse(last_line(r.out));
    assert_string_equal(cJSON_GetObjectItem(doc, "kv_scheme")->valuestring, "gqa:2+local:8/1+cla:2");
    cJSON_Delete(doc);
    done(&r);
    snprintf(kv_args, sizeof kv_args, "%s.cla", path);
    unlink(kv_args);
    /* a window is a ring: decoding one token per step (--ubatch 1), 8 slots
     * per layer, as the analyzer counts; in steps of 64 rows, 8 + 63 */
    r = run("run %s -p \"abcdefghijklmnopqrstuvwxyz\" -n 2 --temp 0 --json --kv gqa:2+local:8 --ubatch 1", path);
    assert_int_equal(r.status, 0);
    doc = cJSON_Parse(last_line(r.out));
    assert_true(num(doc, "kv_bytes_allocated", NULL) == num(doc, "kv_bytes_predicted", NULL));
    assert_true(num(doc, "kv_bytes_allocated", NULL) == 2 * 8 * 128 * 2 * 2.0);
    cJSON_Delete(doc);
    done(&r);
    r = run("run %s -p \"abc\" -n 2 --temp 0 --json --kv gqa:2+local:8", path);
    assert_int_equal(r.status, 0);
    doc = cJSON_Parse(last_line(r.out));
    assert_true(num(doc, "kv_bytes_allocated", NULL) == 2 * (8 + 63) * 128 * 2 * 2.0);
    cJSON_Delete(doc);
    done(&r);
    /* only the owners of a shared cache get one: allocated = the analyzer's */
    r = run("run %s -p \"abc\" -n 2 --temp 0 --json --kv gqa:2+cla:2", path);
    assert_int_equal(r.status, 0);
    doc = cJSON_Parse(last_line(r.out));
    assert_true(num(doc, "kv_bytes_allocated", NULL) == num(doc, "kv_bytes_predicted", NULL));
    cJSON_Delete(doc);
    done(&r);
    snprintf(kv_args, sizeof kv_args, "run %s --kv mqa -n 1", path);
    expect_error(2, kv_args, "2 KV heads", "sol synth --kv");
    snprintf(kv_args, sizeof kv_args, "run %s --kv mla:64,16 -n 1", path);
    expect_error(2, kv_args, "per-head keys and values", "sol synth --kv");
    unlink(path);
    /* Q4_K_M: layer 1 of 2 keeps attn_v and ffn_down in Q6_K (210 B per 256
     * values; Q4_K 144 B), the output matrix too. By hand: layer 0 786,432
     * values in Q4_K = 442,368 B; layer 1 557,056 in Q4_K + 229,376 in Q6_K =
     * 313,344 + 188,160 B; embedding 73,728 B (Q4_K), output 107,520 B
     * (Q6_K), norms 1,280 f32 = 5,120 B: 1,130,240 B, the file's tensor data */
    r = run("synth tests/fixtures/configs/tiny-llama.json --wtype q4_k_m -o %s", path);
    assert_int_equal(r.status, 0);
    done(&r);
    doc = run_json(args);
    assert_true(num(doc, "weights", "bytes") == 1130240);
    cJSON_Delete(doc);
    unlink(path);
    /* 405B in f32 is ~1.6 TB: refused before anything is written */
    expect_error(1, "synth llama-3.1-405b --wtype f32 -o /tmp/sol-cli-huge.gguf", "/tmp/sol-cli-huge.gguf", "free");
    assert_int_equal(access("/tmp/sol-cli-huge.gguf", F_OK), -1);
    assert_int_equal(access("/tmp/sol-cli-huge.gguf.tmp", F_OK), -1);
    expect_error(2, "synth smollm2-135m --wtype q4_k -o /tmp/x.gguf", "q4_k", "not a multiple of 256");
    expect_error(2, "synth llama-2-7b --kv mqa+simlayer:0.5 -o /tmp/sol-cli-never.gguf", "--kv", "simlayer");
    assert_int_equal(access("/tmp/sol-cli-never.gguf", F_OK), -1);
    expect_error(2, "synth llama-2-7b", "-o", NULL);
}

/* sol synth writes every family from its config: the file analyzes as the
 * config does (parameters, KV scheme) in each block type the tiny shapes
 * allow; --layers below DeepSeek's leading dense layers or gemma's window
 * period still gives a file that reads back. */
static void test_synth_families(void **state)
{
    (void)state;
    const char *configs[] = {"tiny-mixtral", "tiny-deepseek-v3", "tiny-deepseek-v2",
                             "tiny-gemma2",  "tiny-gemma3",      "tiny-phi3"};
    const char *types[] = {"f32", "bf16", "q8_0", "q4_0"};
    char path[64], args[512];
    snprintf(path, sizeof path, "/tmp/sol-cli-family-%d.gguf", getpid());
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        snprintf(args, sizeof args, "analyze tests/fixtures/configs/%s.json --format json", configs[c]);
        cJSON *doc = run_json(args);
        double want = num(doc, "model", "params");
        char scheme[64];
        snprintf(scheme, sizeof scheme, "%s",
                 cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "config"), "kv_scheme")->valuestring);
        cJSON_Delete(doc);
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            result r = run("synth tests/fixtures/configs/%s.json --wtype %s -o %s", configs[c], types[t], path);
            if (r.status != 0)
                fail_msg("synth %s --wtype %s: %s", configs[c], types[t], r.err);
            done(&r);
            snprintf(args, sizeof args, "analyze %s --format json", path);
            doc = run_json(args);
            if (num(doc, "model", "params") != want)
                fail_msg("%s in %s: %.0f parameters, the config has %.0f", configs[c], types[t],
                         num(doc, "model", "params"), want);
            assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "config"), "kv_scheme")->valuestring,
                                scheme);
            cJSON_Delete(doc);
        }
    }
    result r = run("synth tests/fixtures/configs/tiny-deepseek-v3.json --layers 1 -o %s", path);
    assert_int_equal(r.status, 0);
    done(&r);
    snprintf(args, sizeof args, "analyze %s --format json", path);
    cJSON *doc = run_json(args); /* one dense layer: no experts stored, none counted */
    assert_true(num(doc, "model", "params") == num(doc, "model", "active_params"));
    cJSON_Delete(doc);
    r = run("synth tests/fixtures/configs/tiny-gemma3.json --layers 2 -o %s", path);
    assert_int_equal(r.status, 0);
    done(&r);
    doc = run_json(args); /* both layers local, as in the full model */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "config"), "kv_scheme")->valuestring,
                        "gqa:2+local:16/1");
    cJSON_Delete(doc);
    unlink(path);
}

static void test_tokenize(void **state)
{
    (void)state;
    const char *gguf = real_gguf();
    char args[1400];
    snprintf(args, sizeof args, "tokenize %s --format json \"<|im_start|>user 42\"", gguf);
    cJSON *doc = run_json(args);
    const cJSON *ids = cJSON_GetObjectItem(doc, "ids");
    int want[] = {1, 4093, 216, 36, 34}; /* special token whole, digits one by one */
    assert_int_equal(cJSON_GetArraySize(ids), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cJSON_GetArrayItem(ids, i)->valueint, want[i]);
    cJSON_Delete(doc);
    result r = run("tokenize %s --decode 19556,905", gguf);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "Hello world\n");
    done(&r);
}

/* ---- corrupt GGUF files: one line, exit 1, never a sanitizer report ---- */

static unsigned char *read_all(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    unsigned char *buf = malloc((size_t)*size);
    assert_int_equal(fread(buf, 1, (size_t)*size, f), (size_t)*size);
    fclose(f);
    return buf;
}

static void write_all(const char *path, const unsigned char *buf, long size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
}

/* Offset just past the name string of tensor `name` in the tensor infos. */
static long tensor_info(const unsigned char *buf, long size, const char *name)
{
    size_t n = strlen(name);
    for (long i = 8; i + (long)n < size; i++)
        if (!memcmp(buf + i, name, n) && buf[i - 8] == n && buf[i - 7] == 0)
            return i + (long)n;
    fail_msg("tensor %s not found", name);
    return -1;
}

static void expect_bad_gguf(const char *path, const char *needle)
{
    char args[256];
    snprintf(args, sizeof args, "analyze %s", path);
    expect_error(1, args, path, needle);
    snprintf(args, sizeof args, "run %s -n 1", path);
    expect_error(1, args, path, needle);
}

static void test_corrupt_gguf(void **state)
{
    (void)state;
    char good[64], bad[64];
    snprintf(good, sizeof good, "/tmp/sol-cli-good-%d.gguf", getpid());
    snprintf(bad, sizeof bad, "/tmp/sol-cli-bad-%d.gguf", getpid());
    result r = run("synth tests/fixtures/configs/tiny-llama.json --wtype q8_0 -o %s", good);
    assert_int_equal(r.status, 0);
    done(&r);
    long size;
    unsigned char *buf = read_all(good, &size);
    long cuts[] = {0, 3, 7, 20, 200, 3000, 9000, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_all(bad, buf, cuts[i]);
        expect_bad_gguf(bad, NULL);
    }
    unsigned char *copy = malloc((size_t)size);
    memcpy(copy, buf, (size_t)size);
    memcpy(copy, "GGUX", 4);
    write_all(bad, copy, size);
    expect_bad_gguf(bad, "not a GGUF file");

    /* tensor info: u32 n_dims, u64 dims[n], u32 type, u64 offset */
    long at = tensor_info(buf, size, "blk.0.attn_q.weight");
    memcpy(copy, buf, (size_t)size);
    copy[at + 4 + 16] = 99; /* type 99 */
    write_all(bad, copy, size);
    expect_bad_gguf(bad, "blk.0.attn_q.weight");
    memcpy(copy, buf, (size_t)size);
    memset(copy + at + 4, 0xff, 16); /* dims 2^64-1 x 2^64-1 */
    write_all(bad, copy, size);
    expect_bad_gguf(bad, "blk.0.attn_q.weight");
    memcpy(copy, buf, (size_t)size);
    memset(copy + at + 4 + 16 + 4, 0, 8);
    copy[at + 4 + 16 + 4 + 5] = 0x40; /* offset 2^46 */
    write_all(bad, copy, size);
    expect_bad_gguf(bad, "blk.0.attn_q.weight");
    /* a hyperparameter key renamed away */
    memcpy(copy, buf, (size_t)size);
    for (long i = 0; i + 17 < size; i++)
        if (!memcmp(copy + i, "llama.block_count", 17))
            copy[i + 16] = 'x';
    write_all(bad, copy, size);
    expect_bad_gguf(bad, "llama.block_count");
    free(copy);
    free(buf);
    unlink(good);
    unlink(bad);
}

/* ---- probe, measured ceilings, bench, db ------------------------------- */

static void test_probe_and_measured(void **state)
{
    (void)state;
    /* no probe yet: --hw measured refuses, --hw cpu estimates */
    expect_error(1, "analyze llama-2-7b --hw measured", "sol hw probe", NULL);
    cJSON *doc = run_json("hw probe --reps 5 --size-mib 64 --format json");
    double read_bw = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, doc)
    {
        const char *kind = cJSON_GetObjectItem(p, "kind")->valuestring;
        double med = num(p, "median", NULL), lo = num(p, "min", NULL), hi = num(p, "max", NULL);
        assert_true(lo <= med && med <= hi);
        assert_true(num(p, "reps", NULL) >= 5);
        if (!strncmp(kind, "mem_", 4)) /* within physical reason for this CPU */
            assert_true(med > 1e8 && med < 1e12);
        if (!strcmp(kind, "fp32_peak") || !strcmp(kind, "fp32_peak_1core"))
            assert_true(med > 1e8 && med < 1e14);
        if (!strcmp(kind, "mem_read_bw"))
            read_bw = med;
    }
    assert_true(read_bw > 0);
    cJSON_Delete(doc);
    doc = run_json("analyze llama-2-7b --hw measured --format json");
    const cJSON *hw = cJSON_GetObjectItem(doc, "hardware");
    assert_string_equal(cJSON_GetObjectItem(hw, "mem_bw_source")->valuestring, "measured");
    assert_true(fabs(num(hw, "mem_bw_bytes_per_s", NULL) - read_bw) <= 1e-6 * read_bw);
    cJSON_Delete(doc);
    expect_error(2, "hw probe --reps 2", "--reps", NULL);
    expect_error(1, "hw probe --backend cuda", "CUDA", NULL);
}

/* ---- bench output in llama-bench's fields --------------------------- */

/* One row of `llama-bench -o json` (or of `sol bench -o json`, which uses
 * the same names and types for what both measure). */
typedef struct {
    const char *build_commit, *model_type, *test_time;
    int64_t n_prompt, n_gen, n_threads, model_size, model_n_params, avg_ns, stddev_ns;
    double avg_ts, stddev_ts;
    int n_samples;
    int64_t samples_ns[16];
    double samples_ts[16];
    time_t time; /* test_time read back */
} bench_row;

static const cJSON *field_of(const cJSON *row, const char *name)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(row, name);
    if (!x)
        fail_msg("bench row: no \"%s\"", name);
    return x;
}

static const char *text_field(const cJSON *row, const char *name)
{
    const cJSON *x = field_of(row, name);
    if (!cJSON_IsString(x))
        fail_msg("bench row: \"%s\" is not a string", name);
    return x->valuestring;
}

static int64_t int_field(const cJSON *row, const char *name)
{
    const cJSON *x = field_of(row, name);
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble))
        fail_msg("bench row: \"%s\" is not an integer", name);
    return (int64_t)x->valuedouble;
}

static double real_field(const cJSON *row, const char *name)
{
    const cJSON *x = field_of(row, name);
    if (!cJSON_IsNumber(x))
        fail_msg("bench row: \"%s\" is not a number", name);
    return x->valuedouble;
}

static int close_rel(double a, double b, double rel) { return fabs(a - b) <= rel * fabs(b); }

/* Reads a row and checks what holds of every llama-bench row: a ppP or a
 * tgN test, test_time in ISO 8601 (UTC), avg_ns/stddev_ns the mean and
 * sample deviation of samples_ns, samples_ts the tokens/s of each sample,
 * avg_ts/stddev_ts their mean and sample deviation. */
static void read_bench_row(const cJSON *row, bench_row *r)
{
    memset(r, 0, sizeof *r);
    r->build_commit = text_field(row, "build_commit");
    r->model_type = text_field(row, "model_type");
    r->test_time = text_field(row, "test_time");
    r->n_prompt = int_field(row, "n_prompt");
    r->n_gen = int_field(row, "n_gen");
    r->n_threads = int_field(row, "n_threads");
    r->model_size = int_field(row, "model_size");
    r->model_n_params = int_field(row, "model_n_params");
    r->avg_ns = int_field(row, "avg_ns");
    r->stddev_ns = int_field(row, "stddev_ns");
    r->avg_ts = real_field(row, "avg_ts");
    r->stddev_ts = real_field(row, "stddev_ts");
    const cJSON *ns = field_of(row, "samples_ns"), *ts = field_of(row, "samples_ts"), *x;
    assert_true(cJSON_IsArray(ns) && cJSON_IsArray(ts));
    r->n_samples = cJSON_GetArraySize(ns);
    assert_true(r->n_samples >= 1 && r->n_samples <= 16 && cJSON_GetArraySize(ts) == r->n_samples);
    int i = 0;
    cJSON_ArrayForEach(x, ns) r->samples_ns[i++] = (int64_t)x->valuedouble;
    i = 0;
    cJSON_ArrayForEach(x, ts) r->samples_ts[i++] = x->valuedouble;

    assert_true(r->build_commit[0] && r->model_type[0]);
    assert_true((r->n_prompt > 0) != (r->n_gen > 0) && r->n_prompt >= 0 && r->n_gen >= 0);
    assert_true(r->n_threads >= 1 && r->model_size > 0 && r->model_n_params > 0);
    struct tm tm = {0};
    const char *end = strptime(r->test_time, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end)
        fail_msg("test_time \"%s\" is not ISO 8601 UTC", r->test_time);
    r->time = timegm(&tm);
    double mean_ns = 0, var_ns = 0, mean_ts = 0, var_ts = 0;
    int n = r->n_samples;
    for (i = 0; i < n; i++) {
        double want_ts = 1e9 * (double)(r->n_prompt + r->n_gen) / (double)r->samples_ns[i];
        assert_true(close_rel(r->samples_ts[i], want_ts, 1e-5)); /* llama-bench prints 6 digits */
        mean_ns += (double)r->samples_ns[i] / n;
        mean_ts += r->samples_ts[i] / n;
    }
    for (i = 0; i < n && n > 1; i++) {
        var_ns += ((double)r->samples_ns[i] - mean_ns) * ((double)r->samples_ns[i] - mean_ns) / (n - 1);
        var_ts += (r->samples_ts[i] - mean_ts) * (r->samples_ts[i] - mean_ts) / (n - 1);
    }
    assert_true(fabs((double)r->avg_ns - mean_ns) <= 1);
    assert_true(fabs((double)r->stddev_ns - sqrt(var_ns)) <= 1);
    assert_true(close_rel(r->avg_ts, mean_ts, 1e-5));
    assert_true(fabs(r->stddev_ts - sqrt(var_ts)) <= 1e-5 * mean_ts);
}

/* The rows of a JSON array of bench rows; returns how many. */
static int read_bench_doc(const cJSON *doc, bench_row *rows, int cap)
{
    assert_true(cJSON_IsArray(doc));
    int n = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, doc)
    {
        assert_true(n < cap);
        read_bench_row(row, &rows[n++]);
    }
    return n;
}

/* The fields both tools report, by llama-bench's names. */
static const char *const shared_fields[] = {
    "build_commit", "build_number", "cpu_info", "gpu_info", "backends", "model_filename", "model_type",
    "model_size", "model_n_params", "n_batch", "n_ubatch", "n_threads", "cpu_mask", "cpu_strict",
    "type_k", "type_v", "n_gpu_layers", "use_mmap", "n_prompt", "n_gen", "n_depth", "test_time",
    "avg_ns", "stddev_ns", "avg_ts", "stddev_ts"};

/* Column of name in a CSV header line, or -1. */
static int csv_column(const char *header, const char *name)
{
    size_t n = strlen(name);
    int col = 0;
    for (const char *p = header; *p && *p != '\n'; col++) {
        size_t len = strcspn(p, ",\n");
        if (len == n && !strncmp(p, name, n))
            return col;
        p += len + (p[len] == ',');
    }
    return -1;
}

/* A real llama-bench layout (tests/fixtures/llama-bench.json, pp512 and
 * tg128) read by the same code as sol's. */
static void test_llama_bench_fixture(void **state)
{
    (void)state;
    char *text = slurp("tests/fixtures/llama-bench.json");
    cJSON *doc = cJSON_Parse(text);
    assert_non_null(doc);
    bench_row rows[4];
    assert_int_equal(read_bench_doc(doc, rows, 4), 2);
    assert_true(rows[0].n_prompt == 512 && rows[0].n_gen == 0);
    assert_true(rows[1].n_prompt == 0 && rows[1].n_gen == 128);
    assert_string_equal(rows[0].build_commit, "e291450b");
    assert_true(rows[0].model_n_params == 1235814400 && rows[0].n_threads == 8);
    for (size_t i = 0; i < sizeof shared_fields / sizeof *shared_fields; i++)
        assert_non_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(doc, 0), shared_fields[i]));
    cJSON_Delete(doc);
    free(text);
}

/* sol's own fields of a bench row: the speed of light beside the speed. */
static void check_sol_fields(const cJSON *row, const bench_row *r, const char *test)
{
    assert_string_equal(text_field(row, "test"), test);
    assert_true(real_field(row, "achieved_gb_per_s") > 0);
    assert_true(real_field(row, "sol_tokens_per_s") > 0);
    assert_true(close_rel(real_field(row, "sol_percent"), 100 * r->avg_ts / real_field(row, "sol_tokens_per_s"), 1e-9));
    assert_true(real_field(row, "ceiling_gb_per_s") > 0);
    assert_true(text_field(row, "ceiling_source")[0] != '\0');
    assert_true(text_field(row, "backend")[0] != '\0');
    /* the model's own scheme: the engine's KV bytes are the analyzer's */
    assert_true(real_field(row, "kv_bytes_allocated") == real_field(row, "kv_bytes_predicted"));
    assert_true(real_field(row, "kv_read_bytes_last_step") > 0);
    assert_true(real_field(row, "kv_read_bytes_last_step") == real_field(row, "kv_read_bytes_last_step_plan"));
}

static void test_bench_formats(void **state)
{
    (void)state;
    char model[64], args[256];
    snprintf(model, sizeof model, "/tmp/sol-cli-bench-%d.gguf", getpid());
    result r = run("synth tests/fixtures/configs/tiny-llama.json --wtype q8_0 -o %s", model);
    assert_int_equal(r.status, 0);
    done(&r);
    struct stat st;
    assert_int_equal(stat(model, &st), 0);
    r = run("--version"); /* "sol 0.1.0 (COMMIT)" */
    char commit[64] = "";
    assert_int_equal(sscanf(r.out, "sol %*s (%63[^)])", commit), 1);
    done(&r);
    time_t started = time(NULL);
    snprintf(args, sizeof args, "bench %s -p 16 -n 8 -r 3 -o json", model);
    cJSON *doc = run_json(args);
    bench_row rows[4];
    assert_int_equal(read_bench_doc(doc, rows, 4), 2);
    for (int i = 0; i < 2; i++) {
        assert_true(rows[i].n_prompt == (i == 0 ? 16 : 0) && rows[i].n_gen == (i == 0 ? 0 : 8));
        assert_int_equal(rows[i].n_samples, 3);
        assert_true(rows[i].avg_ts > 0);
        assert_int_equal(rows[i].model_n_params, 1836288); /* the synth model's tensors */
        assert_true(rows[i].model_size <= st.st_size && rows[i].model_size > st.st_size * 9 / 10);
        assert_string_equal(rows[i].build_commit, commit);
        assert_true(rows[i].time >= started - 1 && rows[i].time <= time(NULL) + 1);
        assert_non_null(strstr(rows[i].model_type, "Q8_0"));
        check_sol_fields(cJSON_GetArrayItem(doc, i), &rows[i], i == 0 ? "pp16" : "tg8");
    }
    assert_int_equal(int_field(cJSON_GetArrayItem(doc, 0), "n_gpu_layers"), 0); /* the CPU backend */
    cJSON_Delete(doc);

    /* CSV: llama-bench's column names for the shared fields, in its order */
    r = run("bench %s -p 16 -n 8 -r 2 -o csv", model);
    assert_int_equal(r.status, 0);
    char *fixture = slurp("tests/fixtures/llama-bench.json");
    cJSON *llama = cJSON_Parse(fixture);
    int last = -1;
    for (size_t i = 0; i < sizeof shared_fields / sizeof *shared_fields; i++) {
        int col = csv_column(r.out, shared_fields[i]);
        if (col < 0)
            fail_msg("sol bench -o csv: no column \"%s\"", shared_fields[i]);
        assert_true(col > last);
        last = col;
        assert_non_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(llama, 0), shared_fields[i]));
    }
    assert_int_equal(csv_column(r.out, "samples_ns"), -1); /* arrays are JSON's only, as in llama-bench */
    assert_int_equal(count_lines(r.out, "build_commit,"), 1);
    assert_int_equal(count_lines(r.out, "\""), 2);
    cJSON_Delete(llama);
    free(fixture);
    done(&r);

    /* JSONL: one object a line, the same rows */
    r = run("bench %s -p 16 -n 8 -r 2 -o jsonl --no-store", model);
    assert_int_equal(r.status, 0);
    int lines = 0;
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        cJSON *row = cJSON_Parse(line);
        assert_non_null(row);
        bench_row one;
        read_bench_row(row, &one);
        assert_int_equal(one.n_gen, lines == 0 ? 0 : 8);
        cJSON_Delete(row);
    }
    assert_int_equal(lines, 2);
    done(&r);

    /* the SQL output loads into sqlite3 as llama-bench's table, typed */
    char sql_db[64], cmd[768];
    snprintf(sql_db, sizeof sql_db, "/tmp/sol-cli-bench-%d.sqlite", getpid());
    snprintf(cmd, sizeof cmd,
             "%s bench %s -p 16 -n 8 -r 2 -o sql 2>/dev/null | sqlite3 %s && "
             "test \"$(sqlite3 %s \"select count(*), sum(typeof(avg_ts) = 'real'), sum(typeof(n_prompt) = "
             "'integer'), sum(n_prompt + n_gen) from llama_bench\")\" = '2|2|2|24'",
             getenv("SOL_BIN"), model, sql_db, sql_db);
    assert_int_equal(system(cmd), 0);
    unlink(sql_db);
    /* every run was stored: 3 benches x 2 tests (jsonl ran --no-store) */
    doc = run_json("db runs --format json");
    int stored = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, doc) stored += strstr(cJSON_GetObjectItem(row, "model")->valuestring, "tiny-llama") != NULL;
    assert_int_equal(stored, 6);
    cJSON_Delete(doc);
    unlink(model);
    expect_error(2, "bench /tmp/x.gguf -p 0 -n 0", "nothing to run", NULL);
    expect_error(2, "bench /tmp/x.gguf -o xml", "-o", NULL);
}

/* Calibrated predictions come from the database: nothing there, a one-line
 * "no calibration" and exit 1; after one bench, the next one predicts each
 * test beside its measurement, and analyze --calibrated predicts the model. */
static void test_calibrated_prediction(void **state)
{
    (void)state;
    char dir[64], db[96], model[96];
    snprintf(dir, sizeof dir, "/tmp/sol-cli-calib-%d", getpid());
    snprintf(db, sizeof db, "%s/sol.db", dir);
    snprintf(model, sizeof model, "%s/tiny-q8.gguf", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    const char *saved = getenv("SOL_DB");
    char old_db[512];
    snprintf(old_db, sizeof old_db, "%s", saved ? saved : "");
    setenv("SOL_DB", db, 1);
    result r = run("synth tests/fixtures/configs/tiny-llama.json --wtype q8_0 -o %s", model);
    assert_int_equal(r.status, 0);
    done(&r);
    char args[256];
    snprintf(args, sizeof args, "analyze %s --hw cpu --calibrated", model);
    expect_error(1, args, "no calibration for this CPU", "run `sol bench`");
    cJSON *doc = run_json("hw probe --reps 5 --size-mib 64 --format json");
    cJSON_Delete(doc);

    snprintf(args, sizeof args, "bench %s -p 16 -n 8 -r 2 -t 1 -o json", model);
    for (int pass = 0; pass < 2; pass++) {
        doc = run_json(args);
        assert_int_equal(cJSON_GetArraySize(doc), 2);
        for (int i = 0; i < 2; i++) {
            const cJSON *row = cJSON_GetArrayItem(doc, i);
            const cJSON *pred = cJSON_GetObjectItem(row, "predicted_tokens_per_s");
            if (pass == 0) { /* never from the run being measured */
                assert_null(pred);
                continue;
            }
            assert_true(cJSON_IsNumber(pred) && pred->valuedouble > 0);
            /* the same op classes, calibrated on this machine a moment ago */
            double measured = cJSON_GetObjectItem(row, "avg_ts")->valuedouble;
            assert_true(pred->valuedouble > measured / 4 && pred->valuedouble < measured * 4);
            const cJSON *groups = cJSON_GetObjectItem(row, "op_groups");
            assert_true(cJSON_GetArraySize(groups) >= 5);
            double predicted_s = 0;
            const cJSON *g;
            cJSON_ArrayForEach(g, groups) predicted_s += cJSON_GetObjectItem(g, "predicted_s")->valuedouble;
            int tokens = i == 0 ? 16 : 8; /* the groups add up to the predicted time per repetition */
            assert_true(close_rel(predicted_s, tokens / pred->valuedouble, 1e-9));
        }
        cJSON_Delete(doc);
    }
    r = run("bench %s -p 0 -n 8 -r 1 -t 1", model);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "| pred t/s |"));
    assert_null(strstr(r.out, "| - |"));
    done(&r);

    snprintf(args, sizeof args, "analyze %s --hw measured --calibrated --ctx 8 --prompt 16 --format json", model);
    doc = run_json(args);
    const cJSON *cal = cJSON_GetObjectItem(doc, "calibrated");
    assert_non_null(cal);
    assert_string_equal(cJSON_GetObjectItem(cal, "kind")->valuestring, "calibrated prediction");
    assert_int_equal(cJSON_GetObjectItem(cal, "threads")->valueint, 1);
    assert_true(cJSON_GetObjectItem(cal, "runs")->valueint >= 2);
    double tps = num(cal, "decode", "tokens_per_s");
    assert_true(tps > 0 && tps < num(doc, "decode", "tokens_per_s")); /* below the speed of light */
    assert_non_null(cJSON_GetObjectItem(cal, "prefill"));
    cJSON_Delete(doc);
    r = run("analyze %s --hw measured --calibrated --ctx 8", model);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Calibrated prediction (not a bound)"));
    done(&r);
    /* weights of a type never benchmarked: named, exit 1 */
    expect_error(1, "analyze llama-2-7b --hw measured --calibrated --wtype q6_k", "no calibration for",
                 "q6_k decode on this device");
    expect_error(2, "analyze llama-2-7b --hw h100-sxm --calibrated", "--calibrated", "--hw measured");

    if (old_db[0])
        setenv("SOL_DB", old_db, 1);
    else
        unsetenv("SOL_DB");
    char cleanup[160];
    snprintf(cleanup, sizeof cleanup, "rm -rf %s", dir);
    assert_int_equal(system(cleanup), 0);
}

static void test_db_commands(void **state)
{
    (void)state;
    result r = run("db path");
    char want[128];
    snprintf(want, sizeof want, "%s\n", getenv("SOL_DB"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, want);
    done(&r);
    char out[64];
    snprintf(out, sizeof out, "/tmp/sol-cli-export-%d.db", getpid());
    r = run("db export %s", out);
    assert_int_equal(r.status, 0);
    done(&r);
    char args[128];
    snprintf(args, sizeof args, "db export %s", out);
    expect_error(1, args, "already exists", NULL);
    r = run("db import %s", out); /* our own rows: nothing new */
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "imported 0 rows"));
    done(&r);
    unlink(out);
    r = run("db import tests/fixtures/db/v1.db");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "imported 6 rows"));
    done(&r);
    write_file("/tmp/sol-cli-text.db", "not a database\n");
    expect_error(1, "db import /tmp/sol-cli-text.db", "not a SQLite database", NULL);
    unlink("/tmp/sol-cli-text.db");
    expect_error(2, "db frob", "frob", NULL);
    expect_error(2, "db runs --format xml", "--format", NULL);
}

/* A database that cannot be written: bench and tune say so before
 * measuring anything (they used to measure everything first). root may
 * write any file, so as root the commands run as nobody. */
static void test_readonly_db(void **state)
{
    (void)state;
    char dir[64], db[96], model[96], prefix[96] = "";
    snprintf(dir, sizeof dir, "/tmp/sol-cli-ro-%d", getpid());
    snprintf(db, sizeof db, "%s/sol.db", dir);
    snprintf(model, sizeof model, "%s/tiny.gguf", dir);
    assert_int_equal(mkdir(dir, 0777), 0);
    assert_int_equal(chmod(dir, 0777), 0); /* WAL's -shm beside it must be creatable */
    result r = run("synth tests/fixtures/configs/tiny-llama.json -o %s", model);
    assert_int_equal(r.status, 0);
    done(&r);
    const char *saved = getenv("SOL_DB");
    char old_db[512];
    snprintf(old_db, sizeof old_db, "%s", saved ? saved : "");
    setenv("SOL_DB", db, 1);
    r = run("tune --shape matvec:q8_0:64x64 --budget 1");
    assert_int_equal(r.status, 0);
    done(&r);
    assert_int_equal(chmod(db, 0444), 0);
    if (geteuid() == 0)
        snprintf(prefix, sizeof prefix, "setpriv --reuid=65534 --regid=65534 --clear-groups");
    r = run_as(prefix, "bench %s -p 8 -n 4 -r 1", model);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "read-only"));
    assert_null(strstr(r.err, "rep 1/1")); /* nothing measured */
    done(&r);
    r = run_as(prefix, "tune --shape matvec:q8_0:64x64");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "read-only"));
    assert_null(strstr(r.err, " best ")); /* no progress line: nothing measured */
    done(&r);
    r = run_as(prefix, "bench %s -p 8 -n 0 -r 1 --no-store", model); /* --no-store still runs */
    assert_int_equal(r.status, 0);
    done(&r);
    if (old_db[0])
        setenv("SOL_DB", old_db, 1);
    else
        unsetenv("SOL_DB");
    char cleanup[160];
    snprintf(cleanup, sizeof cleanup, "rm -rf %s", dir);
    assert_int_equal(system(cleanup), 0);
}

/* ---- tuner ---------------------------------------------------------------- */

static int count_trials(const char *shape)
{
    cJSON *doc = run_json("db trials --format json");
    int n = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, doc) n += !strcmp(cJSON_GetObjectItem(row, "shape")->valuestring, shape);
    cJSON_Delete(doc);
    return n;
}

static void test_tune_resume_and_key(void **state)
{
    (void)state;
    setenv("SOL_TUNE_SOURCE_HASH", "testhash-a", 1);
    result r = run("tune --shape matvec:q8_0:256x512 --strategy exhaustive --reps 5");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "256x512x1"));
    done(&r);
    int first = count_trials("256x512x1");
    assert_int_equal(first, 18); /* every valid configuration once: 6 task splits x 3 tile rows */
    /* a rerun measures nothing new */
    r = run("tune --shape matvec:q8_0:256x512 --strategy exhaustive --reps 5");
    assert_int_equal(r.status, 0);
    done(&r);
    assert_int_equal(count_trials("256x512x1"), first);
    /* changed kernel sources: the old trials are not reused */
    setenv("SOL_TUNE_SOURCE_HASH", "testhash-b", 1);
    r = run("tune --shape matvec:q8_0:256x512 --strategy random --budget 3 --reps 5");
    assert_int_equal(r.status, 0);
    done(&r);
    unsetenv("SOL_TUNE_SOURCE_HASH");
    assert_int_equal(count_trials("256x512x1"), first + 3 + 1); /* default + 3 */
    cJSON *doc = run_json("db best --format json");
    int winners = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, doc) winners += !strcmp(cJSON_GetObjectItem(row, "shape")->valuestring, "256x512x1");
    assert_int_equal(winners, 2); /* one per source hash */
    cJSON_Delete(doc);
    expect_error(2, "tune --shape matvec:q9:1x1", "--shape", NULL);
    expect_error(2, "tune --shape matvec:q8_0:256x512 --strategy bayes", "--strategy", "bayes");
    expect_error(2, "tune", "MODEL", NULL);
    expect_error(2, "tune --shape matvec:q8_0:256x512 --activations int4", "--activations", "int4");
    /* a replay on the recorded landscape measures and stores nothing */
    setenv("SOL_TUNE_SOURCE_HASH", "testhash-a", 1);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "tune --shape matvec:q8_0:256x512 --strategy anneal --budget 4 --landscape %s",
             getenv("SOL_DB"));
    r = run(cmd);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "256x512x1"));
    done(&r);
    snprintf(cmd, sizeof cmd, "tune --shape matvec:q8_0:256x512 --strategy genetic --budget 6 --seed 2 --landscape %s",
             getenv("SOL_DB"));
    r = run(cmd);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "256x512x1"));
    done(&r);
    unsetenv("SOL_TUNE_SOURCE_HASH");
    assert_int_equal(count_trials("256x512x1"), first + 3 + 1);
    expect_error(2, "tune --shape matvec:q8_0:256x512 --landscape /nonexistent/x.db", "--landscape",
                 "/nonexistent/x.db");
    /* f32 activations are another kernel: tuned separately, stored separately */
    r = run("tune --shape matvec:q8_0:256x512 --strategy exhaustive --reps 5 --activations f32");
    assert_int_equal(r.status, 0);
    done(&r);
    doc = run_json("db best --format json");
    int f32_kernel = 0;
    cJSON_ArrayForEach(row, doc) f32_kernel += !strcmp(cJSON_GetObjectItem(row, "kernel")->valuestring, "cpu.matmul");
    assert_int_equal(f32_kernel, 1);
    cJSON_Delete(doc);
}

/* sol tune --backend cuda on a machine without a GPU: everything is parsed
 * (a bad shape or option is a usage error, exit 2), then one line, exit 1:
 * no CUDA backend built, or no device. With a model too. */
static void test_tune_cuda(void **state)
{
    (void)state;
    char args[1400];
    expect_error(1, "tune --shape matvec:q4_k:4096x4096x1 --backend cuda", "CUDA", NULL);
    expect_error(1, "tune --shape matvec:f16:576x1536 --backend cuda --batches 1,8 --strategy random --budget 12",
                 "CUDA", NULL);
    expect_error(1, "tune --shape matvec:q8_0:151936x896x8 --backend cuda --device 3 --reps 10", "CUDA", NULL);
    expect_error(1, "tune smollm2-135m --backend cuda", "CUDA", NULL);
    expect_error(2, "tune --shape matvec:q4_k:4096x4000x1 --backend cuda", "--shape", "multiple of 256");
    expect_error(2, "tune --shape matvec:q4_k:4096x4096x9 --backend cuda", "--shape", "M 1..8");
    expect_error(2, "tune --shape matvec:q5_k:4096x4096 --backend cuda", "--shape", "q5_k");
    expect_error(2, "tune --shape matmul:q4_k:4096x4096x64 --backend cuda", "--shape", "matvec:TYPE:NxK");
    expect_error(2, "tune --shape matvec:q4_k:4096x4096 --backend cuda --batches 1,9", "--batches", "item 2");
    expect_error(2, "tune --shape matvec:q4_k:4096x4096 --backend cuda --reps 5", "--reps", "at least 10");
    expect_error(2, "tune --shape matvec:q4_k:4096x4096 --backend cuda --threads 4", "--threads", "CPU");
    expect_error(2, "tune --shape matvec:q4_k:4096x4096 --backend cuda --activations f32", "--activations", "CPU");
    expect_error(2, "tune --shape matvec:q4_k:4096x4096 --backend cuda --device -1", "--device", NULL);
    expect_error(2, "tune --shape matvec:q4_k:4096x4096 --backend cuda --strategy bayes", "--strategy", "bayes");
    expect_error(2, "tune --shape matvec:q8_0:64x64 --batches 1,8", "--batches", "--backend cuda");
    expect_error(2, "tune --shape matvec:q8_0:64x64 --no-counters", "--no-counters", "--backend cuda");
    expect_error(2, "db trials --backend cuda", "--backend cuda", "best");
    expect_error(2, "tune --shape attention:f16:32x5x128x4096 --backend cuda", "--shape", "out of range");
    expect_error(2, "tune --shape attention:q8_0:32x8x128x4096 --backend cuda", "--shape", "q8_0");
    expect_error(2, "tune llama-2-7b --backend cuda --kernels matmul", "--kernels", "matmul");
    expect_error(2, "tune llama-2-7b --backend cuda --ctx 5", "--ctx", "out of range");
    expect_error(2, "tune llama-2-7b --ctx 1024", "--ctx", "--backend cuda");
    expect_error(2, "db best --backend cpu", "--backend", "cpu");
    expect_error(2, "db best --backend cuda --format csv", "CSV", NULL);
    expect_error(2, "tune --shape matvec:q8_0:64x64 --device 0", "--device", "--backend cuda");
    const char *gguf = getenv("SOL_TEST_GGUF");
    if (gguf && *gguf) {
        snprintf(args, sizeof args, "tune %s --backend cuda", gguf);
        expect_error(1, args, "CUDA", NULL);
    }
    /* nothing was stored for a GPU */
    cJSON *doc = run_json("db trials --format json");
    const cJSON *row;
    cJSON_ArrayForEach(row, doc) assert_null(strstr(cJSON_GetObjectItem(row, "kernel")->valuestring, "cuda"));
    cJSON_Delete(doc);
}

/* The CLI's side of the CUDA tuner on the fake plugin (tests/backend/
 * fake_tuner.c: fixed times, the fastest variants wrong on purpose, a crash
 * on request): every measured trial stored under the fake GPU with its
 * cuBLAS baseline, the winner the fastest right one, a rerun measuring
 * nothing, a crash recorded as wrong, stopping the run in one line, and
 * the rerun going on past it. */
static int count_kernel(const char *kernel, const char *shape, int correct_only)
{
    cJSON *doc = run_json("db trials --format json");
    int n = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, doc) n += !strcmp(cJSON_GetObjectItem(row, "kernel")->valuestring, kernel) &&
                                      !strcmp(cJSON_GetObjectItem(row, "shape")->valuestring, shape) &&
                                      (!correct_only || cJSON_GetObjectItem(row, "correct")->valueint);
    cJSON_Delete(doc);
    return n;
}

/* Every right trial of shape stored with the fake's counters: DRAM bytes
 * (read + written) over the bytes a q4_k rows x cols problem of m inputs
 * must move, 1.25 for vec_bytes other than 16, 1 otherwise; cuBLAS 1.5. */
static void assert_fake_counters(const char *shape, int rows, int cols, int m)
{
    double plan = rows * (cols / 256 * 144.0) + 4.0 * m * (rows + cols);
    cJSON *doc = run_json("db trials --format json");
    int counted = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, doc)
    {
        const char *kernel = cJSON_GetObjectItem(row, "kernel")->valuestring;
        if (strcmp(cJSON_GetObjectItem(row, "shape")->valuestring, shape) ||
            !cJSON_GetObjectItem(row, "correct")->valueint || strncmp(kernel, "cuda.", 5))
            continue;
        cJSON *c = cJSON_Parse(cJSON_GetObjectItem(row, "counters_json")->valuestring);
        const cJSON *rd = cJSON_GetObjectItem(c, "dram_read_bytes"), *wr = cJSON_GetObjectItem(c, "dram_write_bytes");
        if (!cJSON_IsNumber(rd) || !cJSON_IsNumber(wr))
            fail_msg("%s %s: no counters stored: %s", kernel, shape, cJSON_GetObjectItem(row, "counters_json")->valuestring);
        int wide = strstr(cJSON_GetObjectItem(row, "params_json")->valuestring, "\"vec_bytes\":16") != NULL;
        double want = !strcmp(kernel, "cuda.cublas") ? 1.5 : wide ? 1.0 : 1.25;
        assert_true(fabs((rd->valuedouble + wr->valuedouble) / plan - want) < 1e-12);
        assert_int_equal(cJSON_GetObjectItem(c, "counter_passes")->valueint, 8);
        cJSON_Delete(c);
        counted++;
    }
    cJSON_Delete(doc);
    assert_true(counted > 1);
}

/* sol db best --backend cuda: the winner of shape with its own trial's
 * counters (the fake's DRAM over plan: 1 for vec_bytes 16, else 1.25) and
 * its cuBLAS baseline (1.5). */
static void assert_best_cuda_counters(const char *shape)
{
    cJSON *doc = run_json("db best --backend cuda --format json");
    int found = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, doc)
    {
        if (strcmp(cJSON_GetObjectItem(row, "shape")->valuestring, shape))
            continue;
        found++;
        int wide = cJSON_GetObjectItem(cJSON_GetObjectItem(row, "params"), "vec_bytes")->valueint == 16;
        assert_true(fabs(cJSON_GetObjectItem(row, "dram_over_plan")->valuedouble - (wide ? 1.0 : 1.25)) < 1e-12);
        const cJSON *base = cJSON_GetObjectItem(cJSON_GetObjectItem(row, "cublas"), "counters");
        double plan = cJSON_GetObjectItem(cJSON_GetObjectItem(row, "counters"), "bytes")->valuedouble;
        double dram = cJSON_GetObjectItem(base, "dram_read_bytes")->valuedouble +
                      cJSON_GetObjectItem(base, "dram_write_bytes")->valuedouble;
        assert_true(fabs(dram / plan - 1.5) < 1e-12);
    }
    cJSON_Delete(doc);
    assert_int_equal(found, 1);
    result r = run("%s", "db best --backend cuda");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "DRAM/plan"));
    assert_non_null(strstr(r.out, shape));
    done(&r);
}

/* Decode attention on the fake plugin: every valid variant of the space
 * measured (exhaustive), the fake's wrong fastest one (w16 s64) stored as
 * wrong and never chosen, the winner its fastest right one (h4 w8 s512 for a
 * group of 4) stored under the attention's own source hash, and db best
 * --backend cuda listing it. */
static void test_tune_cuda_fake_attention(const char *fake)
{
    char args[1400];
    snprintf(args, sizeof args, "tune --shape attention:f16:32x8x128x4096 --batches 1 --backend %s --strategy "
             "exhaustive --budget 200", fake);
    result r = run("%s", args);
    if (r.status != 0)
        fail_msg("sol %s: exit %d: %s", args, r.status, r.err);
    assert_non_null(strstr(r.out, "attention f16    32x8x128x4096x1"));
    done(&r);
    cJSON *doc = run_json("db trials --format json");
    int wrong = 0, right = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, doc)
    {
        if (strcmp(cJSON_GetObjectItem(row, "kernel")->valuestring, "cuda.attention"))
            continue;
        const char *params = cJSON_GetObjectItem(row, "params_json")->valuestring;
        if (cJSON_GetObjectItem(row, "correct")->valueint) {
            right++;
        } else if (strstr(cJSON_GetObjectItem(row, "counters_json")->valuestring, "\"wrong\"")) {
            wrong++;
            assert_non_null(strstr(params, "\"warps\":16"));
            assert_non_null(strstr(params, "\"slots_per_split\":64"));
        }
    }
    cJSON_Delete(doc);
    /* valid: d4 fixed; h in 1,2,4,8 and w in 2,4,8,16 with h x w <= 64 (15 pairs) x 6 slot counts */
    assert_int_equal(right + wrong, 15 * 6);
    assert_true(wrong >= 1);
    doc = run_json("db best --backend cuda --format json");
    int found = 0;
    cJSON_ArrayForEach(row, doc)
    {
        if (strcmp(cJSON_GetObjectItem(row, "kernel")->valuestring, "cuda.attention") ||
            strcmp(cJSON_GetObjectItem(row, "shape")->valuestring, "32x8x128x4096x1"))
            continue;
        found++;
        const cJSON *p = cJSON_GetObjectItem(row, "params");
        assert_int_equal(cJSON_GetObjectItem(p, "heads_per_block")->valueint, 4);
        assert_int_equal(cJSON_GetObjectItem(p, "warps")->valueint, 8);
        assert_int_equal(cJSON_GetObjectItem(p, "slots_per_split")->valueint, 512);
        assert_true(fabs(cJSON_GetObjectItem(row, "median_s")->valuedouble - 20e-6) < 1e-12);
        assert_string_equal(cJSON_GetObjectItem(row, "source_hash")->valuestring, "fa4e0000a77e0001");
        assert_null(cJSON_GetObjectItem(row, "cublas"));
    }
    cJSON_Delete(doc);
    assert_int_equal(found, 1);
    /* a model: its matmuls and its attention (llama-2-7b: 32 heads of 128 over 32 KV heads), --ctx slots */
    snprintf(args, sizeof args, "tune llama-2-7b --batches 1 --ctx 1024 --kernels attention --backend %s "
             "--strategy random --budget 4", fake);
    r = run("%s", args);
    if (r.status != 0)
        fail_msg("sol %s: exit %d: %s", args, r.status, r.err);
    assert_non_null(strstr(r.out, "32x32x128x1024x1"));
    assert_null(strstr(r.out, "\nmatvec ")); /* no matvec row: --kernels attention */
    done(&r);
}

/* The fused RMSNorm matvec: its own kernel (cuda.matvec_rmsnorm) whose
 * winner is its own (the fake's r4 t64 v16, the matvec's r8), no K split
 * tried, no cuBLAS baseline; a model's problems are the matmuls after its
 * norms (llama-2-7b: q k v, gate and up, the LM head; not o nor down). */
static void test_tune_cuda_fake_rmsnorm(const char *fake)
{
    char args[1400];
    snprintf(args, sizeof args, "tune --shape matvec_rmsnorm:q4_k:32x512x1 --backend %s --strategy exhaustive "
             "--budget 2000", fake);
    result r = run("%s", args);
    if (r.status != 0)
        fail_msg("sol %s: exit %d: %s", args, r.status, r.err);
    assert_non_null(strstr(r.out, "mv+norm   q4_k   32x512x1"));
    assert_null(strstr(r.err, "cuBLAS"));
    done(&r);
    cJSON *doc = run_json("db trials --format json");
    int fused = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, doc)
    {
        const char *kernel = cJSON_GetObjectItem(row, "kernel")->valuestring,
                   *shape = cJSON_GetObjectItem(row, "shape")->valuestring;
        if (!strcmp(kernel, "cuda.matvec_rmsnorm")) {
            fused++;
            assert_non_null(strstr(cJSON_GetObjectItem(row, "params_json")->valuestring, "\"k_split\":1"));
        }
        if (!strcmp(shape, "32x512x1"))
            assert_true(strcmp(kernel, "cuda.cublas") || !strstr(cJSON_GetObjectItem(row, "compile_flags")->valuestring,
                                                                 "norm"));
    }
    cJSON_Delete(doc);
    assert_true(fused > 100);
    doc = run_json("db best --backend cuda --format json");
    int found = 0;
    cJSON_ArrayForEach(row, doc)
    {
        if (strcmp(cJSON_GetObjectItem(row, "kernel")->valuestring, "cuda.matvec_rmsnorm"))
            continue;
        found++;
        const cJSON *p = cJSON_GetObjectItem(row, "params");
        assert_int_equal(cJSON_GetObjectItem(p, "rows_per_block")->valueint, 4);
        assert_int_equal(cJSON_GetObjectItem(p, "threads_per_row")->valueint, 64);
        assert_int_equal(cJSON_GetObjectItem(p, "vec_bytes")->valueint, 16);
        assert_int_equal(cJSON_GetObjectItem(p, "k_split")->valueint, 1);
        assert_true(fabs(cJSON_GetObjectItem(row, "median_s")->valuedouble - 12e-6) < 1e-12);
        assert_string_equal(cJSON_GetObjectItem(row, "source_hash")->valuestring, "fa4e0000fa4e0001");
        assert_null(cJSON_GetObjectItem(row, "cublas"));
    }
    cJSON_Delete(doc);
    assert_int_equal(found, 1);
    r = run("db best --backend cuda");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "matvec_rmsnorm"));
    done(&r);
    snprintf(args, sizeof args, "tune llama-2-7b --batches 1 --kernels rmsnorm_matvec --backend %s --strategy random "
             "--budget 2", fake);
    r = run("%s", args);
    if (r.status != 0)
        fail_msg("sol %s: exit %d: %s", args, r.status, r.err);
    assert_non_null(strstr(r.out, " 4096x4096x1 "));
    assert_non_null(strstr(r.out, " 11008x4096x1 "));
    assert_non_null(strstr(r.out, " 32000x4096x1 "));
    assert_null(strstr(r.out, " 4096x11008x1 ")); /* down: after the SwiGLU, no norm */
    assert_null(strstr(r.out, "\nmatvec "));
    assert_null(strstr(r.out, "\nattention "));
    done(&r);
    r = run("tune llama-2-7b --kernels bogus --backend %s", fake);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "rmsnorm_matvec"));
    done(&r);
}

/* Counting off: the plugin's notice said once, the trials timed only, the
 * table's DRAM/plan empty; --no-counters asks for none and says nothing. */
static void test_tune_cuda_fake_uncounted(const char *fake)
{
    char args[1400];
    snprintf(args, sizeof args, "tune --shape matvec:q4_k:32x512x1 --backend %s --strategy random --budget 8", fake);
    setenv("SOL_FAKE_TUNER_NO_COUNTERS", "1", 1);
    result r = run("%s", args);
    unsetenv("SOL_FAKE_TUNER_NO_COUNTERS");
    if (r.status != 0)
        fail_msg("sol %s: exit %d: %s", args, r.status, r.err);
    const char *notice = strstr(r.err, "SOL_FAKE_TUNER_NO_COUNTERS");
    assert_non_null(notice);
    assert_null(strstr(notice + 1, "SOL_FAKE_TUNER_NO_COUNTERS"));
    assert_null(strstr(r.out, " 1.000 "));
    done(&r);
    snprintf(args, sizeof args, "tune --shape matvec:q4_k:32x256x1 --backend %s --strategy random --budget 8 "
             "--no-counters", fake);
    r = run("%s", args);
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.err, "CUPTI"));
    done(&r);
    cJSON *doc = run_json("db trials --format json");
    const cJSON *row;
    int seen = 0;
    cJSON_ArrayForEach(row, doc)
    {
        const char *shape = cJSON_GetObjectItem(row, "shape")->valuestring;
        if (strcmp(shape, "32x512x1") && strcmp(shape, "32x256x1"))
            continue;
        assert_null(strstr(cJSON_GetObjectItem(row, "counters_json")->valuestring, "dram_read_bytes"));
        seen++;
    }
    cJSON_Delete(doc);
    assert_true(seen >= 4);
}

static void test_tune_cuda_fake(void **state)
{
    (void)state;
    const char *fake = getenv("SOL_TEST_FAKE_TUNER");
    if (!fake || !*fake)
        skip();
    char args[1400];
    snprintf(args, sizeof args, "tune --shape matvec:q4_k:64x1024x1 --backend %s --strategy random --budget 40", fake);
    result r = run("%s", args);
    if (r.status != 0)
        fail_msg("sol %s: exit %d: %s", args, r.status, r.err);
    assert_non_null(strstr(r.out, "64x1024x1"));
    assert_non_null(strstr(r.out, "50.0 us")); /* the baseline's column */
    assert_non_null(strstr(r.err, "Fake GPU"));
    assert_non_null(strstr(r.out, "DRAM/plan"));
    assert_non_null(strstr(r.out, " 1.000 ")); /* the winner (vec_bytes 16) moves what it must */
    done(&r);
    assert_fake_counters("64x1024x1", 64, 1024, 1);
    assert_best_cuda_counters("64x1024x1");
    int trials = count_kernel("cuda.matvec", "64x1024x1", 0);
    assert_true(trials == 40 || trials == 41); /* the default + 40 (the default may be among them) */
    assert_int_equal(count_kernel("cuda.cublas", "64x1024x1", 1), 1);
    /* the winner: a right one, the fastest right one measured */
    cJSON *doc = run_json("db trials --format json");
    double fastest = 1;
    int wrong = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, doc)
    {
        if (strcmp(cJSON_GetObjectItem(row, "kernel")->valuestring, "cuda.matvec"))
            continue;
        double t = cJSON_GetObjectItem(row, "median_s")->valuedouble;
        if (cJSON_GetObjectItem(row, "correct")->valueint) {
            fastest = t < fastest ? t : fastest;
            assert_true(t >= 10e-6);
        } else {
            wrong++;
            assert_non_null(strstr(cJSON_GetObjectItem(row, "counters_json")->valuestring, "\"wrong\""));
            assert_non_null(strstr(cJSON_GetObjectItem(row, "params_json")->valuestring, "\"unroll\":8"));
        }
    }
    cJSON_Delete(doc);
    assert_true(wrong > 0); /* the fake's fastest variants were measured, and refused */
    doc = run_json("db best --format json");
    int winners = 0;
    cJSON_ArrayForEach(row, doc)
    {
        if (strcmp(cJSON_GetObjectItem(row, "kernel")->valuestring, "cuda.matvec"))
            continue;
        winners++;
        assert_true(fabs(cJSON_GetObjectItem(row, "median_s")->valuedouble - fastest) < 1e-12);
        assert_null(strstr(cJSON_GetObjectItem(row, "params_json")->valuestring, "\"unroll\":8"));
        assert_string_equal(cJSON_GetObjectItem(row, "source_hash")->valuestring, "fa4e0000fa4e0001");
    }
    assert_int_equal(winners, 1);
    cJSON_Delete(doc);
    /* a rerun measures nothing, and shows the stored trials' counters */
    r = run("%s", args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, " 1.000 "));
    done(&r);
    assert_int_equal(count_kernel("cuda.matvec", "64x1024x1", 0), trials);
    assert_int_equal(count_kernel("cuda.cublas", "64x1024x1", 0), 1);
    /* a crashing variant (the fake's r2 t16, early in exhaustive order)
     * stops the run, its last line saying so, recorded as wrong; the rerun
     * goes on past it and never measures it again */
    snprintf(args, sizeof args,
             "tune --shape matvec:f16:32x1024 --batches 2 --backend %s --strategy exhaustive --budget 100", fake);
    setenv("SOL_FAKE_TUNER_CRASH", "1", 1);
    r = run("%s", args);
    unsetenv("SOL_FAKE_TUNER_CRASH");
    assert_int_equal(r.status, 1);
    if (!strstr(last_line(r.err), "sol tune: fake r2 t16") || !strstr(last_line(r.err), "faulted"))
        fail_msg("sol %s: the last line does not name the crash: %s", args, r.err);
    done(&r);
    int before = count_kernel("cuda.matvec", "32x1024x2", 0), right = count_kernel("cuda.matvec", "32x1024x2", 1);
    assert_true(before >= 2);
    assert_int_equal(before, right + 1); /* the default and the others measured so far, and the crash */
    r = run("%s", args);
    if (r.status != 0)
        fail_msg("sol %s: exit %d: %s", args, r.status, r.err);
    done(&r);
    assert_int_equal(count_kernel("cuda.matvec", "32x1024x2", 0), 101); /* the default + 100, the crash among them */
    assert_int_equal(count_kernel("cuda.matvec", "32x1024x2", 1), 100);
    test_tune_cuda_fake_uncounted(fake);
    test_tune_cuda_fake_attention(fake);
    test_tune_cuda_fake_rmsnorm(fake);
}

int main(void)
{
    /* never touch the user's database; start from none (a pid is reused,
     * and an earlier run's file with this pid held probe rows) */
    char db[64], side[80];
    snprintf(db, sizeof db, "/tmp/sol-cli-%d.db", getpid());
    unlink(db);
    snprintf(side, sizeof side, "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db);
    unlink(side);
    setenv("SOL_DB", db, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version), cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_bad_files),        cmocka_unit_test(test_analyze_json),
        cmocka_unit_test(test_analyze_csv_and_table), cmocka_unit_test(test_list_models),
        cmocka_unit_test(test_hw_commands),      cmocka_unit_test(test_compare),
        cmocka_unit_test(test_real_gguf),        cmocka_unit_test(test_run_json),
        cmocka_unit_test(test_run_errors),
        cmocka_unit_test(test_special_files),
        cmocka_unit_test(test_hostile_names),
        cmocka_unit_test(test_readonly_db),       cmocka_unit_test(test_synth),
        cmocka_unit_test(test_synth_families),
        cmocka_unit_test(test_tokenize),         cmocka_unit_test(test_corrupt_gguf),
        cmocka_unit_test(test_probe_and_measured), cmocka_unit_test(test_llama_bench_fixture),
        cmocka_unit_test(test_bench_formats),    cmocka_unit_test(test_calibrated_prediction),
        cmocka_unit_test(test_db_commands),      cmocka_unit_test(test_tune_resume_and_key),
        cmocka_unit_test(test_tune_cuda),        cmocka_unit_test(test_tune_cuda_fake),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
