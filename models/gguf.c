/* GGUF reader: maps the file read-only and validates every count, length,
 * shape and offset against the mapping before anything points into it.
 *
 * Layout (little-endian; see gguf.h for the types):
 *   header   "GGUF", u32 version (2 or 3), u64 tensor count, u64 key count
 *   metadata per key: string key, u32 value type, value
 *   tensors  per tensor: string name, u32 n_dims, u64 dims[n_dims],
 *            u32 ggml type, u64 offset (relative to the data section)
 *   data     at the next multiple of general.alignment (u32, default 32)
 * A string is a u64 byte length and the bytes (no NUL). An array is a u32
 * element type, a u64 count and the elements. Arrays of arrays are rejected:
 * no writer we know emits them and nothing in sol would read them.
 *
 * sol_gguf_kv.value points at the raw value in the mapping: the u64 length
 * for a string, the first element for an array (arr_type and arr_count hold
 * the array header). String arrays are checked in one linear pass at open;
 * sol_gguf_arr_str walks from the last element it returned for that key, so
 * reading a vocabulary in order costs O(1) per element. That cache makes
 * sol_gguf_arr_str unsafe to call concurrently on one sol_gguf. */
#include "models/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/dtype.h"
#include "util/quote.h"
#include "util/hash.h"
#include "util/file.h"

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32
/* Smallest possible encodings, used to reject counts that cannot fit in the
 * file before allocating for them. A key is a length, at least one byte, a
 * type and a value of at least one byte; a tensor info is a name length, an
 * n_dims, at least one dim, a type and an offset. */
#define MIN_KV_BYTES (8 + 1 + 4 + 1)
#define MIN_TENSOR_BYTES (8 + 4 + 8 + 4 + 8)

/* Position of the element of a string array that was returned last. */
struct arr_pos {
    uint64_t index;
    const uint8_t *p; /* its u64 length; NULL: nothing cached */
};

/* Open-addressing name table: slots hold an index + 1, 0 is empty. */
struct name_table {
    size_t *slots;
    size_t mask;
};

struct sol_gguf_priv {
    struct name_table keys;
    struct name_table tensors;
    struct arr_pos *arr_pos; /* one per key */
};

/* ---- little-endian decoding and a bounds-checked cursor ------------ */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

typedef struct cursor {
    const uint8_t *base;
    size_t pos;
    size_t size;
} cursor;

static size_t cur_left(const cursor *c) { return c->size - c->pos; }

static int cur_u32(cursor *c, uint32_t *v)
{
    if (cur_left(c) < 4)
        return -1;
    *v = rd32(c->base + c->pos);
    c->pos += 4;
    return 0;
}

static int cur_u64(cursor *c, uint64_t *v)
{
    if (cur_left(c) < 8)
        return -1;
    *v = rd64(c->base + c->pos);
    c->pos += 8;
    return 0;
}

/* 0; -1 when the length itself is cut off; -2 when the bytes are (s->len
 * then holds the length read and the cursor stands after it). */
static int cur_str(cursor *c, sol_gguf_str *s)
{
    if (cur_u64(c, &s->len))
        return -1;
    if (s->len > cur_left(c))
        return -2;
    s->ptr = (const char *)c->base + c->pos;
    c->pos += (size_t)s->len;
    return 0;
}

/* ---- names and messages ----------------------------------------------- */

static const char *const type_names[] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

/* Size of one value of a fixed-size type; 0 for string, array, unknown. */
static size_t type_size(uint32_t t)
{
    switch (t) {
    case SOL_GGUF_U8: case SOL_GGUF_I8: case SOL_GGUF_BOOL: return 1;
    case SOL_GGUF_U16: case SOL_GGUF_I16: return 2;
    case SOL_GGUF_U32: case SOL_GGUF_I32: case SOL_GGUF_F32: return 4;
    case SOL_GGUF_U64: case SOL_GGUF_I64: case SOL_GGUF_F64: return 8;
    default: return 0;
    }
}

