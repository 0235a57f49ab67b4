/* sol hw: list the hardware entries and show one with every ceiling and
 * where it came from (datasheet, estimate, system). */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

void usage_hw(FILE *f)
{
    fprintf(f, "usage: sol hw list [--format table|json]\n"
               "       sol hw show NAME [--format table|json]\n"
               "       sol hw probe [--backend cpu] [--threads N] [--reps R] [--size-mib M] [--format table|json]\n"
               "       sol hw probe --backend cuda [--device D] [--reps R] [--size-mib M] [--gemm-n N]\n"
               "                    [--format table|json]\n\n"
               "Hardware entries: vendor datasheet figures (dense, no sparsity), each labelled\n"
               "with its source. `cpu` is this machine, read from sysfs and /proc, with\n"
               "estimated ceilings until a probe measures them. NAME may also be a JSON file.\n\n"
               "probe measures this machine: streaming read/copy/triad bandwidth over buffers of\n"
               "8x the last-level cache, read bandwidth of each cache level, fp32 FMA peak on\n"
               "one and all cores; median and spread of R repetitions (default 7) after a\n"
               "warm-up, stored in the database (`sol db path`). Afterwards `--hw cpu` and\n"
               "`--hw measured` use the measured figures.\n\n"
               "probe --backend cuda measures GPU D through the CUDA plugin (build/sol-cuda.so):\n"
               "device-memory read, write and copy bandwidth over M MiB (default 4096, at most a\n"
               "quarter of the card), L2 read bandwidth, the back-to-back kernel launch interval,\n"
               "and cuBLAS matrix-product rates (bf16, fp16, int8, tf32, fp32) on random N x N\n"
               "matrices (default 8192), each beside the matching datasheet entry.\n");
}

static void print_value(const char *label, const sol_hw_value *v, const char *unit, int binary)
{
    char text[32];
    if (!v->known)
        snprintf(text, sizeof text, "-");
    else if (binary)
        sol_fmt_bytes(text, sizeof text, v->value);
    else
        sol_fmt_count(text, sizeof text, v->value, unit);
    printf("  %-22s %14s  %-11s %s\n", label, text, v->source, v->note);
}

static cJSON *value_json(const sol_hw_value *v)
{
    cJSON *o = cJSON_CreateObject();
    if (v->known)
        cJSON_AddNumberToObject(o, "value", v->value);
    else
        cJSON_AddNullToObject(o, "value");
    cJSON_AddStringToObject(o, "source", v->source);
    if (v->note[0])
        cJSON_AddStringToObject(o, "note", v->note);
    return o;
}

static cJSON *hw_json(const sol_hw *hw)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", hw->name);
    cJSON_AddStringToObject(o, "display_name", hw->display_name);
    cJSON_AddStringToObject(o, "kind", hw->kind);
    if (hw->detail[0])
        cJSON_AddStringToObject(o, "detail", hw->detail);
    cJSON_AddItemToObject(o, "mem_bw_bytes_per_s", value_json(&hw->mem_bw));
    cJSON_AddItemToObject(o, "mem_bytes", value_json(&hw->mem_bytes));
    cJSON_AddItemToObject(o, "llc_bytes", value_json(&hw->llc_bytes));
    cJSON_AddItemToObject(o, "interconnect_bw_bytes_per_s", value_json(&hw->interconnect_bw));
    cJSON_AddItemToObject(o, "interconnect_latency_s", value_json(&hw->interconnect_latency));
    cJSON *peaks = cJSON_AddObjectToObject(o, "peak_flops");
    for (int p = 0; p < SOL_PEAK_COUNT; p++)
        cJSON_AddItemToObject(peaks, sol_peak_name((sol_peak)p), value_json(&hw->peak[p]));
    return o;
}

static int load_for_list(int i, sol_hw *hw)
{
    sol_err err = {0};
    const char *name = i < sol_hw_preset_count() ? sol_hw_preset_name(i) : "cpu";
    if (sol_hw_load(name, hw, &err) || (!strcmp(name, "cpu") && cli_apply_probes(hw, 0, &err)))
        return cli_fail("hw", &err);
    return 0;
}

