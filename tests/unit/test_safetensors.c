/* safetensors reader: files written by the reference `safetensors` package
 * (tests/ref/gen_safetensors_fixture.py) read back value by value, sharded
 * directories, every truncation and byte flips, and one test per validation
 * error with its message checked for the file and the tensor or key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/cpu/half.h"
#include "models/safetensors.h"

#define FIXTURE "tests/fixtures/safetensors/mixed.safetensors"
#define SHARDED "tests/fixtures/safetensors/sharded"

#define assert_contains(hay, needle)                                                  \
    do {                                                                              \
        if (!strstr((hay), (needle)))                                                 \
            fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle));              \
    } while (0)

static char tmpdir[64];
static int file_counter;

static void tpath(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sol_test_st_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- file building ------------------------------------------------------ */

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    if (n)
        assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    void *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* A safetensors file: u64 header_len (little-endian), header, data. */
static void write_st_len(const char *path, uint64_t header_len, const char *header, const void *data,
                         size_t data_len)
{
    size_t hl = strlen(header);
    uint8_t *buf = calloc(1, 8 + hl + data_len + 1);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(header_len >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (data_len)
        memcpy(buf + 8 + hl, data, data_len);
    write_bytes(path, buf, 8 + hl + data_len);
    free(buf);
}

static void write_st(const char *path, const char *header, const void *data, size_t data_len)
{
    write_st_len(path, strlen(header), header, data, data_len);
}

/* data_len zero bytes of data. */
static void write_st_zeros(const char *path, const char *header, size_t data_len)
{
    void *z = calloc(1, data_len + 1);
    assert_non_null(z);
    write_st(path, header, z, data_len);
    free(z);
}

static sol_st_model *open_ok(const char *path)
{
    sol_st_model *m = NULL;
    sol_err err = {0};
    int rc = sol_st_open(path, &m, &err);
    if (rc != SOL_OK)
        fail_msg("open %s: %s", path, err.msg);
    assert_non_null(m);
    return m;
}

/* Opens path, expects a runtime error whose message names `names` (the file)
 * and contains s1 and s2 when not NULL. */
static void expect_fail_at(const char *path, const char *names, const char *s1, const char *s2)
{
    sol_st_model *m = (sol_st_model *)&m; /* must be reset to NULL */
    sol_err err = {0};
    int rc = sol_st_open(path, &m, &err);
    if (rc != SOL_ERR_RUNTIME)
        fail_msg("%s: open returned %d, expected an error", path, rc);
    assert_null(m);
    assert_int_equal(err.code, SOL_ERR_RUNTIME);
    assert_contains(err.msg, names);
    if (s1)
        assert_contains(err.msg, s1);
    if (s2)
        assert_contains(err.msg, s2);
    assert_null(strchr(err.msg, '\n'));
}

/* Writes header + zeroed data to a fresh file and expects failure. */
static void expect_header_fail(const char *header, size_t data_len, const char *s1, const char *s2)
{
    char name[64], path[256];
    snprintf(name, sizeof name, "bad-%03d.safetensors", file_counter++);
    tpath(path, sizeof path, name);
    write_st_zeros(path, header, data_len);
    expect_fail_at(path, name, s1, s2);
}

/* One tensor entry "NAME":{"dtype":...,"shape":...,"data_offsets":...}. */
#define ENTRY(name, dtype, shape, offsets) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offsets "}"

/* ---- the reference package's files --------------------------------------- */

static uint16_t rd16(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] | b[1] << 8);
}

static float rdf32(const void *p, uint64_t i)
{
    float f;
    memcpy(&f, (const uint8_t *)p + 4 * i, sizeof f);
    return f;
}

static void check_tensor(const sol_st_tensor *t, const char *dtype, int n_dims, const int64_t *shape,
                         uint64_t n_elems, uint64_t n_bytes)
{
    assert_non_null(t);
    assert_string_equal(t->dtype_name, dtype);
    assert_int_equal(t->n_dims, n_dims);
    for (int d = 0; d < n_dims; d++)
        assert_int_equal(t->shape[d], shape[d]);
    assert_int_equal(t->n_elems, n_elems);
    assert_int_equal(t->n_bytes, n_bytes);
    assert_non_null(t->data);
}

