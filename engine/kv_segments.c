/* KV segments on disk (kv_segments.h). A segment file, native
 * little-endian:
 *   "SOLKVSEG" | u32 version | u32 n_layers | u64 key | u64 parent | u64 hash
 *   | i64 from | i64 to | u32 simlayer | u32 query_rows
 *   | i32 tokens[to - from]
 *   | simlayer: u8 lazy[n_layers], f64 score[n_layers]
 *   | per layer: i64 sink_from, sink_to, kept_from, kept_to, u64 row_bytes, rows
 *   | u64 FNV-1a of every byte before it */
#include "engine/kv_segments.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include "engine/kv_state.h"
#include "util/file_id.h"
#include "util/hash.h"

enum { SEGMENT_VERSION = 1 };
static const char MAGIC[8] = {'S', 'O', 'L', 'K', 'V', 'S', 'E', 'G'};

typedef struct {
    uint32_t version, n_layers;
    uint64_t key, parent, hash;
    int64_t from, to;
    uint32_t simlayer, query_rows;
} seg_header;

uint64_t sol_kv_prefix_hash(uint64_t h, const int32_t *tokens, int64_t n)
{
    return sol_fnv1a(h, tokens, (size_t)n * sizeof *tokens);
}

static int make_dir(const char *path, sol_err *err)
{
    char buf[3200];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) /* mkdir -p */
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) && errno != EEXIST)
                return sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot create: %s", buf, strerror(errno));
            *p = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot create: %s", buf, strerror(errno));
    return 0;
}

int sol_kv_store_open(const char *dir, const sol_engine *e, double cap_bytes, sol_kv_store *s, sol_err *err)
{
    memset(s, 0, sizeof *s);
    if (strlen(dir) + 64 > sizeof s->dir)
        return sol_fail(err, SOL_ERR_USAGE, "session directory path too long (%zu bytes)", strlen(dir));
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->cap_bytes = cap_bytes;
    char scheme[128], sub[3200];
    sol_kv_scheme kv = *sol_engine_kv(e);
    kv.lazy_layers = NULL; /* the choice is in the segments, not the key */
    sol_kv_format(&kv, scheme, sizeof scheme);
    uint64_t h = sol_file_identity(sol_engine_gguf(e)->path);
    uint32_t version = SEGMENT_VERSION;
    int kvtype = (int)sol_engine_kv_type(e);
    h = sol_fnv1a(h, scheme, strlen(scheme));
    h = sol_fnv1a(h, &kvtype, sizeof kvtype);
    s->key = sol_fnv1a(h, &version, sizeof version);
    snprintf(sub, sizeof sub, "%s/segments", dir);
    int rc = make_dir(sub, err);
    snprintf(sub, sizeof sub, "%s/sessions", dir);
    return rc ? rc : make_dir(sub, err);
}

static void segment_path(const sol_kv_store *s, uint64_t hash, char *out, size_t cap)
{
    snprintf(out, cap, "%s/segments/%016llx.seg", s->dir, (unsigned long long)hash);
}