/* "u32", "array of string", "type 13". */
static const char *kv_type_desc(const sol_gguf_kv *kv, char *buf, size_t cap)
{
    uint32_t t = kv->type == SOL_GGUF_ARRAY ? kv->arr_type : kv->type;
    const char *name = t < sizeof type_names / sizeof type_names[0] ? type_names[t] : NULL;
    const char *pre = kv->type == SOL_GGUF_ARRAY ? "array of " : "";
    if (name)
        snprintf(buf, cap, "%s%s", pre, name);
    else
        snprintf(buf, cap, "%stype %" PRIu32, pre, t);
    return buf;
}


static int fail(const sol_gguf *g, sol_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fails with SOL_ERR_RUNTIME and "PATH: message". */
static int fail(const sol_gguf *g, sol_err *err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sol_fail(err, SOL_ERR_RUNTIME, "%s: %s", g->path, msg);
}

/* Failure of cur_str (rc -1 or -2) while reading the thing `where` names. */
static int str_fail(const sol_gguf *g, sol_err *err, const cursor *c, int rc,
                    const sol_gguf_str *s, const char *where)
{
    if (rc == -2)
        return fail(g, err, "truncated in %s (string of %" PRIu64 " bytes, %zu left)", where, s->len,
                    cur_left(c));
    return fail(g, err, "truncated in %s", where);
}

/* ---- name tables ------------------------------------------------------ */

static uint64_t hash_name(const char *p, uint64_t len)
{
    return sol_fnv1a(SOL_FNV1A_INIT, p, (size_t)len);
}

static int table_init(struct name_table *t, uint64_t n)
{
    size_t cap = 8;
    while (cap < 2 * n) /* n is bounded by the file size, so 2n fits */
        cap *= 2;
    t->slots = calloc(cap, sizeof *t->slots);
    t->mask = cap - 1;
    return t->slots ? 0 : -1;
}

static sol_gguf_str key_at(const sol_gguf *g, size_t i) { return g->kv[i].key; }
static sol_gguf_str tensor_at(const sol_gguf *g, size_t i) { return g->tensors[i].name; }

/* The slot holding name, or the empty slot where it would go. The table is
 * at most half full, so the probe ends. */
static size_t *table_slot(const sol_gguf *g, const struct name_table *t,
                          sol_gguf_str (*name_at)(const sol_gguf *, size_t), const char *p, uint64_t len)
{
    for (size_t i = (size_t)hash_name(p, len) & t->mask;; i = (i + 1) & t->mask) {
        size_t s = t->slots[i];
        if (s == 0)
            return &t->slots[i];
        sol_gguf_str n = name_at(g, s - 1);
        if (n.len == len && memcmp(n.ptr, p, (size_t)len) == 0)
            return &t->slots[i];
    }
}

/* ---- parsing ---------------------------------------------------------- */

static int parse_header(sol_gguf *g, cursor *c, sol_err *err)
{
    if (g->size < 4)
        return fail(g, err, "not a GGUF file (only %zu bytes)", g->size);
    if (memcmp(c->base, "GGUF", 4) != 0) {
        sol_qbuf q;
        return fail(g, err, "not a GGUF file (magic %s)", sol_quote(&q, (const char *)c->base, 4));
    }
    c->pos = 4;
    if (cur_u32(c, &g->version))
        return fail(g, err, "truncated in header");
    if (g->version != 2 && g->version != 3) {
        uint32_t v = g->version;
        uint32_t swapped = v >> 24 | (v >> 8 & 0xff00) | (v & 0xff00) << 8 | (v & 0xff) << 24;
        if (swapped == 2 || swapped == 3)
            return fail(g, err, "unsupported GGUF version %" PRIu32 " (a big-endian file? sol reads "
                        "little-endian versions 2 and 3)", v);
        return fail(g, err, "unsupported GGUF version %" PRIu32 " (sol reads versions 2 and 3)", v);
    }
    if (cur_u64(c, &g->n_tensors) || cur_u64(c, &g->n_kv))
        return fail(g, err, "truncated in header");

    size_t left = cur_left(c);
    if (g->n_kv > left / MIN_KV_BYTES)
        return fail(g, err, "metadata key count %" PRIu64 " cannot fit in the remaining %zu bytes",
                    g->n_kv, left);
    if (g->n_tensors > left / MIN_TENSOR_BYTES)
        return fail(g, err, "tensor count %" PRIu64 " cannot fit in the remaining %zu bytes",
                    g->n_tensors, left);
    if (g->n_kv * MIN_KV_BYTES + g->n_tensors * MIN_TENSOR_BYTES > left)
        return fail(g, err, "%" PRIu64 " metadata keys and %" PRIu64 " tensors cannot fit in the "
                    "remaining %zu bytes", g->n_kv, g->n_tensors, left);
    return SOL_OK;
}

/* Allocates for the counts parse_header has bounded by the file size. */
static int alloc_tables(sol_gguf *g, sol_err *err)
{
    struct sol_gguf_priv *pv = g->priv;
    int bad = table_init(&pv->keys, g->n_kv) || table_init(&pv->tensors, g->n_tensors);
    if (!bad && g->n_kv) {
        g->kv = calloc((size_t)g->n_kv, sizeof *g->kv);
        pv->arr_pos = calloc((size_t)g->n_kv, sizeof *pv->arr_pos);
        bad = !g->kv || !pv->arr_pos;
    }
    if (!bad && g->n_tensors) {
        g->tensors = calloc((size_t)g->n_tensors, sizeof *g->tensors);
        bad = !g->tensors;
    }
    if (bad)
        return fail(g, err, "out of memory for %" PRIu64 " metadata keys and %" PRIu64 " tensors",
                    g->n_kv, g->n_tensors);
    return SOL_OK;
}

/* Checks n values of type t at the cursor and steps over them. `where`
 * names the key; in_array says whether they are array elements. */
static int parse_values(const sol_gguf *g, cursor *c, uint32_t t, uint64_t n, int in_array,
                        const char *where, sol_err *err)
{
    size_t size = t == SOL_GGUF_STRING ? 8 : type_size(t);
    if (size == 0)
        return fail(g, err, "%s: unknown %s type %" PRIu32, where, in_array ? "array element" : "value", t);
    if (n > cur_left(c) / size) {
        if (!in_array)
            return fail(g, err, "truncated in %s", where);
        return fail(g, err, "%s: %" PRIu64 " %s elements cannot fit in the remaining %zu bytes", where, n,
                    type_names[t], cur_left(c));
    }
    if (t == SOL_GGUF_STRING) {
        for (uint64_t i = 0; i < n; i++) {
            sol_gguf_str s;
            int rc = cur_str(c, &s);
            if (rc) {
                char at[224];
                if (!in_array)
                    return str_fail(g, err, c, rc, &s, where);
                snprintf(at, sizeof at, "%s, element %" PRIu64, where, i);
                return str_fail(g, err, c, rc, &s, at);
            }
        }
        return SOL_OK;
    }
    const uint8_t *p = c->base + c->pos;
    c->pos += (size_t)n * size;
    if (t == SOL_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (p[i] > 1) {
                if (in_array)
                    return fail(g, err, "%s: element %" PRIu64 ": bool value %u is not 0 or 1", where, i,
                                p[i]);
                return fail(g, err, "%s: bool value %u is not 0 or 1", where, p[i]);
            }
    return SOL_OK;
}

static int parse_kvs(sol_gguf *g, cursor *c, sol_err *err)
{
    for (uint64_t i = 0; i < g->n_kv; i++) {
        sol_gguf_kv *kv = &g->kv[i];
        char where[160];
        sol_qbuf q;

        snprintf(where, sizeof where, "metadata key %" PRIu64, i);
        int rc = cur_str(c, &kv->key);
        if (rc)
            return str_fail(g, err, c, rc, &kv->key, where);
        if (kv->key.len == 0)
            return fail(g, err, "%s has an empty name", where);
        snprintf(where, sizeof where, "metadata key %" PRIu64 " (%s)", i, sol_quote(&q, kv->key.ptr, kv->key.len));

        size_t *slot = table_slot(g, &g->priv->keys, key_at, kv->key.ptr, kv->key.len);
        if (*slot)
            return fail(g, err, "duplicate metadata key %s (keys %zu and %" PRIu64 ")", q.s, *slot - 1, i);
        *slot = (size_t)i + 1;

        if (cur_u32(c, &kv->type))
            return fail(g, err, "truncated in %s", where);
        if (kv->type == SOL_GGUF_ARRAY) {
            if (cur_u32(c, &kv->arr_type) || cur_u64(c, &kv->arr_count))
                return fail(g, err, "truncated in %s", where);
            if (kv->arr_type == SOL_GGUF_ARRAY)
                return fail(g, err, "%s: arrays of arrays are not supported", where);
            kv->value = c->base + c->pos;
            rc = parse_values(g, c, kv->arr_type, kv->arr_count, 1, where, err);
        } else {
            kv->value = c->base + c->pos;
            rc = parse_values(g, c, kv->type, 1, 0, where, err);
        }
        if (rc)
            return rc;
    }
    return SOL_OK;
}

static int parse_alignment(sol_gguf *g, sol_err *err)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const sol_gguf_kv *kv = sol_gguf_find(g, "general.alignment");
    if (!kv)
        return SOL_OK;
    if (kv->type != SOL_GGUF_U32) {
        char d[48];
        return fail(g, err, "general.alignment has type %s, expected u32", kv_type_desc(kv, d, sizeof d));
    }
    uint32_t a = rd32(kv->value);
    if (a == 0 || (a & (a - 1)) != 0)
        return fail(g, err, "general.alignment %" PRIu32 " is not a power of two", a);
    g->alignment = a;
    return SOL_OK;
}

/* *out = a * b; -1 on overflow. */
static int mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

static const char *dims_str(const sol_gguf_tensor *t, char *buf, size_t cap)
{
    size_t n = 0;
    for (uint32_t d = 0; d < t->n_dims && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRIu64, d ? " x " : "", t->dims[d]);
    return buf;
}

/* Element count and, for a type sol knows, byte size of a tensor whose
 * name, n_dims and dims have been read. */
static int check_shape(const sol_gguf *g, sol_gguf_tensor *t, const char *name, sol_err *err)
{
    char dims[128];
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->dims[d] == 0)
            return fail(g, err, "tensor %s: dimension %" PRIu32 " is zero", name, d);
        if (mul_u64(n, t->dims[d], &n))
            return fail(g, err, "tensor %s: element count of %s overflows 64 bits", name,
                        dims_str(t, dims, sizeof dims));
    }
    t->n_elems = n;

    sol_dtype dt;
    if (sol_dtype_from_ggml(t->ggml_type, &dt) != 0)
        return SOL_OK; /* unknown type: metadata only */
    uint64_t block = (uint64_t)sol_dtype_block_elems(dt);
    double bb = sol_dtype_block_bytes(dt);
    if (block == 0 || bb < 1 || bb != (double)(uint64_t)bb)
        return SOL_OK; /* not a whole-byte block layout: treat as unknown */
    if (t->dims[0] % block != 0) {
        char tb[32];
        return fail(g, err, "tensor %s: first dimension %" PRIu64 " is not a multiple of the %s block "
                    "size %" PRIu64, name, t->dims[0], sol_ggml_type_name(t->ggml_type, tb, sizeof tb),
                    block);
    }
    if (mul_u64(n / block, (uint64_t)bb, &t->n_bytes))
        return fail(g, err, "tensor %s: byte size of %s overflows 64 bits", name,
                    dims_str(t, dims, sizeof dims));
    return SOL_OK;
}

