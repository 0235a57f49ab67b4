/* safetensors reader: maps each file read-only, parses the JSON header with
 * cJSON and validates every entry against the mapping before any pointer
 * goes into it.
 *
 * Layout: u64 little-endian N, N bytes of UTF-8 JSON, then the data section.
 * The JSON object maps each tensor name to {"dtype": "BF16", "shape": [..],
 * "data_offsets": [begin, end]} (offsets relative to the data section) and
 * may hold "__metadata__", an object of strings. A sharded checkpoint adds
 * model.safetensors.index.json: {"weight_map": {tensor name: shard file}}.
 *
 * Stricter than cJSON: the header must be valid UTF-8 without raw control
 * characters or \u0000, no object may repeat a key (cJSON keeps both),
 * integers must be exact in a double (below 2^53). Laxer than the reference
 * implementation, harmlessly: gaps between tensors and bytes after the last
 * are accepted (it wants the tensors to tile the data section; overlaps are
 * refused by both), and so is an integer written as 8.0 or 8e0, since cJSON
 * keeps only the value. */
#include "models/safetensors.h"
#include "util/quote.h"
#include "util/file.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"
/* Integers travel through cJSON as doubles: exact below 2^53. */
#define MAX_EXACT_INT 9007199254740992.0

/* One mapped file. Tensor names and metadata point into its header tree. */
struct st_file {
    char *path;
    const uint8_t *map;
    size_t size;
    cJSON *header;
    const cJSON *metadata; /* "__metadata__", or NULL */
};

struct sol_st_model {
    struct st_file *files;
    int n_files;
    sol_st_tensor *tensors; /* sorted by name once every file is read */
    int n_tensors, cap_tensors;
};

/* ---- dtypes ------------------------------------------------------------ */

static const struct {
    const char *name;
    int bits;
    int has_sol;
    sol_dtype sol;
} dtypes[] = {
    {"F32", 32, 1, SOL_DT_F32},   {"F16", 16, 1, SOL_DT_F16},      {"BF16", 16, 1, SOL_DT_BF16},
    {"F8_E4M3", 8, 1, SOL_DT_FP8}, {"F64", 64, 0, SOL_DT_F32},     {"I64", 64, 0, SOL_DT_F32},
    {"U64", 64, 0, SOL_DT_F32},   {"C64", 64, 0, SOL_DT_F32},      {"I32", 32, 0, SOL_DT_F32},
    {"U32", 32, 0, SOL_DT_F32},   {"I16", 16, 0, SOL_DT_F32},      {"U16", 16, 0, SOL_DT_F32},
    {"I8", 8, 0, SOL_DT_F32},     {"U8", 8, 0, SOL_DT_F32},        {"BOOL", 8, 0, SOL_DT_F32},
    {"F8_E5M2", 8, 0, SOL_DT_F32}, {"F8_E8M0", 8, 0, SOL_DT_F32},  {"F8_E4M3FNUZ", 8, 0, SOL_DT_F32},
    {"F8_E5M2FNUZ", 8, 0, SOL_DT_F32}, {"F6_E2M3", 6, 0, SOL_DT_F32}, {"F6_E3M2", 6, 0, SOL_DT_F32},
    {"F4", 4, 0, SOL_DT_F32},
};

/* ---- messages ------------------------------------------------------------ */


