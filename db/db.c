/* The results database (see db.h): opening, forward migrations, and every
 * query sol runs. The only SQL in sol lives here and in db/migrations/. */
#include "db/db.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "util/embedded.h"
#include "util/quote.h"

/* db/migrations/NNN-*.sql in order, compiled in by tools/embed.c: entry i
 * takes the schema from version i to i + 1 and ends by setting user_version. */
extern const sol_embedded_file sol_db_migrations[];

#define SOL_DB_APPLICATION_ID 0x736f6c00 /* "sol\0", set by migration 001 */
#define SOL_DB_BUSY_TIMEOUT_MS 5000

struct sol_db {
    sqlite3 *conn;
    int readonly; /* the file is not writable: reads work, writes are refused */
    char path[PATH_MAX];
    char shown[200]; /* the path as messages show it (a long one elided) */
    const char *name; /* shown, or path when it is short */
};

int sol_db_schema_version(void) { return sol_embedded_count(sol_db_migrations); }

int sol_db_readonly(const sol_db *db) { return db->readonly; }
const char *sol_db_name(const sol_db *db) { return db->name; }

const char *sol_db_path(char *buf, int cap)
{
    const char *env = getenv("SOL_DB");
    int n;
    if (env && env[0])
        n = snprintf(buf, (size_t)cap, "%s", env);
    else if ((env = getenv("XDG_CACHE_HOME")) && env[0] == '/') /* the spec ignores relative values */
        n = snprintf(buf, (size_t)cap, "%s/sol/sol.db", env);
    else {
        const char *home = getenv("HOME");
        if (!home || !home[0]) {
            struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : NULL;
        }
        if (!home || !home[0]) {
            if (cap > 0)
                buf[0] = '\0';
            return NULL;
        }
        n = snprintf(buf, (size_t)cap, "%s/.cache/sol/sol.db", home);
    }
    if (n < 0 || n >= cap) {
        if (cap > 0)
            buf[0] = '\0';
        return NULL;
    }
    return buf;
}

/* ---- errors ----------------------------------------------------------------- */

/* Whether the file system holding path has less than a few SQLite pages
 * left: a full disk shows up as SQLITE_FULL when a write fails, but as an
 * I/O error when the WAL's shared-memory file cannot be extended. */
static int disk_full(const char *path)
{
    struct statvfs fs;
    return statvfs(path, &fs) == 0 && (uint64_t)fs.f_bavail * fs.f_frsize < 64 * 1024;
}

/* "PATH: what: sqlite's message", said plainly for a file that is not a
 * database or is damaged, with a hint for the codes a user can act on. */
static int fail_sqlite_in(const sol_db *db, const char *file, sol_err *err, const char *what)
{
    const char *msg = sqlite3_errmsg(db->conn);
    int code = sqlite3_errcode(db->conn) & 0xff;
    if (code == SQLITE_FULL || (code == SQLITE_IOERR && disk_full(file)))
        return sol_fail(err, SOL_ERR_RUNTIME,
                        "%s: %s: %s (the disk holding it is full; what was stored before is kept)", file, what,
                        msg);
    switch (code) {
    case SQLITE_NOTADB:
        return sol_fail(err, SOL_ERR_RUNTIME, "%s is not a SQLite database (%s: %s); sol leaves it as it is", file,
                        what, msg);
    case SQLITE_CORRUPT:
        return sol_fail(err, SOL_ERR_RUNTIME, "%s is corrupt (%s: %s); sol leaves it as it is", file, what, msg);
    case SQLITE_READONLY:
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: %s: %s (the file or its directory is read-only)", file, what, msg);
    case SQLITE_BUSY:
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: %s: %s (another process held the lock for more than %d s)", file,
                        what, msg, SOL_DB_BUSY_TIMEOUT_MS / 1000);
    default: return sol_fail(err, SOL_ERR_RUNTIME, "%s: %s: %s", file, what, msg);
    }
}

static int fail_sqlite(const sol_db *db, sol_err *err, const char *what)
{
    return fail_sqlite_in(db, db->name, err, what);
}

static int fail_readonly(const sol_db *db, sol_err *err, const char *what)
{
    return sol_fail(err, SOL_ERR_RUNTIME, "%s: %s: the file is read-only (opened for reading only)", db->name,
                    what);
}

/* ---- statements ------------------------------------------------------------- */

static int prepare(sol_db *db, const char *sql, sqlite3_stmt **st, const char *what, sol_err *err)
{
    if (sqlite3_prepare_v2(db->conn, sql, -1, st, NULL) != SQLITE_OK)
        return fail_sqlite(db, err, what);
    return SOL_OK;
}

/* One step: *has_row is 1 on a row, 0 when done; anything else is an error. */
static int step(sol_db *db, sqlite3_stmt *st, int *has_row, const char *what, sol_err *err)
{
    int rc = sqlite3_step(st);
    *has_row = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return SOL_OK;
    return fail_sqlite(db, err, what);
}

/* Runs a statement that returns no rows. */
static int step_done(sol_db *db, sqlite3_stmt *st, const char *what, sol_err *err)
{
    int has_row;
    int rc = step(db, st, &has_row, what, err);
    if (!rc && has_row)
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: %s: unexpected result row", db->name, what);
    return rc;
}

/* Statements without values (pragmas, transactions, migrations). */
static int exec_sql(sol_db *db, const char *sql, const char *what, sol_err *err)
{
    char *msg = NULL;
    int rc = SOL_OK;
    if (sqlite3_exec(db->conn, sql, NULL, NULL, &msg) != SQLITE_OK)
        rc = fail_sqlite(db, err, what);
    sqlite3_free(msg);
    return rc;
}

/* One-row, one-column queries (pragmas); errors name file, which is this
 * database or one being imported. */
static int query_int(sol_db *db, const char *file, const char *sql, int64_t *out, const char *what, sol_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = SOL_OK, step_rc;
    if (sqlite3_prepare_v2(db->conn, sql, -1, &st, NULL) != SQLITE_OK ||
        ((step_rc = sqlite3_step(st)) != SQLITE_ROW && step_rc != SQLITE_DONE)) {
        rc = fail_sqlite_in(db, file, err, what);
        goto exit;
    }
    int has_row = step_rc == SQLITE_ROW;
    *out = has_row ? sqlite3_column_int64(st, 0) : 0;
exit:
    sqlite3_finalize(st);
    return rc;
}

static int query_text(sol_db *db, const char *file, const char *sql, char *out, size_t cap, const char *what,
                      sol_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = SOL_OK, step_rc;
    if (sqlite3_prepare_v2(db->conn, sql, -1, &st, NULL) != SQLITE_OK ||
        ((step_rc = sqlite3_step(st)) != SQLITE_ROW && step_rc != SQLITE_DONE)) {
        rc = fail_sqlite_in(db, file, err, what);
        goto exit;
    }
    int has_row = step_rc == SQLITE_ROW;
    const unsigned char *text = has_row ? sqlite3_column_text(st, 0) : NULL;
    snprintf(out, cap, "%s", text ? (const char *)text : "");
exit:
    sqlite3_finalize(st);
    return rc;
}