static void test_reference_file(void **state)
{
    (void)state;
    size_t size;
    uint8_t *file = read_all(FIXTURE, &size);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = header_len << 8 | file[i];
    const uint8_t *data = file + 8 + header_len;

    sol_st_model *m = open_ok(FIXTURE);
    assert_int_equal(sol_st_count(m), 8);
    assert_int_equal(sol_st_file_count(m), 1);
    static const char *const sorted[] = {"embed.weight", "empty", "lm_head.weight", "mask",
                                         "norm.weight", "positions", "scalar", "scale_fp8"};
    for (int i = 0; i < 8; i++) {
        const sol_st_tensor *t = sol_st_at(m, i);
        assert_string_equal(t->name, sorted[i]);
        assert_ptr_equal(sol_st_find(m, sorted[i]), t);
        assert_string_equal(t->path, FIXTURE);
        /* a pointer into the mapped file: its bytes are the file's at that offset */
        assert_true(t->offset + t->n_bytes <= size - 8 - header_len);
        assert_memory_equal(t->data, data + t->offset, t->n_bytes);
    }
    assert_null(sol_st_at(m, 8));
    assert_null(sol_st_at(m, -1));
    assert_null(sol_st_find(m, "missing"));
    assert_null(sol_st_find(m, "__metadata__"));

    /* F32 [3, 4]: (i - 5) / 3 rounded to float, as numpy wrote it */
    const sol_st_tensor *t = sol_st_find(m, "embed.weight");
    check_tensor(t, "F32", 2, (const int64_t[]){3, 4}, 12, 48);
    assert_true(t->has_sol_dtype);
    assert_int_equal(t->dtype, SOL_DT_F32);
    assert_int_equal(t->elem_bits, 32);
    for (int i = 0; i < 12; i++)
        assert_true(rdf32(t->data, (uint64_t)i) == (float)((i - 5) / 3.0));

    /* F16 [2, 3]: IEEE half bit patterns of -1, -0.5, 0, 1/3, 65504 (max), pi */
    static const uint16_t f16_bits[] = {0xbc00, 0xb800, 0x0000, 0x3555, 0x7bff, 0x4248};
    static const float f16_vals[] = {-1.0f, -0.5f, 0.0f, 0.333251953125f, 65504.0f, 3.140625f};
    t = sol_st_find(m, "norm.weight");
    check_tensor(t, "F16", 2, (const int64_t[]){2, 3}, 6, 12);
    assert_true(t->has_sol_dtype);
    assert_int_equal(t->dtype, SOL_DT_F16);
    for (int i = 0; i < 6; i++) {
        uint16_t h = rd16((const uint8_t *)t->data + 2 * i);
        assert_int_equal(h, f16_bits[i]);
        assert_true(sol_f16_to_f32(h) == f16_vals[i]);
    }

    /* BF16 [2, 2]: 1, -2.5, 1/3, pi rounded to nearest even */
    static const uint16_t bf16_bits[] = {0x3f80, 0xc020, 0x3eab, 0x4049};
    static const float bf16_vals[] = {1.0f, -2.5f, 0.333984375f, 3.140625f};
    t = sol_st_find(m, "lm_head.weight");
    check_tensor(t, "BF16", 2, (const int64_t[]){2, 2}, 4, 8);
    assert_true(t->has_sol_dtype);
    assert_int_equal(t->dtype, SOL_DT_BF16);
    for (int i = 0; i < 4; i++) {
        uint16_t b = rd16((const uint8_t *)t->data + 2 * i);
        assert_int_equal(b, bf16_bits[i]);
        assert_true(sol_bf16_to_f32(b) == bf16_vals[i]);
    }

    /* types sol does not compute in: listed with their sizes */
    t = sol_st_find(m, "positions");
    check_tensor(t, "I64", 1, (const int64_t[]){4}, 4, 32);
    assert_false(t->has_sol_dtype);
    assert_int_equal(t->elem_bits, 64);
    static const int64_t positions[] = {0, 1, -1, INT64_C(1) << 40};
    for (int i = 0; i < 4; i++) {
        int64_t v;
        memcpy(&v, (const uint8_t *)t->data + 8 * i, sizeof v);
        assert_int_equal(v, positions[i]);
    }
    t = sol_st_find(m, "mask");
    check_tensor(t, "BOOL", 1, (const int64_t[]){3}, 3, 3);
    assert_false(t->has_sol_dtype);
    assert_memory_equal(t->data, "\x01\x00\x01", 3);
    t = sol_st_find(m, "scale_fp8");
    check_tensor(t, "F8_E4M3", 1, (const int64_t[]){2}, 2, 2);
    assert_true(t->has_sol_dtype);
    assert_int_equal(t->dtype, SOL_DT_FP8);
    assert_memory_equal(t->data, "\x38\xc0", 2); /* e4m3 1.0 and -2.0 */

    t = sol_st_find(m, "scalar");
    check_tensor(t, "F32", 0, NULL, 1, 4);
    assert_true(rdf32(t->data, 0) == 42.0f);
    t = sol_st_find(m, "empty");
    check_tensor(t, "F16", 2, (const int64_t[]){0, 4}, 0, 0);

    /* the data section is one block laid out as in the file: no copies */
    const sol_st_tensor *a = sol_st_find(m, "positions"), *b = sol_st_find(m, "embed.weight");
    assert_int_equal((const uint8_t *)b->data - (const uint8_t *)a->data, (ptrdiff_t)(b->offset - a->offset));

    assert_string_equal(sol_st_metadata(m, "format"), "pt");
    assert_string_equal(sol_st_metadata(m, "sol.note"), "fixture \xc3\xbc");
    assert_null(sol_st_metadata(m, "missing"));
    sol_st_close(m);
    sol_st_close(NULL);
    free(file);
}