static int fail(sol_err *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fails with SOL_ERR_RUNTIME and "PATH: message". */
static int fail(sol_err *err, const char *path, const char *fmt, ...)
{
    char msg[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sol_fail(err, SOL_ERR_RUNTIME, "%s: %s", path, msg);
}

/* "[2, 3]" */
static const char *shape_str(const sol_st_tensor *t, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->n_dims && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, d ? ", " : "", t->shape[d]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
    return buf;
}

/* ---- JSON text ----------------------------------------------------------- */

static int is_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Offset of the first byte that breaks UTF-8 (overlong forms, surrogates and
 * code points above U+10FFFF included), is a control character JSON never
 * allows raw (below 0x20 except tab, LF, CR), or starts an escape cJSON would
 * misread: it turns a bad \u escape into a NUL, and a NUL (\u0000) would
 * silently cut a tensor name. len when there is none. */
static size_t bad_text_byte(const uint8_t *s, size_t len, const char **why)
{
    size_t i = 0;
    int in_string = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
                *why = "a control character";
                return i;
            }
            if (in_string && c == '\\' && i + 1 < len && s[i + 1] == 'u') {
                if (len - i < 6 || !is_hex(s[i + 2]) || !is_hex(s[i + 3]) || !is_hex(s[i + 4]) ||
                    !is_hex(s[i + 5])) {
                    *why = "a \\u escape without four hex digits";
                    return i;
                }
                if (memcmp(s + i + 2, "0000", 4) == 0) {
                    *why = "a NUL escape (\\u0000)";
                    return i;
                }
                i += 6;
                continue;
            }
            if (in_string && c == '\\' && i + 1 < len && s[i + 1] >= 0x20 && s[i + 1] < 0x7f) {
                i += 2; /* cJSON checks the other escapes itself */
                continue;
            }
            if (c == '"')
                in_string = !in_string;
            i++;
            continue;
        }
        int n;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            *why = "not valid UTF-8";
            return i;
        }
        if ((size_t)n > len - i - 1) {
            *why = "a cut UTF-8 sequence";
            return i;
        }
        for (int k = 1; k <= n; k++) {
            if ((s[i + (size_t)k] & 0xc0) != 0x80) {
                *why = "not valid UTF-8";
                return i;
            }
            cp = cp << 6 | (s[i + (size_t)k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            *why = "not valid UTF-8";
            return i;
        }
        i += (size_t)n + 1;
    }
    return len;
}

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fails on the first object at or under node that repeats a key (cJSON
 * keeps both; JSON readers disagree on which one wins). */
static int check_unique_keys(const cJSON *node, const char *path, sol_err *err)
{
    int n = 0, rc = SOL_OK;
    const cJSON *c;
    const char **keys = NULL;

    for (c = node->child; c; c = c->next) {
        n++;
        if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && (rc = check_unique_keys(c, path, err)) != SOL_OK)
            goto exit;
    }
    if (!cJSON_IsObject(node) || n < 2)
        goto exit;
    keys = malloc((size_t)n * sizeof *keys);
    if (!keys) {
        rc = fail(err, path, "out of memory for %d JSON keys", n);
        goto exit;
    }
    n = 0;
    for (c = node->child; c; c = c->next)
        keys[n++] = c->string;
    qsort(keys, (size_t)n, sizeof *keys, strcmp_ptr);
    for (int i = 1; i < n; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            sol_qbuf q, qp;
            if (node->string)
                rc = fail(err, path, "duplicate key %s in %s", sol_quote_z(&q, keys[i]), sol_quote_z(&qp, node->string));
            else
                rc = fail(err, path, "duplicate key %s", sol_quote_z(&q, keys[i]));
            goto exit;
        }
exit:
    free(keys);
    return rc;
}

/* Parses len bytes of text (not NUL-terminated) into an object. `what`
 * names the text in messages ("header", "index"). */
