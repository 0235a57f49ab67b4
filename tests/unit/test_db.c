/* The results database: creation, migration from the committed version-1
 * fixture, refusal of newer/foreign/damaged files without touching them,
 * read-only files, two writing processes, export/import round trips with
 * device mapping, and the trial/best keys. Each test works in a fresh
 * temporary directory; raw sqlite3 is used only to inspect files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/db.h"

#define FIXTURE_V1 "tests/fixtures/db/v1.db"

/* ---- temporary directories and files --------------------------------------- */

typedef struct tmp {
    char dir[64];
} tmp;

static int tmp_setup(void **state)
{
    tmp *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    snprintf(t->dir, sizeof t->dir, "/tmp/sol-test-db-XXXXXX");
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    tmp *t = *state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "chmod -R u+w %s; rm -rf %s", t->dir, t->dir);
    int rc = system(cmd);
    free(t);
    return rc == 0 ? 0 : -1;
}

static const char *tmp_path(void **state, const char *name, char *buf, size_t cap)
{
    tmp *t = *state;
    snprintf(buf, cap, "%s/%s", t->dir, name);
    return buf;
}

typedef struct blob {
    unsigned char *data;
    size_t size;
} blob;

static blob read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    blob b = {malloc((size_t)n + 1), (size_t)n};
    assert_non_null(b.data);
    assert_int_equal(fread(b.data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return b;
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static void copy_file(const char *from, const char *to)
{
    blob b = read_file(from);
    write_file(to, b.data, b.size);
    free(b.data);
}

static void assert_same_bytes(const blob *before, const char *path)
{
    blob after = read_file(path);
    assert_int_equal(after.size, before->size);
    assert_memory_equal(after.data, before->data, before->size);
    free(after.data);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void assert_contains(const char *text, const char *part)
{
    if (!strstr(text, part))
        fail_msg("\"%s\" does not contain \"%s\"", text, part);
}

/* ---- raw inspection ------------------------------------------------------- */

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *conn = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &conn, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(conn, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(conn));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(conn);
    return v;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *conn = NULL;
    assert_int_equal(sqlite3_open_v2(path, &conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(conn, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    assert_int_equal(sqlite3_close(conn), SQLITE_OK);
}

/* ---- rows ------------------------------------------------------------------ */

static sol_db *open_ok(const char *path)
{
    sol_db *db = NULL;
    sol_err err = {0};
    if (sol_db_open(path, &db, &err))
        fail_msg("open %s: %s", path, err.msg);
    return db;
}

static int64_t device_ok(sol_db *db, const char *backend, const char *name, const char *driver)
{
    sol_device_info dev = {.cores = 8, .l1_bytes = 32768, .l2_bytes = 1 << 20, .l3_bytes = 32 << 20};
    snprintf(dev.backend, sizeof dev.backend, "%s", backend);
    snprintf(dev.name, sizeof dev.name, "%s", name);
    snprintf(dev.driver, sizeof dev.driver, "%s", driver);
    snprintf(dev.cc, sizeof dev.cc, "%s", strcmp(backend, "cpu") ? "9.0" : "avx2+fma");
    int64_t id = 0;
    sol_err err = {0};
    if (sol_db_device(db, &dev, &id, &err))
        fail_msg("device: %s", err.msg);
    assert_true(id > 0);
    return id;
}

static sol_run_row make_run(int64_t device_id, const char *model, const char *test, int i)
{
    sol_run_row r = {.device_id = device_id, .threads = 1 + i % 4, .n_prompt = 512, .n_gen = 128, .reps = 5,
                     .tokens_per_s = 100.0 + i * 0.125, .tokens_per_s_stddev = 0.5, .achieved_gbs = 12.5,
                     .sol_tokens_per_s = 200.0, .sol_percent = 50.0 + i * 0.0625, .time = 1714000000 + i};
    snprintf(r.model, sizeof r.model, "%s", model);
    snprintf(r.model_hash, sizeof r.model_hash, "%016x", (unsigned)i * 2654435761u);
    snprintf(r.plan_hash, sizeof r.plan_hash, "p%015d", i);
    snprintf(r.kv_scheme, sizeof r.kv_scheme, "gqa:8");
    snprintf(r.wtype, sizeof r.wtype, "q4_0");
    snprintf(r.kvtype, sizeof r.kvtype, "f16");
    snprintf(r.backend, sizeof r.backend, "cpu");
    snprintf(r.test, sizeof r.test, "%s", test);
    snprintf(r.sol_version, sizeof r.sol_version, "0.1.0");
    snprintf(r.git_commit, sizeof r.git_commit, "abc1234");
    return r;
}

static void run_add_ok(sol_db *db, const sol_run_row *r)
{
    sol_err err = {0};
    if (sol_db_run_add(db, r, &err))
        fail_msg("run_add: %s", err.msg);
}

static sol_trial_row make_trial(int64_t device_id, const char *params, double median_s)
{
    sol_trial_row t = {.device_id = device_id, .median_s = median_s, .spread = 0.01, .reps = 10, .correct = 1,
                       .time = 1714000500};
    snprintf(t.kernel, sizeof t.kernel, "matmul_q4_0");
    snprintf(t.source_hash, sizeof t.source_hash, "deadbeefcafef00d");
    snprintf(t.compile_flags, sizeof t.compile_flags, "-O3 -march=native");
    snprintf(t.shape, sizeof t.shape, "4096x4096x1");
    snprintf(t.dtype, sizeof t.dtype, "q4_0");
    snprintf(t.params_json, sizeof t.params_json, "%s", params);
    snprintf(t.counters_json, sizeof t.counters_json, "{\"instructions\":123}");
    return t;
}

static sol_best_row make_best(int64_t device_id, const char *params, double median_s, int64_t time)
{
    sol_best_row b = {.device_id = device_id, .median_s = median_s, .default_s = 2 * median_s, .time = time};
    snprintf(b.kernel, sizeof b.kernel, "matmul_q4_0");
    snprintf(b.source_hash, sizeof b.source_hash, "deadbeefcafef00d");
    snprintf(b.shape, sizeof b.shape, "4096x4096x1");
    snprintf(b.dtype, sizeof b.dtype, "q4_0");
    snprintf(b.params_json, sizeof b.params_json, "%s", params);
    return b;
}

typedef struct run_list {
    sol_run_row rows[512];
    int n;
} run_list;

static int collect_run(void *user, const sol_run_row *row)
{
    run_list *l = user;
    if (l->n == (int)(sizeof l->rows / sizeof l->rows[0]))
        return 1;
    l->rows[l->n++] = *row;
    return 0;
}

static run_list *runs_of(sol_db *db)
{
    run_list *l = calloc(1, sizeof *l);
    assert_non_null(l);
    sol_err err = {0};
    if (sol_db_runs(db, collect_run, l, &err))
        fail_msg("runs: %s", err.msg);
    return l;
}

static int count_cb(void *user, const void *row)
{
    (void)row;
    ++*(int *)user;
    return 0;
}

static int count_trial(void *user, const sol_trial_row *row) { return count_cb(user, row); }
static int count_best(void *user, const sol_best_row *row) { return count_cb(user, row); }

static int n_trials(sol_db *db)
{
    int n = 0;
    sol_err err = {0};
    if (sol_db_trials(db, count_trial, &n, &err))
        fail_msg("trials: %s", err.msg);
    return n;
}

static int n_bests(sol_db *db)
{
    int n = 0;
    sol_err err = {0};
    if (sol_db_bests(db, count_best, &n, &err))
        fail_msg("bests: %s", err.msg);
    return n;
}

/* Every field except device_id, which is compared through the device map. */
static void assert_run_equal(const sol_run_row *a, const sol_run_row *b)
{
    assert_string_equal(a->model, b->model);
    assert_string_equal(a->model_hash, b->model_hash);
    assert_string_equal(a->plan_hash, b->plan_hash);
    assert_string_equal(a->kv_scheme, b->kv_scheme);
    assert_string_equal(a->wtype, b->wtype);
    assert_string_equal(a->kvtype, b->kvtype);
    assert_string_equal(a->backend, b->backend);
    assert_string_equal(a->test, b->test);
    assert_int_equal(a->threads, b->threads);
    assert_int_equal(a->n_prompt, b->n_prompt);
    assert_int_equal(a->n_gen, b->n_gen);
    assert_int_equal(a->reps, b->reps);
    assert_true(a->tokens_per_s == b->tokens_per_s);
    assert_true(a->tokens_per_s_stddev == b->tokens_per_s_stddev);
    assert_true(a->achieved_gbs == b->achieved_gbs);
    assert_true(a->sol_tokens_per_s == b->sol_tokens_per_s);
    assert_true(a->sol_percent == b->sol_percent);
    assert_string_equal(a->sol_version, b->sol_version);
    assert_string_equal(a->git_commit, b->git_commit);
    assert_int_equal(a->time, b->time);
}

/* ---- path and creation ----------------------------------------------------- */

static void test_path(void **state)
{
    (void)state;
    char buf[512], home[512];
    snprintf(home, sizeof home, "%s", getenv("HOME") ? getenv("HOME") : "");
    setenv("SOL_DB", "/some/where/results.db", 1);
    assert_string_equal(sol_db_path(buf, sizeof buf), "/some/where/results.db");
    assert_null(sol_db_path(buf, 8)); /* does not fit */
    unsetenv("SOL_DB");
    setenv("XDG_CACHE_HOME", "/xdg/cache", 1);
    assert_string_equal(sol_db_path(buf, sizeof buf), "/xdg/cache/sol/sol.db");
    setenv("XDG_CACHE_HOME", "relative", 1); /* ignored, as the XDG spec says */
    setenv("HOME", "/home/someone", 1);
    assert_string_equal(sol_db_path(buf, sizeof buf), "/home/someone/.cache/sol/sol.db");
    unsetenv("XDG_CACHE_HOME");
    assert_string_equal(sol_db_path(buf, sizeof buf), "/home/someone/.cache/sol/sol.db");
    setenv("HOME", home, 1);
}

static void test_create_from_nothing(void **state)
{
    char path[256];
    tmp_path(state, "new/dirs/sol.db", path, sizeof path);
    setenv("SOL_DB", path, 1);
    sol_db *db = NULL;
    sol_err err = {0};
    assert_int_equal(sol_db_open(NULL, &db, &err), 0);
    unsetenv("SOL_DB");
    assert_true(file_exists(path));
    assert_int_equal(raw_int(path, "PRAGMA user_version"), sol_db_schema_version());
    assert_true(sol_db_schema_version() >= 2);
    assert_int_equal(raw_int(path, "PRAGMA application_id"), 0x736f6c00);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                                   "('device', 'probe', 'run', 'trial', 'best')"),
                     5);
    /* WAL is recorded in the file header (bytes 18 and 19 are 2). */
    blob b = read_file(path);
    assert_true(b.size >= 100);
    assert_int_equal(b.data[18], 2);
    assert_int_equal(b.data[19], 2);
    free(b.data);
    run_list *l = runs_of(db);
    assert_int_equal(l->n, 0);
    free(l);
    sol_db_close(db);

    /* Opening again changes nothing and keeps what was written. */
    db = open_ok(path);
    int64_t dev = device_ok(db, "cpu", "Test CPU", "");
    sol_run_row r = make_run(dev, "m", "tg128", 1);
    run_add_ok(db, &r);
    sol_db_close(db);
    db = open_ok(path);
    l = runs_of(db);
    assert_int_equal(l->n, 1);
    assert_run_equal(&l->rows[0], &r);
    free(l);
    sol_db_close(db);
}

/* ---- migration ------------------------------------------------------------- */

static void test_migrate_v1_fixture(void **state)
{
    char path[256];
    tmp_path(state, "v1.db", path, sizeof path);
    copy_file(FIXTURE_V1, path);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN ('trial', 'best')"), 0);

    sol_db *db = open_ok(path);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), sol_db_schema_version());
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN ('trial', 'best')"), 2);

    /* Rows of tests/fixtures/db/v1-rows.sql, unchanged; plan_hash is new and empty. */
    run_list *l = runs_of(db);
    assert_int_equal(l->n, 3);
    assert_string_equal(l->rows[0].model, "SmolLM2-135M-Instruct");
    assert_string_equal(l->rows[0].test, "pp512");
    assert_true(l->rows[0].tokens_per_s == 41.25);
    assert_string_equal(l->rows[0].plan_hash, "");
    assert_string_equal(l->rows[1].test, "tg128");
    assert_true(l->rows[1].tokens_per_s == 9.42);
    assert_int_equal(l->rows[2].device_id, 2);
    assert_string_equal(l->rows[2].model, "Llama-3-8B");
    assert_true(l->rows[2].sol_percent == 83.8);
    assert_int_equal(l->rows[2].time, 1714100200);
    free(l);

    sol_probe_row p;
    sol_err err = {0};
    assert_int_equal(sol_db_probe_latest(db, 1, "mem_read_bw", &p, &err), 0);
    assert_true(p.value == 18.5e9);
    assert_string_equal(p.unit, "B/s");
    assert_int_equal(p.reps, 9);
    assert_int_equal(sol_db_probe_latest(db, 2, "mem_read_bw", &p, &err), 0);
    assert_true(p.value == 3.02e12);

    /* The fixture's device keeps its id; the new tables take rows. */
    sol_device_info cpu = {.cores = 2, .l1_bytes = 32768, .l2_bytes = 524288, .l3_bytes = 33554432};
    snprintf(cpu.backend, sizeof cpu.backend, "cpu");
    snprintf(cpu.name, sizeof cpu.name, "AMD EPYC 7B13");
    snprintf(cpu.cc, sizeof cpu.cc, "avx2+fma");
    int64_t id = 0;
    assert_int_equal(sol_db_device(db, &cpu, &id, &err), 0);
    assert_int_equal(id, 1);
    sol_trial_row t = make_trial(1, "{\"tile\":64}", 1e-3);
    assert_int_equal(sol_db_trial_add(db, &t, &err), 0);
    assert_int_equal(n_trials(db), 1);
    sol_db_close(db);
}

/* A migration that fails part-way leaves the file at its old version: the
 * whole forward path is one transaction. */
static void test_migration_is_atomic(void **state)
{
    char path[256];
    tmp_path(state, "v1-clash.db", path, sizeof path);
    copy_file(FIXTURE_V1, path);
    raw_exec(path, "CREATE TABLE best (x)"); /* migration 2 creates best after altering run */

    sol_db *db = NULL;
    sol_err err = {0};
    assert_int_equal(sol_db_open(path, &db, &err), SOL_ERR_RUNTIME);
    assert_null(db);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "migrating from schema version 1 to 2");
    assert_contains(err.msg, "already exists");
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_table_info('run') WHERE name = 'plan_hash'"), 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'trial'"), 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM run"), 3);
}

