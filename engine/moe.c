/* The engine's mixture-of-experts side: the router each MoE layer hands
 * the backend, its buffers, and the count of the experts a step actually
 * read (what the analyzer's E·(1-(1-k/E)^B) predicts). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_impl.h"
#include "kernels/formats.h"

sol_router sol_engine_router(const sol_engine *e, int layer)
{
    const sol_model *m = &e->model;
    return (sol_router){.n_experts = m->n_experts,
                        .k = m->n_experts_active,
                        .sigmoid = m->expert_sigmoid,
                        .bias = e->w.layers[layer].exp_bias,
                        .n_groups = m->expert_groups > 1 ? m->expert_groups : 1,
                        .groups_kept = m->expert_groups > 1 ? m->expert_groups_used : 1,
                        .norm = m->expert_norm,
                        .scale = m->expert_scale > 0 ? (float)m->expert_scale : 1.0f};
}

static int moe_layer(const sol_model *m, int layer) { return m->n_experts > 0 && layer >= m->first_dense; }

int32_t *sol_engine_moe_ids(const sol_engine *e, int layer, int rows)
{
    return e->moe_ids + (size_t)layer * (size_t)rows * (size_t)e->model.n_experts_active;
}

/* Router logits and weights for a chunk of rows, and every layer's ids (a
 * dense layer's stay unused: the indexing stays plain). */
int sol_engine_moe_alloc(sol_engine *e, sol_err *err)
{
    const sol_model *m = &e->model;
    if (m->n_experts <= 0)
        return 0;
    size_t rows = (size_t)e->chunk, k = (size_t)m->n_experts_active, ids = (size_t)m->n_layers * rows * k;
    void *logits = NULL, *weights = NULL, *dev_ids = NULL;
    int rc = e->be->alloc(e->be, rows * (size_t)m->n_experts * sizeof(float), &logits, err);
    e->router_logits = logits;
    if (!rc)
        rc = e->be->alloc(e->be, rows * k * sizeof(float), &weights, err);
    e->moe_weights = weights;
    if (!rc)
        rc = e->be->alloc(e->be, ids * sizeof(int32_t), &dev_ids, err);
    e->moe_ids = dev_ids;
    if (rc)
        return rc;
    e->moe_ids_host = malloc(ids * sizeof *e->moe_ids_host);
    e->moe_seen = malloc((size_t)m->n_experts);
    e->experts.chosen = calloc((size_t)m->n_layers * (size_t)m->n_experts, sizeof *e->experts.chosen);
    if (!e->moe_ids_host || !e->moe_seen || !e->experts.chosen)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    sol_engine_expert_stats_reset(e);
    return 0;
}

void sol_engine_moe_free(sol_engine *e)
{
    if (e->router_logits)
        e->be->free(e->be, e->router_logits);
    if (e->moe_weights)
        e->be->free(e->be, e->moe_weights);
    if (e->moe_ids)
        e->be->free(e->be, e->moe_ids);
    e->router_logits = e->moe_weights = NULL;
    e->moe_ids = NULL;
    free(e->moe_ids_host);
    free(e->moe_seen);
    free(e->experts.chosen);
    e->moe_ids_host = NULL;
    e->moe_seen = NULL;
    e->experts.chosen = NULL;
}

void sol_engine_expert_stats_reset(sol_engine *e)
{
    sol_expert_stats_acc *a = &e->experts;
    a->samples = 0;
    a->sum = a->sum_sq = 0;
    a->rows = -1;
    if (a->chosen)
        memset(a->chosen, 0, (size_t)e->model.n_layers * (size_t)e->model.n_experts * sizeof *a->chosen);
}

/* Distinct experts among n ids (out of range ones, which the backend
 * skips, are not counted); each chosen one tallied in chosen[]. */
static int count_distinct(const int32_t *ids, int n, int n_experts, unsigned char *seen, int64_t *chosen)
{
    memset(seen, 0, (size_t)n_experts);
    int distinct = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= n_experts)
            continue;
        distinct += !seen[ids[i]];
        seen[ids[i]] = 1;
        chosen[ids[i]]++;
    }
    return distinct;
}

void sol_engine_expert_counting(sol_engine *e, int on) { e->experts.paused = !on; }

int sol_engine_count_experts(sol_engine *e, int rows, sol_err *err)
{
    if (e->experts.paused)
        return 0;
    const sol_model *m = &e->model;
    size_t per_layer = (size_t)rows * m->n_experts_active;
    int rc = e->be->download(e->be, e->moe_ids_host, e->moe_ids, (size_t)m->n_layers * per_layer * sizeof(int32_t),
                             err);
    sol_expert_stats_acc *a = &e->experts;
    for (int layer = 0; layer < m->n_layers && !rc; layer++) {
        if (!moe_layer(m, layer))
            continue;
        int d = count_distinct(e->moe_ids_host + (size_t)layer * per_layer, rows * m->n_experts_active,
                               m->n_experts, e->moe_seen, a->chosen + (size_t)layer * m->n_experts);
        a->samples++;
        a->sum += d;
        a->sum_sq += (double)d * d;
    }
    a->rows = a->rows == -1 || a->rows == rows ? rows : 0;
    return rc;
}

int sol_engine_expert_stats(const sol_engine *e, sol_expert_stats *out)
{
    const sol_model *m = &e->model;
    if (m->n_experts <= 0 || !e->experts.chosen)
        return -1;
    const sol_expert_stats_acc *a = &e->experts;
    double n = (double)a->samples, mean = n > 0 ? a->sum / n : 0;
    double var = n > 1 ? (a->sum_sq - n * mean * mean) / (n - 1) : 0;
    const sol_layer_weights *l = &e->w.layers[m->first_dense < m->n_layers ? m->first_dense : 0];
    double per_expert = 0;
    const sol_weight_view *v[] = {&l->exp_gate, &l->exp_up, &l->exp_down};
    for (int j = 0; j < 3; j++)
        per_expert += (double)v[j]->row_bytes * (double)v[j]->rows / m->n_experts;
    *out = (sol_expert_stats){.moe_layers = m->n_layers - m->first_dense,
                              .n_experts = m->n_experts,
                              .k = m->n_experts_active,
                              .samples = a->samples,
                              .mean_distinct = mean,
                              .sd_distinct = var > 0 ? sqrt(var) : 0,
                              .rows = a->rows > 0 ? a->rows : 0,
                              .expert_bytes = per_expert,
                              .chosen = a->chosen};
    return 0;
}