static void check_sharded(sol_st_model *m)
{
    assert_int_equal(sol_st_count(m), 3);
    assert_int_equal(sol_st_file_count(m), 2);
    const sol_st_tensor *t = sol_st_find(m, "a.weight");
    check_tensor(t, "F32", 2, (const int64_t[]){2, 3}, 6, 24);
    assert_contains(t->path, "model-00001-of-00002.safetensors");
    for (int i = 0; i < 6; i++)
        assert_true(rdf32(t->data, (uint64_t)i) == 0.5f * (float)i);
    t = sol_st_find(m, "b.bias");
    check_tensor(t, "F16", 1, (const int64_t[]){2}, 2, 4);
    assert_contains(t->path, "model-00001-of-00002.safetensors");
    assert_int_equal(rd16(t->data), 0x3e00); /* 1.5 */
    assert_int_equal(rd16((const uint8_t *)t->data + 2), 0xbe00);
    t = sol_st_find(m, "c.weight");
    check_tensor(t, "F32", 2, (const int64_t[]){1, 2}, 2, 8);
    assert_contains(t->path, "model-00002-of-00002.safetensors");
    assert_true(rdf32(t->data, 0) == 7.0f && rdf32(t->data, 1) == 8.0f);
    assert_string_equal(sol_st_at(m, 0)->name, "a.weight");
    assert_string_equal(sol_st_at(m, 2)->name, "c.weight");
    assert_string_equal(sol_st_metadata(m, "format"), "pt");
}

static void test_reference_sharded(void **state)
{
    (void)state;
    sol_st_model *m = open_ok(SHARDED);
    check_sharded(m);
    sol_st_close(m);
    m = open_ok(SHARDED "/");
    check_sharded(m);
    sol_st_close(m);
    m = open_ok(SHARDED "/model.safetensors.index.json");
    check_sharded(m);
    sol_st_close(m);
}

/* ---- files written here -------------------------------------------------- */

/* Every dtype the format names: its size, and the sol dtype where there is one. */
static void test_every_dtype(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int bits, has_sol;
        sol_dtype dt;
    } want[] = {
        {"BOOL", 8, 0, 0},     {"U8", 8, 0, 0},          {"I8", 8, 0, 0},          {"F8_E5M2", 8, 0, 0},
        {"F8_E4M3", 8, 1, SOL_DT_FP8}, {"F8_E8M0", 8, 0, 0}, {"F8_E4M3FNUZ", 8, 0, 0}, {"F8_E5M2FNUZ", 8, 0, 0},
        {"I16", 16, 0, 0},     {"U16", 16, 0, 0},        {"F16", 16, 1, SOL_DT_F16}, {"BF16", 16, 1, SOL_DT_BF16},
        {"I32", 32, 0, 0},     {"U32", 32, 0, 0},        {"F32", 32, 1, SOL_DT_F32}, {"F64", 64, 0, 0},
        {"I64", 64, 0, 0},     {"U64", 64, 0, 0},        {"C64", 64, 0, 0},        {"F4", 4, 0, 0},
        {"F6_E2M3", 6, 0, 0},  {"F6_E3M2", 6, 0, 0},
    };
    const int n = (int)(sizeof want / sizeof want[0]);
    char header[4096], path[256];
    size_t len = (size_t)snprintf(header, sizeof header, "{");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) { /* 4 elements each: whole bytes for F4 and F6 too */
        uint64_t bytes = 4 * (uint64_t)want[i].bits / 8;
        len += (size_t)snprintf(header + len, sizeof header - len,
                                "%s\"t%02d\":{\"dtype\":\"%s\",\"shape\":[2,2],\"data_offsets\":[%llu,%llu]}",
                                i ? "," : "", i, want[i].name, (unsigned long long)off,
                                (unsigned long long)(off + bytes));
        off += bytes;
    }
    snprintf(header + len, sizeof header - len, "}");
    uint8_t data[512];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 37 + 11);
    assert_true(off <= sizeof data);
    tpath(path, sizeof path, "dtypes.safetensors");
    write_st(path, header, data, (size_t)off);

    sol_st_model *m = open_ok(path);
    assert_int_equal(sol_st_count(m), n);
    off = 0;
    for (int i = 0; i < n; i++) {
        const sol_st_tensor *t = sol_st_at(m, i);
        char name[16];
        snprintf(name, sizeof name, "t%02d", i);
        assert_string_equal(t->name, name);
        assert_string_equal(t->dtype_name, want[i].name);
        assert_int_equal(t->elem_bits, want[i].bits);
        assert_int_equal(t->n_elems, 4);
        assert_int_equal(t->n_bytes, 4 * (uint64_t)want[i].bits / 8);
        assert_int_equal(t->has_sol_dtype, want[i].has_sol);
        if (want[i].has_sol)
            assert_int_equal(t->dtype, want[i].dt);
        assert_int_equal(t->offset, off);
        assert_memory_equal(t->data, data + off, t->n_bytes);
        off += t->n_bytes;
    }
    assert_null(sol_st_metadata(m, "format")); /* no __metadata__ */
    sol_st_close(m);
}