static int parse_tensors(sol_gguf *g, cursor *c, sol_err *err)
{
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        sol_gguf_tensor *t = &g->tensors[i];
        char where[160];
        sol_qbuf q;

        snprintf(where, sizeof where, "tensor info %" PRIu64, i);
        int rc = cur_str(c, &t->name);
        if (rc)
            return str_fail(g, err, c, rc, &t->name, where);
        const char *name = sol_quote(&q, t->name.ptr, t->name.len);
        snprintf(where, sizeof where, "tensor info %" PRIu64 " (%s)", i, name);

        size_t *slot = table_slot(g, &g->priv->tensors, tensor_at, t->name.ptr, t->name.len);
        if (*slot)
            return fail(g, err, "duplicate tensor name %s (tensors %zu and %" PRIu64 ")", name, *slot - 1, i);
        *slot = (size_t)i + 1;

        if (cur_u32(c, &t->n_dims))
            return fail(g, err, "truncated in %s", where);
        if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
            return fail(g, err, "tensor %s: %" PRIu32 " dimensions (must be 1 to %d)", name, t->n_dims,
                        GGUF_MAX_DIMS);
        for (uint32_t d = 0; d < t->n_dims; d++)
            if (cur_u64(c, &t->dims[d]))
                return fail(g, err, "truncated in %s", where);
        for (uint32_t d = t->n_dims; d < GGUF_MAX_DIMS; d++)
            t->dims[d] = 1;
        if (cur_u32(c, &t->ggml_type) || cur_u64(c, &t->offset))
            return fail(g, err, "truncated in %s", where);
        rc = check_shape(g, t, name, err);
        if (rc)
            return rc;
    }
    return SOL_OK;
}

