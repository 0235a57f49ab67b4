/* Renders an analysis: a table for people (op groups, layer groups,
 * totals), JSON for scripts (schema in README.md), CSV with one row per op. */
#include <cJSON.h>
#include <string.h>

#include "analyzer/analyzer.h"

/* ---- table ------------------------------------------------------------ */

typedef struct {
    double bytes, flops, time_s, mem_time_s, compute_time_s, comm_time_s;
    double comm_bytes; /* sent over the interconnect */
} totals;

static void add_cost(totals *t, const sol_op *op, const sol_op_cost *c)
{
    t->bytes += c->bytes;
    t->comm_bytes += op->comm_bytes;
    t->flops += c->flops;
    t->time_s += c->time_s;
    t->mem_time_s += c->bound == SOL_BOUND_MEMORY ? c->time_s : 0;
    t->compute_time_s += c->bound == SOL_BOUND_COMPUTE ? c->time_s : 0;
    t->comm_time_s += c->bound == SOL_BOUND_COMM ? c->time_s : 0;
}

static const char *dominant_bound(const totals *t)
{
    if (t->compute_time_s > t->mem_time_s && t->compute_time_s >= t->comm_time_s)
        return "compute";
    if (t->comm_time_s > t->mem_time_s && t->comm_time_s > t->compute_time_s)
        return "comm";
    return "memory";
}

static void print_row(FILE *f, const char *label, const totals *t, double step_time)
{
    char bytes[32], flops[32], time[32];
    sol_fmt_bytes(bytes, sizeof bytes, t->bytes > 0 ? t->bytes : t->comm_bytes); /* comm: bytes sent */
    sol_fmt_count(flops, sizeof flops, t->flops, "");
    sol_fmt_time(time, sizeof time, t->time_s);
    fprintf(f, "  %-14s %11s %10s %8.1f %11s %6.1f%%  %s\n", label, bytes, flops,
            t->bytes > 0 ? t->flops / t->bytes : 0, time, 100 * t->time_s / step_time, dominant_bound(t));
}

static int has_efficiency(const sol_analysis_config *c)
{
    return (c->mem_efficiency > 0 && c->mem_efficiency < 1) || (c->flops_efficiency > 0 && c->flops_efficiency < 1);
}

static const char *bound_label(const sol_analysis_config *c)
{
    return has_efficiency(c) ? "predicted at the efficiency given" : "at speed of light";
}

/* The speed of light (the whole step fused) and, beside it, the per-op sum. */
static void print_bound(FILE *f, const char *phase, const sol_step_cost *c, double tok_s, double unfused_tok_s,
                        const char *label)
{
    char sol[32], unfused[32], bytes[32];
    sol_fmt_time(sol, sizeof sol, c->sol_time_s);
    sol_fmt_time(unfused, sizeof unfused, c->unfused_time_s);
    sol_fmt_bytes(bytes, sizeof bytes, c->sol_bytes);
    fprintf(f, "  => %.1f tokens/s %s: %s per %s step, %s-bound (the step fused: %s unavoidable)\n", tok_s, label,
            sol, phase, sol_bound_name(c->sol_bound), bytes);
    fprintf(f, "     unfused, op by op: %.1f tokens/s, %s (%+.1f%%)\n", unfused_tok_s, unfused,
            100 * (c->unfused_time_s / c->sol_time_s - 1));
}

static void print_groups(FILE *f, const sol_plan *plan, const sol_step_cost *cost)
{
    totals groups[SOL_GROUP_COUNT] = {0}, all = {0};
    for (int i = 0; i < plan->n_ops; i++) {
        add_cost(&groups[plan->ops[i].group], &plan->ops[i], &cost->ops[i]);
        add_cost(&all, &plan->ops[i], &cost->ops[i]);
    }
    fprintf(f, "  %-14s %11s %10s %8s %11s %7s  %s\n", "op group", "bytes", "FLOPs", "FLOP/B", "time",
            "share", "bound");
    for (int g = 0; g < SOL_GROUP_COUNT; g++)
        if (groups[g].bytes > 0 || groups[g].flops > 0)
            print_row(f, sol_op_group_name((sol_op_group)g), &groups[g], cost->unfused_time_s);
    print_row(f, "unfused total", &all, cost->unfused_time_s);
}

/* Layers that look alike (same attention kind, KV size, FFN kind) are one row. */
static int layer_is_moe(const sol_model *m, int layer)
{
    return m->n_experts > 0 && layer >= m->first_dense;
}

/* Alternating patterns (local/global) would print a row per layer; the
 * caller folds those into print_layer_summary instead. */