static int parse_json(const char *path, const uint8_t *text, size_t len, const char *what, cJSON **out,
                      sol_err *err)
{
    int rc = SOL_OK;
    const char *why;
    char *buf = NULL;
    *out = NULL;

    size_t bad = bad_text_byte(text, len, &why);
    if (bad < len) {
        rc = fail(err, path, "%s is not JSON: byte %zu (0x%02x) is %s", what, bad, text[bad], why);
        goto exit;
    }
    buf = malloc(len + 1);
    if (!buf) {
        rc = fail(err, path, "out of memory for a %zu-byte %s", len, what);
        goto exit;
    }
    if (len) /* an empty file is not mapped: text is NULL */
        memcpy(buf, text, len);
    buf[len] = '\0';
    const char *end = NULL;
    *out = cJSON_ParseWithOpts(buf, &end, 1);
    if (!*out) {
        size_t at = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        rc = fail(err, path, "%s is not valid JSON (at byte %zu of %zu)", what, at, len);
        goto exit;
    }
    if (!cJSON_IsObject(*out)) {
        rc = fail(err, path, "%s is JSON but not an object", what);
        goto exit;
    }
    rc = check_unique_keys(*out, path, err);
exit:
    free(buf);
    if (rc != SOL_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- numbers ------------------------------------------------------------- */

/* A JSON value as a non-negative integer: NULL, or why it is not one. */
static const char *as_count(const cJSON *v, uint64_t *out, char *why, size_t cap)
{
    if (!cJSON_IsNumber(v))
        return "is not a number";
    double d = v->valuedouble;
    if (d < 0)
        snprintf(why, cap, "is negative (%.17g)", d);
    else if (d >= MAX_EXACT_INT)
        snprintf(why, cap, "is too large (%.17g; sol reads integers below 2^53)", d);
    else if ((double)(uint64_t)d != d)
        snprintf(why, cap, "is not an integer (%.17g)", d);
    else {
        *out = (uint64_t)d;
        return NULL;
    }
    return why;
}

/* *out = a * b; -1 on overflow. */
static int mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

/* ---- one file ------------------------------------------------------------ */

static int parse_dtype(const char *path, const cJSON *entry, const char *qname, sol_st_tensor *t, sol_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    sol_qbuf q;
    if (!v)
        return fail(err, path, "tensor %s has no \"dtype\"", qname);
    if (!cJSON_IsString(v))
        return fail(err, path, "tensor %s: \"dtype\" is not a string", qname);
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(v->valuestring, dtypes[i].name) == 0) {
            snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtypes[i].name);
            t->elem_bits = dtypes[i].bits;
            t->has_sol_dtype = dtypes[i].has_sol;
            t->dtype = dtypes[i].sol;
            return SOL_OK;
        }
    return fail(err, path, "tensor %s: unknown dtype %s", qname, sol_quote_z(&q, v->valuestring));
}

static int parse_shape(const char *path, const cJSON *entry, const char *qname, sol_st_tensor *t, sol_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    char why[96], shape[256];
    if (!v)
        return fail(err, path, "tensor %s has no \"shape\"", qname);
    if (!cJSON_IsArray(v))
        return fail(err, path, "tensor %s: \"shape\" is not an array", qname);
    int n = cJSON_GetArraySize(v);
    if (n > SOL_ST_MAX_DIMS)
        return fail(err, path, "tensor %s: shape has %d dimensions (at most %d)", qname, n, SOL_ST_MAX_DIMS);
    const cJSON *d = v->child;
    for (int i = 0; i < n; i++, d = d->next) {
        uint64_t dim;
        const char *bad = as_count(d, &dim, why, sizeof why);
        if (bad)
            return fail(err, path, "tensor %s: shape[%d] %s", qname, i, bad);
        t->shape[i] = (int64_t)dim;
        t->n_dims = i + 1;
    }
    t->n_elems = 1;
    for (int i = 0; i < n; i++)
        if (mul_u64(t->n_elems, (uint64_t)t->shape[i], &t->n_elems))
            return fail(err, path, "tensor %s: shape %s has more than 2^64 elements", qname,
                        shape_str(t, shape, sizeof shape));
    uint64_t bits;
    if (mul_u64(t->n_elems, (uint64_t)t->elem_bits, &bits))
        return fail(err, path, "tensor %s: shape %s of %s overflows 2^64 bits", qname,
                    shape_str(t, shape, sizeof shape), t->dtype_name);
    if (bits % 8 != 0)
        return fail(err, path, "tensor %s: shape %s of %s is not a whole number of bytes", qname,
                    shape_str(t, shape, sizeof shape), t->dtype_name);
    t->n_bytes = bits / 8;
    return SOL_OK;
}

