/* sol: how close is LLM inference to the speed of light? main() only
 * dispatches to the command table; each command lives in its own file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const sol_cmd commands[] = {
    {"analyze", cmd_analyze, usage_analyze, "roofline of a model + KV scheme on a hardware entry"},
    {"compare", cmd_compare, usage_compare, "KV schemes or hardware side by side"},
    {"sweep", cmd_sweep, usage_sweep, "decode bound over batch sizes and contexts, with the knees"},
    {"hw", cmd_hw, usage_hw, "list and show hardware entries"},
    {"tokenize", cmd_tokenize, usage_tokenize, "text -> token ids (and back) with a model's tokenizer"},
    {"run", cmd_run, usage_run, "decode a GGUF model on the CPU, with speed vs SOL"},
    {"chat", cmd_chat, usage_chat, "a conversation that keeps its KV cache between turns"},
    {"bench", cmd_bench, usage_bench, "prefill/decode tok/s with achieved GB/s and % of SOL, stored"},
    {"tune", cmd_tune, usage_tune, "tune CPU kernel parameters for a model's shapes, stored"},
    {"synth", cmd_synth, usage_synth, "write a random-weight GGUF of any known architecture"},
    {"db", cmd_db, usage_db, "the results database: path, runs, best, trials, export, import"},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: sol COMMAND [ARGS...]\n\n"
               "sol predicts how fast a model can decode on given hardware (the speed of light),\n"
               "and explains the bound op by op.\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n  sol help COMMAND | sol COMMAND --help   details of a command\n"
               "  sol --version\n\nexit status: 0 ok, 1 runtime failure, 2 usage error\n");
}

static const sol_cmd *find_command(const char *name)
{
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return SOL_ERR_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("sol %s (%s)\n", SOL_VERSION, SOL_GIT_COMMIT);
        return 0;
    }
    if (!strcmp(name, "help")) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        const sol_cmd *cmd = find_command(argv[2]);
        if (!cmd) {
            fprintf(stderr, "sol help: unknown command \"%s\" (see sol --help)\n", argv[2]);
            return SOL_ERR_USAGE;
        }
        cmd->usage(stdout);
        return 0;
    }
    const sol_cmd *cmd = find_command(name);
    if (!cmd) {
        fprintf(stderr, "sol: unknown command \"%s\" (see sol --help)\n", name);
        return SOL_ERR_USAGE;
    }
    if (cli_wants_help(argc - 1, argv + 1)) {
        cmd->usage(stdout);
        return 0;
    }
    return cmd->run(argc - 1, argv + 1);
}