static void print_layers(FILE *f, const sol_analysis *a)
{
    const sol_plan *plan = &a->decode;
    const sol_model *m = &a->model;
    double layer_time[SOL_MAX_LAYERS] = {0};
    for (int i = 0; i < plan->n_ops; i++)
        if (plan->ops[i].layer >= 0)
            layer_time[plan->ops[i].layer] += a->decode_cost.ops[i].time_s;
    fprintf(f, "  %-9s %-8s %-6s %11s %11s %11s\n", "layers", "attn", "ffn", "KV/token", "KV/seq", "time/layer");
    for (int start = 0; start < m->n_layers;) {
        const sol_kv_layer *first = &plan->layers[start];
        int end = start + 1;
        while (end < m->n_layers && plan->layers[end].kind == first->kind &&
               plan->layers[end].elems_per_token == first->elems_per_token &&
               plan->layers[end].tokens_cap == first->tokens_cap &&
               layer_is_moe(m, end) == layer_is_moe(m, start))
            end++;
        char range[24], per_token[32], per_seq[32], time[32];
        snprintf(range, sizeof range, end - start > 1 ? "%d-%d" : "%d", start, end - 1);
        double token_bytes = plan->kv_bytes_per_token_layer[start];
        int64_t tokens = first->tokens_cap && first->tokens_cap < a->cfg.ctx ? first->tokens_cap : a->cfg.ctx;
        sol_fmt_bytes(per_token, sizeof per_token, token_bytes);
        sol_fmt_bytes(per_seq, sizeof per_seq, token_bytes * (double)tokens);
        sol_fmt_time(time, sizeof time, layer_time[start]);
        fprintf(f, "  %-9s %-8s %-6s %11s %11s %11s\n", range, sol_attn_kind_name(first->kind),
                layer_is_moe(m, start) ? "moe" : "dense", per_token, per_seq, time);
        start = end;
    }
}

/* Counts layers per attention kind, for a one-line summary. */
static void print_layer_summary(FILE *f, const sol_plan *plan)
{
    int count[5] = {0};
    for (int i = 0; i < plan->n_layers; i++)
        count[plan->layers[i].kind]++;
    fprintf(f, "  attention:");
    for (int k = 0; k < 5; k++)
        if (count[k])
            fprintf(f, " %d %s", count[k], sol_attn_kind_name((sol_attn_kind)k));
    fprintf(f, "\n");
}

/* Which layer owns which cache when layers share (cla:S): per kind of
 * cache, each owner followed by "+" and the layers that read it, wrapped. */
static void print_cache_owners(FILE *f, const sol_plan *plan)
{
    int shares = 0;
    for (int i = 0; i < plan->n_layers; i++)
        shares += plan->layers[i].owner != i;
    if (!shares)
        return;
    int col = fprintf(f, "  caches:"), kinds = 0;
    for (int kind = 0; kind < 5; kind++) {
        int printed_kind = 0;
        for (int o = 0; o < plan->n_layers; o++) {
            if (plan->layers[o].owner != o || (int)plan->layers[o].kind != kind)
                continue;
            char group[160];
            int n = printed_kind ? snprintf(group, sizeof group, " %d", o)
                                 : snprintf(group, sizeof group, "%s%s %d", kinds++ ? "; " : " ",
                                            sol_attn_kind_name((sol_attn_kind)kind), o);
            for (int r = o + 1; r < plan->n_layers && n < (int)sizeof group - 8; r++)
                if (plan->layers[r].owner == o)
                    n += snprintf(group + n, sizeof group - (size_t)n, "+%d", r);
            if (col + n + 1 > 100) {
                fprintf(f, "\n         ");
                col = 9;
            }
            col += fprintf(f, "%s", group);
            printed_kind = 1;
        }
    }
    fprintf(f, "\n");
}

static int count_layer_rows(const sol_analysis *a)
{
    int rows = 0;
    for (int i = 0; i < a->model.n_layers; i++)
        rows += i == 0 || a->decode.layers[i].kind != a->decode.layers[i - 1].kind ||
                layer_is_moe(&a->model, i) != layer_is_moe(&a->model, i - 1);
    return rows;
}