/* Finds the data section after the tensor infos and points each tensor of a
 * known type at its bytes, which must lie inside the file. */
static int place_data(sol_gguf *g, const cursor *c, sol_err *err)
{
    uint64_t start = ((uint64_t)c->pos + g->alignment - 1) / g->alignment * g->alignment;
    if (start > g->size) {
        if (g->n_tensors > 0)
            return fail(g, err, "truncated before the data section (which starts at %" PRIu64 "; file size %zu)",
                        start, g->size);
        start = g->size;
    }
    g->data = g->map + start;
    uint64_t avail = g->size - start;

    for (uint64_t i = 0; i < g->n_tensors; i++) {
        sol_gguf_tensor *t = &g->tensors[i];
        sol_qbuf q;
        if (t->offset % g->alignment != 0)
            return fail(g, err, "tensor %s: offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                        sol_quote(&q, t->name.ptr, t->name.len), t->offset, g->alignment);
        if (t->n_bytes == 0)
            continue;
        if (t->offset > avail || t->n_bytes > avail - t->offset)
            return fail(g, err, "tensor %s: data [offset %" PRIu64 ", %" PRIu64 " bytes] extends past end "
                        "of file (data section at %" PRIu64 ", size %zu)", sol_quote(&q, t->name.ptr, t->name.len),
                        t->offset, t->n_bytes, start, g->size);
        t->data = g->data + t->offset;
    }
    return SOL_OK;
}

static int parse(sol_gguf *g, sol_err *err)
{
    cursor c = {g->map, 0, g->size};
    int rc = parse_header(g, &c, err);
    if (rc == SOL_OK)
        rc = alloc_tables(g, err);
    if (rc == SOL_OK)
        rc = parse_kvs(g, &c, err);
    if (rc == SOL_OK)
        rc = parse_alignment(g, err);
    if (rc == SOL_OK)
        rc = parse_tensors(g, &c, err);
    if (rc == SOL_OK)
        rc = place_data(g, &c, err);
    return rc;
}

/* ---- open / close ----------------------------------------------------- */

int sol_gguf_open(sol_gguf *g, const char *path, sol_err *err)
{
    struct stat st;
    int rc;

    memset(g, 0, sizeof *g);
    g->fd = -1;
    snprintf(g->path, sizeof g->path, "%s", path);
    g->priv = calloc(1, sizeof *g->priv);
    if (!g->priv) {
        rc = fail(g, err, "out of memory");
        goto fail;
    }
    sol_err why = {0};
    g->fd = sol_open_regular(path, &why); /* never blocks on a FIFO */
    if (g->fd < 0) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s", why.msg);
        goto fail;
    }
    if (fstat(g->fd, &st) != 0) {
        rc = fail(g, err, "cannot stat: %s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = fail(g, err, "not a regular file");
        goto fail;
    }
    if (st.st_size == 0) {
        rc = fail(g, err, "not a GGUF file (empty)");
        goto fail;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = fail(g, err, "file too large to map");
        goto fail;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, g->fd, 0);
    if (map == MAP_FAILED) {
        rc = fail(g, err, "cannot map: %s", strerror(errno));
        goto fail;
    }
    g->map = map;
    g->size = (size_t)st.st_size;
    rc = parse(g, err);
    if (rc != SOL_OK)
        goto fail;
    return SOL_OK;

fail:
    sol_gguf_close(g);
    return rc;
}

void sol_gguf_close(sol_gguf *g)
{
    if (!g)
        return;
    /* priv is set first by sol_gguf_open: without it nothing was opened (a
     * zeroed struct has fd 0, which is not ours to close). */
    if (g->priv) {
        if (g->map)
            munmap((void *)g->map, g->size);
        if (g->fd >= 0)
            close(g->fd);
        free(g->priv->keys.slots);
        free(g->priv->tensors.slots);
        free(g->priv->arr_pos);
        free(g->priv);
    }
    free(g->kv);
    free(g->tensors);
    memset(g, 0, sizeof *g);
    g->fd = -1;
}

/* ---- lookups ---------------------------------------------------------- */

const sol_gguf_kv *sol_gguf_find(const sol_gguf *g, const char *key)
{
    size_t len = strlen(key);
    if (g->priv && g->priv->keys.slots) {
        size_t s = *table_slot(g, &g->priv->keys, key_at, key, len);
        return s ? &g->kv[s - 1] : NULL;
    }
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key.len == len && memcmp(g->kv[i].key.ptr, key, len) == 0)
            return &g->kv[i];
    return NULL;
}