/* An exclusive (or shared) lock on the store; -1 when it cannot be had. */
static int lock_store(const char *dir, int exclusive)
{
    char path[3200];
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void unlock_store(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct {
    FILE *f;
    uint64_t sum;
    int failed;
} writer;

static void put(writer *w, const void *p, size_t n)
{
    if (w->failed || n == 0)
        return;
    w->sum = sol_fnv1a(w->sum, p, n);
    w->failed = fwrite(p, 1, n, w->f) != n;
}

/* Layer i's rows of [from, to): the sinks below a lazy layer's window,
 * then what the layer keeps. */
static int put_layer(writer *w, sol_engine *e, int i, int64_t from, int64_t to, sol_err *err)
{
    int64_t kept = sol_engine_kv_first_kept(e, i, from, to), sinks = sol_engine_kv_sinks(e, i);
    int64_t r[4] = {0, 0, 0, 0};
    if (kept >= 0) {
        r[0] = from;
        r[1] = from < sinks ? (to < sinks ? to : sinks) : from;
        r[2] = kept;
        r[3] = to;
    }
    uint64_t row = kept >= 0 ? sol_engine_kv_row_bytes(e, i) : 0;
    put(w, r, sizeof r);
    put(w, &row, sizeof row);
    for (int part = 0; part < 2 && kept >= 0; part++) {
        int64_t a = r[2 * part], b = r[2 * part + 1];
        if (b <= a)
            continue;
        void *buf = malloc(row * (size_t)(b - a));
        if (!buf)
            return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
        int rc = sol_engine_kv_export(e, i, a, b, buf, err);
        put(w, buf, row * (size_t)(b - a));
        free(buf);
        if (rc)
            return rc;
    }
    return 0;
}

static int write_segment(FILE *f, sol_engine *e, const seg_header *h, const int32_t *tokens, sol_err *err)
{
    writer w = {f, SOL_FNV1A_INIT, 0};
    int n = h->n_layers, rc = 0;
    put(&w, MAGIC, sizeof MAGIC);
    put(&w, h, sizeof *h);
    put(&w, tokens + h->from, (size_t)(h->to - h->from) * sizeof *tokens);
    if (h->simlayer) {
        sol_simlayer_state st;
        sol_engine_simlayer(e, &st);
        put(&w, st.lazy, (size_t)n);
        put(&w, st.score, (size_t)n * sizeof *st.score);
    }
    for (int i = 0; i < n && !rc; i++)
        rc = put_layer(&w, e, i, h->from, h->to, err);
    uint64_t sum = w.sum;
    put(&w, &sum, sizeof sum);
    if (!rc && (w.failed || fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = sol_fail(err, SOL_ERR_RUNTIME, "writing a KV segment failed: %s", strerror(errno ? errno : EIO));
    return rc;
}

/* Removes the least recently used segments until the store fits its cap. */
static void evict(const sol_kv_store *s)
{
    if (s->cap_bytes <= 0)
        return;
    char path[3400];
    snprintf(path, sizeof path, "%s/segments", s->dir);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct item {
        char name[64];
        double mtime, bytes;
    } *items = NULL;
    int n = 0, cap = 0;
    double total = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (!strstr(de->d_name, ".seg") || strlen(de->d_name) >= 64)
            continue;
        snprintf(path, sizeof path, "%s/segments/%.63s", s->dir, de->d_name);
        if (stat(path, &st) != 0)
            continue;
        if (n == cap) {
            struct item *more = realloc(items, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *items);
            if (!more)
                break;
            items = more;
        }
        snprintf(items[n].name, sizeof items[n].name, "%.63s", de->d_name);
        items[n].mtime = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
        items[n].bytes = (double)st.st_size;
        total += items[n++].bytes;
    }
    closedir(d);
    while (total > s->cap_bytes && n > 0) { /* the oldest use first */
        int old = 0;
        for (int i = 1; i < n; i++)
            if (items[i].mtime < items[old].mtime)
                old = i;
        snprintf(path, sizeof path, "%s/segments/%.63s", s->dir, items[old].name);
        if (unlink(path) == 0)
            total -= items[old].bytes;
        items[old] = items[--n];
    }
    free(items);
}

int sol_kv_segment_save(sol_kv_store *s, sol_engine *e, const int32_t *tokens, int64_t from, int64_t to,
                        uint64_t parent, uint64_t *hash, double *bytes, sol_err *err)
{
    sol_simlayer_state st;
    seg_header h = {SEGMENT_VERSION, (uint32_t)sol_engine_model(e)->n_layers, s->key, parent, 0, from, to, 0, 0};
    if (sol_engine_simlayer(e, &st) == 0 && st.scored) {
        h.simlayer = 1;
        h.query_rows = (uint32_t)st.query_rows;
    }
    h.hash = sol_kv_prefix_hash(parent, tokens + from, to - from);
    *hash = h.hash;
    char path[3400], tmp[3500];
    segment_path(s, h.hash, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int lock = lock_store(s->dir, 1);
    FILE *f = fopen(tmp, "wb");
    int rc = f ? write_segment(f, e, &h, tokens, err)
               : sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot write: %s", tmp, strerror(errno));
    if (f && fclose(f) != 0 && !rc)
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: write failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path) != 0)
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot rename into place: %s", path, strerror(errno));
    if (rc)
        unlink(tmp); /* the segments already there stay whole */
    struct stat sb;
    *bytes = !rc && stat(path, &sb) == 0 ? (double)sb.st_size : 0;
    if (!rc)
        evict(s);
    unlock_store(lock);
    return rc;
}

/* ---- reading ---------------------------------------------------------------------------- */

typedef struct {
    seg_header h;
    char *data; /* the whole file */
    size_t size;
    const int32_t *tokens;
    const unsigned char *lazy;
    const double *score;
    size_t layer_at[SOL_MAX_LAYERS]; /* offset of each layer's ranges */
} segment;

static int refuse(char *notice, uint64_t hash, const char *why)
{
    snprintf(notice, 512, "KV segment %016llx %s; recomputing", (unsigned long long)hash, why);
    return 1;
}

/* The segment of prefix `hash`, checked whole; 1 with a notice when it is
 * missing or not to be used. */
static int read_segment(const sol_kv_store *s, const sol_engine *e, uint64_t hash, segment *g, char *notice)
{
    char path[3400];
    segment_path(s, hash, path, sizeof path);
    memset(g, 0, sizeof *g);
    FILE *f = fopen(path, "rb");
    if (!f)
        return refuse(notice, hash, "is missing (evicted?)");
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size > 0 && (g->data = malloc((size_t)st.st_size)))
        g->size = fread(g->data, 1, (size_t)st.st_size, f);
    fclose(f);
    size_t head = sizeof MAGIC + sizeof g->h;
    if (!g->data || g->size != (size_t)st.st_size || g->size < head + 8)
        return refuse(notice, hash, "is truncated");
    memcpy(&g->h, g->data + sizeof MAGIC, sizeof g->h);
    uint64_t sum;
    memcpy(&sum, g->data + g->size - 8, 8);
    if (memcmp(g->data, MAGIC, sizeof MAGIC) != 0)
        return refuse(notice, hash, "is not a sol KV segment");
    if (g->h.version != SEGMENT_VERSION)
        return refuse(notice, hash, "is of another format version");
    if (g->h.key != s->key || g->h.hash != hash)
        return refuse(notice, hash, "was written for another model, KV scheme or type");
    int n = sol_engine_model(e)->n_layers, vocab = sol_engine_model(e)->vocab;
    if ((int)g->h.n_layers != n || g->h.from < 0 || g->h.to <= g->h.from ||
        g->h.to - g->h.from > (int64_t)((g->size - head - 8) / sizeof(int32_t)) || g->h.to > sol_engine_ctx(e))
        return refuse(notice, hash, "does not fit this model and context");
    size_t ntok = (size_t)(g->h.to - g->h.from), at = head + ntok * sizeof(int32_t);
    g->tokens = (const int32_t *)(g->data + head);
    if (sol_kv_prefix_hash(g->h.parent, g->tokens, (int64_t)ntok) != hash)
        return refuse(notice, hash, "holds other tokens than its name says");
    for (size_t i = 0; i < ntok; i++)
        if (g->tokens[i] < 0 || g->tokens[i] >= vocab)
            return refuse(notice, hash, "holds a token outside the vocabulary");
    if (g->h.simlayer) {
        g->lazy = (const unsigned char *)(g->data + at);
        g->score = (const double *)(g->data + at + (size_t)n);
        at += (size_t)n + (size_t)n * sizeof(double);
    }
    for (int i = 0; i < n; i++) {
        int64_t r[4];
        uint64_t row;
        if (at + sizeof r + sizeof row > g->size - 8)
            return refuse(notice, hash, "is truncated");
        memcpy(r, g->data + at, sizeof r);
        memcpy(&row, g->data + at + sizeof r, sizeof row);
        g->layer_at[i] = at;
        uint64_t want = sol_engine_kv_first_kept(e, i, 0, 1) >= 0 ? sol_engine_kv_row_bytes(e, i) : 0;
        int64_t lo = g->h.from, hi = g->h.to;
        if (row != want ||
            (row && !(lo <= r[0] && r[0] <= r[1] && r[1] <= hi && lo <= r[2] && r[2] <= r[3] && r[3] <= hi)))
            return refuse(notice, hash, "was written for another cache layout");
        at += sizeof r + sizeof row + row * (size_t)(r[1] - r[0] + r[3] - r[2]);
        if (at > g->size - 8)
            return refuse(notice, hash, "is truncated");
    }
    if (at != g->size - 8)
        return refuse(notice, hash, "has bytes past its layers");
    return sol_fnv1a(SOL_FNV1A_INIT, g->data, g->size - 8) == sum ? 0 : refuse(notice, hash, "fails its checksum");
}

int sol_kv_segment_exists(const sol_kv_store *s, uint64_t hash)
{
    char path[3400];
    segment_path(s, hash, path, sizeof path);
    return access(path, R_OK) == 0;
}

/* Layer i's rows of segment g into the engine, those before keep_from
 * skipped (a window that moved on since); returns the bytes imported. */
static int import_layer(sol_engine *e, const segment *g, int i, int64_t keep_from, double *bytes, sol_err *err)
{
    int64_t r[4];
    uint64_t row;
    memcpy(r, g->data + g->layer_at[i], sizeof r);
    memcpy(&row, g->data + g->layer_at[i] + sizeof r, sizeof row);
    const char *rows = g->data + g->layer_at[i] + sizeof r + sizeof row;
    int rc = 0;
    if (r[1] > r[0]) { /* a lazy layer's sinks */
        rc = sol_engine_kv_import(e, i, r[0], r[1], rows, err);
        *bytes += (double)row * (double)(r[1] - r[0]);
        rows += row * (size_t)(r[1] - r[0]);
    }
    int64_t a = r[2] > keep_from ? r[2] : keep_from, len = r[3] - r[2], skip = a - r[2];
    if (rc || r[3] <= a)
        return rc;
    /* the range is stored as its K rows, then its V rows: the newest of each */
    int arrays = sol_engine_kv_arrays(e, i);
    size_t per = row / (size_t)arrays, keep = (size_t)(len - skip) * per;
    char *buf = malloc(keep * (size_t)arrays);
    if (!buf)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    for (int k = 0; k < arrays; k++)
        memcpy(buf + (size_t)k * keep, rows + ((size_t)k * (size_t)len + (size_t)skip) * per, keep);
    rc = sol_engine_kv_import(e, i, a, r[3], buf, err);
    free(buf);
    *bytes += (double)row * (double)(r[3] - a);
    return rc;
}

static void free_chain(segment *chain, int n)
{
    for (int i = 0; i < n; i++)
        free(chain[i].data);
    free(chain);
}

/* The chain from prefix `hash` back to position 0, newest first; 0 and *n,
 * or 1 with a notice. */
static int read_chain(const sol_kv_store *s, const sol_engine *e, uint64_t hash, segment **out, int *n, char *notice)
{
    segment *chain = NULL;
    int len = 0, cap = 0, bad = 0;
    for (uint64_t h = hash; !bad;) {
        if (len == cap) {
            segment *more = realloc(chain, (size_t)(cap = cap ? 2 * cap : 8) * sizeof *chain);
            if (!more) {
                bad = refuse(notice, h, "could not be read (out of memory)");
                break;
            }
            chain = more;
        }
        bad = read_segment(s, e, h, &chain[len], notice);
        len++;
        if (bad)
            break;
        const seg_header *g = &chain[len - 1].h;
        if (g->from == 0) {
            if (g->parent != s->key)
                bad = refuse(notice, h, "starts no prefix of this model");
            break;
        }
        if (len > 1 && chain[len - 2].h.from != g->to)
            bad = refuse(notice, h, "does not end where its child begins");
        h = g->parent;
    }
    if (bad) {
        free_chain(chain, len);
        return 1;
    }
    *out = chain;
    *n = len;
    return 0;
}

int sol_kv_segment_load(sol_kv_store *s, sol_engine *e, uint64_t hash, sol_kv_loaded *out, sol_err *err)
{
    memset(out, 0, sizeof *out);
    sol_engine_reset(e);
    segment *chain = NULL;
    int len = 0, lock = lock_store(s->dir, 0);
    int bad = read_chain(s, e, hash, &chain, &len, out->notice);
    unlock_store(lock);
    if (bad)
        return 0;
    int64_t n = chain[0].h.to;
    int rc = 0;
    out->tokens = malloc((size_t)n * sizeof *out->tokens);
    if (!out->tokens)
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    if (!rc && chain[0].h.simlayer) { /* the choice first: it shapes the caches */
        int r = sol_engine_simlayer_restore(e, chain[0].lazy, chain[0].score, (int)chain[0].h.query_rows, err);
        rc = r > 0 ? r : 0;
    }
    for (int k = len - 1; k >= 0 && !rc; k--) { /* oldest first: a ring ends holding the newest */
        const segment *g = &chain[k];
        memcpy(out->tokens + g->h.from, g->tokens, (size_t)(g->h.to - g->h.from) * sizeof *out->tokens);
        for (int i = 0; i < (int)g->h.n_layers && !rc; i++) {
            int64_t keep_from = sol_engine_kv_first_kept(e, i, 0, n); /* -1: the layer reads another's */
            if (keep_from >= 0)
                rc = import_layer(e, g, i, keep_from, &out->bytes, err);
        }
        char path[3400];
        segment_path(s, g->h.hash, path, sizeof path);
        utime(path, NULL); /* used now: last in line for eviction */
    }
    if (!rc)
        rc = sol_engine_kv_set_prefix(e, out->tokens, n, err);
    free_chain(chain, len);
    if (rc) {
        sol_kv_loaded_free(out);
        sol_engine_reset(e);
        return rc;
    }
    out->n = n;
    out->hash = hash;
    out->segments = len;
    return 0;
}

void sol_kv_loaded_free(sol_kv_loaded *l)
{
    free(l->tokens);
    l->tokens = NULL;
    l->n = 0;
}

/* ---- sessions ---------------------------------------------------------------------------- */

static int valid_name(const char *name);
int sol_kv_session_name_ok(const char *name) { return valid_name(name); }

static int valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 128 || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", name[i]))
            return 0;
    return 1;
}

