/* sol hw probe: measure this machine's real ceilings (memory and cache
 * bandwidth, FMA peak), print them beside the estimates, store them. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "db/db.h"
#include "kernels/cpu_probe.h"

void cli_probe_progress(void *user, const char *what, int step, int steps)
{
    (void)user;
    fprintf(stderr, isatty(2) ? "\rprobe: [%d/%d] %-24s" : "probe: [%d/%d] %s\n", step, steps, what);
    if (step == steps && isatty(2))
        fprintf(stderr, "\n");
}

int cli_probe_store(const sol_device_info *dev, const sol_probe_result *res, int n, sol_err *err)
{
    sol_db *db = NULL;
    int64_t id;
    int rc = sol_db_open(NULL, &db, err);
    if (!rc)
        rc = sol_db_device(db, dev, &id, err);
    for (int i = 0; i < n && !rc; i++) {
        sol_probe_row row = {.device_id = id, .value = res[i].median, .reps = res[i].reps, .time = (int64_t)time(NULL)};
        snprintf(row.kind, sizeof row.kind, "%.31s", res[i].kind);
        snprintf(row.unit, sizeof row.unit, "%.15s", res[i].unit);
        snprintf(row.method, sizeof row.method, "%.95s", res[i].method);
        row.spread = res[i].median > 0 ? (res[i].max - res[i].min) / res[i].median : 0;
        rc = sol_db_probe_add(db, &row, err);
    }
    sol_db_close(db);
    return rc;
}

static void print_table(const sol_hw *hw, const sol_probe_result *res, int n)
{
    printf("%s: %s\n", hw->display_name, hw->detail);
    printf("  %-16s %14s %14s %14s  %s\n", "probe", "median", "min", "max", "method");
    for (int i = 0; i < n; i++) {
        char med[32], lo[32], hi[32];
        sol_fmt_count(med, sizeof med, res[i].median, res[i].unit);
        sol_fmt_count(lo, sizeof lo, res[i].min, res[i].unit);
        sol_fmt_count(hi, sizeof hi, res[i].max, res[i].unit);
        printf("  %-16s %14s %14s %14s  %s\n", res[i].kind, med, lo, hi, res[i].method);
    }
    char est[32];
    sol_fmt_count(est, sizeof est, hw->mem_bw.value, "B/s");
    printf("  (estimates were: memory %s", est);
    sol_fmt_count(est, sizeof est, hw->peak[SOL_PEAK_FP32].value, "FLOP/s");
    printf(", fp32 %s)\n", est);
}

cJSON *cli_probe_json(const sol_probe_result *res, int n)
{
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", res[i].kind);
        cJSON_AddStringToObject(o, "unit", res[i].unit);
        cJSON_AddNumberToObject(o, "median", res[i].median);
        cJSON_AddNumberToObject(o, "min", res[i].min);
        cJSON_AddNumberToObject(o, "max", res[i].max);
        cJSON_AddNumberToObject(o, "reps", res[i].reps);
        cJSON_AddStringToObject(o, "method", res[i].method);
        cJSON_AddItemToArray(list, o);
    }
    return list;
}

int cli_hw_probe(int argc, char **argv)
{
    enum { O_BACKEND = 4000, O_REPS, O_SIZE, O_FORMAT, O_DEVICE, O_GEMM_N };
    static const struct option long_opts[] = {{"backend", 1, 0, O_BACKEND}, {"threads", 1, 0, 't'},
                                              {"reps", 1, 0, O_REPS},       {"size-mib", 1, 0, O_SIZE},
                                              {"format", 1, 0, O_FORMAT},   {"device", 1, 0, O_DEVICE},
                                              {"gemm-n", 1, 0, O_GEMM_N},   {0, 0, 0, 0}};
    long long threads = 0, reps = 7, size_mib = 0, device = 0, gemm_n = 8192;
    cli_format format = CLI_FORMAT_TABLE;
    const char *backend = "cpu";
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":t:", long_opts, NULL)) != -1) {
        switch (c) {
        case O_BACKEND: backend = optarg; break;
        case 't':
            if (cli_parse_ll("hw probe", "--threads", optarg, &threads))
                return SOL_ERR_USAGE;
            if (threads < 1 || threads > 1024)
                return cli_usage_error("hw probe", "--threads: %lld is out of range (1..1024)", threads);
            break;
        case O_REPS:
            if (cli_parse_ll("hw probe", "--reps", optarg, &reps))
                return SOL_ERR_USAGE;
            if (reps < 5 || reps > 64)
                return cli_usage_error("hw probe", "--reps: %lld is out of range (5..64)", reps);
            break;
        case O_SIZE:
            if (cli_parse_ll("hw probe", "--size-mib", optarg, &size_mib))
                return SOL_ERR_USAGE;
            if (size_mib < 1 || size_mib > 65536)
                return cli_usage_error("hw probe", "--size-mib: %lld is out of range (1..65536)", size_mib);
            break;
        case O_FORMAT:
            if (cli_parse_format("hw probe", optarg, &format))
                return SOL_ERR_USAGE;
            break;
        case O_DEVICE:
            if (cli_parse_ll("hw probe", "--device", optarg, &device))
                return SOL_ERR_USAGE;
            if (device < 0 || device > 255)
                return cli_usage_error("hw probe", "--device: %lld is out of range (0..255)", device);
            break;
        case O_GEMM_N:
            if (cli_parse_ll("hw probe", "--gemm-n", optarg, &gemm_n))
                return SOL_ERR_USAGE;
            if (gemm_n < 64 || gemm_n > 32768 || gemm_n % 64)
                return cli_usage_error("hw probe", "--gemm-n: %lld must be a multiple of 64 in 64..32768", gemm_n);
            break;
        case ':': return cli_usage_error("hw probe", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("hw probe", "unknown option \"%s\" (see sol hw --help)", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_usage_error("hw probe", "unexpected argument \"%s\"", argv[optind]);
    sol_err err = {0};
    if (!strcmp(backend, "cuda")) {
        cli_cuda_probe_opts o = {.device = (int)device, .reps = (int)reps, .size_mib = size_mib,
                                 .gemm_n = (int)gemm_n, .format = format};
        return cli_hw_probe_cuda(&o);
    }
    if (strcmp(backend, "cpu") != 0)
        return cli_usage_error("hw probe", "--backend: expected cpu or cuda, got \"%s\"", backend);
    sol_hw hw;
    sol_hw_detect_cpu(&hw, &err);
    /* >= 8x the last-level cache so the stream is served by DRAM */
    int64_t buffer = size_mib ? size_mib << 20 : (int64_t)(8 * (hw.llc_bytes.value > 0 ? hw.llc_bytes.value : 32 << 20));
    sol_probe_config cfg = {.threads = threads > 0 ? (int)threads : (hw.cores > 0 ? hw.cores : 1), .reps = (int)reps, .buffer_bytes = buffer,
                            .progress = cli_probe_progress};
    for (int i = 0; i < 3; i++)
        cfg.cache_bytes[i] = (int64_t)hw.cache_bytes[i];
    sol_probe_result res[16];
    int n = 0;
    fprintf(stderr, "probe: %s, %d threads, %lld MiB streams, %d repetitions each\n", hw.display_name, cfg.threads,
            (long long)(buffer >> 20), cfg.reps);
    int rc = sol_probe_cpu(&cfg, res, 16, &n, &err);
    sol_device_info dev;
    cli_cpu_device(&hw, &dev);
    if (!rc)
        rc = cli_probe_store(&dev, res, n, &err);
    if (rc)
        return cli_fail("hw probe", &err);
    if (format == CLI_FORMAT_JSON)
        return cli_print_json(cli_probe_json(res, n));
    print_table(&hw, res, n);
    char path[4096];
    printf("stored in %s; `sol analyze --hw measured` uses them\n", sol_db_path(path, sizeof path));
    return 0;
}