/* Binds parameters 1, 2, ... in order; the first failure sticks and the
 * count is checked against the statement's, so lists cannot drift apart. */
typedef struct binder {
    sqlite3_stmt *st;
    int index, rc;
} binder;

static void bind_text(binder *b, const char *text, size_t cap)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_text(b->st, ++b->index, text, (int)strnlen(text, cap), SQLITE_TRANSIENT);
}
#define BIND_TEXT(b, field) bind_text((b), (field), sizeof(field))

static void bind_int64(binder *b, int64_t v)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_int64(b->st, ++b->index, v);
}

static void bind_double(binder *b, double v)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_double(b->st, ++b->index, v);
}

static int bind_check(sol_db *db, const binder *b, const char *what, sol_err *err)
{
    if (b->rc != SQLITE_OK)
        return fail_sqlite(db, err, what);
    if (b->index != sqlite3_bind_parameter_count(b->st))
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: %s: bound %d of %d parameters (a bug in db.c)", db->name, what,
                        b->index, sqlite3_bind_parameter_count(b->st));
    return SOL_OK;
}

/* Reads columns 0, 1, ... in order; text is truncated to the field. */
typedef struct reader {
    sqlite3_stmt *st;
    int col;
} reader;

static void col_text(reader *r, char *out, size_t cap)
{
    const unsigned char *text = sqlite3_column_text(r->st, r->col++);
    snprintf(out, cap, "%s", text ? (const char *)text : "");
}
#define COL_TEXT(r, field) col_text((r), (field), sizeof(field))

static int64_t col_int64(reader *r) { return sqlite3_column_int64(r->st, r->col++); }
static int col_int(reader *r) { return sqlite3_column_int(r->st, r->col++); }
static double col_double(reader *r) { return sqlite3_column_double(r->st, r->col++); }

/* ---- opening ---------------------------------------------------------------- */

static int make_parent_dirs(const char *path, sol_err *err)
{
    char dir[PATH_MAX], shown[200]; /* shown: dir in a message, a long one elided */
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return SOL_OK;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return sol_fail(err, SOL_ERR_RUNTIME, "cannot create directory %s: %s", sol_elide(dir, shown, sizeof shown),
                            strerror(errno));
        *p = c;
        if (!c)
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return sol_fail(err, SOL_ERR_RUNTIME, "%s is not a directory", sol_elide(dir, shown, sizeof shown));
    return SOL_OK;
}

/* The checks run on this file ("main") and on a file being imported. */
typedef struct schema_sql {
    const char *user_version, *application_id, *quick_check, *count_tables;
} schema_sql;

static const schema_sql main_schema = {
    "PRAGMA main.user_version", "PRAGMA main.application_id", "PRAGMA main.quick_check(1)",
    "SELECT count(*) FROM main.sqlite_master WHERE name NOT LIKE 'sqlite_%'"};
static const schema_sql import_schema = {
    "PRAGMA sol_import.user_version", "PRAGMA sol_import.application_id", "PRAGMA sol_import.quick_check(1)",
    "SELECT count(*) FROM sol_import.sqlite_master WHERE name NOT LIKE 'sqlite_%'"};

/* The first read of a file: a non-SQLite or damaged file fails here. */
static int read_header(sol_db *db, const schema_sql *s, const char *file, int64_t *version, int64_t *app_id,
                       sol_err *err)
{
    int rc = query_int(db, file, s->user_version, version, "reading the schema version", err);
    if (!rc)
        rc = query_int(db, file, s->application_id, app_id, "reading the application id", err);
    return rc;
}

/* Every page is read once (PRAGMA quick_check): a damaged file is refused
 * before anything is written to it. */
static int check_integrity(sol_db *db, const schema_sql *s, const char *file, sol_err *err)
{
    char result[256];
    int rc = query_text(db, file, s->quick_check, result, sizeof result, "checking the file", err);
    if (rc || !strcmp(result, "ok"))
        return rc;
    /* One line: drop "*** in database main ***" and fold the newlines. */
    const char *finding = result;
    if (!strncmp(finding, "*** in database ", 16) && strstr(finding + 16, "***"))
        finding = strstr(finding + 16, "***") + 3;
    while (*finding == ' ' || *finding == '\n')
        finding++;
    for (char *p = result; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return sol_fail(err, SOL_ERR_RUNTIME, "%s is corrupt (quick_check: %s); sol leaves it as it is", file, finding);
}

/* Refuses what this sol cannot use: a newer schema, another program's file. */
static int check_version(sol_db *db, const schema_sql *s, const char *file, int64_t version, int64_t app_id,
                         sol_err *err)
{
    int current = sol_db_schema_version();
    if (version < 0) /* no sol writes one; it would index the migrations backwards */
        return sol_fail(err, SOL_ERR_RUNTIME,
                        "%s has schema version %lld, which no sol writes: not a sol database (the file was not "
                        "changed)",
                        file, (long long)version);
    if (version > current)
        return sol_fail(err, SOL_ERR_RUNTIME,
                        "%s has schema version %lld, newer than this sol's %d: use a newer sol (the file was "
                        "not changed)",
                        file, (long long)version, current);
    if (app_id != 0 && app_id != SOL_DB_APPLICATION_ID)
        return sol_fail(err, SOL_ERR_RUNTIME,
                        "%s is a SQLite database of another program (application_id 0x%08llx), not sol's", file,
                        (unsigned long long)(uint32_t)app_id);
    if (version == 0) { /* an empty file is a new database; tables without a version are someone else's */
        int64_t tables = 0;
        int rc = query_int(db, file, s->count_tables, &tables, "reading the schema", err);
        if (rc)
            return rc;
        if (tables)
            return sol_fail(err, SOL_ERR_RUNTIME,
                            "%s is a SQLite database without a sol schema version (%lld tables), not sol's", file,
                            (long long)tables);
    }
    return SOL_OK;
}

/* Switching needs the only lock on the file. SQLite does not wait for it
 * where waiting could deadlock (two new processes at once), so this waits
 * here, up to the busy timeout. */
static int set_wal(sol_db *db, sol_err *err)
{
    char mode[32];
    int rc = query_text(db, db->name, "PRAGMA journal_mode", mode, sizeof mode, "reading the journal mode", err);
    if (rc || !strcmp(mode, "wal"))
        return rc;
    for (int waited_ms = 0;; waited_ms += 10) {
        rc = query_text(db, db->name, "PRAGMA journal_mode = WAL", mode, sizeof mode, "switching to WAL mode", err);
        if (!rc || (sqlite3_errcode(db->conn) & 0xff) != SQLITE_BUSY || waited_ms >= SOL_DB_BUSY_TIMEOUT_MS)
            break;
        sqlite3_sleep(10);
    }
    if (!rc && strcmp(mode, "wal"))
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: switching to WAL mode: the journal mode stayed \"%s\"", db->name,
                      mode);
    return rc;
}

/* Runs every migration past the file's version in one transaction; the
 * version is read again under the write lock, so two processes opening a
 * new file at once migrate it once. */