/* Harmless departures from what the reference writer emits: no tensors,
 * space padding, gaps between tensors, bytes after the last, big shapes. */
static void test_lenient(void **state)
{
    (void)state;
    char path[256];
    tpath(path, sizeof path, "empty-header.safetensors");
    write_st(path, "{}", NULL, 0);
    sol_st_model *m = open_ok(path);
    assert_int_equal(sol_st_count(m), 0);
    assert_null(sol_st_find(m, "x"));
    assert_null(sol_st_at(m, 0));
    sol_st_close(m);

    tpath(path, sizeof path, "gaps.safetensors");
    write_st_zeros(path, " \n{" ENTRY("b", "F32", "[2]", "[16,24]") "," ENTRY("a", "U8", "[3]", "[0,3]")
                   ",\"__metadata__\":{}}\t\r\n   ", 40);
    m = open_ok(path);
    assert_int_equal(sol_st_count(m), 2);
    assert_int_equal(sol_st_find(m, "b")->offset, 16);
    assert_null(sol_st_metadata(m, "format"));
    sol_st_close(m);

    /* element counts up to 2^53 per dimension are exact; the data need not be there
     * when the tensor is empty */
    tpath(path, sizeof path, "big-shape.safetensors");
    write_st_zeros(path, "{" ENTRY("z", "F32", "[9007199254740991,0]", "[0,0]") "}", 0);
    m = open_ok(path);
    assert_int_equal(sol_st_find(m, "z")->shape[0], INT64_C(9007199254740991));
    assert_int_equal(sol_st_find(m, "z")->n_elems, 0);
    sol_st_close(m);

    /* a directory holding both: model.safetensors wins, as in transformers */
    char dir[128], file[256];
    tpath(dir, sizeof dir, "both");
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    write_st_zeros(file, "{" ENTRY("single", "F16", "[1]", "[0,2]") "}", 2);
    snprintf(file, sizeof file, "%s/model.safetensors.index.json", dir);
    write_bytes(file, "{", 1);
    m = open_ok(dir);
    assert_non_null(sol_st_find(m, "single"));
    sol_st_close(m);
}

/* ---- damaged files ---------------------------------------------------- */

/* Opens path; when it opens, every tensor's bytes must be readable. */
static void open_any(const char *path, const char *name)
{
    sol_st_model *m = NULL;
    sol_err err = {0};
    int rc = sol_st_open(path, &m, &err);
    if (rc == SOL_OK) {
        volatile uint8_t sink = 0;
        for (int i = 0; i < sol_st_count(m); i++) {
            const sol_st_tensor *t = sol_st_at(m, i);
            for (uint64_t k = 0; k < t->n_bytes; k++)
                sink ^= ((const uint8_t *)t->data)[k];
            assert_ptr_equal(sol_st_find(m, t->name), t);
        }
        (void)sink;
        sol_st_close(m);
        return;
    }
    assert_int_equal(rc, SOL_ERR_RUNTIME);
    assert_null(m);
    assert_contains(err.msg, name);
}

static void truncate_all(const char *src, const char *name)
{
    size_t size;
    uint8_t *file = read_all(src, &size);
    char path[256];
    tpath(path, sizeof path, name);
    for (size_t len = 0; len < size; len++) {
        write_bytes(path, file, len);
        sol_st_model *m = NULL;
        sol_err err = {0};
        int rc = sol_st_open(path, &m, &err);
        if (rc != SOL_ERR_RUNTIME)
            fail_msg("%s cut to %zu of %zu bytes: open returned %d", src, len, size, rc);
        assert_null(m);
        assert_contains(err.msg, name);
    }
    write_bytes(path, file, size);
    sol_st_close(open_ok(path));
    free(file);
}

