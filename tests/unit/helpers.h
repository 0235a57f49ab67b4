/* Small helpers shared by the unit tests: load a preset, analyze it. */
#ifndef SOL_TESTS_HELPERS_H
#define SOL_TESTS_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include <string.h>

#include "analyzer/analyzer.h"
#include "models/models.h"
#include "models/plan.h"

static inline sol_model load_preset(const char *name)
{
    sol_model m;
    sol_err err = {0};
    const char *json = sol_preset_json(name);
    assert_non_null(json);
    int rc = sol_model_from_hf_json(json, name, &m, &err);
    if (rc)
        fail_msg("%s: %s", name, err.msg);
    return m;
}

static inline sol_kv_scheme scheme_of(const sol_model *m, const char *text)
{
    sol_kv_scheme base, kv;
    sol_err err = {0};
    sol_kv_from_model(m, &base);
    if (!text)
        return base;
    if (sol_kv_parse(text, &base, &kv, &err))
        fail_msg("--kv %s: %s", text, err.msg);
    if (sol_kv_check(&kv, m, &err))
        fail_msg("--kv %s: %s", text, err.msg);
    return kv;
}

static inline sol_hw load_hw(const char *name)
{
    sol_hw hw;
    sol_err err = {0};
    if (sol_hw_load(name, &hw, &err))
        fail_msg("%s: %s", name, err.msg);
    return hw;
}

/* preset (with kv_text, NULL: its own scheme) on hardware hw_name, its own
 * weight type, f16 activations and KV; the test fails if it cannot be
 * analyzed. Free with analysis_destroy. */
static inline sol_analysis *analyze_preset(const char *preset, const char *kv_text, const char *hw_name, int batch,
                                           int64_t ctx, int prompt, int tp)
{
    sol_model m = load_preset(preset);
    sol_kv_scheme kv = scheme_of(&m, kv_text);
    sol_hw hw = load_hw(hw_name);
    sol_analysis_config cfg = {.batch = batch, .ctx = ctx, .prompt = prompt, .wtype = m.wtype,
                               .atype = SOL_DT_F16, .kvtype = SOL_DT_F16, .tp = tp};
    sol_analysis *a = malloc(sizeof *a);
    sol_err err = {0};
    if (!a || sol_analyze(&m, &kv, &hw, &cfg, a, &err))
        fail_msg("%s on %s: %s", preset, hw_name, a ? err.msg : "out of memory");
    return a;
}

static inline void analysis_destroy(sol_analysis *a)
{
    sol_analysis_free(a);
    free(a);
}

#endif