static int migrate(sol_db *db, sol_err *err)
{
    int current = sol_db_schema_version(), in_tx = 0;
    int64_t version = 0;
    char what[96];
    int rc = exec_sql(db, "BEGIN IMMEDIATE", "starting the migration", err);
    if (rc)
        goto exit;
    in_tx = 1;
    if ((rc = query_int(db, db->name, "PRAGMA user_version", &version, "reading the schema version", err)))
        goto exit;
    if (version < 0 || version > current) { /* changed since check_file read it */
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: schema version %lld changed under this sol; nothing was migrated",
                      db->name, (long long)version);
        goto exit;
    }
    for (int v = (int)version; v < current; v++) {
        if (atoi(sol_db_migrations[v].name) != v + 1) {
            rc = sol_fail(err, SOL_ERR_RUNTIME, "migration %s is out of order (a bug in db/migrations/)",
                          sol_db_migrations[v].name);
            goto exit;
        }
        snprintf(what, sizeof what, "migrating from schema version %d to %d", v, v + 1);
        if ((rc = exec_sql(db, sol_db_migrations[v].text, what, err)))
            goto exit;
    }
    if ((rc = query_int(db, db->name, "PRAGMA user_version", &version, "reading the schema version", err)))
        goto exit;
    if (version != current) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: migrations ended at version %lld, not %d (a bug in db/migrations/)",
                      db->name, (long long)version, current);
        goto exit;
    }
    if ((rc = exec_sql(db, "COMMIT", "committing the migration", err)))
        goto exit;
    in_tx = 0;
exit:
    if (in_tx) /* the first error is the one reported */
        sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Nothing is written before the file is known to be ours, not newer and not
 * damaged. One read transaction: a process migrating the file at the same
 * moment is seen whole or not at all. */
static int check_file(sol_db *db, int64_t *version, sol_err *err)
{
    int64_t app_id = 0;
    int in_tx = 0;
    int rc = exec_sql(db, "BEGIN", "starting to read", err);
    if (rc)
        goto exit;
    in_tx = 1;
    if ((rc = read_header(db, &main_schema, db->name, version, &app_id, err))) {
        int code = sqlite3_errcode(db->conn) & 0xff;
        if (db->readonly && (code == SQLITE_READONLY || code == SQLITE_CANTOPEN))
            rc = sol_fail(err, SOL_ERR_RUNTIME,
                          "%s is read-only and in WAL mode: SQLite must create %s-shm beside it to read it, and "
                          "cannot (%s); make the file or its directory writable",
                          db->name, db->name, sqlite3_errmsg(db->conn));
        goto exit;
    }
    if ((rc = check_version(db, &main_schema, db->name, *version, app_id, err)) ||
        (rc = check_integrity(db, &main_schema, db->name, err)) ||
        (rc = exec_sql(db, "COMMIT", "finishing the checks", err)))
        goto exit;
    in_tx = 0;
exit:
    if (in_tx) /* the first error is the one reported */
        sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int sol_db_open(const char *path, sol_db **out, sol_err *err)
{
    char resolved[PATH_MAX];
    sol_db *db = NULL;
    int64_t version = 0;
    int rc = SOL_OK, current = sol_db_schema_version();
    *out = NULL;
    if (!path && !(path = sol_db_path(resolved, sizeof resolved))) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "cannot place the database: set SOL_DB or HOME");
        goto exit;
    }
    if (!(db = calloc(1, sizeof *db))) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: out of memory", path);
        goto exit;
    }
    if (!path[0] || strlen(path) >= sizeof db->path) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "database path \"%.64s\" is empty or too long", path);
        goto exit;
    }
    memcpy(db->path, path, strlen(path) + 1);
    db->name = sol_elide(db->path, db->shown, sizeof db->shown);

    struct stat st;
    int exists = stat(path, &st) == 0;
    if (!exists && errno != ENOENT) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "cannot open %s: %s", db->name, strerror(errno));
        goto exit;
    }
    if (exists && !S_ISREG(st.st_mode)) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s is not a regular file", db->name);
        goto exit;
    }
    if (exists && access(path, R_OK) != 0) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "cannot read %s: %s", db->name, strerror(errno));
        goto exit;
    }
    if (strlen(path) >= 512) { /* SQLITE_MAX_PATHNAME: sqlite would say only "unable to open" */
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: SQLite opens paths of at most 511 bytes, this one has %zu; set SOL_DB "
                      "to a shorter path", db->name, strlen(path));
        goto exit;
    }
    if (!exists && (rc = make_parent_dirs(path, err)))
        goto exit;
    db->readonly = exists && access(path, W_OK) != 0;
    /* URI names are on so import can attach its source with mode=ro. */
    int flags = (db->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_URI;
    if (sqlite3_open_v2(path, &db->conn, flags, NULL) != SQLITE_OK) {
        rc = db->conn ? fail_sqlite(db, err, "opening")
                      : sol_fail(err, SOL_ERR_RUNTIME, "%s: opening: out of memory", db->name);
        goto exit;
    }
    if (sqlite3_busy_timeout(db->conn, SOL_DB_BUSY_TIMEOUT_MS) != SQLITE_OK) {
        rc = fail_sqlite(db, err, "setting the busy timeout");
        goto exit;
    }
    if ((rc = exec_sql(db, "PRAGMA foreign_keys = ON", "enabling foreign keys", err)))
        goto exit;
    if ((rc = check_file(db, &version, err)))
        goto exit;
    if (db->readonly) {
        if (version < current)
            rc = sol_fail(err, SOL_ERR_RUNTIME,
                          "%s is read-only and has schema version %lld; this sol needs version %d: make it "
                          "writable once so it can be migrated",
                          path, (long long)version, current);
        goto exit;
    }
    /* WAL: readers never block the writer; NORMAL sync is durable against
     * crashes and loses at most the last commit on power loss. */
    if ((rc = set_wal(db, err)) || (rc = exec_sql(db, "PRAGMA synchronous = NORMAL", "setting synchronous", err)))
        goto exit;
    if (version < current && (rc = migrate(db, err)))
        goto exit;
exit:
    if (rc) {
        sol_db_close(db);
        db = NULL;
    }
    *out = db;
    return rc;
}

void sol_db_close(sol_db *db)
{
    if (!db)
        return;
    sqlite3_close(db->conn); /* every statement is finalized where it was made */
    free(db);
}

/* ---- devices and probes ----------------------------------------------------- */