const sol_gguf_tensor *sol_gguf_find_tensor(const sol_gguf *g, const char *name)
{
    size_t len = strlen(name);
    if (g->priv && g->priv->tensors.slots) {
        size_t s = *table_slot(g, &g->priv->tensors, tensor_at, name, len);
        return s ? &g->tensors[s - 1] : NULL;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].name.len == len && memcmp(g->tensors[i].name.ptr, name, len) == 0)
            return &g->tensors[i];
    return NULL;
}

int sol_gguf_str_eq(sol_gguf_str s, const char *z)
{
    size_t len = strlen(z);
    return s.len == len && (len == 0 || memcmp(s.ptr, z, len) == 0);
}

/* ---- typed access ----------------------------------------------------- */

/* Integer value of type t at p: 0; -1 when t is not an integer type; -2
 * when it is a u64 above INT64_MAX. */
static int int_value(uint32_t t, const uint8_t *p, int64_t *out)
{
    uint64_t u;
    switch (t) {
    case SOL_GGUF_U8: *out = p[0]; return 0;
    case SOL_GGUF_I8: *out = (int8_t)p[0]; return 0;
    case SOL_GGUF_U16: *out = rd16(p); return 0;
    case SOL_GGUF_I16: *out = (int16_t)rd16(p); return 0;
    case SOL_GGUF_U32: *out = rd32(p); return 0;
    case SOL_GGUF_I32: *out = (int32_t)rd32(p); return 0;
    case SOL_GGUF_U64:
        u = rd64(p);
        if (u > INT64_MAX)
            return -2;
        *out = (int64_t)u;
        return 0;
    case SOL_GGUF_I64: {
        int64_t s;
        u = rd64(p);
        memcpy(&s, &u, sizeof s);
        *out = s;
        return 0;
    }
    default: return -1;
    }
}