int sol_kv_session_head(const sol_kv_store *s, const char *name, uint64_t *hash, int *turns)
{
    char path[3400];
    snprintf(path, sizeof path, "%s/sessions/%s", s->dir, name);
    FILE *f = valid_name(name) ? fopen(path, "r") : NULL;
    unsigned long long h = 0;
    int t = 0, found = f && fscanf(f, "%16llx %d", &h, &t) == 2;
    if (f)
        fclose(f);
    *hash = h;
    if (turns)
        *turns = t;
    return found;
}

int sol_kv_session_set(sol_kv_store *s, const char *name, uint64_t hash, int turns, sol_err *err)
{
    if (!valid_name(name))
        return sol_fail(err, SOL_ERR_USAGE, "--session: \"%s\" is not a name (letters, digits, . _ -; 128 at most)",
                        name);
    char path[3400], tmp[3500];
    snprintf(path, sizeof path, "%s/sessions/%s", s->dir, name);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int lock = lock_store(s->dir, 1);
    FILE *f = fopen(tmp, "w");
    int ok = f && fprintf(f, "%016llx %d\n", (unsigned long long)hash, turns) > 0;
    ok = f && fclose(f) == 0 && ok && rename(tmp, path) == 0;
    if (!ok)
        unlink(tmp);
    unlock_store(lock);
    return ok ? 0 : sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot write the session: %s", path, strerror(errno));
}

