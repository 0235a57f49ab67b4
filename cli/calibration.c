/* Calibrations from the database: the per-op times `sol bench` stored for a
 * device, backend and thread count, read into the analyzer's class table. */
#include <string.h>

#include "cli/cli.h"
#include "db/db.h"

typedef struct loading {
    sol_calibration *c;
    int failed;
} loading;

static int add_row(void *user, const sol_op_time_row *row)
{
    loading *l = user;
    int kind = sol_op_class_kind_parse(row->kind);
    if (kind < 0) /* a kind a later sol knows: nothing this one asks for */
        return 0;
    sol_op_class_sum item = {.key = {.kind = kind, .rows = row->rows, .size_class = row->size_class},
                             .group = -1, .bytes = row->bytes, .flops = row->flops, .roofline_s = row->roofline_s,
                             .measured_s = row->measured_s, .count = row->count};
    snprintf(item.key.dtype, sizeof item.key.dtype, "%s", row->dtype);
    sol_err err = {0};
    l->failed = sol_op_table_add(&l->c->classes, &item, &err) != 0;
    return l->failed;
}

int cli_calibration_load(sol_db *db, int64_t device_id, const char *backend, int threads, sol_calibration *c,
                         sol_err *err)
{
    sol_op_time_span span = {0};
    loading l = {c, 0};
    memset(c, 0, sizeof *c);
    int rc = sol_db_op_times(db, device_id, backend, threads, CLI_CALIBRATION_RUNS, add_row, &l, &span, err);
    if (!rc && l.failed)
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    if (rc) {
        cli_calibration_free(c);
        return rc;
    }
    c->runs = span.runs;
    c->first_time = span.first_time;
    c->last_time = span.last_time;
    return 0;
}

void cli_calibration_free(sol_calibration *c) { sol_op_table_free(&c->classes); }

/* The database's id of this CPU and the thread count to use: threads, or
 * (0) that of the latest calibration. */
static int find_device(sol_db *db, const sol_hw *hw, const char *backend, int *threads, int64_t *id, sol_err *err)
{
    sol_device_info dev;
    cli_cpu_device(hw, &dev);
    int rc = sol_db_device_find(db, &dev, id, err);
    if (rc == 0 && *threads <= 0)
        rc = sol_db_op_time_threads(db, *id, backend, threads, err);
    if (rc < 0)
        rc = sol_fail(err, SOL_ERR_RUNTIME,
                      "no calibration for this CPU (%s, %s) in %s: run `sol bench` on a model first", backend,
                      hw->display_name, sol_db_name(db));
    return rc;
}

/* One plan's calibrated step, the missing class named with where. */
static int predict(const sol_calibration *c, const sol_plan *plan, const sol_step_cost *cost,
                   const cli_calibrated *where, sol_calibrated_step *out, sol_err *err)
{
    int rc = sol_calibrated_plan(c, plan, cost, out, err);
    if (rc) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        rc = sol_fail(err, SOL_ERR_RUNTIME,
                      "%s on this device (%s, %d threads): run `sol bench` on a model that has them", msg,
                      where->backend, where->threads);
    }
    return rc;
}

int cli_calibrated_analysis(const sol_analysis *a, const char *backend, int threads, cli_calibrated *out,
                            sol_err *err)
{
    sol_db *db = NULL;
    sol_calibration c = {0};
    memset(out, 0, sizeof *out);
    snprintf(out->backend, sizeof out->backend, "%s", backend);
    int64_t device_id = 0;
    int rc = sol_db_open(NULL, &db, err);
    if (!rc)
        rc = find_device(db, &a->hw, backend, &threads, &device_id, err);
    out->threads = threads;
    if (!rc)
        rc = cli_calibration_load(db, device_id, backend, threads, &c, err);
    if (!rc && c.runs == 0)
        rc = sol_fail(err, SOL_ERR_RUNTIME,
                      "no calibration for this CPU with %s, %d threads in %s: run `sol bench -t %d` on a model first",
                      backend, threads, sol_db_name(db), threads);
    if (!rc)
        rc = predict(&c, &a->decode, &a->decode_cost, out, &out->decode, err);
    if (!rc && a->prefill.n_ops > 0) {
        sol_err prefill_err = {0}; /* a prefill without calibration is reported, not fatal */
        if (predict(&c, &a->prefill, &a->prefill_cost, out, &out->prefill, &prefill_err))
            snprintf(out->prefill_missing, sizeof out->prefill_missing, "%s", prefill_err.msg);
        else
            out->has_prefill = 1;
    }
    out->runs = c.runs;
    out->first_time = c.first_time;
    out->last_time = c.last_time;
    cli_calibration_free(&c);
    sol_db_close(db);
    return rc;
}