static int hw_list(cli_format format)
{
    cJSON *list = format == CLI_FORMAT_JSON ? cJSON_CreateArray() : NULL;
    if (!list)
        printf("%-10s %-38s %11s %9s %12s %12s\n", "name", "device", "memory BW", "memory", "fp16 FLOP/s",
               "ridge FLOP/B");
    for (int i = 0; i <= sol_hw_preset_count(); i++) {
        sol_hw hw;
        if (load_for_list(i, &hw)) {
            cJSON_Delete(list);
            return SOL_ERR_RUNTIME;
        }
        if (list) {
            cJSON_AddItemToArray(list, hw_json(&hw));
            continue;
        }
        char bw[32], mem[32], peak[32];
        double fp16 = sol_hw_peak(&hw, SOL_PEAK_FP16, NULL);
        sol_fmt_count(bw, sizeof bw, hw.mem_bw.value, "B/s");
        sol_fmt_bytes(mem, sizeof mem, hw.mem_bytes.value);
        sol_fmt_count(peak, sizeof peak, fp16, "");
        printf("%-10s %-38.38s %11s %9s %12s %12.0f\n", hw.name, hw.display_name, bw, mem, peak,
               fp16 / hw.mem_bw.value);
    }
    return list ? cli_print_json(list) : 0;
}

static int hw_show(const char *name, cli_format format)
{
    sol_hw hw;
    sol_err err = {0};
    if (sol_hw_load(name, &hw, &err) || (!strcmp(hw.name, "cpu") && cli_apply_probes(&hw, 0, &err)))
        return cli_fail("hw", &err);
    if (format == CLI_FORMAT_JSON)
        return cli_print_json(hw_json(&hw));
    printf("%s (%s)\n", hw.display_name, hw.name);
    if (hw.detail[0])
        printf("  %s\n", hw.detail);
    print_value("memory bandwidth", &hw.mem_bw, "B/s", 0);
    print_value("memory", &hw.mem_bytes, "B", 1);
    print_value(strcmp(hw.kind, "cpu") ? "L2 cache" : "last-level cache", &hw.llc_bytes, "", 1);
    print_value("interconnect", &hw.interconnect_bw, "B/s", 0);
    print_value("interconnect latency", &hw.interconnect_latency, "s", 0);
    for (int p = 0; p < SOL_PEAK_COUNT; p++) {
        char label[32];
        snprintf(label, sizeof label, "peak %s", sol_peak_name((sol_peak)p));
        print_value(label, &hw.peak[p], "FLOP/s", 0);
    }
    return 0;
}

int cmd_hw(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "probe"))
        return cli_hw_probe(argc - 1, argv + 1);
    cli_format format = CLI_FORMAT_TABLE;
    const char *positional[3];
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--format")) {
            if (i + 1 == argc)
                return cli_usage_error("hw", "--format needs a value");
            if (cli_parse_format("hw", argv[++i], &format))
                return SOL_ERR_USAGE;
        } else if (!strncmp(argv[i], "--format=", 9)) {
            if (cli_parse_format("hw", argv[i] + 9, &format))
                return SOL_ERR_USAGE;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("hw", "unknown option \"%s\" (see sol hw --help)", argv[i]);
        } else if (n_pos == 3) {
            return cli_usage_error("hw", "too many arguments");
        } else {
            positional[n_pos++] = argv[i];
        }
    }
    if (format == CLI_FORMAT_CSV)
        return cli_usage_error("hw", "--format: csv is not offered here; use table or json");
    if (n_pos == 1 && !strcmp(positional[0], "list"))
        return hw_list(format);
    if (n_pos == 2 && !strcmp(positional[0], "show"))
        return hw_show(positional[1], format);
    if (n_pos >= 1 && !strcmp(positional[0], "show"))
        return cli_usage_error("hw", "show needs exactly one NAME (see sol hw list)");
    return cli_usage_error("hw", n_pos ? "unknown subcommand (use list or show NAME)" : "missing subcommand (list or show NAME)");
}