int sol_db_device(sol_db *db, const sol_device_info *dev, int64_t *id, sol_err *err)
{
    static const char *const sql =
        "INSERT INTO device (backend, name, uuid, cc, driver, runtime, cores, l1_bytes, l2_bytes, l3_bytes, "
        "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (backend, name, uuid, cc, driver, runtime, cores) DO UPDATE SET "
        "l1_bytes = excluded.l1_bytes, l2_bytes = excluded.l2_bytes, l3_bytes = excluded.l3_bytes, "
        "last_seen = max(last_seen, excluded.last_seen) "
        "RETURNING id";
    /* A read-only file can still name a device it knows. */
    static const char *const find_sql = "SELECT id FROM device WHERE backend = ? AND name = ? AND uuid = ? AND "
                                        "cc = ? AND driver = ? AND runtime = ? AND cores = ?";
    const char *what = "recording the device";
    sqlite3_stmt *st = NULL;
    int has_row = 0, rc = SOL_OK;
    if ((rc = prepare(db, db->readonly ? find_sql : sql, &st, what, err)))
        goto exit;
    int64_t now = (int64_t)time(NULL);
    binder b = {st, 0, SQLITE_OK};
    BIND_TEXT(&b, dev->backend);
    BIND_TEXT(&b, dev->name);
    BIND_TEXT(&b, dev->uuid);
    BIND_TEXT(&b, dev->cc);
    BIND_TEXT(&b, dev->driver);
    BIND_TEXT(&b, dev->runtime);
    bind_int64(&b, dev->cores);
    if (!db->readonly) {
        bind_int64(&b, dev->l1_bytes);
        bind_int64(&b, dev->l2_bytes);
        bind_int64(&b, dev->l3_bytes);
        bind_int64(&b, now);
        bind_int64(&b, now);
    }
    if ((rc = bind_check(db, &b, what, err)) || (rc = step(db, st, &has_row, what, err)))
        goto exit;
    if (!has_row) {
        rc = db->readonly ? fail_readonly(db, err, "recording a new device")
                          : sol_fail(err, SOL_ERR_RUNTIME, "%s: %s: no id came back", db->name, what);
        goto exit;
    }
    *id = sqlite3_column_int64(st, 0);
    /* RETURNING's statement is only complete once stepped to the end. */
    if ((rc = step(db, st, &has_row, what, err)))
        goto exit;
exit:
    sqlite3_finalize(st);
    return rc;
}

int sol_db_device_find(sol_db *db, const sol_device_info *dev, int64_t *id, sol_err *err)
{
    static const char *const sql = "SELECT id FROM device WHERE backend = ? AND name = ? AND uuid = ? AND "
                                   "cc = ? AND driver = ? AND runtime = ? AND cores = ?";
    const char *what = "finding the device";
    sqlite3_stmt *st = NULL;
    int has_row = 0;
    int rc = prepare(db, sql, &st, what, err);
    if (rc)
        goto exit;
    binder b = {st, 0, SQLITE_OK};
    BIND_TEXT(&b, dev->backend);
    BIND_TEXT(&b, dev->name);
    BIND_TEXT(&b, dev->uuid);
    BIND_TEXT(&b, dev->cc);
    BIND_TEXT(&b, dev->driver);
    BIND_TEXT(&b, dev->runtime);
    bind_int64(&b, dev->cores);
    if ((rc = bind_check(db, &b, what, err)) || (rc = step(db, st, &has_row, what, err)))
        goto exit;
    if (!has_row)
        rc = -1;
    else
        *id = sqlite3_column_int64(st, 0);
exit:
    sqlite3_finalize(st);
    return rc;
}

int sol_db_probe_add(sol_db *db, const sol_probe_row *row, sol_err *err)
{
    static const char *const sql =
        "INSERT INTO probe (device_id, kind, value, unit, method, spread, reps, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    const char *what = "adding a probe";
    sqlite3_stmt *st = NULL;
    int rc = SOL_OK;
    if (db->readonly) {
        rc = fail_readonly(db, err, what);
        goto exit;
    }
    if ((rc = prepare(db, sql, &st, what, err)))
        goto exit;
    binder b = {st, 0, SQLITE_OK};
    bind_int64(&b, row->device_id);
    BIND_TEXT(&b, row->kind);
    bind_double(&b, row->value);
    BIND_TEXT(&b, row->unit);
    BIND_TEXT(&b, row->method);
    bind_double(&b, row->spread);
    bind_int64(&b, row->reps);
    bind_int64(&b, row->time);
    if ((rc = bind_check(db, &b, what, err)))
        goto exit;
    rc = step_done(db, st, what, err);
exit:
    sqlite3_finalize(st);
    return rc;
}

int sol_db_probe_latest(sol_db *db, int64_t device_id, const char *kind, sol_probe_row *out, sol_err *err)
{
    static const char *const sql = "SELECT device_id, kind, value, unit, method, spread, reps, time FROM probe "
                                   "WHERE device_id = ? AND kind = ? ORDER BY time DESC, id DESC LIMIT 1";
    const char *what = "reading the latest probe";
    sqlite3_stmt *st = NULL;
    int has_row = 0;
    int rc = prepare(db, sql, &st, what, err);
    if (rc)
        goto exit;
    binder b = {st, 0, SQLITE_OK};
    bind_int64(&b, device_id);
    bind_text(&b, kind, strlen(kind));
    if ((rc = bind_check(db, &b, what, err)) || (rc = step(db, st, &has_row, what, err)))
        goto exit;
    if (!has_row) {
        rc = -1;
        goto exit;
    }
    memset(out, 0, sizeof *out);
    reader r = {st, 0};
    out->device_id = col_int64(&r);
    COL_TEXT(&r, out->kind);
    out->value = col_double(&r);
    COL_TEXT(&r, out->unit);
    COL_TEXT(&r, out->method);
    out->spread = col_double(&r);
    out->reps = col_int(&r);
    out->time = col_int64(&r);
exit:
    sqlite3_finalize(st);
    return rc;
}

/* ---- runs ------------------------------------------------------------------- */

#define RUN_COLUMNS                                                                                     \
    "device_id, model, model_hash, plan_hash, kv_scheme, wtype, kvtype, backend, test, threads, "       \
    "n_prompt, n_gen, reps, tokens_per_s, tokens_per_s_stddev, achieved_gbs, sol_tokens_per_s, "        \
    "sol_percent, sol_version, git_commit, time"

int sol_db_run_add(sol_db *db, const sol_run_row *row, sol_err *err)
{
    static const char *const sql =
        "INSERT INTO run (" RUN_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    const char *what = "adding a run";
    sqlite3_stmt *st = NULL;
    int rc = SOL_OK;
    if (db->readonly) {
        rc = fail_readonly(db, err, what);
        goto exit;
    }
    if ((rc = prepare(db, sql, &st, what, err)))
        goto exit;
    binder b = {st, 0, SQLITE_OK};
    bind_int64(&b, row->device_id);
    BIND_TEXT(&b, row->model);
    BIND_TEXT(&b, row->model_hash);
    BIND_TEXT(&b, row->plan_hash);
    BIND_TEXT(&b, row->kv_scheme);
    BIND_TEXT(&b, row->wtype);
    BIND_TEXT(&b, row->kvtype);
    BIND_TEXT(&b, row->backend);
    BIND_TEXT(&b, row->test);
    bind_int64(&b, row->threads);
    bind_int64(&b, row->n_prompt);
    bind_int64(&b, row->n_gen);
    bind_int64(&b, row->reps);
    bind_double(&b, row->tokens_per_s);
    bind_double(&b, row->tokens_per_s_stddev);
    bind_double(&b, row->achieved_gbs);
    bind_double(&b, row->sol_tokens_per_s);
    bind_double(&b, row->sol_percent);
    BIND_TEXT(&b, row->sol_version);
    BIND_TEXT(&b, row->git_commit);
    bind_int64(&b, row->time);
    if ((rc = bind_check(db, &b, what, err)))
        goto exit;
    rc = step_done(db, st, what, err);
exit:
    sqlite3_finalize(st);
    return rc;
}