/* ---- refusals -------------------------------------------------------------- */

/* A file of schema version `version` is refused untouched, the message
 * naming the file and the version. */
static void expect_version_refused(void **state, const char *name, int version, sol_err *err)
{
    char path[256], wal[272], sql[64];
    tmp_path(state, name, path, sizeof path);
    sol_db_close(open_ok(path));
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version);
    raw_exec(path, sql);
    blob before = read_file(path);
    sol_db *db = NULL;
    char number[16];
    snprintf(number, sizeof number, "%d", version);
    assert_int_equal(sol_db_open(path, &db, err), SOL_ERR_RUNTIME);
    assert_null(db);
    assert_contains(err->msg, path);
    assert_contains(err->msg, number);
    assert_same_bytes(&before, path);
    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_false(file_exists(wal));
    free(before.data);
}

static void test_newer_version_refused(void **state)
{
    sol_err err = {0};
    expect_version_refused(state, "future.db", 999, &err);
    char current[48];
    snprintf(current, sizeof current, "this sol's %d", sol_db_schema_version());
    assert_contains(err.msg, current);
}

/* A negative user_version (no sol writes one) is refused, not used as a
 * migration index. */
static void test_negative_version_refused(void **state)
{
    sol_err err = {0};
    expect_version_refused(state, "negative.db", -5, &err);
    assert_contains(err.msg, "no sol writes");
}