static void test_every_truncation(void **state)
{
    (void)state;
    truncate_all(FIXTURE, "cut.safetensors");
    truncate_all(SHARDED "/model-00002-of-00002.safetensors", "cut-shard.safetensors");
}

/* Every header byte set to characters that matter to JSON and UTF-8: each
 * open fails with a message or yields tensors whose bytes are readable. */
static void test_byte_flips(void **state)
{
    (void)state;
    static const uint8_t values[] = {0x00, '"', '{', '}', '[', ']', ',', ':', '-', '9', '0', 'e', '.', '\\',
                                     ' ', 0x80, 0xc3, 0xff};
    size_t size;
    uint8_t *file = read_all(FIXTURE, &size);
    uint8_t *copy = malloc(size);
    assert_non_null(copy);
    char path[256];
    tpath(path, sizeof path, "flip.safetensors");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = header_len << 8 | file[i];
    for (size_t pos = 0; pos < 8 + header_len; pos++)
        for (size_t v = 0; v < sizeof values; v++) {
            if (file[pos] == values[v])
                continue;
            memcpy(copy, file, size);
            copy[pos] = values[v];
            write_bytes(path, copy, size);
            open_any(path, "flip.safetensors");
        }
    free(copy);
    free(file);
}

static void test_missing_file(void **state)
{
    (void)state;
    char path[256];
    tpath(path, sizeof path, "nope.safetensors");
    expect_fail_at(path, path, "No such file", NULL);
    tpath(path, sizeof path, "nodir/model.safetensors.index.json");
    expect_fail_at(path, path, "No such file", NULL);
}

static void test_short_file(void **state)
{
    (void)state;
    char path[256], name[64];
    for (size_t n = 0; n < 8; n++) {
        snprintf(name, sizeof name, "short%zu.safetensors", n);
        tpath(path, sizeof path, name);
        write_bytes(path, "\x02\0\0\0\0\0\0\0", n);
        char want[32];
        snprintf(want, sizeof want, "only %zu bytes", n);
        expect_fail_at(path, name, want, "8-byte header length");
    }
}

static void test_header_length(void **state)
{
    (void)state;
    char path[256];
    tpath(path, sizeof path, "past-eof.safetensors");
    write_st_len(path, 3, "{}", NULL, 0); /* 2 bytes follow, 3 claimed */
    expect_fail_at(path, "past-eof.safetensors", "header length 3", "past the end");
    tpath(path, sizeof path, "huge-n.safetensors");
    write_st_len(path, UINT64_MAX, "{}", NULL, 0);
    expect_fail_at(path, "huge-n.safetensors", "header length 18446744073709551615", "limit");
    tpath(path, sizeof path, "over-limit.safetensors");
    write_st_len(path, SOL_ST_MAX_HEADER_BYTES + 1u, "{}", NULL, 0);
    expect_fail_at(path, "over-limit.safetensors", "100000001", "limit of 100000000");
}