int sol_db_runs(sol_db *db, int (*fn)(void *user, const sol_run_row *row), void *user, sol_err *err)
{
    static const char *const sql = "SELECT " RUN_COLUMNS " FROM run ORDER BY time, id";
    const char *what = "reading runs";
    sqlite3_stmt *st = NULL;
    int has_row = 0;
    int rc = prepare(db, sql, &st, what, err);
    if (rc)
        goto exit;
    while (!(rc = step(db, st, &has_row, what, err)) && has_row) {
        sol_run_row row = {0};
        reader r = {st, 0};
        row.device_id = col_int64(&r);
        COL_TEXT(&r, row.model);
        COL_TEXT(&r, row.model_hash);
        COL_TEXT(&r, row.plan_hash);
        COL_TEXT(&r, row.kv_scheme);
        COL_TEXT(&r, row.wtype);
        COL_TEXT(&r, row.kvtype);
        COL_TEXT(&r, row.backend);
        COL_TEXT(&r, row.test);
        row.threads = col_int(&r);
        row.n_prompt = col_int(&r);
        row.n_gen = col_int(&r);
        row.reps = col_int(&r);
        row.tokens_per_s = col_double(&r);
        row.tokens_per_s_stddev = col_double(&r);
        row.achieved_gbs = col_double(&r);
        row.sol_tokens_per_s = col_double(&r);
        row.sol_percent = col_double(&r);
        COL_TEXT(&r, row.sol_version);
        COL_TEXT(&r, row.git_commit);
        row.time = col_int64(&r);
        if (fn(user, &row))
            break;
    }
exit:
    sqlite3_finalize(st);
    return rc;
}

/* ---- per-op times ----------------------------------------------------------- */

#define OP_TIME_COLUMNS                                                                                 \
    "device_id, run_id, backend, threads, kind, dtype, rows, size_class, bytes, flops, roofline_s, "    \
    "measured_s, count, time"

static int op_time_add(sol_db *db, const sol_op_time_row *row, sol_err *err)
{
    static const char *const sql =
        "INSERT INTO op_time (" OP_TIME_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    const char *what = "adding per-op times";
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, sql, &st, what, err);
    if (rc)
        goto exit;
    binder b = {st, 0, SQLITE_OK};
    bind_int64(&b, row->device_id);
    bind_int64(&b, row->run_id);
    BIND_TEXT(&b, row->backend);
    bind_int64(&b, row->threads);
    BIND_TEXT(&b, row->kind);
    BIND_TEXT(&b, row->dtype);
    bind_int64(&b, row->rows);
    bind_int64(&b, row->size_class);
    bind_double(&b, row->bytes);
    bind_double(&b, row->flops);
    bind_double(&b, row->roofline_s);
    bind_double(&b, row->measured_s);
    bind_int64(&b, row->count);
    bind_int64(&b, row->time);
    if ((rc = bind_check(db, &b, what, err)))
        goto exit;
    rc = step_done(db, st, what, err);
exit:
    sqlite3_finalize(st);
    return rc;
}

