/* Benchmark runs as SQL text (`sol bench -o sql`): a CREATE TABLE and one
 * INSERT per run that load into sqlite3. Values are quoted by SQLite's own
 * printf (%Q), never pasted. */
#include <sqlite3.h>
#include <stdio.h>

#include "db/db.h"

void sol_db_print_run_sql(FILE *f, const sol_run_row *r, int with_create)
{
    if (with_create)
        fputs("CREATE TABLE IF NOT EXISTS bench_run (model TEXT, model_hash TEXT, plan_hash TEXT, kv_scheme TEXT,\n"
              "  wtype TEXT, kvtype TEXT, backend TEXT, test TEXT, threads INTEGER, n_prompt INTEGER, n_gen INTEGER,\n"
              "  reps INTEGER, tokens_per_s REAL, tokens_per_s_stddev REAL, achieved_gbs REAL, sol_tokens_per_s REAL,\n"
              "  sol_percent REAL, sol_version TEXT, git_commit TEXT, time INTEGER);\n",
              f);
    char *sql = sqlite3_mprintf(
        "INSERT INTO bench_run VALUES (%Q, %Q, %Q, %Q, %Q, %Q, %Q, %Q, %d, %d, %d, %d, %.6g, %.6g, %.6g, %.6g, "
        "%.6g, %Q, %Q, %lld);\n",
        r->model, r->model_hash, r->plan_hash, r->kv_scheme, r->wtype, r->kvtype, r->backend, r->test, r->threads,
        r->n_prompt, r->n_gen, r->reps, r->tokens_per_s, r->tokens_per_s_stddev, r->achieved_gbs,
        r->sol_tokens_per_s, r->sol_percent, r->sol_version, r->git_commit, (long long)r->time);
    if (sql)
        fputs(sql, f);
    sqlite3_free(sql);
}
