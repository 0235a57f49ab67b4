/* GGUF v3 writer. Keys and tensors accumulate in memory; write() checks
 * them, lays out the file and writes it to PATH.tmp, which it renames over
 * PATH only once everything is on disk, so PATH never holds half a file.
 *
 * Keys are written in the order they were first set; setting a key again
 * replaces its value in place. Tensor data follows the tensor infos at the
 * next multiple of the alignment (general.alignment when set with
 * sol_gguf_set_u32, else 32; the key is written only when set), each
 * tensor's data starts at a multiple of it, and the gaps are zeros. The
 * file ends with the last tensor's bytes (no trailing padding). A tensor
 * added with data NULL is written as zeros.
 *
 * The setters return nothing: the first problem they meet (out of memory,
 * a bad argument) is kept and reported by sol_gguf_writer_write. */
#include "models/gguf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/dtype.h"

#define GGUF_VERSION 3
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

/* Growable byte buffer; oom sticks once an allocation failed. */
struct buf {
    uint8_t *p;
    size_t len, cap;
    int oom;
};

struct wkv {
    char *key;
    uint32_t type;
    struct buf val; /* the value exactly as it is written after the type */
};

struct wtensor {
    char *name;
    uint32_t n_dims;
    uint64_t dims[GGUF_MAX_DIMS];
    uint32_t ggml_type;
    const void *data;
    sol_gguf_fill_fn fill; /* or data produced at write time */
    void *fill_user;
    uint64_t n_bytes;
    uint64_t offset; /* set by layout() */
};

struct sol_gguf_writer {
    struct wkv *kv;
    size_t n_kv, cap_kv;
    struct wtensor *t;
    size_t n_t, cap_t;
    char problem[256]; /* first setter failure; "" when none */
};

/* ---- encoding ------------------------------------------------------- */