int sol_db_run_add_ops(sol_db *db, const sol_run_row *row, const sol_op_time_row *ops, int n_ops, int64_t *run_id,
                       sol_err *err)
{
    int in_tx = 0, rc = SOL_OK;
    if (db->readonly) {
        rc = fail_readonly(db, err, "adding a run");
        goto exit;
    }
    if ((rc = exec_sql(db, "BEGIN IMMEDIATE", "adding a run", err)))
        goto exit;
    in_tx = 1;
    if ((rc = sol_db_run_add(db, row, err)))
        goto exit;
    int64_t id = sqlite3_last_insert_rowid(db->conn);
    for (int i = 0; i < n_ops && !rc; i++) {
        sol_op_time_row o = ops[i];
        o.device_id = row->device_id;
        o.run_id = id;
        o.threads = row->threads;
        o.time = row->time;
        snprintf(o.backend, sizeof o.backend, "%s", row->backend);
        rc = op_time_add(db, &o, err);
    }
    if (rc || (rc = exec_sql(db, "COMMIT", "committing a run", err)))
        goto exit;
    in_tx = 0;
    if (run_id)
        *run_id = id;
exit:
    if (in_tx) /* the first error is the one reported */
        sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Each class's rows ranked newest run first (one row per run and class). */
#define OP_TIME_RANKED                                                                                  \
    "WITH ranked AS (SELECT *, row_number() OVER (PARTITION BY kind, dtype, rows, size_class "          \
    "  ORDER BY time DESC, run_id DESC) AS nth FROM op_time WHERE device_id = ? AND backend = ? "       \
    "  AND threads = ?) "

static int op_time_bind(sol_db *db, sqlite3_stmt *st, int64_t device_id, const char *backend, int threads, int n,
                        const char *what, sol_err *err)
{
    binder b = {st, 0, SQLITE_OK};
    bind_int64(&b, device_id);
    bind_text(&b, backend, strlen(backend));
    bind_int64(&b, threads);
    bind_int64(&b, n);
    return bind_check(db, &b, what, err);
}

static int op_time_span(sol_db *db, int64_t device_id, const char *backend, int threads, int n,
                        sol_op_time_span *span, sol_err *err)
{
    static const char *const sql = OP_TIME_RANKED
        "SELECT count(DISTINCT run_id), coalesce(min(time), 0), coalesce(max(time), 0) FROM ranked WHERE nth <= ?";
    const char *what = "reading per-op times";
    sqlite3_stmt *st = NULL;
    int has_row = 0;
    int rc = prepare(db, sql, &st, what, err);
    if (rc || (rc = op_time_bind(db, st, device_id, backend, threads, n, what, err)) ||
        (rc = step(db, st, &has_row, what, err)))
        goto exit;
    reader r = {st, 0};
    span->runs = has_row ? col_int(&r) : 0;
    span->first_time = has_row ? col_int64(&r) : 0;
    span->last_time = has_row ? col_int64(&r) : 0;
exit:
    sqlite3_finalize(st);
    return rc;
}

int sol_db_op_times(sol_db *db, int64_t device_id, const char *backend, int threads, int per_class_runs,
                    int (*fn)(void *user, const sol_op_time_row *row), void *user, sol_op_time_span *span,
                    sol_err *err)
{
    static const char *const sql = OP_TIME_RANKED
        "SELECT kind, dtype, rows, size_class, sum(bytes), sum(flops), sum(roofline_s), sum(measured_s), "
        "  sum(count), max(time) FROM ranked WHERE nth <= ? GROUP BY kind, dtype, rows, size_class "
        "ORDER BY min(time), kind, dtype, rows, size_class";
    const char *what = "reading per-op times";
    sqlite3_stmt *st = NULL;
    int has_row = 0;
    int rc = span ? op_time_span(db, device_id, backend, threads, per_class_runs, span, err) : SOL_OK;
    if (rc || (rc = prepare(db, sql, &st, what, err)) ||
        (rc = op_time_bind(db, st, device_id, backend, threads, per_class_runs, what, err)))
        goto exit;
    while (!(rc = step(db, st, &has_row, what, err)) && has_row) {
        sol_op_time_row row = {.device_id = device_id, .threads = threads};
        snprintf(row.backend, sizeof row.backend, "%s", backend);
        reader r = {st, 0};
        COL_TEXT(&r, row.kind);
        COL_TEXT(&r, row.dtype);
        row.rows = col_int(&r);
        row.size_class = col_int(&r);
        row.bytes = col_double(&r);
        row.flops = col_double(&r);
        row.roofline_s = col_double(&r);
        row.measured_s = col_double(&r);
        row.count = col_int64(&r);
        row.time = col_int64(&r);
        if (fn(user, &row))
            break;
    }
exit:
    sqlite3_finalize(st);
    return rc;
}

int sol_db_op_time_threads(sol_db *db, int64_t device_id, const char *backend, int *threads, sol_err *err)
{
    static const char *const sql =
        "SELECT threads FROM op_time WHERE device_id = ? AND backend = ? ORDER BY time DESC, id DESC LIMIT 1";
    const char *what = "reading per-op times";
    sqlite3_stmt *st = NULL;
    int has_row = 0;
    int rc = prepare(db, sql, &st, what, err);
    if (rc)
        goto exit;
    binder b = {st, 0, SQLITE_OK};
    bind_int64(&b, device_id);
    bind_text(&b, backend, strlen(backend));
    if ((rc = bind_check(db, &b, what, err)) || (rc = step(db, st, &has_row, what, err)))
        goto exit;
    if (!has_row)
        rc = -1;
    else
        *threads = sqlite3_column_int(st, 0);
exit:
    sqlite3_finalize(st);
    return rc;
}

/* ---- tuning ----------------------------------------------------------------- */

#define TRIAL_COLUMNS                                                                                   \
    "device_id, kernel, source_hash, compile_flags, shape, dtype, params_json, counters_json, median_s, " \
    "spread, reps, correct, time"

int sol_db_trial_add(sol_db *db, const sol_trial_row *row, sol_err *err)
{
    /* The unique key is every input of the measurement: a repeat changes nothing. */
    static const char *const sql =
        "INSERT INTO trial (" TRIAL_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (device_id, kernel, source_hash, compile_flags, shape, dtype, params_json) DO NOTHING";
    const char *what = "adding a trial";
    sqlite3_stmt *st = NULL;
    int rc = SOL_OK;
    if (db->readonly) {
        rc = fail_readonly(db, err, what);
        goto exit;
    }
    if ((rc = prepare(db, sql, &st, what, err)))
        goto exit;
    binder b = {st, 0, SQLITE_OK};
    bind_int64(&b, row->device_id);
    BIND_TEXT(&b, row->kernel);
    BIND_TEXT(&b, row->source_hash);
    BIND_TEXT(&b, row->compile_flags);
    BIND_TEXT(&b, row->shape);
    BIND_TEXT(&b, row->dtype);
    BIND_TEXT(&b, row->params_json);
    BIND_TEXT(&b, row->counters_json);
    bind_double(&b, row->median_s);
    bind_double(&b, row->spread);
    bind_int64(&b, row->reps);
    bind_int64(&b, row->correct);
    bind_int64(&b, row->time);
    if ((rc = bind_check(db, &b, what, err)) || (rc = step_done(db, st, what, err)))
        goto exit;
    if (sqlite3_changes(db->conn) == 0)
        rc = -1; /* already measured */
exit:
    sqlite3_finalize(st);
    return rc;
}

int sol_db_trials(sol_db *db, int (*fn)(void *user, const sol_trial_row *row), void *user, sol_err *err)
{
    static const char *const sql = "SELECT " TRIAL_COLUMNS " FROM trial ORDER BY time, id";
    const char *what = "reading trials";
    sqlite3_stmt *st = NULL;
    int has_row = 0;
    int rc = prepare(db, sql, &st, what, err);
    if (rc)
        goto exit;
    while (!(rc = step(db, st, &has_row, what, err)) && has_row) {
        sol_trial_row row = {0};
        reader r = {st, 0};
        row.device_id = col_int64(&r);
        COL_TEXT(&r, row.kernel);
        COL_TEXT(&r, row.source_hash);
        COL_TEXT(&r, row.compile_flags);
        COL_TEXT(&r, row.shape);
        COL_TEXT(&r, row.dtype);
        COL_TEXT(&r, row.params_json);
        COL_TEXT(&r, row.counters_json);
        row.median_s = col_double(&r);
        row.spread = col_double(&r);
        row.reps = col_int(&r);
        row.correct = col_int(&r);
        row.time = col_int64(&r);
        if (fn(user, &row))
            break;
    }
exit:
    sqlite3_finalize(st);
    return rc;
}

#define BEST_COLUMNS "device_id, kernel, source_hash, shape, dtype, params_json, median_s, default_s, time"

int sol_db_best_set(sol_db *db, const sol_best_row *row, sol_err *err)
{
    static const char *const sql =
        "INSERT INTO best (" BEST_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (device_id, kernel, source_hash, shape, dtype) DO UPDATE SET "
        "params_json = excluded.params_json, median_s = excluded.median_s, default_s = excluded.default_s, "
        "time = excluded.time";
    const char *what = "setting a best configuration";
    sqlite3_stmt *st = NULL;
    int rc = SOL_OK;
    if (db->readonly) {
        rc = fail_readonly(db, err, what);
        goto exit;
    }
    if ((rc = prepare(db, sql, &st, what, err)))
        goto exit;
    binder b = {st, 0, SQLITE_OK};
    bind_int64(&b, row->device_id);
    BIND_TEXT(&b, row->kernel);
    BIND_TEXT(&b, row->source_hash);
    BIND_TEXT(&b, row->shape);
    BIND_TEXT(&b, row->dtype);
    BIND_TEXT(&b, row->params_json);
    bind_double(&b, row->median_s);
    bind_double(&b, row->default_s);
    bind_int64(&b, row->time);
    if ((rc = bind_check(db, &b, what, err)))
        goto exit;
    rc = step_done(db, st, what, err);
exit:
    sqlite3_finalize(st);
    return rc;
}

int sol_db_bests(sol_db *db, int (*fn)(void *user, const sol_best_row *row), void *user, sol_err *err)
{
    static const char *const sql = "SELECT " BEST_COLUMNS " FROM best ORDER BY device_id, kernel, shape, dtype";
    const char *what = "reading best configurations";
    sqlite3_stmt *st = NULL;
    int has_row = 0;
    int rc = prepare(db, sql, &st, what, err);
    if (rc)
        goto exit;
    while (!(rc = step(db, st, &has_row, what, err)) && has_row) {
        sol_best_row row = {0};
        reader r = {st, 0};
        row.device_id = col_int64(&r);
        COL_TEXT(&r, row.kernel);
        COL_TEXT(&r, row.source_hash);
        COL_TEXT(&r, row.shape);
        COL_TEXT(&r, row.dtype);
        COL_TEXT(&r, row.params_json);
        row.median_s = col_double(&r);
        row.default_s = col_double(&r);
        row.time = col_int64(&r);
        if (fn(user, &row))
            break;
    }
exit:
    sqlite3_finalize(st);
    return rc;
}

/* ---- export and import ------------------------------------------------------ */

int sol_db_export(sol_db *db, const char *path, sol_err *err)
{
    sqlite3 *dest = NULL;
    sqlite3_backup *backup = NULL;
    int created = 0, rc = SOL_OK;
    char mode[32];
    /* O_EXCL: an existing file, even an empty one, is never overwritten. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = errno == EEXIST ? sol_fail(err, SOL_ERR_RUNTIME, "%s already exists; export writes a new file only", path)
                             : sol_fail(err, SOL_ERR_RUNTIME, "cannot create %s: %s", path, strerror(errno));
        goto exit;
    }
    created = 1;
    if (close(fd) != 0) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "cannot create %s: %s", path, strerror(errno));
        goto exit;
    }
    if (sqlite3_open_v2(path, &dest, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: opening: %s", path, dest ? sqlite3_errmsg(dest) : "out of memory");
        goto exit;
    }
    if (!(backup = sqlite3_backup_init(dest, "main", db->conn, "main"))) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "exporting %s to %s: %s", db->name, path, sqlite3_errmsg(dest));
        goto exit;
    }
    /* All pages in one step: one read transaction, one consistent snapshot. */
    int step_rc = sqlite3_backup_step(backup, -1);
    int finish_rc = sqlite3_backup_finish(backup);
    backup = NULL;
    if (step_rc != SQLITE_DONE || finish_rc != SQLITE_OK) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "exporting %s to %s: %s", db->name, path,
                      sqlite3_errstr(step_rc != SQLITE_DONE ? step_rc : finish_rc));
        goto exit;
    }
    /* The copy carries the WAL flag of the source; a rollback journal makes
     * it one self-contained file to send elsewhere. */
    sqlite3_stmt *st = NULL;
    const unsigned char *text = NULL;
    if (sqlite3_prepare_v2(dest, "PRAGMA journal_mode = DELETE", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        text = sqlite3_column_text(st, 0);
    snprintf(mode, sizeof mode, "%s", text ? (const char *)text : "");
    if (strcmp(mode, "delete"))
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: setting the journal mode: %s", path, sqlite3_errmsg(dest));
    sqlite3_finalize(st);
    if (rc)
        goto exit;
    if (sqlite3_close(dest) != SQLITE_OK) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: closing: %s", path, sqlite3_errmsg(dest));
        goto exit;
    }
    dest = NULL;
exit:
    if (backup)
        sqlite3_backup_finish(backup);
    if (dest)
        sqlite3_close(dest);
    if (rc && created) /* the file is ours: leave no half copy */
        unlink(path);
    return rc;
}