static void test_header_not_json(void **state)
{
    (void)state;
    expect_header_fail("", 0, "header is not valid JSON", "at byte 0 of 0");
    expect_header_fail("{not json}", 0, "header is not valid JSON", "of 10)");
    expect_header_fail("{} x", 0, "header is not valid JSON", NULL);
    expect_header_fail("{\"a\":1", 0, "header is not valid JSON", NULL);
    expect_header_fail("[1, 2]", 0, "header is JSON but not an object", NULL);
    expect_header_fail("\"w\"", 0, "not an object", NULL);
    expect_header_fail("{\"\xff\":1}", 0, "byte 2 (0xff) is not valid UTF-8", NULL);
    expect_header_fail("{\"\xc0\xaf\":1}", 0, "UTF-8", NULL);          /* overlong '/' */
    expect_header_fail("{\"\xed\xa0\x80\":1}", 0, "UTF-8", NULL);      /* a surrogate */
    expect_header_fail("{\"\xf4\x90\x80\x80\":1}", 0, "UTF-8", NULL);  /* above U+10FFFF */
    expect_header_fail("{\"\xe2\x82", 0, "cut UTF-8 sequence", NULL);
    expect_header_fail("{\"a\x01\":1}", 0, "byte 3 (0x01) is a control character", NULL);
    /* escapes cJSON would turn into a NUL, cutting a name short */
    expect_header_fail("{\"a\\u0000b\":1}", 0, "byte 3 (0x5c) is a NUL escape", NULL);
    expect_header_fail("{\"a\\uzzzz\":1}", 0, "without four hex digits", NULL);
    expect_header_fail("{\"a\\u12", 0, "without four hex digits", NULL);
    expect_header_fail("{\"a\\q\":1}", 0, "header is not valid JSON", NULL);
    char ok[256];
    tpath(ok, sizeof ok, "escapes.safetensors");
    write_st_zeros(ok, "{\"\\u00e9\\\"\\\\\\/\\t\\ud83d\\ude00\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    sol_st_model *m = open_ok(ok);
    assert_non_null(sol_st_find(m, "\xc3\xa9\"\\/\t\xf0\x9f\x98\x80"));
    sol_st_close(m);
    /* a NUL in the header must not end it early for the parser */
    char path[256];
    tpath(path, sizeof path, "nul.safetensors");
    write_bytes(path, "\x04\0\0\0\0\0\0\0{}\0 ", 12);
    expect_fail_at(path, "nul.safetensors", "control character", NULL);
}

static void test_entry_errors(void **state)
{
    (void)state;
    expect_header_fail("{\"w\":3}", 0, "tensor \"w\"", "entry is not an object");
    expect_header_fail("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor \"w\"", "no \"dtype\"");
    expect_header_fail("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor \"w\"", "no \"shape\"");
    expect_header_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor \"w\"", "no \"data_offsets\"");
    expect_header_fail("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor \"w\"",
                       "\"dtype\" is not a string");
    expect_header_fail("{" ENTRY("w", "F128", "[1]", "[0,16]") "}", 16, "tensor \"w\"", "unknown dtype \"F128\"");
    expect_header_fail("{" ENTRY("w", "f32", "[1]", "[0,4]") "}", 4, "tensor \"w\"", "unknown dtype \"f32\"");
    /* a name that needs quoting in the message */
    expect_header_fail("{" ENTRY("a\\\"b\\n\xc3\xa9", "X", "[1]", "[0,4]") "}", 4, "tensor \"a\\\"b\\x0a\\xc3\\xa9\"",
                       "unknown dtype");
}