static int parse_offsets(const struct st_file *f, const cJSON *entry, const char *qname, uint64_t data_size,
                         sol_st_tensor *t, sol_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    uint64_t off[2];
    char why[96], shape[256];
    if (!v)
        return fail(err, f->path, "tensor %s has no \"data_offsets\"", qname);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
        return fail(err, f->path, "tensor %s: \"data_offsets\" is not an array of two integers", qname);
    for (int i = 0; i < 2; i++) {
        const char *bad = as_count(cJSON_GetArrayItem(v, i), &off[i], why, sizeof why);
        if (bad)
            return fail(err, f->path, "tensor %s: data_offsets[%d] %s", qname, i, bad);
    }
    if (off[0] > off[1])
        return fail(err, f->path, "tensor %s: data_offsets [%" PRIu64 ", %" PRIu64 "] are reversed", qname, off[0],
                    off[1]);
    if (off[1] > data_size)
        return fail(err, f->path, "tensor %s: data_offsets [%" PRIu64 ", %" PRIu64 "] run past the end of the "
                    "%" PRIu64 "-byte data section", qname, off[0], off[1], data_size);
    if (off[1] - off[0] != t->n_bytes)
        return fail(err, f->path, "tensor %s: data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64 " bytes, "
                    "but shape %s of %s needs %" PRIu64, qname, off[0], off[1], off[1] - off[0],
                    shape_str(t, shape, sizeof shape), t->dtype_name, t->n_bytes);
    t->offset = off[0];
    t->data = f->map + (f->size - data_size) + off[0];
    return SOL_OK;
}

static int parse_metadata(const struct st_file *f, const cJSON *v, sol_err *err)
{
    sol_qbuf q;
    if (!cJSON_IsObject(v))
        return fail(err, f->path, "\"__metadata__\" is not an object");
    for (const cJSON *c = v->child; c; c = c->next)
        if (!cJSON_IsString(c))
            return fail(err, f->path, "__metadata__ key %s: value is not a string", sol_quote_z(&q, c->string));
    return SOL_OK;
}

static int by_offset(const void *a, const void *b)
{
    const sol_st_tensor *x = *(const sol_st_tensor *const *)a, *y = *(const sol_st_tensor *const *)b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->n_bytes < y->n_bytes ? -1 : x->n_bytes > y->n_bytes;
}

/* Tensors first..end-1 (one file) must not share a byte; empty ones share none. */
static int check_overlaps(const char *path, const sol_st_tensor *t, int first, int end, sol_err *err)
{
    int rc = SOL_OK, n = end - first;
    const sol_st_tensor **order = NULL;
    if (n < 2)
        goto exit;
    order = malloc((size_t)n * sizeof *order);
    if (!order) {
        rc = fail(err, path, "out of memory for %d tensors", n);
        goto exit;
    }
    for (int i = 0; i < n; i++)
        order[i] = &t[first + i];
    qsort(order, (size_t)n, sizeof *order, by_offset);
    const sol_st_tensor *last = NULL; /* the non-empty tensor reaching furthest so far */
    for (int i = 0; i < n; i++) {
        const sol_st_tensor *cur = order[i];
        if (cur->n_bytes == 0)
            continue;
        if (last && cur->offset < last->offset + last->n_bytes) {
            sol_qbuf q1, q2;
            rc = fail(err, path, "tensors %s [%" PRIu64 ", %" PRIu64 ") and %s [%" PRIu64 ", %" PRIu64 ") overlap",
                      sol_quote_z(&q1, last->name), last->offset, last->offset + last->n_bytes, sol_quote_z(&q2, cur->name),
                      cur->offset, cur->offset + cur->n_bytes);
            goto exit;
        }
        if (!last || cur->offset + cur->n_bytes > last->offset + last->n_bytes)
            last = cur;
    }
exit:
    free(order);
    return rc;
}

static int add_tensor(sol_st_model *m, const char *path, sol_st_tensor **out, sol_err *err)
{
    if (m->n_tensors == m->cap_tensors) {
        if (m->cap_tensors > INT_MAX / 2)
            return fail(err, path, "more than %d tensors", INT_MAX / 2);
        int cap = m->cap_tensors ? m->cap_tensors * 2 : 64;
        sol_st_tensor *p = realloc(m->tensors, (size_t)cap * sizeof *p);
        if (!p)
            return fail(err, path, "out of memory for %d tensors", cap);
        m->tensors = p;
        m->cap_tensors = cap;
    }
    *out = &m->tensors[m->n_tensors++];
    memset(*out, 0, sizeof **out);
    return SOL_OK;
}

