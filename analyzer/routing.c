/* A measured MoE routing for the analyzer (analyzer.h sol_routing_load):
 * the experts.routing histogram sol run --json writes, turned into each
 * MoE layer's per-token choice probabilities. */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/analyzer.h"
#include "util/file.h"

/* The JSON object of the file: the whole text, or its last line (sol run
 * --json prints the generated text before it). */
static cJSON *parse_last_object(char *text)
{
    cJSON *doc = cJSON_Parse(text);
    if (doc)
        return doc;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    char *line = strrchr(text, '\n');
    return line ? cJSON_Parse(line + 1) : NULL;
}

/* The experts object: the document's (sol run --json), or the first row's
 * that has one (sol bench --batch -o json, an array). */
static const cJSON *experts_of(const cJSON *doc)
{
    if (!cJSON_IsArray(doc))
        return cJSON_GetObjectItemCaseSensitive(doc, "experts");
    const cJSON *row;
    cJSON_ArrayForEach(row, doc)
    {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(row, "experts");
        if (cJSON_IsObject(x))
            return x;
    }
    return NULL;
}

int sol_routing_probabilities(double *p, int n_experts, int k)
{
    double choices = 0;
    for (int e = 0; e < n_experts; e++)
        choices += p[e];
    if (!(choices > 0))
        return -1;
    for (int e = 0; e < n_experts; e++)
        p[e] = p[e] * k / choices;
    return 0;
}

/* One layer's counts from the JSON row into probabilities. */
static int layer_probabilities(const cJSON *row, int n_experts, int k, double *p)
{
    if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != n_experts)
        return -1;
    for (int e = 0; e < n_experts; e++) {
        const cJSON *c = cJSON_GetArrayItem(row, e);
        if (!cJSON_IsNumber(c) || !(c->valuedouble >= 0) || !isfinite(c->valuedouble))
            return -1;
        p[e] = c->valuedouble;
    }
    return sol_routing_probabilities(p, n_experts, k);
}

static int read_routing(const cJSON *x, const char *path, const sol_model *m, sol_routing *out, sol_err *err)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(x, "n_experts"),
                *first = cJSON_GetObjectItemCaseSensitive(x, "first_moe_layer"),
                *routing = cJSON_GetObjectItemCaseSensitive(x, "routing");
    int layers = m->n_layers - m->first_dense;
    if (!cJSON_IsNumber(n) || n->valuedouble != m->n_experts)
        return sol_fail(err, SOL_ERR_USAGE, "%s: experts.n_experts is not %s's %d", path, m->name, m->n_experts);
    if (!cJSON_IsNumber(first) || first->valuedouble != m->first_dense || !cJSON_IsArray(routing) ||
        cJSON_GetArraySize(routing) != layers)
        return sol_fail(err, SOL_ERR_USAGE, "%s: experts.routing does not have %s's %d MoE layers from layer %d",
                        path, m->name, layers, m->first_dense);
    out->p = malloc((size_t)layers * m->n_experts * sizeof *out->p);
    if (!out->p)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    out->first_layer = m->first_dense;
    out->n_layers = layers;
    out->n_experts = m->n_experts;
    for (int l = 0; l < layers; l++)
        if (layer_probabilities(cJSON_GetArrayItem(routing, l), m->n_experts, m->n_experts_active,
                                out->p + (size_t)l * m->n_experts))
            return sol_fail(err, SOL_ERR_USAGE,
                            "%s: experts.routing[%d] is not %d non-negative counts with some choices", path, l,
                            m->n_experts);
    return 0;
}

int sol_routing_load(const char *path, const sol_model *m, sol_routing *out, sol_err *err)
{
    memset(out, 0, sizeof *out);
    if (m->n_experts <= 0)
        return sol_fail(err, SOL_ERR_USAGE, "--routing: %s has no experts", m->name);
    char *text = NULL;
    int rc = sol_read_text_file(path, 64u << 20, "routing file", &text, err);
    if (rc)
        return rc;
    cJSON *doc = parse_last_object(text);
    const cJSON *x = experts_of(doc);
    if (!doc)
        rc = sol_fail(err, SOL_ERR_USAGE, "%s: not JSON (expected the output of sol run --json)", path);
    else if (!cJSON_IsObject(x))
        rc = sol_fail(err, SOL_ERR_USAGE, "%s: no \"experts\" object (sol run --json or sol bench --batch -o json on a MoE model writes one)",
                      path);
    else
        rc = read_routing(x, path, m, out, err);
    cJSON_Delete(doc);
    free(text);
    if (rc)
        sol_routing_free(out);
    return rc;
}

void sol_routing_free(sol_routing *r)
{
    free(r->p);
    memset(r, 0, sizeof *r);
}