static void test_text_file_refused(void **state)
{
    char path[256];
    tmp_path(state, "notes.txt", path, sizeof path);
    const char *text = "these are my notes, not a database\nline two\n";
    write_file(path, text, strlen(text));
    blob before = read_file(path);

    sol_db *db = NULL;
    sol_err err = {0};
    assert_int_equal(sol_db_open(path, &db, &err), SOL_ERR_RUNTIME);
    assert_null(db);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "not a database");
    assert_contains(err.msg, "leaves it as it is");
    assert_same_bytes(&before, path);
    free(before.data);
}

static void test_corrupt_file_refused(void **state)
{
    char path[256];
    tmp_path(state, "corrupt.db", path, sizeof path);
    sol_db *db = open_ok(path);
    int64_t dev = device_ok(db, "cpu", "Test CPU", "");
    for (int i = 0; i < 400; i++) {
        sol_run_row r = make_run(dev, "a model with a long enough name to fill pages", "tg128", i);
        run_add_ok(db, &r);
    }
    sol_db_close(db); /* the last close checkpoints the WAL into the file */
    blob b = read_file(path);
    assert_true(b.size >= 16 * 4096);
    /* Overwrite pages in the middle (table b-tree pages) with a pattern. */
    memset(b.data + b.size / 2 - 4096, 0x5a, 2 * 4096);
    write_file(path, b.data, b.size);

    db = NULL;
    sol_err err = {0};
    assert_int_equal(sol_db_open(path, &db, &err), SOL_ERR_RUNTIME);
    assert_null(db);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "corrupt");
    assert_null(strchr(err.msg, '\n')); /* one line */
    assert_same_bytes(&b, path);
    free(b.data);
}