static void test_shape_errors(void **state)
{
    (void)state;
    expect_header_fail("{" ENTRY("w", "F32", "3", "[0,12]") "}", 12, "tensor \"w\"", "\"shape\" is not an array");
    expect_header_fail("{" ENTRY("w", "F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", 4, "tensor \"w\"",
                       "9 dimensions (at most 8)");
    expect_header_fail("{" ENTRY("w", "F32", "[2,-3]", "[0,4]") "}", 4, "tensor \"w\"", "shape[1] is negative (-3)");
    expect_header_fail("{" ENTRY("w", "F32", "[1.5]", "[0,4]") "}", 4, "tensor \"w\"",
                       "shape[0] is not an integer (1.5)");
    expect_header_fail("{" ENTRY("w", "F32", "[\"2\"]", "[0,8]") "}", 8, "tensor \"w\"",
                       "shape[0] is not a number");
    expect_header_fail("{" ENTRY("w", "F32", "[1e20]", "[0,4]") "}", 4, "tensor \"w\"", "shape[0] is too large");
    expect_header_fail("{" ENTRY("w", "F32", "[9007199254740993]", "[0,4]") "}", 4, "tensor \"w\"",
                       "too large");
    expect_header_fail("{" ENTRY("w", "F32", "[4294967296,4294967296,2]", "[0,4]") "}", 4, "tensor \"w\"",
                       "shape [4294967296, 4294967296, 2] has more than 2^64 elements");
    /* overflow is caught even when a later dimension is zero, as the reference does */
    expect_header_fail("{" ENTRY("w", "F32", "[4294967296,4294967296,4,0]", "[0,0]") "}", 0, "tensor \"w\"",
                       "more than 2^64 elements");
    expect_header_fail("{" ENTRY("w", "F64", "[2147483648,2147483648]", "[0,4]") "}", 4, "tensor \"w\"",
                       "overflows 2^64 bits");
    expect_header_fail("{" ENTRY("w", "F4", "[3]", "[0,2]") "}", 2, "tensor \"w\"", "not a whole number of bytes");
}

static void test_offset_errors(void **state)
{
    (void)state;
    expect_header_fail("{" ENTRY("w", "F32", "[2]", "8") "}", 8, "tensor \"w\"",
                       "\"data_offsets\" is not an array of two integers");
    expect_header_fail("{" ENTRY("w", "F32", "[2]", "[0,4,8]") "}", 8, "tensor \"w\"", "two integers");
    expect_header_fail("{" ENTRY("w", "F32", "[2]", "[0]") "}", 8, "tensor \"w\"", "two integers");
    expect_header_fail("{" ENTRY("w", "F32", "[2]", "[-8,0]") "}", 8, "tensor \"w\"",
                       "data_offsets[0] is negative");
    expect_header_fail("{" ENTRY("w", "F32", "[2]", "[0,null]") "}", 8, "tensor \"w\"",
                       "data_offsets[1] is not a number");
    expect_header_fail("{" ENTRY("w", "F32", "[2]", "[0.5,8]") "}", 8, "tensor \"w\"", "not an integer");
    expect_header_fail("{" ENTRY("w", "F32", "[2]", "[8,0]") "}", 8, "tensor \"w\"",
                       "data_offsets [8, 0] are reversed");
    expect_header_fail("{" ENTRY("w", "F32", "[2]", "[4,12]") "}", 8, "tensor \"w\"",
                       "data_offsets [4, 12] run past the end of the 8-byte data section");
    expect_header_fail("{" ENTRY("w", "F32", "[2]", "[0,18446744073709551615]") "}", 8, "tensor \"w\"",
                       "too large");
    expect_header_fail("{" ENTRY("w", "F32", "[2,3]", "[0,20]") "}", 24, "tensor \"w\"",
                       "data_offsets [0, 20] hold 20 bytes, but shape [2, 3] of F32 needs 24");
    expect_header_fail("{" ENTRY("w", "BF16", "[4]", "[0,16]") "}", 16, "tensor \"w\"", "of BF16 needs 8");
    expect_header_fail("{" ENTRY("w", "F6_E2M3", "[4]", "[0,4]") "}", 4, "tensor \"w\"", "of F6_E2M3 needs 3");
}

static void test_overlap(void **state)
{
    (void)state;
    expect_header_fail("{" ENTRY("a", "F32", "[4]", "[0,16]") "," ENTRY("b", "F32", "[2]", "[12,20]") "}", 20,
                       "tensors \"a\" [0, 16) and \"b\" [12, 20) overlap", NULL);
    /* same range, listed in either order */
    expect_header_fail("{" ENTRY("y", "U8", "[4]", "[8,12]") "," ENTRY("x", "I32", "[1]", "[8,12]") "}", 12,
                       "\"x\"", "\"y\"");
    /* contained in an earlier, longer tensor that a shorter one follows */
    expect_header_fail("{" ENTRY("long", "U8", "[10]", "[0,10]") "," ENTRY("short", "U8", "[2]", "[1,3]") ","
                       ENTRY("inner", "U8", "[2]", "[5,7]") "}", 10, "\"long\" [0, 10)", "overlap");
    /* empty tensors occupy no bytes: they never overlap (the reference file
     * itself places one at the start of another) */
    char path[256];
    tpath(path, sizeof path, "empty-inside.safetensors");
    write_st_zeros(path, "{" ENTRY("a", "F32", "[4]", "[0,16]") "," ENTRY("e", "F32", "[0]", "[4,4]") "}", 16);
    sol_st_close(open_ok(path));
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    expect_header_fail("{" ENTRY("w", "F32", "[1]", "[0,4]") "," ENTRY("w", "F32", "[1]", "[4,8]") "}", 8,
                       "duplicate key \"w\"", NULL);
    expect_header_fail("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                       "duplicate key \"dtype\" in \"w\"", NULL);
    expect_header_fail("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate key \"__metadata__\"", NULL);
    expect_header_fail("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0,
                       "duplicate key \"k\" in \"__metadata__\"", NULL);
}

static void test_metadata_errors(void **state)
{
    (void)state;
    expect_header_fail("{\"__metadata__\":[]}", 0, "\"__metadata__\" is not an object", NULL);
    expect_header_fail("{\"__metadata__\":{\"format\":\"pt\",\"total\":3}}", 0, "__metadata__ key \"total\"",
                       "value is not a string");
}

/* ---- directories and indexes --------------------------------------------- */

/* A fresh directory under tmpdir holding one shard per name (tensor NAME
 * in shard NAME, F32 [1]) and the index text. */
static void make_sharded(char *dir, size_t cap, const char *const *shards, int n, const char *index)
{
    char name[32], path[512], header[256];
    snprintf(name, sizeof name, "dir-%03d", file_counter++);
    tpath(dir, cap, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, shards[i]);
        snprintf(header, sizeof header, "{\"t%d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", i);
        float v = (float)i;
        write_st(path, header, &v, sizeof v);
    }
    if (index) {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        write_bytes(path, index, strlen(index));
    }
}

static const char *const two_shards[] = {"s-1.safetensors", "s-2.safetensors"};

static void test_dir_written(void **state)
{
    (void)state;
    char dir[256];
    make_sharded(dir, sizeof dir, two_shards, 2,
                 "{\"metadata\":{\"total_size\":8},\"weight_map\":{\"t1\":\"s-2.safetensors\","
                 "\"t0\":\"s-1.safetensors\"}}");
    sol_st_model *m = open_ok(dir);
    assert_int_equal(sol_st_count(m), 2);
    assert_int_equal(sol_st_file_count(m), 2);
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        const sol_st_tensor *t = sol_st_find(m, name);
        assert_non_null(t);
        assert_true(rdf32(t->data, 0) == (float)i);
        assert_contains(t->path, two_shards[i]);
    }
    sol_st_close(m);
}