static void buf_put(struct buf *b, const void *src, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u8(struct buf *b, uint8_t v) { buf_put(b, &v, 1); }

static void put_u32(struct buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    buf_put(b, x, sizeof x);
}

static void put_u64(struct buf *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_f32(struct buf *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    put_u32(b, u);
}

static void put_str(struct buf *b, const char *s)
{
    size_t len = strlen(s);
    put_u64(b, len);
    buf_put(b, s, len);
}

/* ---- building ------------------------------------------------------- */

static void note(sol_gguf_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keeps the first problem for sol_gguf_writer_write to report. */
static void note(sol_gguf_writer *w, const char *fmt, ...)
{
    if (w->problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->problem, sizeof w->problem, fmt, ap);
    va_end(ap);
}

/* Makes room for one more element of size elem in *arr; -1 when out of
 * memory. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    if (ncap > SIZE_MAX / elem)
        return -1;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

sol_gguf_writer *sol_gguf_writer_new(void) { return calloc(1, sizeof(sol_gguf_writer)); }

void sol_gguf_writer_free(sol_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val.p);
    }
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

static struct wkv *find_kv(sol_gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0)
            return &w->kv[i];
    return NULL;
}

/* The entry for a new key, appended; NULL when out of memory. */
static struct wkv *add_kv(sol_gguf_writer *w, const char *key)
{
    char *k = strdup(key);
    if (!k || grow((void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv)) {
        free(k);
        return NULL;
    }
    struct wkv *kv = &w->kv[w->n_kv++];
    *kv = (struct wkv){.key = k};
    return kv;
}

/* Sets key to the encoded value val (taking it over), replacing any value
 * it had. */
static void set_kv(sol_gguf_writer *w, const char *key, uint32_t type, struct buf *val)
{
    struct wkv *kv = NULL;
    if (w && key && *key && !val->oom) {
        kv = find_kv(w, key);
        if (!kv)
            kv = add_kv(w, key);
    }
    if (!kv) {
        if (w && (!key || !*key))
            note(w, "empty metadata key");
        else if (w)
            note(w, "out of memory for metadata key \"%s\"", key);
        free(val->p);
        return;
    }
    free(kv->val.p);
    kv->type = type;
    kv->val = *val;
}

void sol_gguf_set_u32(sol_gguf_writer *w, const char *key, uint32_t v)
{
    struct buf b = {0};
    put_u32(&b, v);
    set_kv(w, key, SOL_GGUF_U32, &b);
}

void sol_gguf_set_i32(sol_gguf_writer *w, const char *key, int32_t v)
{
    struct buf b = {0};
    put_u32(&b, (uint32_t)v);
    set_kv(w, key, SOL_GGUF_I32, &b);
}

void sol_gguf_set_u64(sol_gguf_writer *w, const char *key, uint64_t v)
{
    struct buf b = {0};
    put_u64(&b, v);
    set_kv(w, key, SOL_GGUF_U64, &b);
}

void sol_gguf_set_f32(sol_gguf_writer *w, const char *key, float v)
{
    struct buf b = {0};
    put_f32(&b, v);
    set_kv(w, key, SOL_GGUF_F32, &b);
}

void sol_gguf_set_bool(sol_gguf_writer *w, const char *key, int v)
{
    struct buf b = {0};
    put_u8(&b, v ? 1 : 0);
    set_kv(w, key, SOL_GGUF_BOOL, &b);
}

void sol_gguf_set_str(sol_gguf_writer *w, const char *key, const char *v)
{
    struct buf b = {0};
    if (!v) {
        if (w)
            note(w, "metadata key \"%s\": NULL string", key ? key : "");
        return;
    }
    put_str(&b, v);
    set_kv(w, key, SOL_GGUF_STRING, &b);
}

/* Array header; 0, or -1 (problem noted) when v is NULL for a nonempty array. */
static int arr_begin(sol_gguf_writer *w, const char *key, const void *v, uint64_t n, uint32_t type,
                     struct buf *b)
{
    if (n > 0 && !v) {
        if (w)
            note(w, "metadata key \"%s\": NULL array", key ? key : "");
        return -1;
    }
    put_u32(b, type);
    put_u64(b, n);
    return 0;
}

void sol_gguf_set_arr_str(sol_gguf_writer *w, const char *key, const char *const *v, uint64_t n)
{
    struct buf b = {0};
    if (arr_begin(w, key, v, n, SOL_GGUF_STRING, &b))
        return;
    for (uint64_t i = 0; i < n; i++) {
        if (!v[i]) {
            if (w)
                note(w, "metadata key \"%s\": element %" PRIu64 " is NULL", key ? key : "", i);
            free(b.p);
            return;
        }
        put_str(&b, v[i]);
    }
    set_kv(w, key, SOL_GGUF_ARRAY, &b);
}

void sol_gguf_set_arr_i32(sol_gguf_writer *w, const char *key, const int32_t *v, uint64_t n)
{
    struct buf b = {0};
    if (arr_begin(w, key, v, n, SOL_GGUF_I32, &b))
        return;
    for (uint64_t i = 0; i < n; i++)
        put_u32(&b, (uint32_t)v[i]);
    set_kv(w, key, SOL_GGUF_ARRAY, &b);
}

void sol_gguf_set_arr_f32(sol_gguf_writer *w, const char *key, const float *v, uint64_t n)
{
    struct buf b = {0};
    if (arr_begin(w, key, v, n, SOL_GGUF_F32, &b))
        return;
    for (uint64_t i = 0; i < n; i++)
        put_f32(&b, v[i]);
    set_kv(w, key, SOL_GGUF_ARRAY, &b);
}

void sol_gguf_add_tensor(sol_gguf_writer *w, const char *name, uint32_t n_dims,
                         const uint64_t *dims, uint32_t ggml_type, const void *data, uint64_t n_bytes)
{
    if (!w)
        return;
    if (!name) {
        note(w, "tensor with a NULL name");
        return;
    }
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS || !dims) {
        note(w, "tensor \"%s\": %" PRIu32 " dimensions (must be 1 to %d)", name, n_dims, GGUF_MAX_DIMS);
        return;
    }
    char *copy = strdup(name);
    if (!copy || grow((void **)&w->t, &w->cap_t, w->n_t, sizeof *w->t)) {
        free(copy);
        note(w, "out of memory for tensor \"%s\"", name);
        return;
    }
    struct wtensor *t = &w->t[w->n_t++];
    *t = (struct wtensor){.name = copy, .n_dims = n_dims, .ggml_type = ggml_type, .data = data,
                          .n_bytes = n_bytes};
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t->dims[d] = d < n_dims ? dims[d] : 1;
}

void sol_gguf_add_tensor_fill(sol_gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *dims,
                              uint32_t ggml_type, uint64_t n_bytes, sol_gguf_fill_fn fill, void *user)
{
    size_t before = w ? w->n_t : 0;
    sol_gguf_add_tensor(w, name, n_dims, dims, ggml_type, NULL, n_bytes);
    if (w && w->n_t > before) {
        w->t[w->n_t - 1].fill = fill;
        w->t[w->n_t - 1].fill_user = user;
    }
}

/* ---- writing -------------------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
    const struct wtensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* *out = roundup(v, align); -1 on overflow. */
static int align_up(uint64_t v, uint64_t align, uint64_t *out)
{
    uint64_t r = v % align;
    if (r == 0) {
        *out = v;
        return 0;
    }
    if (v > UINT64_MAX - (align - r))
        return -1;
    *out = v + (align - r);
    return 0;
}

static int get_alignment(sol_gguf_writer *w, const char *path, uint64_t *align, sol_err *err)
{
    *align = GGUF_DEFAULT_ALIGNMENT;
    const struct wkv *kv = find_kv(w, "general.alignment");
    if (!kv)
        return SOL_OK;
    if (kv->type != SOL_GGUF_U32)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: general.alignment must be a u32", path);
    const uint8_t *p = kv->val.p;
    uint32_t a = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if (a == 0 || (a & (a - 1)) != 0)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: general.alignment %" PRIu32 " is not a power of two",
                        path, a);
    *align = a;
    return SOL_OK;
}

/* Checks every tensor's shape and size and assigns the data offsets. */
static int layout(sol_gguf_writer *w, const char *path, uint64_t align, sol_err *err)
{
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        struct wtensor *t = &w->t[i];
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            if (t->dims[d] == 0)
                return sol_fail(err, SOL_ERR_RUNTIME, "%s: tensor \"%s\": dimension %" PRIu32 " is zero",
                                path, t->name, d);
            if (t->dims[d] > UINT64_MAX / n)
                return sol_fail(err, SOL_ERR_RUNTIME, "%s: tensor \"%s\": element count overflows",
                                path, t->name);
            n *= t->dims[d];
        }
        sol_dtype dt;
        if (sol_dtype_from_ggml(t->ggml_type, &dt) == 0) {
            uint64_t block = (uint64_t)sol_dtype_block_elems(dt);
            uint64_t bb = (uint64_t)sol_dtype_block_bytes(dt);
            char tb[32];
            const char *tn = sol_ggml_type_name(t->ggml_type, tb, sizeof tb);
            if (t->dims[0] % block != 0)
                return sol_fail(err, SOL_ERR_RUNTIME, "%s: tensor \"%s\": first dimension %" PRIu64
                                " is not a multiple of the %s block size %" PRIu64,
                                path, t->name, t->dims[0], tn, block);
            if (n / block > UINT64_MAX / bb || n / block * bb != t->n_bytes)
                return sol_fail(err, SOL_ERR_RUNTIME, "%s: tensor \"%s\": %" PRIu64 " bytes given, but %"
                                PRIu64 " %s elements need %" PRIu64, path, t->name, t->n_bytes, n, tn,
                                n / block * bb);
        }
        t->offset = off;
        if (t->n_bytes > UINT64_MAX - off || align_up(off + t->n_bytes, align, &off))
            return sol_fail(err, SOL_ERR_RUNTIME, "%s: tensor data exceeds 2^64 bytes", path);
    }

    if (w->n_t > 1) {
        const struct wtensor **sorted = malloc(w->n_t * sizeof *sorted);
        if (!sorted)
            return sol_fail(err, SOL_ERR_RUNTIME, "%s: out of memory", path);
        for (size_t i = 0; i < w->n_t; i++)
            sorted[i] = &w->t[i];
        qsort(sorted, w->n_t, sizeof *sorted, cmp_name);
        const char *dup = NULL;
        for (size_t i = 1; i < w->n_t && !dup; i++)
            if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
                dup = sorted[i]->name;
        int rc = dup ? sol_fail(err, SOL_ERR_RUNTIME, "%s: duplicate tensor name \"%s\"", path, dup)
                     : SOL_OK;
        free(sorted);
        return rc;
    }
    return SOL_OK;
}