void sol_report_table(FILE *f, const sol_analysis *a)
{
    const sol_model *m = &a->model;
    const sol_hw *hw = &a->hw;
    const sol_analysis_config *c = &a->cfg;
    char s1[32], s2[32], s3[32], s4[32], scheme[128];
    sol_kv_format(&a->kv, scheme, sizeof scheme);
    sol_peak used;
    double peak = sol_hw_peak(hw, sol_peak_for(c->atype), &used);

    sol_fmt_count(s1, sizeof s1, a->params.total, "");
    sol_fmt_count(s2, sizeof s2, a->params.active, "");
    sol_fmt_bytes(s3, sizeof s3, a->weights_bytes);
    fprintf(f, "%s (%s) on %s\n", m->name, m->arch, hw->display_name);
    fprintf(f, "model     %s params (%s active), %d layers, hidden %d, weights %s = %s%s\n", s1, s2,
            m->n_layers, m->hidden, sol_dtype_name(c->wtype), s3, c->tp > 1 ? " per device" : "");
    sol_fmt_bytes(s1, sizeof s1, a->kv_bytes_per_token);
    sol_fmt_bytes(s2, sizeof s2, a->kv_cache_bytes);
    fprintf(f, "kv        %s, %s: %s/token (%.0f elements), cache %s at ctx %lld x batch %d\n", scheme,
            sol_dtype_name(c->kvtype), s1, a->kv_elems_per_token, s2, (long long)c->ctx, c->batch);
    sol_fmt_count(s1, sizeof s1, hw->mem_bw.value, "B/s");
    sol_fmt_count(s2, sizeof s2, peak, "FLOP/s");
    fprintf(f, "hardware  %s (%s), %s %s (%s), ridge %.0f FLOP/B\n", s1, hw->mem_bw.source, s2,
            sol_peak_name(used), hw->peak[used].source, peak / hw->mem_bw.value);
    if (has_efficiency(c))
        fprintf(f, "efficiency memory %.0f%%, FLOPs %.0f%%: the ceilings above are scaled by these, so the figures "
                   "below are predictions, NOT the speed of light\n",
                100 * (c->mem_efficiency > 0 ? c->mem_efficiency : 1),
                100 * (c->flops_efficiency > 0 ? c->flops_efficiency : 1));
    if (c->tp > 1) {
        sol_fmt_count(s1, sizeof s1, hw->interconnect_bw.value, "B/s");
        sol_fmt_time(s2, sizeof s2, hw->interconnect_latency.value);
        fprintf(f, "parallel  tensor-parallel x%d, interconnect %s per direction, %s per ring step (%s)\n", c->tp,
                s1, s2, hw->interconnect_latency.source);
    }

    fprintf(f, "\ndecode step: batch %d, context %lld, activations %s\n", c->batch, (long long)c->ctx,
            sol_dtype_name(c->atype));
    print_groups(f, &a->decode, &a->decode_cost);
    print_bound(f, "decode", &a->decode_cost, a->decode_tokens_per_s, a->decode_unfused_tokens_per_s,
                bound_label(c));

    fprintf(f, "\nlayers\n");
    if (count_layer_rows(a) <= 12)
        print_layers(f, a);
    else
        print_layer_summary(f, &a->decode);
    print_cache_owners(f, &a->decode);

    fprintf(f, "\nprefill   %d tokens x batch %d\n", c->prompt, c->batch);
    print_bound(f, "prefill", &a->prefill_cost, a->prefill_tokens_per_s, a->prefill_unfused_tokens_per_s,
                bound_label(c));
    sol_fmt_bytes(s1, sizeof s1, a->weights_bytes);
    sol_fmt_bytes(s2, sizeof s2, a->kv_cache_bytes);
    sol_fmt_bytes(s3, sizeof s3, a->memory_bytes);
    sol_fmt_bytes(s4, sizeof s4, hw->mem_bytes.value);
    fprintf(f, "memory    weights %s + KV %s = %s of %s: %s", s1, s2, s3, s4, a->fits ? "fits" : "DOES NOT FIT");
    if (a->max_batch >= 0)
        fprintf(f, "; max batch at ctx %lld: %lld\n", (long long)c->ctx, a->max_batch);
    else
        fprintf(f, "\n");
}

/* ---- JSON ------------------------------------------------------------- */

static cJSON *op_json(const sol_op *op, const sol_op_cost *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", op->name);
    cJSON_AddStringToObject(o, "kind", sol_op_kind_name(op->kind));
    cJSON_AddStringToObject(o, "group", sol_op_group_name(op->group));
    cJSON_AddNumberToObject(o, "m", (double)op->m);
    cJSON_AddNumberToObject(o, "n", (double)op->n);
    cJSON_AddNumberToObject(o, "k", (double)op->k);
    cJSON_AddNumberToObject(o, "weight_bytes", op->weight_bytes);
    cJSON_AddNumberToObject(o, "kv_bytes", op->kv_bytes);
    cJSON_AddNumberToObject(o, "act_bytes", op->act_bytes);
    cJSON_AddNumberToObject(o, "write_bytes", op->write_bytes);
    cJSON_AddNumberToObject(o, "bytes", c->bytes);
    cJSON_AddNumberToObject(o, "flops", c->flops);
    cJSON_AddNumberToObject(o, "intensity", c->intensity);
    cJSON_AddNumberToObject(o, "time_s", c->time_s);
    cJSON_AddStringToObject(o, "bound", sol_bound_name(c->bound));
    if (op->comm_bytes > 0) {
        cJSON_AddNumberToObject(o, "comm_bytes", op->comm_bytes);
        cJSON_AddNumberToObject(o, "comm_steps", op->comm_steps);
        cJSON_AddNumberToObject(o, "comm_time_s", c->comm_time_s);
    }
    return o;
}