/* "file:PATH?mode=ro" with PATH percent-encoded (RFC 3986 unreserved and /). */
static int readonly_uri(const char *path, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = (size_t)snprintf(out, cap, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (n + 4 >= cap)
            return -1;
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("/-._~", *p))
            out[n++] = (char)*p;
        else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    int tail = snprintf(out + n, cap - n, "?mode=ro");
    return tail < 0 || (size_t)tail >= cap - n ? -1 : 0;
}

/* Runs one statement and adds the rows it changed to *count. */
static int exec_counted(sol_db *db, const char *sql, int *count, const char *what, sol_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, sql, &st, what, err);
    if (rc)
        goto exit;
    if ((rc = step_done(db, st, what, err)))
        goto exit;
    *count += sqlite3_changes(db->conn);
exit:
    sqlite3_finalize(st);
    return rc;
}

/* Devices are matched by their identifying columns: the source's ids mean
 * nothing here. temp.import_device_map holds source id -> this file's id. */
static const char *const import_devices_sql =
    "DROP TABLE IF EXISTS temp.import_device_map;"
    "CREATE TEMP TABLE import_device_map (src_id INTEGER PRIMARY KEY, dst_id INTEGER NOT NULL);"
    "INSERT INTO main.device (backend, name, uuid, cc, driver, runtime, cores, l1_bytes, l2_bytes, l3_bytes, "
    "  first_seen, last_seen) "
    "SELECT backend, name, uuid, cc, driver, runtime, cores, l1_bytes, l2_bytes, l3_bytes, first_seen, last_seen "
    "FROM sol_import.device WHERE true "
    "ON CONFLICT (backend, name, uuid, cc, driver, runtime, cores) DO UPDATE SET "
    "  first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen);"
    "INSERT INTO temp.import_device_map (src_id, dst_id) "
    "SELECT s.id, d.id FROM sol_import.device s JOIN main.device d ON d.backend = s.backend AND d.name = s.name "
    "  AND d.uuid = s.uuid AND d.cc = s.cc AND d.driver = s.driver AND d.runtime = s.runtime AND d.cores = s.cores;";

/* A probe is present when its device, kind, time and value match. */
static const char *const import_probes_sql =
    "INSERT INTO main.probe (device_id, kind, value, unit, method, spread, reps, time) "
    "SELECT m.dst_id, p.kind, p.value, p.unit, p.method, p.spread, p.reps, p.time "
    "FROM sol_import.probe p JOIN temp.import_device_map m ON m.src_id = p.device_id "
    "WHERE NOT EXISTS (SELECT 1 FROM main.probe q WHERE q.device_id = m.dst_id AND q.kind = p.kind "
    "  AND q.time = p.time AND q.value = p.value) ORDER BY p.id";

/* A run is present when its device, model, test, threads, time and speed
 * match. Version 1 files have no plan_hash. */
#define IMPORT_RUNS_SQL(plan_hash)                                                                      \
    "INSERT INTO main.run (" RUN_COLUMNS ") "                                                           \
    "SELECT m.dst_id, r.model, r.model_hash, " plan_hash ", r.kv_scheme, r.wtype, r.kvtype, r.backend, " \
    "  r.test, r.threads, r.n_prompt, r.n_gen, r.reps, r.tokens_per_s, r.tokens_per_s_stddev, "       \
    "  r.achieved_gbs, r.sol_tokens_per_s, r.sol_percent, r.sol_version, r.git_commit, r.time "        \
    "FROM sol_import.run r JOIN temp.import_device_map m ON m.src_id = r.device_id "                   \
    "WHERE NOT EXISTS (SELECT 1 FROM main.run q WHERE q.device_id = m.dst_id "                        \
    "  AND q.model_hash = r.model_hash AND q.test = r.test AND q.threads = r.threads "                 \
    "  AND q.time = r.time AND q.tokens_per_s = r.tokens_per_s) ORDER BY r.id"
