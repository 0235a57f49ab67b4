/* Small helpers shared by the unit tests: load a preset, analyze it. */
#ifndef SOL_TESTS_HELPERS_H
#define SOL_TESTS_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

#endif