/* Numeric value of type t at p: 0, or -1 when t is not numeric. */
static int num_value(uint32_t t, const uint8_t *p, double *out)
{
    int64_t i;
    int rc = int_value(t, p, &i);
    if (rc == 0) {
        *out = (double)i;
        return 0;
    }
    if (rc == -2) {
        *out = (double)rd64(p);
        return 0;
    }
    if (t == SOL_GGUF_F32) {
        uint32_t u = rd32(p);
        float f;
        memcpy(&f, &u, sizeof f);
        *out = f;
        return 0;
    }
    if (t == SOL_GGUF_F64) {
        uint64_t u = rd64(p);
        memcpy(out, &u, sizeof *out);
        return 0;
    }
    return -1;
}

static int wrong_type(const sol_gguf *g, const sol_gguf_kv *kv, const char *want, sol_err *err)
{
    char d[48];
    sol_qbuf q;
    return fail(g, err, "key %s has type %s, expected %s", sol_quote(&q, kv->key.ptr, kv->key.len),
                kv_type_desc(kv, d, sizeof d), want);
}

int sol_gguf_get_i64(const sol_gguf *g, const char *key, int64_t *out, sol_err *err)
{
    const sol_gguf_kv *kv = sol_gguf_find(g, key);
    if (!kv)
        return -1;
    int rc = kv->type == SOL_GGUF_ARRAY ? -1 : int_value(kv->type, kv->value, out);
    if (rc == -1)
        return wrong_type(g, kv, "an integer", err);
    if (rc == -2) {
        sol_qbuf q;
        return fail(g, err, "key %s: value %" PRIu64 " does not fit in a signed 64-bit integer",
                    sol_quote(&q, kv->key.ptr, kv->key.len), rd64(kv->value));
    }
    return SOL_OK;
}