/* Reads the header of a mapped file and appends its tensors to m. */
static int parse_file(sol_st_model *m, struct st_file *f, sol_err *err)
{
    if (f->size < 8)
        return fail(err, f->path, "only %zu bytes: a safetensors file starts with an 8-byte header length",
                    f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | f->map[i];
    if (n > SOL_ST_MAX_HEADER_BYTES)
        return fail(err, f->path, "header length %" PRIu64 " is over the limit of %u bytes (not a safetensors "
                    "file?)", n, SOL_ST_MAX_HEADER_BYTES);
    if (n > f->size - 8)
        return fail(err, f->path, "header length %" PRIu64 " runs past the end of the file (%zu bytes after "
                    "the length)", n, f->size - 8);
    int rc = parse_json(f->path, f->map + 8, (size_t)n, "header", &f->header, err);
    if (rc != SOL_OK)
        return rc;

    uint64_t data_size = f->size - 8 - n;
    int first = m->n_tensors;
    for (const cJSON *e = f->header->child; e; e = e->next) {
        sol_qbuf q;
        const char *qname = sol_quote_z(&q, e->string);
        sol_st_tensor *t = NULL;
        if (strcmp(e->string, "__metadata__") == 0) {
            if ((rc = parse_metadata(f, e, err)) != SOL_OK)
                return rc;
            f->metadata = e;
            continue;
        }
        if (!cJSON_IsObject(e))
            return fail(err, f->path, "tensor %s: entry is not an object", qname);
        if ((rc = add_tensor(m, f->path, &t, err)) != SOL_OK)
            return rc;
        t->name = e->string;
        t->path = f->path;
        if ((rc = parse_dtype(f->path, e, qname, t, err)) != SOL_OK ||
            (rc = parse_shape(f->path, e, qname, t, err)) != SOL_OK ||
            (rc = parse_offsets(f, e, qname, data_size, t, err)) != SOL_OK)
            return rc;
    }
    return check_overlaps(f->path, m->tensors, first, m->n_tensors, err);
}

/* Maps path read-only. An error names the path and the system's reason. */
static int map_file(const char *path, const uint8_t **map, size_t *size, sol_err *err)
{
    struct stat st;
    int rc = SOL_OK;
    sol_err why = {0};
    int fd = sol_open_regular(path, &why); /* never blocks on a FIFO */
    *map = NULL;
    *size = 0;
    if (fd < 0) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s", why.msg);
        goto exit;
    }
    if (fstat(fd, &st) != 0) {
        rc = fail(err, path, "cannot stat: %s", strerror(errno));
        goto exit;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = fail(err, path, "not a regular file");
        goto exit;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = fail(err, path, "file too large to map");
        goto exit;
    }
    *size = (size_t)st.st_size;
    if (*size == 0) /* mmap refuses empty mappings; callers see 0 bytes */
        goto exit;
    void *p = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        rc = fail(err, path, "cannot map: %s", strerror(errno));
        goto exit;
    }
    *map = p;
exit:
    if (fd >= 0)
        close(fd);
    return rc;
}

static int open_file(sol_st_model *m, struct st_file *f, sol_err *err)
{
    int rc = map_file(f->path, &f->map, &f->size, err);
    if (rc == SOL_OK)
        rc = parse_file(m, f, err);
    return rc;
}

/* ---- the model ----------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(((const sol_st_tensor *)a)->name, ((const sol_st_tensor *)b)->name);
}

static int alloc_files(sol_st_model *m, int n, const char *path, sol_err *err)
{
    m->files = calloc((size_t)n, sizeof *m->files);
    if (!m->files)
        return fail(err, path, "out of memory for %d files", n);
    m->n_files = n;
    return SOL_OK;
}

static int set_path(struct st_file *f, const char *prefix, size_t prefix_len, const char *name, sol_err *err)
{
    size_t len = strlen(name);
    f->path = malloc(prefix_len + len + 1);
    if (!f->path)
        return fail(err, name, "out of memory");
    memcpy(f->path, prefix, prefix_len);
    memcpy(f->path + prefix_len, name, len + 1);
    return SOL_OK;
}

/* Sorts the tensors of every file by name; the same name in two files is
 * an error (within one file check_unique_keys has caught it). */