/* Everything before the data section. */
static void encode_head(const sol_gguf_writer *w, struct buf *b)
{
    buf_put(b, "GGUF", 4);
    put_u32(b, GGUF_VERSION);
    put_u64(b, w->n_t);
    put_u64(b, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(b, w->kv[i].key);
        put_u32(b, w->kv[i].type);
        buf_put(b, w->kv[i].val.p, w->kv[i].val.len);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        put_str(b, t->name);
        put_u32(b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(b, t->dims[d]);
        put_u32(b, t->ggml_type);
        put_u64(b, t->offset);
    }
}

/* Writes n bytes from p, or zeros when p is NULL; errno is set on failure. */
static int write_bytes(FILE *f, const void *p, uint64_t n)
{
    static const uint8_t zeros[4096];
    if (p)
        return n == 0 || fwrite(p, 1, (size_t)n, f) == n ? 0 : -1;
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (fwrite(zeros, 1, k, f) != k)
            return -1;
        n -= k;
    }
    return 0;
}

static int write_file(const sol_gguf_writer *w, FILE *f, const struct buf *head, uint64_t align)
{
    if (write_bytes(f, head->p, head->len))
        return -1;
    if (w->n_t == 0)
        return 0;
    uint64_t start;
    if (align_up(head->len, align, &start) || write_bytes(f, NULL, start - head->len))
        return -1;
    uint64_t pos = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        if (write_bytes(f, NULL, t->offset - pos))
            return -1;
        if (t->fill) {
            void *buf = malloc(t->n_bytes ? (size_t)t->n_bytes : 1);
            int failed = !buf || t->fill(t->fill_user, t->name, buf, t->n_bytes) ||
                         write_bytes(f, buf, t->n_bytes);
            if (!buf)
                errno = ENOMEM;
            free(buf);
            if (failed)
                return -1;
        } else if (write_bytes(f, t->data, t->n_bytes)) {
            return -1;
        }
        pos = t->offset + t->n_bytes;
    }
    return 0;
}