int sol_gguf_get_f64(const sol_gguf *g, const char *key, double *out, sol_err *err)
{
    const sol_gguf_kv *kv = sol_gguf_find(g, key);
    if (!kv)
        return -1;
    if (kv->type == SOL_GGUF_ARRAY || num_value(kv->type, kv->value, out) != 0)
        return wrong_type(g, kv, "a number", err);
    return SOL_OK;
}

int sol_gguf_get_bool(const sol_gguf *g, const char *key, int *out, sol_err *err)
{
    const sol_gguf_kv *kv = sol_gguf_find(g, key);
    if (!kv)
        return -1;
    if (kv->type != SOL_GGUF_BOOL)
        return wrong_type(g, kv, "bool", err);
    *out = kv->value[0];
    return SOL_OK;
}

int sol_gguf_get_str(const sol_gguf *g, const char *key, sol_gguf_str *out, sol_err *err)
{
    const sol_gguf_kv *kv = sol_gguf_find(g, key);
    if (!kv)
        return -1;
    if (kv->type != SOL_GGUF_STRING)
        return wrong_type(g, kv, "string", err);
    out->len = rd64(kv->value);
    out->ptr = (const char *)kv->value + 8;
    return SOL_OK;
}

int sol_gguf_arr_str(const sol_gguf *g, const sol_gguf_kv *kv, uint64_t i, sol_gguf_str *out)
{
    if (!kv || kv->type != SOL_GGUF_ARRAY || kv->arr_type != SOL_GGUF_STRING || i >= kv->arr_count)
        return -1;
    struct arr_pos *cache = NULL;
    if (g && g->priv && g->priv->arr_pos && (uintptr_t)kv >= (uintptr_t)g->kv &&
        (uintptr_t)kv < (uintptr_t)(g->kv + g->n_kv))
        cache = &g->priv->arr_pos[kv - g->kv];

    const uint8_t *p = kv->value;
    uint64_t k = 0;
    if (cache && cache->p && cache->index <= i) {
        p = cache->p;
        k = cache->index;
    }
    for (; k < i; k++) /* lengths were checked at open */
        p += 8 + rd64(p);
    if (cache) {
        cache->index = i;
        cache->p = p;
    }
    out->len = rd64(p);
    out->ptr = (const char *)p + 8;
    return 0;
}

int sol_gguf_arr_i64(const sol_gguf_kv *kv, uint64_t i, int64_t *out)
{
    if (!kv || kv->type != SOL_GGUF_ARRAY || i >= kv->arr_count)
        return -1;
    size_t size = type_size(kv->arr_type);
    if (size == 0)
        return -1;
    return int_value(kv->arr_type, kv->value + i * size, out) == 0 ? 0 : -1;
}

int sol_gguf_arr_f64(const sol_gguf_kv *kv, uint64_t i, double *out)
{
    if (!kv || kv->type != SOL_GGUF_ARRAY || i >= kv->arr_count)
        return -1;
    size_t size = type_size(kv->arr_type);
    if (size == 0)
        return -1;
    return num_value(kv->arr_type, kv->value + i * size, out);
}