static void test_dir_errors(void **state)
{
    (void)state;
    char dir[256], path[512];
    make_sharded(dir, sizeof dir, two_shards, 0, NULL);
    expect_fail_at(dir, dir, "no model.safetensors or model.safetensors.index.json", NULL);

    /* a shard the index names is not there */
    make_sharded(dir, sizeof dir, two_shards, 1,
                 "{\"weight_map\":{\"t0\":\"s-1.safetensors\",\"t1\":\"s-2.safetensors\"}}");
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    expect_fail_at(dir, path, "shard \"s-2.safetensors\" cannot be opened", "No such file");

    static const struct {
        const char *index, *s1, *s2;
    } bad[] = {
        {"{\"weight_map\":", "index is not valid JSON", NULL},
        {"", "index is not valid JSON", NULL},
        {"[]", "index is JSON but not an object", NULL},
        {"{\"\xfe\":1}", "not valid UTF-8", NULL},
        {"{\"metadata\":{}}", "no \"weight_map\"", NULL},
        {"{\"weight_map\":[]}", "\"weight_map\" is not an object", NULL},
        {"{\"weight_map\":{}}", "\"weight_map\" is empty", NULL},
        {"{\"weight_map\":{\"t0\":1}}", "tensor \"t0\": shard is not a string", NULL},
        {"{\"weight_map\":{\"t0\":\"../s-1.safetensors\"}}", "tensor \"t0\"", "\"../s-1.safetensors\" is not a file name"},
        {"{\"weight_map\":{\"t0\":\"\"}}", "tensor \"t0\"", "is not a file name"},
        {"{\"weight_map\":{\"t0\":\"s-1.safetensors\",\"t0\":\"s-1.safetensors\"}}", "duplicate key \"t0\" in \"weight_map\"", NULL},
        {"{\"weight_map\":{\"t0\":\"s-1.safetensors\",\"t9\":\"s-2.safetensors\"}}", "tensor \"t9\"",
         "is not in its shard \"s-2.safetensors\""},
        {"{\"weight_map\":{\"t0\":\"s-2.safetensors\",\"t1\":\"s-1.safetensors\"}}", "tensor \"t0\" is mapped to "
         "\"s-2.safetensors\" but is in", "s-1.safetensors"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        make_sharded(dir, sizeof dir, two_shards, 2, bad[i].index);
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        expect_fail_at(dir, path, bad[i].s1, bad[i].s2);
    }

    /* the same tensor in two shards */
    static const char *const clash[] = {"a.safetensors", "b.safetensors"};
    make_sharded(dir, sizeof dir, clash, 2, "{\"weight_map\":{\"t0\":\"a.safetensors\",\"t1\":\"b.safetensors\"}}");
    snprintf(path, sizeof path, "%s/b.safetensors", dir);
    write_st(path, "{" ENTRY("t0", "F32", "[1]", "[0,4]") "}", "\0\0\0\0", 4);
    expect_fail_at(dir, "b.safetensors", "tensor \"t0\" is also in", "a.safetensors");

    /* a damaged shard: its own message, naming the shard and the tensor */
    make_sharded(dir, sizeof dir, two_shards, 2,
                 "{\"weight_map\":{\"t0\":\"s-1.safetensors\",\"t1\":\"s-2.safetensors\"}}");
    snprintf(path, sizeof path, "%s/s-2.safetensors", dir);
    write_st(path, "{" ENTRY("t1", "F32", "[2]", "[0,4]") "}", "\0\0\0\0", 4);
    expect_fail_at(dir, "s-2.safetensors", "tensor \"t1\"", "needs 8");

    /* a shard that is a directory */
    make_sharded(dir, sizeof dir, two_shards, 1,
                 "{\"weight_map\":{\"t0\":\"s-1.safetensors\",\"t1\":\"s-2.safetensors\"}}");
    snprintf(path, sizeof path, "%s/s-2.safetensors", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    expect_fail_at(dir, "s-2.safetensors", "not a regular file", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_file),
        cmocka_unit_test(test_reference_sharded),
        cmocka_unit_test(test_every_dtype),
        cmocka_unit_test(test_lenient),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_byte_flips),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_short_file),
        cmocka_unit_test(test_header_length),
        cmocka_unit_test(test_header_not_json),
        cmocka_unit_test(test_entry_errors),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_offset_errors),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_metadata_errors),
        cmocka_unit_test(test_dir_written),
        cmocka_unit_test(test_dir_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