int sol_gguf_writer_write(sol_gguf_writer *w, const char *path, sol_err *err)
{
    struct buf head = {0};
    char *tmp = NULL;
    FILE *f = NULL;
    int created = 0;
    uint64_t align;
    int rc;

    if (!w)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot write: out of memory", path);
    if (w->problem[0])
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot write: %s", path, w->problem);
    struct stat st; /* the file is renamed over the path: never over a device, FIFO or folder */
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: not a regular file; sol writes a new file or replaces a regular one",
                        path);
    rc = get_alignment(w, path, &align, err);
    if (rc == SOL_OK)
        rc = layout(w, path, align, err);
    if (rc != SOL_OK)
        goto done;
    encode_head(w, &head);
    size_t plen = strlen(path);
    tmp = malloc(plen + sizeof ".tmp");
    if (head.oom || !tmp) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot write: out of memory", path);
        goto done;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", sizeof ".tmp");

    f = fopen(tmp, "wb");
    if (!f) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    created = 1;
    errno = 0;
    if (write_file(w, f, &head, align) != 0 || fflush(f) != 0 ||
        (fsync(fileno(f)) != 0 && errno != EINVAL)) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot write: %s", tmp,
                      strerror(errno ? errno : EIO));
        goto done;
    }
    int closed = fclose(f);
    f = NULL;
    if (closed != 0) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot write: %s", tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot rename %s over it: %s", path, tmp,
                      strerror(errno));
        goto done;
    }
    created = 0;
    rc = SOL_OK;

done:
    if (f)
        fclose(f);
    if (created)
        remove(tmp);
    free(tmp);
    free(head.p);
    return rc;
}