static void test_foreign_sqlite_refused(void **state)
{
    char path[256];
    tmp_path(state, "other.db", path, sizeof path);
    raw_exec(path, "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine')");
    blob before = read_file(path);
    sol_db *db = NULL;
    sol_err err = {0};
    assert_int_equal(sol_db_open(path, &db, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "not sol's");
    assert_same_bytes(&before, path);
    free(before.data);

    raw_exec(path, "PRAGMA application_id = 42");
    assert_int_equal(sol_db_open(path, &db, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "another program");
}

/* ---- read-only files ------------------------------------------------------- */

/* Checks run by a process that cannot write the files; each returns NULL or
 * what went wrong, written into msg. */
typedef const char *(*readonly_check)(const char *path, const char *v1_path, char *msg, size_t cap);

/* Writable directory: reading works (SQLite makes its -shm beside the file),
 * writing fails naming the file, and an old version is not migrated. */
static const char *readonly_file_checks(const char *path, const char *v1_path, char *msg, size_t cap)
{
    sol_db *db = NULL;
    sol_err err = {0};
    if (access(path, W_OK) == 0)
        return "the file is still writable";
    if (sol_db_open(path, &db, &err)) {
        snprintf(msg, cap, "open for reading failed: %s", err.msg);
        return msg;
    }
    int n = 0;
    run_list *l = calloc(1, sizeof *l);
    if (!l || sol_db_runs(db, collect_run, l, &err) || (n = l->n) != 1) {
        free(l);
        sol_db_close(db);
        snprintf(msg, cap, "reading runs: %d rows, %s", n, err.msg);
        return msg;
    }
    free(l);
    /* A known device is found; a new one cannot be recorded. */
    sol_device_info dev = {.cores = 8};
    snprintf(dev.backend, sizeof dev.backend, "cpu");
    snprintf(dev.name, sizeof dev.name, "Test CPU");
    snprintf(dev.cc, sizeof dev.cc, "avx2+fma");
    int64_t id = 0;
    if (sol_db_device(db, &dev, &id, &err) || id != 1) {
        sol_db_close(db);
        snprintf(msg, cap, "finding a known device: id %lld, %s", (long long)id, err.msg);
        return msg;
    }
    snprintf(dev.name, sizeof dev.name, "Another CPU");
    if (sol_db_device(db, &dev, &id, &err) != SOL_ERR_RUNTIME || !strstr(err.msg, "read-only")) {
        sol_db_close(db);
        snprintf(msg, cap, "recording a device in a read-only file: \"%s\"", err.msg);
        return msg;
    }
    sol_run_row r = make_run(1, "m2", "tg128", 2);
    int rc = sol_db_run_add(db, &r, &err);
    sol_db_close(db);
    if (rc != SOL_ERR_RUNTIME || !strstr(err.msg, "read-only") || !strstr(err.msg, path)) {
        snprintf(msg, cap, "run_add on a read-only file gave %d \"%s\"", rc, err.msg);
        return msg;
    }
    char needs[32];
    snprintf(needs, sizeof needs, "needs version %d", sol_db_schema_version());
    if (sol_db_open(v1_path, &db, &err) != SOL_ERR_RUNTIME || !strstr(err.msg, "read-only") ||
        !strstr(err.msg, "version 1") || !strstr(err.msg, needs)) {
        snprintf(msg, cap, "read-only v1 file: \"%s\"", err.msg);
        sol_db_close(db);
        return msg;
    }
    return NULL;
}

/* Read-only directory too: SQLite cannot make the -shm a WAL file needs, so
 * opening fails and says why. */
static const char *readonly_dir_checks(const char *path, const char *v1_path, char *msg, size_t cap)
{
    (void)v1_path;
    sol_db *db = NULL;
    sol_err err = {0};
    if (sol_db_open(path, &db, &err) != SOL_ERR_RUNTIME || !strstr(err.msg, path) || !strstr(err.msg, "-shm")) {
        snprintf(msg, cap, "read-only file in a read-only directory: \"%s\"", err.msg);
        sol_db_close(db);
        return msg;
    }
    return NULL;
}

/* Runs check as this user, or, for root (whom chmod 0444 does not stop), in
 * a child that drops to nobody. "SKIP" when that is not possible. */
static const char *run_unprivileged(readonly_check check, const char *path, const char *v1_path, char *msg,
                                    size_t cap)
{
    if (geteuid() != 0)
        return check(path, v1_path, msg, cap);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        const char *res = setgid(65534) != 0 || setuid(65534) != 0 ? "SKIP" : check(path, v1_path, msg, cap);
        ssize_t w = write(fds[1], res ? res : "OK", strlen(res ? res : "OK"));
        _exit(w < 0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], msg, cap - 1);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    msg[n > 0 ? n : 0] = '\0';
    return strcmp(msg, "OK") ? msg : NULL;
}

static void test_readonly_file(void **state)
{
    tmp *t = *state;
    char path[256], v1_path[256];
    tmp_path(state, "ro.db", path, sizeof path);
    tmp_path(state, "ro-v1.db", v1_path, sizeof v1_path);
    sol_db *db = open_ok(path);
    int64_t dev = device_ok(db, "cpu", "Test CPU", "");
    sol_run_row r = make_run(dev, "m", "tg128", 1);
    run_add_ok(db, &r);
    sol_db_close(db);
    copy_file(FIXTURE_V1, v1_path);
    assert_int_equal(chmod(path, 0444), 0);
    assert_int_equal(chmod(v1_path, 0444), 0);
    blob before = read_file(path), before_v1 = read_file(v1_path);

    char msg[768];
    assert_int_equal(chmod(t->dir, 0777), 0); /* for root's child, running as nobody */
    const char *failure = run_unprivileged(readonly_file_checks, path, v1_path, msg, sizeof msg);
    if (!failure) {
        char shm[272];
        snprintf(shm, sizeof shm, "%s-shm", path);
        unlink(shm); /* left by the reader above (with an empty -wal, kept) */
        assert_int_equal(chmod(t->dir, 0555), 0);
        failure = run_unprivileged(readonly_dir_checks, path, v1_path, msg, sizeof msg);
    }
    assert_int_equal(chmod(t->dir, 0700), 0);
    if (failure && !strcmp(failure, "SKIP")) {
        free(before.data);
        free(before_v1.data);
        print_message("skipped: running as root, which chmod 0444 does not stop, and cannot drop to nobody\n");
        skip();
    }
    if (failure)
        fail_msg("%s", failure);
    assert_same_bytes(&before, path);
    assert_same_bytes(&before_v1, v1_path);
    free(before.data);
    free(before_v1.data);
}

/* ---- two processes --------------------------------------------------------- */

static void test_concurrent_writers(void **state)
{
    char path[256];
    tmp_path(state, "shared.db", path, sizeof path);
    sol_db_close(open_ok(path));
    enum { WRITERS = 2, RUNS_EACH = 200 };
    pid_t pids[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) { /* no cmocka in the child: the exit status says it all */
            sol_db *db = NULL;
            sol_err err = {0};
            int64_t dev = 0;
            int rc = sol_db_open(path, &db, &err);
            if (!rc) {
                sol_device_info info = {.cores = 2};
                snprintf(info.backend, sizeof info.backend, "cpu");
                snprintf(info.name, sizeof info.name, "Shared CPU");
                rc = sol_db_device(db, &info, &dev, &err);
            }
            char model[32];
            snprintf(model, sizeof model, "writer-%d", w);
            for (int i = 0; !rc && i < RUNS_EACH; i++) { /* one transaction each */
                sol_run_row r = make_run(dev, model, "tg128", i);
                rc = sol_db_run_add(db, &r, &err);
            }
            if (rc)
                fprintf(stderr, "writer %d: %s\n", w, err.msg);
            sol_db_close(db);
            _exit(rc ? 1 : 0);
        }
    }
    for (int w = 0; w < WRITERS; w++) {
        int status = 0;
        assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    sol_db *db = open_ok(path);
    run_list *l = runs_of(db);
    assert_int_equal(l->n, WRITERS * RUNS_EACH);
    int per_writer[WRITERS] = {0};
    for (int i = 0; i < l->n; i++)
        per_writer[l->rows[i].model[7] - '0']++;
    for (int w = 0; w < WRITERS; w++)
        assert_int_equal(per_writer[w], RUNS_EACH);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM device"), 1);
    free(l);
    sol_db_close(db);
}

/* ---- export and import ----------------------------------------------------- */

/* Two devices, probes, runs, trials and bests. */
static void fill(sol_db *db, int64_t *dev_a, int64_t *dev_b)
{
    sol_err err = {0};
    *dev_a = device_ok(db, "cpu", "Test CPU", "");
    *dev_b = device_ok(db, "cuda", "Test GPU", "550.54");
    for (int i = 0; i < 3; i++) {
        sol_probe_row p = {.device_id = i ? *dev_b : *dev_a, .value = 1e10 * (i + 1), .spread = 0.01, .reps = 9,
                           .time = 1714000000 + i};
        snprintf(p.kind, sizeof p.kind, "mem_read_bw");
        snprintf(p.unit, sizeof p.unit, "B/s");
        snprintf(p.method, sizeof p.method, "stream read");
        assert_int_equal(sol_db_probe_add(db, &p, &err), 0);
    }
    for (int i = 0; i < 10; i++) {
        sol_run_row r =
            make_run(i % 2 ? *dev_b : *dev_a, i % 2 ? "gpu-model" : "cpu-model", i % 3 ? "tg128" : "pp512", i);
        run_add_ok(db, &r);
    }
    for (int i = 0; i < 4; i++) {
        char params[32];
        snprintf(params, sizeof params, "{\"tile\":%d}", 16 << i);
        sol_trial_row t = make_trial(*dev_b, params, 1e-3 / (i + 1));
        assert_int_equal(sol_db_trial_add(db, &t, &err), 0);
    }
    sol_best_row b = make_best(*dev_b, "{\"tile\":128}", 2.5e-4, 1714000600);
    assert_int_equal(sol_db_best_set(db, &b, &err), 0);
}

static void test_export_import_round_trip(void **state)
{
    char a_path[256], b_path[256], c_path[256];
    tmp_path(state, "a.db", a_path, sizeof a_path);
    tmp_path(state, "b.db", b_path, sizeof b_path);
    tmp_path(state, "c.db", c_path, sizeof c_path);
    sol_db *a = open_ok(a_path);
    int64_t dev_a, dev_b;
    fill(a, &dev_a, &dev_b);
    sol_err err = {0};
    assert_int_equal(sol_db_export(a, b_path, &err), 0);

    /* The export is one self-contained file at the current version. */
    char side[272];
    snprintf(side, sizeof side, "%s-wal", b_path);
    assert_false(file_exists(side));
    assert_int_equal(raw_int(b_path, "PRAGMA user_version"), sol_db_schema_version());
    blob exported = read_file(b_path);
    assert_int_equal(exported.data[18], 1); /* rollback journal, not WAL */

    /* Never over an existing file. */
    assert_int_equal(sol_db_export(a, b_path, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "already exists");
    assert_same_bytes(&exported, b_path);

    /* B into A: everything is already there. */
    int added = -1;
    assert_int_equal(sol_db_import(a, b_path, &added, &err), 0);
    assert_int_equal(added, 0);
    assert_same_bytes(&exported, b_path); /* attached read-only */

    /* B into an empty C: C's rows equal A's; a second import adds nothing. */
    sol_db *c = open_ok(c_path);
    if (sol_db_import(c, b_path, &added, &err))
        fail_msg("import: %s", err.msg);
    assert_int_equal(added, 3 + 10 + 4 + 1);
    assert_int_equal(sol_db_import(c, b_path, &added, &err), 0);
    assert_int_equal(added, 0);
    run_list *la = runs_of(a), *lc = runs_of(c);
    assert_int_equal(lc->n, la->n);
    for (int i = 0; i < la->n; i++) {
        assert_run_equal(&lc->rows[i], &la->rows[i]);
        assert_int_equal(lc->rows[i].device_id, la->rows[i].device_id); /* same insertion order, same ids */
    }
    assert_int_equal(n_trials(c), 4);
    assert_int_equal(n_bests(c), 1);
    sol_probe_row p;
    assert_int_equal(sol_db_probe_latest(c, dev_b, "mem_read_bw", &p, &err), 0);
    assert_true(p.value == 3e10);
    free(la);
    free(lc);

    /* A newer best in A replaces C's on the next import; an older one does not. */
    sol_best_row newer = make_best(dev_b, "{\"tile\":256}", 2e-4, 1714000700);
    assert_int_equal(sol_db_best_set(a, &newer, &err), 0);
    char d_path[256];
    tmp_path(state, "d.db", d_path, sizeof d_path);
    assert_int_equal(sol_db_export(a, d_path, &err), 0);
    assert_int_equal(sol_db_import(c, d_path, &added, &err), 0);
    assert_int_equal(added, 1);
    sol_db_close(a);
    sol_db_close(c);
    assert_int_equal(raw_int(c_path, "SELECT time FROM best"), 1714000700);
    assert_int_equal(raw_int(c_path, "SELECT count(*) FROM best"), 1);
    free(exported.data);
}

/* Devices are matched by what identifies them, not by id. */
static void test_import_maps_devices(void **state)
{
    char a_path[256], c_path[256];
    tmp_path(state, "a.db", a_path, sizeof a_path);
    tmp_path(state, "c.db", c_path, sizeof c_path);
    sol_db *a = open_ok(a_path), *c = open_ok(c_path);
    int64_t a_cpu = device_ok(a, "cpu", "Test CPU", "");     /* id 1 in A */
    int64_t a_gpu = device_ok(a, "cuda", "Test GPU", "550"); /* id 2 in A */
    int64_t c_gpu = device_ok(c, "cuda", "Test GPU", "550"); /* id 1 in C */
    int64_t c_other = device_ok(c, "cuda", "Test GPU", "560"); /* another driver: another device */
    assert_int_equal(a_cpu, 1);
    assert_int_equal(c_gpu, 1);
    assert_true(c_other != c_gpu);
    sol_run_row r_cpu = make_run(a_cpu, "on-cpu", "tg128", 1), r_gpu = make_run(a_gpu, "on-gpu", "tg128", 2);
    run_add_ok(a, &r_cpu);
    run_add_ok(a, &r_gpu);
    sol_db_close(a);

    sol_err err = {0};
    int added = 0;
    assert_int_equal(sol_db_import(c, a_path, &added, &err), 0);
    assert_int_equal(added, 2);
    int64_t c_cpu = device_ok(c, "cpu", "Test CPU", ""); /* now known to C */
    assert_int_equal(raw_int(c_path, "SELECT count(*) FROM device"), 3);
    run_list *l = runs_of(c);
    assert_int_equal(l->n, 2);
    for (int i = 0; i < 2; i++) {
        if (!strcmp(l->rows[i].model, "on-cpu"))
            assert_int_equal(l->rows[i].device_id, c_cpu);
        else
            assert_int_equal(l->rows[i].device_id, c_gpu);
    }
    free(l);
    sol_db_close(c);
}

/* A version-1 file imports too (no trials or plan hashes in it), and is
 * not modified. */
static void test_import_v1_file(void **state)
{
    char path[256];
    tmp_path(state, "fresh.db", path, sizeof path);
    blob before = read_file(FIXTURE_V1);
    sol_db *db = open_ok(path);
    sol_err err = {0};
    int added = 0;
    if (sol_db_import(db, FIXTURE_V1, &added, &err))
        fail_msg("import: %s", err.msg);
    assert_int_equal(added, 3 + 3);
    assert_int_equal(sol_db_import(db, FIXTURE_V1, &added, &err), 0);
    assert_int_equal(added, 0);
    run_list *l = runs_of(db);
    assert_int_equal(l->n, 3);
    assert_string_equal(l->rows[2].model, "Llama-3-8B");
    assert_string_equal(l->rows[2].plan_hash, "");
    free(l);
    sol_db_close(db);
    assert_same_bytes(&before, FIXTURE_V1);
    free(before.data);
}

static void test_import_refusals(void **state)
{
    char path[256], other[256];
    tmp_path(state, "main.db", path, sizeof path);
    tmp_path(state, "other.db", other, sizeof other);
    sol_db *db = open_ok(path);
    sol_err err = {0};
    int added = 7;

    assert_int_equal(sol_db_import(db, "/nonexistent/sol.db", &added, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "/nonexistent/sol.db");
    assert_int_equal(added, 0);

    assert_int_equal(sol_db_import(db, path, &added, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "itself");

    const char *text = "plain text, long enough to look like something\n";
    write_file(other, text, strlen(text));
    assert_int_equal(sol_db_import(db, other, &added, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, other);
    assert_contains(err.msg, "not a database");
    unlink(other);

    sol_db_close(open_ok(other));
    raw_exec(other, "PRAGMA user_version = 999");
    blob before = read_file(other);
    assert_int_equal(sol_db_import(db, other, &added, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, other);
    assert_contains(err.msg, "999");
    assert_same_bytes(&before, other);
    free(before.data);
    unlink(other);

    /* a sol file that lost a table: the source is named, nothing imported */
    sol_db_close(open_ok(other));
    raw_exec(other, "DROP TABLE trial");
    assert_int_equal(sol_db_import(db, other, &added, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, other);
    assert_contains(err.msg, "no table \"trial\"");
    if (strstr(err.msg, path))
        fail_msg("the message names the target: %s", err.msg);
    unlink(other);

    /* The failed imports left this database usable and empty. */
    run_list *l = runs_of(db);
    assert_int_equal(l->n, 0);
    free(l);
    int64_t dev = device_ok(db, "cpu", "Test CPU", "");
    sol_run_row r = make_run(dev, "m", "tg128", 1);
    run_add_ok(db, &r);
    sol_db_close(db);
}

/* A path too long for a message keeps the reason: its middle is elided
 * (and past SQLite's 511 bytes the reason is that limit). */
static void test_long_path_keeps_reason(void **state)
{
    char dir[256], path[1200];
    tmp_path(state, "", dir, sizeof dir);
    int n = snprintf(path, sizeof path, "%s", dir);
    for (int i = 0; i < 4; i++) { /* four folders of 200 characters, the last a file */
        n += snprintf(path + n, sizeof path - (size_t)n, "/");
        for (int j = 0; j < 200; j++)
            path[n++] = (char)('a' + i);
        path[n] = '\0';
        if (i < 3)
            assert_int_equal(mkdir(path, 0755), 0);
    }
    write_file(path, "not a database, long enough to be read as one: 0123456789abcdef\n", 65);
    sol_db *db = NULL;
    sol_err err = {0};
    assert_int_equal(sol_db_open(path, &db, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "...");
    assert_contains(err.msg, "at most 511 bytes");
    assert_contains(err.msg, "set SOL_DB to a shorter path");
    unlink(path);
    for (int i = 2; i >= 0; i--) {
        *strrchr(path, '/') = '\0';
        rmdir(path);
    }
}

/* ---- keys -------------------------------------------------------------------- */

static void test_trial_unique(void **state)
{
    char path[256];
    tmp_path(state, "trial.db", path, sizeof path);
    sol_db *db = open_ok(path);
    int64_t dev = device_ok(db, "cuda", "Test GPU", "550");
    sol_err err = {0};
    sol_trial_row t = make_trial(dev, "{\"tile\":64}", 1e-3);
    assert_int_equal(sol_db_trial_add(db, &t, &err), 0);
    /* The same configuration again: kept once, the first measurement stays,
     * and -1 tells the tuner it was already measured. */
    t.median_s = 5e-3;
    assert_int_equal(sol_db_trial_add(db, &t, &err), -1);
    assert_int_equal(n_trials(db), 1);
    assert_true(raw_int(path, "SELECT median_s * 1e6 FROM trial") == 1000);
    /* Any input of the key changing makes a new trial. */
    snprintf(t.params_json, sizeof t.params_json, "{\"tile\":128}");
    assert_int_equal(sol_db_trial_add(db, &t, &err), 0);
    snprintf(t.compile_flags, sizeof t.compile_flags, "-O2");
    assert_int_equal(sol_db_trial_add(db, &t, &err), 0);
    assert_int_equal(n_trials(db), 3);
    sol_db_close(db);
}

static void test_best_replaced(void **state)
{
    char path[256];
    tmp_path(state, "best.db", path, sizeof path);
    sol_db *db = open_ok(path);
    int64_t dev = device_ok(db, "cuda", "Test GPU", "550");
    sol_err err = {0};
    sol_best_row b = make_best(dev, "{\"tile\":64}", 1e-3, 100);
    assert_int_equal(sol_db_best_set(db, &b, &err), 0);
    b = make_best(dev, "{\"tile\":128}", 5e-4, 200);
    assert_int_equal(sol_db_best_set(db, &b, &err), 0);
    assert_int_equal(n_bests(db), 1);
    sol_db_close(db);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM best WHERE params_json = '{\"tile\":128}' AND time = 200"), 1);
}

static void test_devices_and_probes(void **state)
{
    char path[256];
    tmp_path(state, "dev.db", path, sizeof path);
    sol_db *db = open_ok(path);
    int64_t a = device_ok(db, "cuda", "Test GPU", "550");
    assert_int_equal(device_ok(db, "cuda", "Test GPU", "550"), a);
    int64_t b = device_ok(db, "cuda", "Test GPU", "555"); /* a driver update is a new device */
    assert_true(b != a);

    sol_err err = {0};
    sol_probe_row p = {.device_id = a, .value = 1, .time = 100};
    snprintf(p.kind, sizeof p.kind, "mem_read_bw");
    assert_int_equal(sol_db_probe_latest(db, a, "mem_read_bw", &p, &err), -1);
    snprintf(p.unit, sizeof p.unit, "B/s");
    p.value = 2e12;
    p.time = 200;
    assert_int_equal(sol_db_probe_add(db, &p, &err), 0);
    p.value = 1e12;
    p.time = 100;
    assert_int_equal(sol_db_probe_add(db, &p, &err), 0);
    sol_probe_row got;
    assert_int_equal(sol_db_probe_latest(db, a, "mem_read_bw", &got, &err), 0);
    assert_true(got.value == 2e12);
    assert_int_equal(got.time, 200);
    assert_int_equal(sol_db_probe_latest(db, b, "mem_read_bw", &got, &err), -1);

    /* Foreign keys are on: a row for an unknown device is refused. */
    sol_run_row r = make_run(999, "m", "tg128", 1);
    assert_int_equal(sol_db_run_add(db, &r, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "FOREIGN KEY");

    /* A callback returning non-zero stops the walk. */
    for (int i = 0; i < 5; i++) {
        r = make_run(a, "m", "tg128", i);
        run_add_ok(db, &r);
    }
    run_list *l = calloc(1, sizeof *l);
    assert_non_null(l);
    l->n = (int)(sizeof l->rows / sizeof l->rows[0]) - 2; /* room for two */
    assert_int_equal(sol_db_runs(db, collect_run, l, &err), 0);
    assert_int_equal(l->n, (int)(sizeof l->rows / sizeof l->rows[0]));
    free(l);
    sol_db_close(db);
}

/* Per-op times (schema 3): stored with their run in one transaction, read
 * back per class over the latest runs, and imported once by their run's key. */
static sol_op_time_row make_op_time(const char *kind, const char *dtype, int size_class, double roofline_s,
                                    double measured_s)
{
    sol_op_time_row o = {.rows = 1, .size_class = size_class, .bytes = 1e6, .flops = 2e6, .roofline_s = roofline_s,
                         .measured_s = measured_s, .count = 10};
    snprintf(o.kind, sizeof o.kind, "%s", kind);
    snprintf(o.dtype, sizeof o.dtype, "%s", dtype);
    return o;
}

typedef struct op_sums {
    int n;
    double matmul_measured_s, matmul_roofline_s;
    long long matmul_count;
} op_sums;

static int sum_op(void *user, const sol_op_time_row *row)
{
    op_sums *s = user;
    s->n++;
    if (!strcmp(row->kind, "matmul")) {
        s->matmul_measured_s += row->measured_s;
        s->matmul_roofline_s += row->roofline_s;
        s->matmul_count += row->count;
    }
    return 0;
}

static void test_op_times(void **state)
{
    char a_path[256], b_path[256], c_path[256];
    tmp_path(state, "a.db", a_path, sizeof a_path);
    tmp_path(state, "b.db", b_path, sizeof b_path);
    tmp_path(state, "c.db", c_path, sizeof c_path);
    sol_db *a = open_ok(a_path);
    sol_err err = {0};
    int64_t dev = device_ok(a, "cpu", "Test CPU", "");
    sol_op_time_row ops[3] = {make_op_time("matmul", "q8_0", 20, 1e-3, 2e-3),
                              make_op_time("attention", "f16", 12, 1e-5, 8e-5),
                              make_op_time("overhead", "", 0, 0, 1e-4)};
    int64_t run_ids[2];
    for (int i = 0; i < 2; i++) { /* the second run is newer and twice as slow on matmuls */
        sol_run_row r = make_run(dev, "m", "tg32", 4 * i); /* threads 1 both */
        snprintf(r.backend, sizeof r.backend, "cpu.q8");
        ops[0].measured_s = 2e-3 * (i + 1);
        if (sol_db_run_add_ops(a, &r, ops, 3, &run_ids[i], &err))
            fail_msg("run_add_ops: %s", err.msg);
    }
    assert_true(run_ids[1] > run_ids[0]);
    assert_int_equal(raw_int(a_path, "SELECT count(*) FROM op_time"), 6);

    /* per class: the latest run only, then both */
    op_sums one = {0}, both = {0};
    sol_op_time_span span = {0};
    assert_int_equal(sol_db_op_times(a, dev, "cpu.q8", 1, 1, sum_op, &one, &span, &err), 0);
    assert_int_equal(one.n, 3);
    assert_true(one.matmul_measured_s == 4e-3 && one.matmul_count == 10);
    assert_int_equal(span.runs, 1);
    assert_int_equal(span.last_time, 1714000004);
    assert_int_equal(sol_db_op_times(a, dev, "cpu.q8", 1, 5, sum_op, &both, &span, &err), 0);
    assert_true(both.matmul_measured_s == 6e-3 && both.matmul_roofline_s == 2e-3 && both.matmul_count == 20);
    assert_int_equal(span.runs, 2);
    assert_int_equal(span.first_time, 1714000000);
    int threads = 0;
    assert_int_equal(sol_db_op_time_threads(a, dev, "cpu.q8", &threads, &err), 0);
    assert_int_equal(threads, 1);
    /* another backend or thread count has nothing */
    op_sums none = {0};
    assert_int_equal(sol_db_op_times(a, dev, "cpu.f32", 1, 5, sum_op, &none, &span, &err), 0);
    assert_int_equal(none.n, 0);
    assert_int_equal(span.runs, 0);
    assert_int_equal(sol_db_op_time_threads(a, dev, "cpu.f32", &threads, &err), -1);

    /* a class twice in one run breaks the key: nothing of that run is kept */
    sol_op_time_row twice[2] = {ops[0], ops[0]};
    sol_run_row r = make_run(dev, "m", "tg32", 8);
    assert_int_equal(sol_db_run_add_ops(a, &r, twice, 2, NULL, &err), SOL_ERR_RUNTIME);
    assert_int_equal(raw_int(a_path, "SELECT count(*) FROM run"), 2);

    /* export, import into an empty file twice: the rows once, tied to their runs */
    assert_int_equal(sol_db_export(a, b_path, &err), 0);
    sol_db_close(a);
    sol_db *c = open_ok(c_path);
    int added = -1;
    if (sol_db_import(c, b_path, &added, &err))
        fail_msg("import: %s", err.msg);
    assert_int_equal(added, 2 + 6);
    assert_int_equal(sol_db_import(c, b_path, &added, &err), 0);
    assert_int_equal(added, 0);
    int64_t c_dev = device_ok(c, "cpu", "Test CPU", "");
    op_sums imported = {0};
    assert_int_equal(sol_db_op_times(c, c_dev, "cpu.q8", 1, 5, sum_op, &imported, &span, &err), 0);
    assert_true(imported.matmul_measured_s == 6e-3 && imported.n == 3);
    sol_db_close(c);
    assert_int_equal(raw_int(c_path, "SELECT count(*) FROM op_time o JOIN run r ON r.id = o.run_id "
                                     "WHERE r.time = o.time AND r.threads = o.threads"), 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path),
        cmocka_unit_test_setup_teardown(test_create_from_nothing, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1_fixture, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_migration_is_atomic, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_negative_version_refused, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_long_path_keeps_reason, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_text_file_refused, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file_refused, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_foreign_sqlite_refused, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_readonly_file, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_export_import_round_trip, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_import_maps_devices, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_import_v1_file, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_import_refusals, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_trial_unique, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_best_replaced, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_devices_and_probes, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_op_times, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests_name("db", tests, NULL, NULL);
}