static cJSON *hw_json(const sol_hw *hw)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", hw->name);
    cJSON_AddStringToObject(o, "display_name", hw->display_name);
    cJSON_AddNumberToObject(o, "mem_bw_bytes_per_s", hw->mem_bw.value);
    cJSON_AddStringToObject(o, "mem_bw_source", hw->mem_bw.source);
    cJSON_AddNumberToObject(o, "mem_bytes", hw->mem_bytes.value);
    if (hw->interconnect_bw.known)
        cJSON_AddNumberToObject(o, "interconnect_bw_bytes_per_s", hw->interconnect_bw.value);
    cJSON *peaks = cJSON_AddObjectToObject(o, "peak_flops");
    for (int p = 0; p < SOL_PEAK_COUNT; p++) {
        if (hw->peak[p].known)
            cJSON_AddNumberToObject(peaks, sol_peak_name((sol_peak)p), hw->peak[p].value);
        else
            cJSON_AddNullToObject(peaks, sol_peak_name((sol_peak)p));
    }
    return o;
}

/* time_s, tokens_per_s and bound are the speed of light (the fused step);
 * "unfused" holds the per-op sum. */
static void add_bound_json(cJSON *o, const sol_step_cost *c, double tok_s, double unfused_tok_s)
{
    cJSON_AddNumberToObject(o, "time_s", c->sol_time_s);
    cJSON_AddNumberToObject(o, "tokens_per_s", tok_s);
    cJSON_AddStringToObject(o, "bound", sol_bound_name(c->sol_bound));
    cJSON_AddNumberToObject(o, "unavoidable_bytes", c->sol_bytes);
    cJSON_AddNumberToObject(o, "memory_time_s", c->sol_mem_s);
    cJSON_AddNumberToObject(o, "compute_time_s", c->sol_compute_s);
    cJSON_AddNumberToObject(o, "comm_time_s", c->sol_comm_s);
    cJSON *unfused = cJSON_AddObjectToObject(o, "unfused");
    cJSON_AddNumberToObject(unfused, "time_s", c->unfused_time_s);
    cJSON_AddNumberToObject(unfused, "tokens_per_s", unfused_tok_s);
    cJSON_AddStringToObject(unfused, "bound", sol_bound_name(c->bound));
}

char *sol_report_json(const sol_analysis *a)
{
    cJSON *root = sol_report_json_object(a);
    if (!root)
        return NULL;
    /* One preallocated buffer: the 405B report is ~2 MB of text. */
    char *text = cJSON_PrintBuffered(root, 4 << 20, 1);
    cJSON_Delete(root);
    return text;
}

