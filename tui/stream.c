/* The non-interactive renderers: one --plain stats line every N tokens,
 * and one --json object per token with the step that sampled it. */
#include <stdio.h>
#include <stdlib.h>

#include "tui/tui.h"

void sol_plain_line(char *buf, size_t cap, int token, int target, const sol_frame_totals *span, int span_tokens,
                    const sol_frame_info *info)
{
    double tok_s = span->achieved_s > 0 ? span_tokens / span->achieved_s : 0;
    double ms = span_tokens > 0 ? 1e3 * span->achieved_s / span_tokens : 0;
    snprintf(buf, cap, "sol run: %d/%d tok | %.2f tok/s | %.2f ms/tok | %.2f GB/s of %.1f | %.1f%% of SOL", token,
             target, tok_s, ms, sol_frame_gbs(span), info ? info->mem_bw / 1e9 : 0, sol_frame_sol_percent(span));
}

static void add_totals(cJSON *o, const sol_frame_totals *t)
{
    cJSON_AddNumberToObject(o, "ops", t->n_ops);
    cJSON_AddNumberToObject(o, "s", t->achieved_s);
    cJSON_AddNumberToObject(o, "sol_s", t->fused_s > 0 ? t->fused_s : t->predicted_s);
    if (t->fused_s > 0)
        cJSON_AddNumberToObject(o, "unfused_s", t->predicted_s);
    cJSON_AddNumberToObject(o, "bytes", t->bytes);
    cJSON_AddNumberToObject(o, "flops", t->flops);
    cJSON_AddNumberToObject(o, "gb_per_s", sol_frame_gbs(t));
    cJSON_AddNumberToObject(o, "gflop_per_s", sol_frame_gflops(t));
    cJSON_AddNumberToObject(o, "sol_percent", sol_frame_sol_percent(t));
    cJSON_AddStringToObject(o, "bound", sol_bound_name(sol_frame_bound(t)));
}

cJSON *sol_json_token(const sol_frame_step *step, int index, int32_t id, const char *text, size_t text_len)
{
    cJSON *o = cJSON_CreateObject();
    char *clean = malloc(3 * text_len + 1);
    if (!o || !clean) {
        cJSON_Delete(o);
        free(clean);
        return NULL;
    }
    sol_text_sanitize(text, text_len, clean, 3 * text_len + 1);
    cJSON_AddNumberToObject(o, "token", index);
    cJSON_AddNumberToObject(o, "id", id);
    cJSON_AddStringToObject(o, "text", clean);
    free(clean);
    cJSON_AddStringToObject(o, "phase", step->prefill ? "prefill" : "decode");
    cJSON_AddNumberToObject(o, "step", (double)step->step);
    cJSON_AddNumberToObject(o, "pos", (double)step->pos);
    cJSON_AddNumberToObject(o, "n_tokens", step->n_tokens);
    cJSON_AddNumberToObject(o, "step_s", step->step_s);
    cJSON_AddNumberToObject(o, "ops_step", (double)step->ops_step);
    cJSON *total = cJSON_AddObjectToObject(o, "total");
    if (total)
        add_totals(total, &step->total);
    cJSON *groups = cJSON_AddArrayToObject(o, "groups");
    for (int g = 0; groups && g < SOL_GROUP_COUNT; g++) {
        if (step->groups[g].n_ops == 0)
            continue;
        cJSON *row = cJSON_CreateObject();
        if (!row)
            break;
        cJSON_AddStringToObject(row, "group", sol_op_group_name((sol_op_group)g));
        add_totals(row, &step->groups[g]);
        cJSON_AddItemToArray(groups, row);
    }
    cJSON *ops = cJSON_AddArrayToObject(o, "ops");
    for (int i = 0; ops && i < step->n_ops; i++) {
        const sol_frame_op *op = &step->ops[i];
        cJSON *row = cJSON_CreateObject();
        if (!row)
            break;
        cJSON_AddStringToObject(row, "op", op->name);
        cJSON_AddNumberToObject(row, "layer", op->layer);
        cJSON_AddStringToObject(row, "group", sol_op_group_name(op->group));
        cJSON_AddNumberToObject(row, "s", op->achieved_s);
        cJSON_AddNumberToObject(row, "sol_s", op->predicted_s);
        cJSON_AddItemToArray(ops, row);
    }
    return o;
}