static const char *const import_runs_v1_sql = IMPORT_RUNS_SQL("''");
static const char *const import_runs_sql = IMPORT_RUNS_SQL("r.plan_hash");

/* Trials by their unique key (version 2 on). */
static const char *const import_trials_sql =
    "INSERT INTO main.trial (" TRIAL_COLUMNS ") "
    "SELECT m.dst_id, t.kernel, t.source_hash, t.compile_flags, t.shape, t.dtype, t.params_json, "
    "  t.counters_json, t.median_s, t.spread, t.reps, t.correct, t.time "
    "FROM sol_import.trial t JOIN temp.import_device_map m ON m.src_id = t.device_id WHERE true ORDER BY t.id "
    "ON CONFLICT (device_id, kernel, source_hash, compile_flags, shape, dtype, params_json) DO NOTHING";

/* Bests by their unique key; the newer one wins. */
static const char *const import_bests_sql =
    "INSERT INTO main.best (" BEST_COLUMNS ") "
    "SELECT m.dst_id, b.kernel, b.source_hash, b.shape, b.dtype, b.params_json, b.median_s, b.default_s, b.time "
    "FROM sol_import.best b JOIN temp.import_device_map m ON m.src_id = b.device_id WHERE true ORDER BY b.id "
    "ON CONFLICT (device_id, kernel, source_hash, shape, dtype) DO UPDATE SET "
    "  params_json = excluded.params_json, median_s = excluded.median_s, default_s = excluded.default_s, "
    "  time = excluded.time WHERE excluded.time > best.time";

/* Op times by their run (found by the run's key, as above) and class
 * (version 3 on). */
static const char *const import_op_times_sql =
    "INSERT INTO main.op_time (" OP_TIME_COLUMNS ") "
    "SELECT m.dst_id, q.id, o.backend, o.threads, o.kind, o.dtype, o.rows, o.size_class, o.bytes, o.flops, "
    "  o.roofline_s, o.measured_s, o.count, o.time "
    "FROM sol_import.op_time o JOIN sol_import.run r ON r.id = o.run_id "
    "JOIN temp.import_device_map m ON m.src_id = r.device_id "
    "JOIN main.run q ON q.device_id = m.dst_id AND q.model_hash = r.model_hash AND q.test = r.test "
    "  AND q.threads = r.threads AND q.time = r.time AND q.tokens_per_s = r.tokens_per_s "
    "WHERE true ORDER BY o.id "
    "ON CONFLICT (run_id, kind, dtype, rows, size_class) DO NOTHING";

/* Every table the source's schema version promises is there: a file that
 * lost one fails here, named, not midway with the target's name. */
static int check_import_tables(sol_db *db, const char *path, int64_t version, sol_err *err)
{
    static const char *const tables[] = {"device", "probe", "run", "trial", "best", "op_time"}; /* v1: 3, v2: 5, v3: 6 */
    int n = version >= 3 ? 6 : version >= 2 ? 5 : 3;
    for (int i = 0; i < n; i++) {
        char sql[160];
        int64_t found = 0;
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sol_import.sqlite_master WHERE type = 'table' AND name = '%s'", tables[i]);
        int rc = query_int(db, path, sql, &found, "reading its tables", err);
        if (rc)
            return rc;
        if (!found)
            return sol_fail(err, SOL_ERR_RUNTIME,
                            "%s: schema version %lld but no table \"%s\": not a complete sol database (nothing "
                            "imported)",
                            path, (long long)version, tables[i]);
    }
    return 0;
}

int sol_db_import(sol_db *db, const char *path, int *rows_added, sol_err *err)
{
    char uri[PATH_MAX * 3 + 16];
    sqlite3_stmt *st = NULL;
    int attached = 0, in_tx = 0, added = 0, rc = SOL_OK;
    int64_t version = 0, app_id = 0;
    const char *what = "importing";
    struct stat src_st, own_st;
    *rows_added = 0;
    if (db->readonly) {
        rc = fail_readonly(db, err, what);
        goto exit;
    }
    if (stat(path, &src_st) != 0 || access(path, R_OK) != 0) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "cannot read %s: %s", path, strerror(errno));
        goto exit;
    }
    if (!S_ISREG(src_st.st_mode)) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s is not a regular file", path);
        goto exit;
    }
    if (stat(db->path, &own_st) == 0 && own_st.st_dev == src_st.st_dev && own_st.st_ino == src_st.st_ino) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s is this database itself; nothing to import", path);
        goto exit;
    }
    if (readonly_uri(path, uri, sizeof uri)) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: the path is too long", path);
        goto exit;
    }
    /* Attached read-only: the other machine's file is never written. */
    if ((rc = prepare(db, "ATTACH DATABASE ? AS sol_import", &st, "attaching a file to import", err)))
        goto exit;
    binder b = {st, 0, SQLITE_OK};
    bind_text(&b, uri, sizeof uri);
    if ((rc = bind_check(db, &b, "attaching a file to import", err)))
        goto exit;
    if (sqlite3_step(st) != SQLITE_DONE) { /* ATTACH reads the header: errors are the file's */
        rc = fail_sqlite_in(db, path, err, "attaching it to import");
        goto exit;
    }
    attached = 1;
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = read_header(db, &import_schema, path, &version, &app_id, err)) ||
        (rc = check_version(db, &import_schema, path, version, app_id, err)) ||
        (rc = check_integrity(db, &import_schema, path, err)))
        goto exit;
    if (version == 0) { /* an empty file: nothing to merge */
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s is empty, not a sol database", path);
        goto exit;
    }
    if ((rc = check_import_tables(db, path, version, err)))
        goto exit;

    if ((rc = exec_sql(db, "BEGIN IMMEDIATE", "starting the import", err)))
        goto exit;
    in_tx = 1;
    if ((rc = exec_sql(db, import_devices_sql, "importing devices", err)) ||
        (rc = exec_counted(db, import_probes_sql, &added, "importing probes", err)) ||
        (rc = exec_counted(db, version >= 2 ? import_runs_sql : import_runs_v1_sql, &added, "importing runs", err)))
        goto exit;
    if (version >= 2 && ((rc = exec_counted(db, import_trials_sql, &added, "importing trials", err)) ||
                         (rc = exec_counted(db, import_bests_sql, &added, "importing best configurations", err))))
        goto exit;
    if (version >= 3 && (rc = exec_counted(db, import_op_times_sql, &added, "importing per-op times", err)))
        goto exit;
    if ((rc = exec_sql(db, "DROP TABLE temp.import_device_map", "importing", err)) ||
        (rc = exec_sql(db, "COMMIT", "committing the import", err)))
        goto exit;
    in_tx = 0;
    if ((rc = exec_sql(db, "DETACH DATABASE sol_import", "detaching the imported file", err)))
        goto exit;
    attached = 0;
    *rows_added = added;
exit:
    sqlite3_finalize(st);
    /* On failure the first error is the one reported. */
    if (in_tx)
        sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    if (attached)
        sqlite3_exec(db->conn, "DETACH DATABASE sol_import", NULL, NULL, NULL);
    return rc;
}