cJSON *sol_report_json_object(const sol_analysis *a)
{
    const sol_model *m = &a->model;
    const sol_analysis_config *c = &a->cfg;
    char scheme[128];
    sol_kv_format(&a->kv, scheme, sizeof scheme);
    cJSON *root = cJSON_CreateObject();

    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "name", m->name);
    cJSON_AddStringToObject(model, "arch", m->arch);
    cJSON_AddNumberToObject(model, "params", a->params.total);
    cJSON_AddNumberToObject(model, "active_params", a->params.active);
    cJSON_AddNumberToObject(model, "layers", m->n_layers);
    cJSON_AddItemToObject(root, "hardware", hw_json(&a->hw));

    cJSON *config = cJSON_AddObjectToObject(root, "config");
    cJSON_AddNumberToObject(config, "batch", c->batch);
    cJSON_AddNumberToObject(config, "ctx", (double)c->ctx);
    cJSON_AddNumberToObject(config, "prompt", c->prompt);
    cJSON_AddStringToObject(config, "wtype", sol_dtype_name(c->wtype));
    cJSON_AddStringToObject(config, "atype", sol_dtype_name(c->atype));
    cJSON_AddStringToObject(config, "kvtype", sol_dtype_name(c->kvtype));
    cJSON_AddStringToObject(config, "kv_scheme", scheme);
    cJSON_AddNumberToObject(config, "tp", c->tp);
    cJSON_AddNumberToObject(config, "mem_efficiency", c->mem_efficiency > 0 ? c->mem_efficiency : 1);
    cJSON_AddNumberToObject(config, "flops_efficiency", c->flops_efficiency > 0 ? c->flops_efficiency : 1);
    cJSON_AddBoolToObject(config, "speed_of_light", !has_efficiency(c));

    cJSON_AddNumberToObject(cJSON_AddObjectToObject(root, "weights"), "bytes", a->weights_bytes);
    cJSON *kv = cJSON_AddObjectToObject(root, "kv");
    cJSON_AddNumberToObject(kv, "elements_per_token", a->kv_elems_per_token);
    cJSON_AddNumberToObject(kv, "bytes_per_token", a->kv_bytes_per_token);
    cJSON_AddNumberToObject(kv, "cache_bytes", a->kv_cache_bytes);

    cJSON *decode = cJSON_AddObjectToObject(root, "decode");
    cJSON_AddNumberToObject(decode, "bytes", a->decode_cost.bytes);
    cJSON_AddNumberToObject(decode, "flops", a->decode_cost.flops);
    add_bound_json(decode, &a->decode_cost, a->decode_tokens_per_s, a->decode_unfused_tokens_per_s);
    cJSON *prefill = cJSON_AddObjectToObject(root, "prefill");
    cJSON_AddNumberToObject(prefill, "bytes", a->prefill_cost.bytes);
    cJSON_AddNumberToObject(prefill, "flops", a->prefill_cost.flops);
    add_bound_json(prefill, &a->prefill_cost, a->prefill_tokens_per_s, a->prefill_unfused_tokens_per_s);
    cJSON *memory = cJSON_AddObjectToObject(root, "memory");
    cJSON_AddNumberToObject(memory, "total_bytes", a->memory_bytes);
    cJSON_AddBoolToObject(memory, "fits", a->fits);
    cJSON_AddNumberToObject(memory, "max_batch", (double)a->max_batch);

    /* Decode ops by layer; ops outside the layer stack go to "ops". */
    cJSON *layers = cJSON_AddArrayToObject(root, "layers");
    cJSON *outer = cJSON_AddArrayToObject(root, "ops");
    cJSON *layer_ops[SOL_MAX_LAYERS];
    for (int i = 0; i < m->n_layers; i++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddNumberToObject(l, "index", i);
        cJSON_AddStringToObject(l, "attention", sol_attn_kind_name(a->decode.layers[i].kind));
        cJSON_AddNumberToObject(l, "cache_owner", a->decode.layers[i].owner); /* itself unless shared */
        cJSON_AddNumberToObject(l, "kv_bytes_per_token", a->decode.kv_bytes_per_token_layer[i]);
        layer_ops[i] = cJSON_AddArrayToObject(l, "ops");
        cJSON_AddItemToArray(layers, l);
    }
    for (int i = 0; i < a->decode.n_ops; i++) {
        const sol_op *op = &a->decode.ops[i];
        cJSON_AddItemToArray(op->layer >= 0 ? layer_ops[op->layer] : outer, op_json(op, &a->decode_cost.ops[i]));
    }
    return root;
}

/* ---- CSV -------------------------------------------------------------- */

static void csv_rows(FILE *f, const char *phase, const sol_plan *plan, const sol_step_cost *cost)
{
    for (int i = 0; i < plan->n_ops; i++) {
        const sol_op *op = &plan->ops[i];
        const sol_op_cost *c = &cost->ops[i];
        fprintf(f, "%s,%d,%d,%s,%s,%s,%lld,%lld,%lld,%s,%s,%s,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.6g,%.6g,%s\n",
                phase, i, op->layer, op->name, sol_op_kind_name(op->kind), sol_op_group_name(op->group),
                (long long)op->m, (long long)op->n, (long long)op->k, sol_dtype_name(op->wtype),
                sol_dtype_name(op->atype), sol_dtype_name(op->kvtype), op->weight_bytes, op->kv_bytes,
                op->act_bytes, op->write_bytes, c->bytes, c->flops, c->intensity, c->time_s,
                sol_bound_name(c->bound));
    }
}

void sol_report_csv(FILE *f, const sol_analysis *a)
{
    fprintf(f, "phase,index,layer,name,kind,group,m,n,k,wtype,atype,kvtype,weight_bytes,kv_bytes,act_bytes,"
               "write_bytes,bytes,flops,intensity,time_s,bound\n");
    csv_rows(f, "decode", &a->decode, &a->decode_cost);
    csv_rows(f, "prefill", &a->prefill, &a->prefill_cost);
}