static int finish(sol_st_model *m, sol_err *err)
{
    if (m->n_tensors > 1)
        qsort(m->tensors, (size_t)m->n_tensors, sizeof *m->tensors, by_name);
    for (int i = 1; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i - 1].name, m->tensors[i].name) == 0) {
            sol_qbuf q;
            return fail(err, m->tensors[i].path, "tensor %s is also in %s", sol_quote_z(&q, m->tensors[i].name),
                        m->tensors[i - 1].path);
        }
    return SOL_OK;
}

static int open_single(sol_st_model *m, const char *path, sol_err *err)
{
    int rc = alloc_files(m, 1, path, err);
    if (rc == SOL_OK)
        rc = set_path(&m->files[0], path, strlen(path), "", err);
    if (rc == SOL_OK)
        rc = open_file(m, &m->files[0], err);
    if (rc == SOL_OK)
        rc = finish(m, err);
    return rc;
}

/* A shard must be a file next to the index: no directories, no "..". */
static int valid_shard_name(const char *s)
{
    return s[0] && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Opens every shard the index names (in file name order) and checks that each
 * tensor of weight_map is in the shard it is mapped to. */
static int open_index(sol_st_model *m, const char *index_path, sol_err *err)
{
    const uint8_t *text = NULL;
    size_t text_size = 0;
    cJSON *root = NULL;
    const char **shards = NULL;
    int n_shards = 0, n_entries = 0;
    sol_qbuf q, q2;
    const cJSON *map, *e;

    int rc = map_file(index_path, &text, &text_size, err);
    if (rc != SOL_OK)
        goto exit;
    if (text_size > SOL_ST_MAX_HEADER_BYTES) {
        rc = fail(err, index_path, "%zu bytes is over the limit of %u for an index", text_size,
                  SOL_ST_MAX_HEADER_BYTES);
        goto exit;
    }
    if ((rc = parse_json(index_path, text, text_size, "index", &root, err)) != SOL_OK)
        goto exit;
    map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!map) {
        rc = fail(err, index_path, "no \"weight_map\"");
        goto exit;
    }
    if (!cJSON_IsObject(map)) {
        rc = fail(err, index_path, "\"weight_map\" is not an object");
        goto exit;
    }
    for (e = map->child; e; e = e->next) {
        if (!cJSON_IsString(e)) {
            rc = fail(err, index_path, "weight_map: tensor %s: shard is not a string", sol_quote_z(&q, e->string));
            goto exit;
        }
        if (!valid_shard_name(e->valuestring)) {
            rc = fail(err, index_path, "weight_map: tensor %s: shard %s is not a file name", sol_quote_z(&q, e->string),
                      sol_quote_z(&q2, e->valuestring));
            goto exit;
        }
        n_entries++;
    }
    if (n_entries == 0) {
        rc = fail(err, index_path, "\"weight_map\" is empty");
        goto exit;
    }

    shards = malloc((size_t)n_entries * sizeof *shards);
    if (!shards) {
        rc = fail(err, index_path, "out of memory for %d entries", n_entries);
        goto exit;
    }
    for (e = map->child; e; e = e->next)
        shards[n_shards++] = e->valuestring;
    qsort(shards, (size_t)n_shards, sizeof *shards, strcmp_ptr);
    int n_unique = 0;
    for (int i = 0; i < n_shards; i++)
        if (n_unique == 0 || strcmp(shards[n_unique - 1], shards[i]) != 0)
            shards[n_unique++] = shards[i];
    n_shards = n_unique;

    const char *slash = strrchr(index_path, '/');
    size_t prefix_len = slash ? (size_t)(slash - index_path) + 1 : 0;
    if ((rc = alloc_files(m, n_shards, index_path, err)) != SOL_OK)
        goto exit;
    for (int i = 0; i < n_shards; i++) {
        struct st_file *f = &m->files[i];
        struct stat st;
        if ((rc = set_path(f, index_path, prefix_len, shards[i], err)) != SOL_OK)
            goto exit;
        if (stat(f->path, &st) != 0) {
            rc = fail(err, index_path, "shard %s cannot be opened: %s", sol_quote_z(&q, shards[i]), strerror(errno));
            goto exit;
        }
        if ((rc = open_file(m, f, err)) != SOL_OK)
            goto exit;
    }
    if ((rc = finish(m, err)) != SOL_OK)
        goto exit;

    for (e = map->child; e; e = e->next) {
        const sol_st_tensor *t = sol_st_find(m, e->string);
        const char **s = bsearch(&e->valuestring, shards, (size_t)n_shards, sizeof *shards, strcmp_ptr);
        const char *want = m->files[s - shards].path;
        if (!t) {
            rc = fail(err, index_path, "weight_map: tensor %s is not in its shard %s", sol_quote_z(&q, e->string),
                      sol_quote_z(&q2, e->valuestring));
            goto exit;
        }
        if (t->path != want) {
            rc = fail(err, index_path, "weight_map: tensor %s is mapped to %s but is in %s", sol_quote_z(&q, e->string),
                      sol_quote_z(&q2, e->valuestring), t->path);
            goto exit;
        }
    }
exit:
    free(shards);
    cJSON_Delete(root);
    if (text)
        munmap((void *)text, text_size);
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* model.safetensors when present, else the index. */
static int open_dir(sol_st_model *m, const char *dir, sol_err *err)
{
    struct stat st;
    int rc = SOL_OK;
    const char *sep = ends_with(dir, "/") ? "" : "/";
    size_t cap = strlen(dir) + sizeof INDEX_NAME + 2;
    char *path = malloc(cap);
    if (!path) {
        rc = fail(err, dir, "out of memory");
        goto exit;
    }
    snprintf(path, cap, "%s%s%s", dir, sep, SINGLE_NAME);
    if (stat(path, &st) == 0) {
        rc = open_single(m, path, err);
        goto exit;
    }
    snprintf(path, cap, "%s%s%s", dir, sep, INDEX_NAME);
    if (stat(path, &st) == 0) {
        rc = open_index(m, path, err);
        goto exit;
    }
    rc = fail(err, dir, "no %s or %s in this directory", SINGLE_NAME, INDEX_NAME);
exit:
    free(path);
    return rc;
}

int sol_st_open(const char *path, sol_st_model **out, sol_err *err)
{
    struct stat st;
    int rc;
    sol_st_model *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!m) {
        rc = fail(err, path, "out of memory");
        goto exit;
    }
    if (stat(path, &st) != 0)
        rc = fail(err, path, "%s", strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = open_dir(m, path, err);
    else if (ends_with(path, ".json"))
        rc = open_index(m, path, err);
    else
        rc = open_single(m, path, err);
exit:
    if (rc == SOL_OK)
        *out = m;
    else
        sol_st_close(m);
    return rc;
}

void sol_st_close(sol_st_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_files; i++) {
        struct st_file *f = &m->files[i];
        if (f->map)
            munmap((void *)f->map, f->size);
        cJSON_Delete(f->header);
        free(f->path);
    }
    free(m->files);
    free(m->tensors);
    free(m);
}

/* ---- lookups ------------------------------------------------------------- */

int sol_st_count(const sol_st_model *m) { return m->n_tensors; }

const sol_st_tensor *sol_st_at(const sol_st_model *m, int i)
{
    return i >= 0 && i < m->n_tensors ? &m->tensors[i] : NULL;
}

const sol_st_tensor *sol_st_find(const sol_st_model *m, const char *name)
{
    sol_st_tensor key = {.name = name};
    if (m->n_tensors == 0)
        return NULL;
    return bsearch(&key, m->tensors, (size_t)m->n_tensors, sizeof *m->tensors, by_name);
}

int sol_st_file_count(const sol_st_model *m) { return m->n_files; }

const char *sol_st_metadata(const sol_st_model *m, const char *key)
{
    if (m->n_files == 0 || !m->files[0].metadata)
        return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m->files[0].metadata, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