int sol_kv_sessions_list(const char *dir, sol_kv_session_info **out, int *n, double *segment_bytes, int *segments,
                         sol_err *err)
{
    char path[3400];
    *out = NULL;
    *n = *segments = 0;
    *segment_bytes = 0;
    snprintf(path, sizeof path, "%s/segments", dir);
    DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        struct stat st;
        snprintf(path, sizeof path, "%s/segments/%.255s", dir, de->d_name);
        if (strstr(de->d_name, ".seg") && !strstr(de->d_name, ".tmp") && stat(path, &st) == 0) {
            *segment_bytes += (double)st.st_size;
            ++*segments;
        }
    }
    if (d)
        closedir(d);
    snprintf(path, sizeof path, "%s/sessions", dir);
    if (!(d = opendir(path)))
        return 0;
    int cap = 0;
    while ((de = readdir(d))) {
        struct stat st;
        if (!valid_name(de->d_name) || strstr(de->d_name, ".tmp"))
            continue;
        snprintf(path, sizeof path, "%s/sessions/%.255s", dir, de->d_name);
        if (stat(path, &st) != 0)
            continue;
        if (*n == cap) {
            sol_kv_session_info *more = realloc(*out, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *more);
            if (!more) {
                closedir(d);
                return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
            }
            *out = more;
        }
        sol_kv_session_info *info = &(*out)[(*n)++];
        snprintf(info->name, sizeof info->name, "%s", de->d_name);
        info->mtime = (double)st.st_mtim.tv_sec;
        sol_kv_store s = {.key = 0};
        snprintf(s.dir, sizeof s.dir, "%s", dir);
        sol_kv_session_head(&s, de->d_name, &info->head, &info->turns);
    }
    closedir(d);
    return 0;
}

int sol_kv_session_remove(const char *dir, const char *name, sol_err *err)
{
    if (!valid_name(name))
        return sol_fail(err, SOL_ERR_USAGE, "\"%s\" is not a session name", name);
    char path[3400];
    snprintf(path, sizeof path, "%s/sessions/%s", dir, name);
    int lock = lock_store(dir, 1);
    int rc = unlink(path);
    unlock_store(lock);
    if (rc != 0)
        return sol_fail(err, errno == ENOENT ? SOL_ERR_USAGE : SOL_ERR_RUNTIME, "%s: %s", path,
                        errno == ENOENT ? "no such session" : strerror(errno));
    return 0;
}

void sol_kv_store_remove(const char *dir)
{
    const char *sub[] = {"segments", "sessions"};
    char path[3400];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, sub[i]);
        DIR *d = opendir(path);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            char file[3700];
            snprintf(file, sizeof file, "%s/%.255s", path, de->d_name);
            if (de->d_name[0] != '.')
                unlink(file);
        }
        if (d)
            closedir(d);
        rmdir(path);
    }
    snprintf(path, sizeof path, "%s/lock", dir);
    unlink(path);
    rmdir(dir);
}
