// Greedy token ids from llama.cpp, for bench/vs-llamacpp.sh: the peer of
// `sol run --temp 0 --json`. Built against the llama.cpp static libraries in
// build/vs-llamacpp/ (never part of sol).
//
//   sol-greedy-ids -m MODEL.gguf [-t THREADS] [-n N] [--no-bos] [--ids 1,2,3]
//                  [--logits-out FILE] [PROMPT]
//
// Tokenizes PROMPT like llama-simple (add_special: BOS when the vocab asks for
// it, parse_special) unless --ids gives the prompt ids directly, prefills them
// in one batch, then takes the argmax of the logits (lowest id on ties) N times,
// stopping after an end-of-generation token as `sol run` does (the EOG id is
// reported). No chat template, no sampler chain, no penalties. Prints one JSON
// line: {"prompt_ids":[...],"generated_ids":[...],"runner_up_ids":[...],
// "margins":[...],"generated_text":"...","add_bos":B,"n_vocab":V}, where
// runner_up_ids[i] is the second-best id at step i and margins[i] the logit
// gap between the chosen id and it (small margins: near-ties that rounding
// can flip), and generated_text the pieces as llama-simple prints them.
// --logits-out FILE writes the f32 logits each step's argmax was taken from
// (one row of n_vocab per generated token), like the decode rows of
// `sol run --logits-out`.
#include "llama.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static void quiet_log(enum ggml_log_level level, const char *text, void *)
{
    if (level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN)
        fputs(text, stderr);
}

static int usage()
{
    fprintf(stderr, "usage: sol-greedy-ids -m MODEL.gguf [-t THREADS] [-n N] [--no-bos] [--ids 1,2,3] "
                    "[--logits-out FILE] [PROMPT]\n");
    return 2;
}

static void print_ids(const char *key, const std::vector<llama_token> &ids)
{
    printf("\"%s\":[", key);
    for (size_t i = 0; i < ids.size(); i++)
        printf("%s%d", i ? "," : "", ids[i]);
    printf("]");
}

static void print_json_string(const std::string &s)
{
    putchar('"');
    for (unsigned char c : s) {
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    std::string model_path, prompt = "The speed of light is", ids_arg, logits_path;
    int threads = 1, n_predict = 32, no_bos = 0, have_ids = 0;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "-m" && i + 1 < argc)
            model_path = argv[++i];
        else if (a == "-t" && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (a == "-n" && i + 1 < argc)
            n_predict = atoi(argv[++i]);
        else if (a == "--ids" && i + 1 < argc)
            ids_arg = argv[++i], have_ids = 1;
        else if (a == "--logits-out" && i + 1 < argc)
            logits_path = argv[++i];
        else if (a == "--no-bos")
            no_bos = 1;
        else if (a[0] == '-' && a.size() > 1)
            return usage();
        else
            prompt = a;
    }
    if (model_path.empty() || threads < 1 || n_predict < 1)
        return usage();

    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model *model = llama_model_load_from_file(model_path.c_str(), mp);
    if (!model) {
        fprintf(stderr, "sol-greedy-ids: %s: llama.cpp could not load the model\n", model_path.c_str());
        return 1;
    }
    const llama_vocab *vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    const bool add_bos = !no_bos && llama_vocab_get_add_bos(vocab);

    std::vector<llama_token> prompt_ids;
    if (have_ids) {
        for (const char *p = ids_arg.c_str(); *p;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || v < 0 || v >= n_vocab) {
                fprintf(stderr, "sol-greedy-ids: --ids: bad id list '%s'\n", ids_arg.c_str());
                return 2;
            }
            prompt_ids.push_back((llama_token)v);
            p = *end == ',' ? end + 1 : end;
        }
    } else {
        int n = -llama_tokenize(vocab, prompt.c_str(), (int32_t)prompt.size(), nullptr, 0, add_bos, true);
        prompt_ids.resize(n > 0 ? n : 0);
        if (n <= 0 || llama_tokenize(vocab, prompt.c_str(), (int32_t)prompt.size(), prompt_ids.data(), n, add_bos,
                                     true) < 0) {
            fprintf(stderr, "sol-greedy-ids: tokenizing the prompt failed\n");
            return 1;
        }
    }
    const int n_prompt = (int)prompt_ids.size();
    if (n_prompt == 0) {
        fprintf(stderr, "sol-greedy-ids: empty prompt\n");
        return 2;
    }

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n_prompt + n_predict);
    cp.n_batch = (uint32_t)n_prompt;
    cp.n_ubatch = (uint32_t)n_prompt;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.no_perf = true;
    llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "sol-greedy-ids: llama.cpp could not create a context\n");
        return 1;
    }

    llama_batch batch = llama_batch_init(n_prompt, 0, 1);
    auto fill = [&](const llama_token *toks, int n, int pos0) {
        batch.n_tokens = n;
        for (int i = 0; i < n; i++) {
            batch.token[i] = toks[i];
            batch.pos[i] = pos0 + i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = i == n - 1;
        }
    };
    FILE *logits_out = nullptr;
    if (!logits_path.empty() && !(logits_out = fopen(logits_path.c_str(), "wb"))) {
        fprintf(stderr, "sol-greedy-ids: --logits-out: cannot write %s\n", logits_path.c_str());
        return 1;
    }
    std::vector<llama_token> generated, runner_up;
    std::vector<float> margins;
    std::string text;
    fill(prompt_ids.data(), n_prompt, 0);
    int pos = 0;
    for (int step = 0; step < n_predict; step++) {
        int rc = llama_decode(ctx, batch);
        if (rc != 0) {
            fprintf(stderr, "sol-greedy-ids: llama_decode failed (%d) at step %d\n", rc, step);
            return 1;
        }
        pos += batch.n_tokens;
        const float *logits = llama_get_logits_ith(ctx, batch.n_tokens - 1);
        if (logits_out && fwrite(logits, sizeof(float), (size_t)n_vocab, logits_out) != (size_t)n_vocab) {
            fprintf(stderr, "sol-greedy-ids: --logits-out: write failed\n");
            return 1;
        }
        llama_token best = 0, second = -1;
        for (int v = 1; v < n_vocab; v++) {
            if (logits[v] > logits[best]) {
                second = best;
                best = v;
            } else if (second < 0 || logits[v] > logits[second]) {
                second = v;
            }
        }
        generated.push_back(best);
        runner_up.push_back(second);
        margins.push_back(logits[best] - logits[second]);
        if (llama_vocab_is_eog(vocab, best))
            break;
        char buf[256];
        int n = llama_token_to_piece(vocab, best, buf, sizeof buf, 0, true);
        if (n > 0)
            text.append(buf, (size_t)n);
        fill(&best, 1, pos);
    }

    printf("{");
    print_ids("prompt_ids", prompt_ids);
    printf(",");
    print_ids("generated_ids", generated);
    printf(",");
    print_ids("runner_up_ids", runner_up);
    printf(",\"margins\":[");
    for (size_t i = 0; i < margins.size(); i++)
        printf("%s%.4f", i ? "," : "", margins[i]);
    printf("],\"generated_text\":");
    print_json_string(text);
    printf(",\"add_bos\":%s,\"n_vocab\":%d}\n", add_bos ? "true" : "false", n_vocab);

    if (logits_out && fclose(logits_out) != 0) {
        fprintf(stderr, "sol-greedy-ids: --logits-out: write failed\n");
        return 1;
    }
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
