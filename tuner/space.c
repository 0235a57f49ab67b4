/* Parameter spaces (see tuner.h): mixed-radix encoding of configurations,
 * constraint checks, and the JSON that keys a configuration in the DB. */
#include <cJSON.h>
#include <math.h>
#include <string.h>

#include "tuner/tuner.h"

int sol_space_add(sol_tune_space *s, const char *name, const int *values, int n_values, int default_value)
{
    if (s->n_params == SOL_TUNE_MAX_PARAMS || n_values < 1 || n_values > SOL_TUNE_MAX_VALUES)
        return -1;
    int p = s->n_params++;
    s->params[p].name = name;
    s->params[p].n_values = n_values;
    memcpy(s->params[p].values, values, (size_t)n_values * sizeof *values);
    s->default_config.idx[p] = 0;
    for (int i = 0; i < n_values; i++)
        if (values[i] == default_value)
            s->default_config.idx[p] = i;
    return p;
}

int64_t sol_space_size(const sol_tune_space *s)
{
    int64_t n = 1;
    for (int p = 0; p < s->n_params; p++)
        n *= s->params[p].n_values;
    return n;
}

void sol_space_decode(const sol_tune_space *s, int64_t linear, sol_tune_config *c)
{
    memset(c, 0, sizeof *c);
    for (int p = 0; p < s->n_params; p++) {
        c->idx[p] = (int)(linear % s->params[p].n_values);
        linear /= s->params[p].n_values;
    }
}

int64_t sol_space_encode(const sol_tune_space *s, const sol_tune_config *c)
{
    int64_t linear = 0;
    for (int p = s->n_params - 1; p >= 0; p--)
        linear = linear * s->params[p].n_values + c->idx[p];
    return linear;
}

void sol_space_values(const sol_tune_space *s, const sol_tune_config *c, int *values)
{
    for (int p = 0; p < s->n_params; p++)
        values[p] = s->params[p].values[c->idx[p]];
}

int sol_space_valid(const sol_tune_space *s, const sol_tune_config *c)
{
    for (int p = 0; p < s->n_params; p++)
        if (c->idx[p] < 0 || c->idx[p] >= s->params[p].n_values)
            return 0;
    if (!s->valid)
        return 1;
    int values[SOL_TUNE_MAX_PARAMS];
    sol_space_values(s, c, values);
    return s->valid(values, s->user);
}

void sol_space_coverage(const sol_tune_space *s, const double *seen, int *valid, int *measured)
{
    *valid = *measured = 0;
    int64_t size = sol_space_size(s);
    for (int64_t i = 0; i < size; i++) {
        sol_tune_config c;
        sol_space_decode(s, i, &c);
        int ok = sol_space_valid(s, &c);
        *valid += ok;
        *measured += ok && !isnan(seen[i]);
    }
}

char *sol_space_json(const sol_tune_space *s, const sol_tune_config *c)
{
    cJSON *o = cJSON_CreateObject();
    for (int p = 0; p < s->n_params; p++)
        cJSON_AddNumberToObject(o, s->params[p].name, s->params[p].values[c->idx[p]]);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}
