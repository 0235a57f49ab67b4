/* GGUF reader and writer: round trips, every truncation, byte flips over the
 * header, and one test per validation error with its message checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/gguf.h"
#include "util/dtype.h"

#define GGML_F32 0u
#define GGML_F16 1u
#define GGML_Q8_0 8u
#define GGML_IQ2_XXS 16u

#define assert_contains(hay, needle)                                                  \
    do {                                                                              \
        if (!strstr((hay), (needle)))                                                 \
            fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle));              \
    } while (0)

static char tmpdir[64];

static void tpath(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sol_test_gguf_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%.200s", tmpdir, e->d_name);
            remove(p);
        }
        closedir(d);
    }
    return rmdir(tmpdir);
}

/* ---- raw file building ------------------------------------------------ */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void b_put(bytes *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void b_u8(bytes *b, uint8_t v) { b_put(b, &v, 1); }

static void b_u32(bytes *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    b_put(b, x, 4);
}

static void b_u64(bytes *b, uint64_t v)
{
    b_u32(b, (uint32_t)v);
    b_u32(b, (uint32_t)(v >> 32));
}

static void b_str(bytes *b, const char *s)
{
    b_u64(b, strlen(s));
    b_put(b, s, strlen(s));
}

static void b_header(bytes *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    b_put(b, "GGUF", 4);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}

static void b_kv_u32(bytes *b, const char *key, uint32_t v)
{
    b_str(b, key);
    b_u32(b, SOL_GGUF_U32);
    b_u32(b, v);
}

static void b_tensor(bytes *b, const char *name, uint32_t n_dims, const uint64_t *dims, uint32_t type,
                     uint64_t offset)
{
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        b_u64(b, dims[d]);
    b_u32(b, type);
    b_u64(b, offset);
}

static void b_zeros(bytes *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b_u8(b, 0);
}

static void b_pad(bytes *b, size_t align)
{
    b_zeros(b, (align - b->n % align) % align);
}

static void write_raw(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
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

static int open_raw(const void *p, size_t n, const char *name, sol_gguf *g, sol_err *err)
{
    char path[256];
    tpath(path, sizeof path, name);
    write_raw(path, p, n);
    return sol_gguf_open(g, path, err);
}

/* Opens the bytes as NAME, expects failure naming the file and containing
 * s1 and s2 (when not NULL). */
static void expect_fail(bytes *b, const char *name, const char *s1, const char *s2)
{
    sol_gguf g;
    sol_err err = {0};
    int rc = open_raw(b->p, b->n, name, &g, &err);
    if (rc != SOL_ERR_RUNTIME)
        fail_msg("%s: open returned %d, expected an error", name, rc);
    assert_int_equal(err.code, SOL_ERR_RUNTIME);
    assert_contains(err.msg, name);
    if (s1)
        assert_contains(err.msg, s1);
    if (s2)
        assert_contains(err.msg, s2);
    assert_null(g.map);
    assert_null(g.kv);
    free(b->p);
    *b = (bytes){0};
}

/* ---- a valid file from the writer ------------------------------------ */

static const uint64_t f32_dims[2] = {4, 3};
static const uint64_t q8_dims[1] = {64};
static const uint64_t f16_dims[2] = {5, 3};
static float f32_data[12];
static uint8_t q8_data[68];
static uint8_t f16_data[30];
static const char *const strs[] = {"hello", "", "\xe2\x82\xac", "tokens with spaces"};
static const int32_t ints[] = {0, -1, 7, INT32_MIN, INT32_MAX};
static const float floats[] = {0.5f, -1.25f, 3.0e-5f};

static void fill_data(void)
{
    for (int i = 0; i < 12; i++)
        f32_data[i] = (float)i * 0.25f - 1.0f;
    for (int i = 0; i < 68; i++)
        q8_data[i] = (uint8_t)(i * 7 + 3);
    for (int i = 0; i < 30; i++)
        f16_data[i] = (uint8_t)(255 - i);
}

/* Writes the reference file; alignment 0 leaves general.alignment unset. */
static void write_sample(const char *path, uint32_t alignment)
{
    sol_err err = {0};
    fill_data();
    sol_gguf_writer *w = sol_gguf_writer_new();
    assert_non_null(w);
    sol_gguf_set_str(w, "general.architecture", "llama");
    if (alignment)
        sol_gguf_set_u32(w, "general.alignment", alignment);
    sol_gguf_set_u32(w, "llama.block_count", 32);
    sol_gguf_set_i32(w, "test.i32", -123456);
    sol_gguf_set_u64(w, "test.u64", UINT64_MAX);
    sol_gguf_set_u64(w, "test.u64_small", 1ull << 40);
    sol_gguf_set_f32(w, "test.f32", 1e-5f);
    sol_gguf_set_bool(w, "test.true", 1);
    sol_gguf_set_bool(w, "test.false", 0);
    sol_gguf_set_str(w, "test.empty_str", "");
    sol_gguf_set_arr_str(w, "tokenizer.ggml.tokens", strs, 4);
    sol_gguf_set_arr_i32(w, "test.ints", ints, 5);
    sol_gguf_set_arr_f32(w, "test.floats", floats, 3);
    sol_gguf_set_arr_i32(w, "test.empty_arr", NULL, 0);
    sol_gguf_add_tensor(w, "f32.weight", 2, f32_dims, GGML_F32, f32_data, sizeof f32_data);
    sol_gguf_add_tensor(w, "q8.weight", 1, q8_dims, GGML_Q8_0, q8_data, sizeof q8_data);
    sol_gguf_add_tensor(w, "f16.weight", 2, f16_dims, GGML_F16, f16_data, sizeof f16_data);
    int rc = sol_gguf_writer_write(w, path, &err);
    if (rc != SOL_OK)
        fail_msg("write: %s", err.msg);
    sol_gguf_writer_free(w);
}

static void check_sample(const sol_gguf *g, uint64_t align)
{
    sol_err err = {0};
    int64_t i;
    double d;
    int b;
    sol_gguf_str s;

    assert_int_equal(g->version, 3);
    assert_int_equal(g->alignment, align);
    assert_int_equal(g->n_tensors, 3);
    assert_int_equal(g->n_kv, align == 32 ? 13 : 14);
    assert_true(sol_gguf_str_eq(g->kv[0].key, "general.architecture"));

    assert_int_equal(sol_gguf_get_str(g, "general.architecture", &s, &err), 0);
    assert_true(sol_gguf_str_eq(s, "llama"));
    assert_int_equal(sol_gguf_get_i64(g, "llama.block_count", &i, &err), 0);
    assert_int_equal(i, 32);
    assert_int_equal(sol_gguf_find(g, "llama.block_count")->type, SOL_GGUF_U32);
    assert_int_equal(sol_gguf_get_i64(g, "test.i32", &i, &err), 0);
    assert_int_equal(i, -123456);
    assert_int_equal(sol_gguf_find(g, "test.i32")->type, SOL_GGUF_I32);
    assert_int_equal(sol_gguf_get_i64(g, "test.u64_small", &i, &err), 0);
    assert_int_equal(i, 1ll << 40);
    assert_int_equal(sol_gguf_get_f64(g, "test.u64", &d, &err), 0);
    assert_true(d == 18446744073709551615.0);
    assert_int_equal(sol_gguf_get_f64(g, "test.f32", &d, &err), 0);
    assert_true((float)d == 1e-5f);
    assert_int_equal(sol_gguf_get_f64(g, "llama.block_count", &d, &err), 0);
    assert_true(d == 32.0);
    assert_int_equal(sol_gguf_get_bool(g, "test.true", &b, &err), 0);
    assert_int_equal(b, 1);
    assert_int_equal(sol_gguf_get_bool(g, "test.false", &b, &err), 0);
    assert_int_equal(b, 0);
    assert_int_equal(sol_gguf_get_str(g, "test.empty_str", &s, &err), 0);
    assert_int_equal(s.len, 0);
    assert_true(sol_gguf_str_eq(s, ""));

    const sol_gguf_kv *kv = sol_gguf_find(g, "tokenizer.ggml.tokens");
    assert_non_null(kv);
    assert_int_equal(kv->type, SOL_GGUF_ARRAY);
    assert_int_equal(kv->arr_type, SOL_GGUF_STRING);
    assert_int_equal(kv->arr_count, 4);
    for (uint64_t k = 0; k < 4; k++) {
        assert_int_equal(sol_gguf_arr_str(g, kv, k, &s), 0);
        assert_int_equal(s.len, strlen(strs[k]));
        assert_true(sol_gguf_str_eq(s, strs[k]));
    }
    assert_int_equal(sol_gguf_arr_str(g, kv, 2, &s), 0);
    assert_int_equal(s.len, 3);
    assert_memory_equal(s.ptr, "\xe2\x82\xac", 3);
    assert_int_equal(sol_gguf_arr_str(g, kv, 4, &s), -1);

    kv = sol_gguf_find(g, "test.ints");
    assert_non_null(kv);
    assert_int_equal(kv->arr_type, SOL_GGUF_I32);
    for (uint64_t k = 0; k < 5; k++) {
        assert_int_equal(sol_gguf_arr_i64(kv, k, &i), 0);
        assert_int_equal(i, ints[k]);
        assert_int_equal(sol_gguf_arr_f64(kv, k, &d), 0);
        assert_true(d == (double)ints[k]);
    }
    assert_int_equal(sol_gguf_arr_i64(kv, 5, &i), -1);

    kv = sol_gguf_find(g, "test.floats");
    assert_non_null(kv);
    for (uint64_t k = 0; k < 3; k++) {
        assert_int_equal(sol_gguf_arr_f64(kv, k, &d), 0);
        assert_true((float)d == floats[k]);
    }
    assert_int_equal(sol_gguf_arr_i64(kv, 0, &i), -1);
    assert_int_equal(sol_gguf_arr_f64(kv, 3, &d), -1);

    kv = sol_gguf_find(g, "test.empty_arr");
    assert_non_null(kv);
    assert_int_equal(kv->arr_count, 0);
    assert_int_equal(sol_gguf_arr_i64(kv, 0, &i), -1);

    static const struct {
        const char *name;
        uint32_t n_dims, type;
        const uint64_t *dims;
        uint64_t n_elems;
        const void *data;
        uint64_t n_bytes;
    } want[] = {
        {"f32.weight", 2, GGML_F32, f32_dims, 12, f32_data, sizeof f32_data},
        {"q8.weight", 1, GGML_Q8_0, q8_dims, 64, q8_data, sizeof q8_data},
        {"f16.weight", 2, GGML_F16, f16_dims, 15, f16_data, sizeof f16_data},
    };
    uint64_t prev_end = 0;
    for (int k = 0; k < 3; k++) {
        const sol_gguf_tensor *t = sol_gguf_find_tensor(g, want[k].name);
        assert_non_null(t);
        assert_ptr_equal(t, &g->tensors[k]);
        assert_int_equal(t->n_dims, want[k].n_dims);
        for (uint32_t dd = 0; dd < t->n_dims; dd++)
            assert_int_equal(t->dims[dd], want[k].dims[dd]);
        assert_int_equal(t->n_elems, want[k].n_elems);
        assert_int_equal(t->ggml_type, want[k].type);
        assert_int_equal(t->n_bytes, want[k].n_bytes);
        assert_int_equal(t->offset % align, 0);
        assert_true(t->offset >= prev_end);
        prev_end = t->offset + t->n_bytes;
        assert_non_null(t->data);
        assert_int_equal((uint64_t)(t->data - g->data), t->offset);
        assert_int_equal((uint64_t)(g->data - g->map) % align, 0);
        assert_memory_equal(t->data, want[k].data, want[k].n_bytes);
    }
    assert_int_equal((uint64_t)(g->data - g->map) + prev_end, g->size); /* no trailing padding */
    assert_null(sol_gguf_find_tensor(g, "missing"));
    assert_null(sol_gguf_find(g, "missing"));
}

static void test_round_trip(void **state)
{
    (void)state;
    char path[256];
    sol_gguf g;
    sol_err err = {0};
    tpath(path, sizeof path, "round.gguf");
    write_sample(path, 0);
    int rc = sol_gguf_open(&g, path, &err);
    if (rc != SOL_OK)
        fail_msg("open: %s", err.msg);
    check_sample(&g, 32);
    assert_null(sol_gguf_find(&g, "general.alignment")); /* only written when set */
    sol_gguf_close(&g);
    sol_gguf_close(&g); /* idempotent */

    /* closing a zeroed, never opened struct must not close fd 0 */
    int fd0_open = fcntl(0, F_GETFD) != -1;
    sol_gguf z = {0};
    sol_gguf_close(&z);
    assert_int_equal(fcntl(0, F_GETFD) != -1, fd0_open);
}

static void test_round_trip_alignment_64(void **state)
{
    (void)state;
    char path[256];
    sol_gguf g;
    sol_err err = {0};
    int64_t a;
    tpath(path, sizeof path, "align64.gguf");
    write_sample(path, 64);
    int rc = sol_gguf_open(&g, path, &err);
    if (rc != SOL_OK)
        fail_msg("open: %s", err.msg);
    check_sample(&g, 64);
    assert_int_equal(sol_gguf_get_i64(&g, "general.alignment", &a, &err), 0);
    assert_int_equal(a, 64);
    sol_gguf_close(&g);
}

/* ---- damaged files ---------------------------------------------------- */

/* Calls every accessor on an opened (possibly damaged) file. */
static void exercise(const sol_gguf *g)
{
    volatile uint64_t sink = 0;
    for (uint64_t k = 0; k < g->n_kv; k++) {
        const sol_gguf_kv *kv = &g->kv[k];
        char key[256];
        if (kv->key.len < sizeof key && !memchr(kv->key.ptr, 0, kv->key.len)) {
            sol_err err = {0};
            int64_t i;
            double d;
            int b;
            sol_gguf_str s;
            memcpy(key, kv->key.ptr, kv->key.len);
            key[kv->key.len] = '\0';
            assert_ptr_equal(sol_gguf_find(g, key), kv);
            sink += (uint64_t)sol_gguf_get_i64(g, key, &i, &err);
            sink += (uint64_t)sol_gguf_get_f64(g, key, &d, &err);
            sink += (uint64_t)sol_gguf_get_bool(g, key, &b, &err);
            if (sol_gguf_get_str(g, key, &s, &err) == 0 && s.len)
                sink += (unsigned char)s.ptr[s.len - 1];
        }
        for (uint64_t e = 0; e < kv->arr_count && kv->type == SOL_GGUF_ARRAY; e++) {
            int64_t i;
            double d;
            sol_gguf_str s;
            if (sol_gguf_arr_str(g, kv, e, &s) == 0 && s.len)
                sink += (unsigned char)s.ptr[0] + (unsigned char)s.ptr[s.len - 1];
            sink += (uint64_t)sol_gguf_arr_i64(kv, e, &i);
            sink += (uint64_t)sol_gguf_arr_f64(kv, e, &d);
        }
    }
    for (uint64_t k = 0; k < g->n_tensors; k++) {
        const sol_gguf_tensor *t = &g->tensors[k];
        if (t->data)
            sink += t->data[0] + t->data[t->n_bytes - 1];
    }
    (void)sink;
}

static void test_every_truncation(void **state)
{
    (void)state;
    char path[256];
    size_t n;
    tpath(path, sizeof path, "full.gguf");
    write_sample(path, 0);
    uint8_t *full = read_all(path, &n);
    for (size_t len = 0; len < n; len++) {
        sol_gguf g;
        sol_err err = {0};
        int rc = open_raw(full, len, "trunc.gguf", &g, &err);
        if (rc != SOL_ERR_RUNTIME)
            fail_msg("prefix of %zu of %zu bytes: open returned %d", len, n, rc);
        assert_int_equal(err.code, SOL_ERR_RUNTIME);
        assert_true(strlen(err.msg) > strlen(path));
        assert_contains(err.msg, "trunc.gguf");
    }
    sol_gguf g;
    sol_err err = {0};
    assert_int_equal(open_raw(full, n, "trunc.gguf", &g, &err), SOL_OK);
    sol_gguf_close(&g);
    free(full);
}

static void test_byte_flips(void **state)
{
    (void)state;
    char path[256];
    size_t n;
    sol_gguf g;
    sol_err err = {0};
    tpath(path, sizeof path, "flip_src.gguf");
    write_sample(path, 0);
    uint8_t *full = read_all(path, &n);
    assert_int_equal(sol_gguf_open(&g, path, &err), SOL_OK);
    size_t head = (size_t)(g.data - g.map);
    sol_gguf_close(&g);

    int opened = 0, failed = 0;
    static const int mode[] = {0xff, 0x00, -1, -0x80}; /* set, set, xor 1, xor 0x80 */
    for (size_t pos = 0; pos < head; pos++) {
        for (size_t m = 0; m < sizeof mode / sizeof mode[0]; m++) {
            uint8_t old = full[pos];
            full[pos] = mode[m] >= 0 ? (uint8_t)mode[m] : (uint8_t)(old ^ -mode[m]);
            memset(&err, 0, sizeof err);
            int rc = open_raw(full, n, "flip.gguf", &g, &err);
            if (rc == SOL_OK) {
                exercise(&g);
                sol_gguf_close(&g);
                opened++;
            } else {
                assert_int_equal(rc, SOL_ERR_RUNTIME);
                assert_contains(err.msg, "flip.gguf: ");
                assert_true(strlen(err.msg) > strlen(path) + 2);
                failed++;
            }
            full[pos] = old;
        }
    }
    assert_true(opened > 0);
    assert_true(failed > 0);
    free(full);
}

/* ---- specific errors --------------------------------------------------- */

static void test_bad_magic(void **state)
{
    (void)state;
    bytes b = {0};
    b_put(&b, "PK\x03\x04", 4);
    b_zeros(&b, 40);
    expect_fail(&b, "magic.gguf", "not a GGUF file", "(magic \"PK\\x03\\x04\")");
}

static void test_version_1(void **state)
{
    (void)state;
    bytes b = {0};
    b_header(&b, 1, 0, 0);
    expect_fail(&b, "v1.gguf", "unsupported GGUF version 1 ", NULL);
}

static void test_version_99(void **state)
{
    (void)state;
    bytes b = {0};
    b_header(&b, 99, 0, 0);
    expect_fail(&b, "v99.gguf", "unsupported GGUF version 99 ", NULL);
}

static void test_version_big_endian(void **state)
{
    (void)state;
    bytes b = {0};
    b_header(&b, 0x03000000u, 0, 0);
    expect_fail(&b, "be.gguf", "big-endian", NULL);
}

static void test_version_2_opens(void **state)
{
    (void)state;
    bytes b = {0};
    sol_gguf g;
    sol_err err = {0};
    int64_t v;
    b_header(&b, 2, 0, 1);
    b_kv_u32(&b, "a.b", 5);
    assert_int_equal(open_raw(b.p, b.n, "v2.gguf", &g, &err), SOL_OK);
    assert_int_equal(g.version, 2);
    assert_int_equal(sol_gguf_get_i64(&g, "a.b", &v, &err), 0);
    assert_int_equal(v, 5);
    assert_ptr_equal(g.data, g.map + g.size); /* no tensors: no data section needed */
    sol_gguf_close(&g);
    free(b.p);
}

static void test_huge_tensor_count(void **state)
{
    (void)state;
    bytes b = {0};
    b_header(&b, 3, 1ull << 60, 0);
    b_zeros(&b, 64);
    expect_fail(&b, "count.gguf", "tensor count 1152921504606846976", "cannot fit");
    b_header(&b, 3, 0, UINT64_MAX);
    b_zeros(&b, 64);
    expect_fail(&b, "kvcount.gguf", "metadata key count 18446744073709551615", NULL);
}

static void test_huge_string_length(void **state)
{
    (void)state;
    bytes b = {0};
    b_header(&b, 3, 0, 1);
    b_str(&b, "general.name");
    b_u32(&b, SOL_GGUF_STRING);
    b_u64(&b, 1ull << 40);
    b_put(&b, "abc", 3);
    expect_fail(&b, "strlen.gguf", "truncated in metadata key 0 (\"general.name\")", "1099511627776");

    b_header(&b, 3, 0, 1);
    b_u64(&b, 1ull << 62);
    b_zeros(&b, 32);
    expect_fail(&b, "keylen.gguf", "truncated in metadata key 0", "4611686018427387904");

    b_header(&b, 3, 0, 1);
    b_str(&b, "tokenizer.ggml.tokens");
    b_u32(&b, SOL_GGUF_ARRAY);
    b_u32(&b, SOL_GGUF_STRING);
    b_u64(&b, 2);
    b_str(&b, "ok");
    b_u64(&b, UINT64_MAX);
    b_zeros(&b, 8);
    expect_fail(&b, "elemlen.gguf", "\"tokenizer.ggml.tokens\"", "element 1");
}

static void test_huge_array_count(void **state)
{
    (void)state;
    bytes b = {0};
    b_header(&b, 3, 0, 1);
    b_str(&b, "test.arr");
    b_u32(&b, SOL_GGUF_ARRAY);
    b_u32(&b, SOL_GGUF_U64);
    b_u64(&b, 1ull << 61);
    b_zeros(&b, 64);
    expect_fail(&b, "arrcount.gguf", "\"test.arr\"", "2305843009213693952 u64 elements cannot fit");
}

static void test_dims_overflow(void **state)
{
    (void)state;
    bytes b = {0};
    const uint64_t dims[3] = {1ull << 32, 1ull << 32, 2};
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "big.weight", 3, dims, GGML_F32, 0);
    b_pad(&b, 32);
    expect_fail(&b, "dims.gguf", "tensor \"big.weight\"", "overflows");

    /* elements fit, bytes do not */
    const uint64_t dims2[2] = {1ull << 32, 1ull << 31};
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "big.weight", 2, dims2, GGML_F32, 0);
    b_pad(&b, 32);
    expect_fail(&b, "bytes.gguf", "tensor \"big.weight\": byte size", "overflows");
}

static void test_bad_dims(void **state)
{
    (void)state;
    bytes b = {0};
    const uint64_t dims[5] = {32, 1, 1, 1, 1};
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "five", 5, dims, GGML_F32, 0);
    expect_fail(&b, "ndims5.gguf", "tensor \"five\": 5 dimensions", NULL);

    b_header(&b, 3, 1, 0);
    b_tensor(&b, "none", 0, dims, GGML_F32, 0);
    b_zeros(&b, 32);
    expect_fail(&b, "ndims0.gguf", "tensor \"none\": 0 dimensions", NULL);

    const uint64_t zero[2] = {32, 0};
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "zero", 2, zero, GGML_F32, 0);
    b_pad(&b, 32);
    expect_fail(&b, "zerodim.gguf", "tensor \"zero\": dimension 1 is zero", NULL);

    const uint64_t odd[1] = {33};
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "q", 1, odd, GGML_Q8_0, 0);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_fail(&b, "block.gguf", "tensor \"q\": first dimension 33", "Q8_0 block size 32");
}

static void test_data_past_eof(void **state)
{
    (void)state;
    bytes b = {0};
    const uint64_t dims[1] = {1024};
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "blk.0.attn_q.weight", 1, dims, GGML_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 100);
    expect_fail(&b, "eof.gguf", "tensor \"blk.0.attn_q.weight\": data [offset 0, 4096 bytes]",
                "extends past end of file");

    /* offset itself beyond the file, and an offset that overflows with the size */
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "w", 1, dims, GGML_F32, UINT64_MAX - 31);
    b_pad(&b, 32);
    expect_fail(&b, "eof2.gguf", "tensor \"w\"", "past end of file");

    /* no data section at all */
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "w", 1, dims, GGML_F32, 0);
    expect_fail(&b, "nodata.gguf", "truncated before the data section", NULL);
}

static void test_misaligned_offset(void **state)
{
    (void)state;
    bytes b = {0};
    const uint64_t dims[1] = {4};
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "w", 1, dims, GGML_F32, 16);
    b_pad(&b, 32);
    b_zeros(&b, 64);
    expect_fail(&b, "misaligned.gguf", "tensor \"w\": offset 16", "alignment 32");
}

static void test_bad_alignment(void **state)
{
    (void)state;
    bytes b = {0};
    b_header(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 24);
    expect_fail(&b, "align24.gguf", "general.alignment 24 is not a power of two", NULL);

    b_header(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 0);
    expect_fail(&b, "align0.gguf", "general.alignment 0", NULL);

    b_header(&b, 3, 0, 1);
    b_str(&b, "general.alignment");
    b_u32(&b, SOL_GGUF_STRING);
    b_str(&b, "32");
    expect_fail(&b, "alignstr.gguf", "general.alignment has type string, expected u32", NULL);
}

static void test_alignment_honoured(void **state)
{
    (void)state;
    bytes b = {0};
    sol_gguf g;
    sol_err err = {0};
    const uint64_t dims[1] = {4};
    b_header(&b, 3, 2, 1);
    b_kv_u32(&b, "general.alignment", 8);
    b_tensor(&b, "a", 1, dims, GGML_F32, 0);
    b_tensor(&b, "b", 1, dims, GGML_F32, 16);
    b_pad(&b, 8);
    size_t start = b.n;
    for (int i = 0; i < 32; i++)
        b_u8(&b, (uint8_t)i);
    int rc = open_raw(b.p, b.n, "align8.gguf", &g, &err);
    if (rc != SOL_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(g.alignment, 8);
    assert_int_equal((size_t)(g.data - g.map), start);
    assert_int_equal(sol_gguf_find_tensor(&g, "b")->data[0], 16);
    sol_gguf_close(&g);
    free(b.p);
}

static void test_duplicate_key(void **state)
{
    (void)state;
    bytes b = {0};
    b_header(&b, 3, 0, 3);
    b_kv_u32(&b, "a.b", 1);
    b_kv_u32(&b, "a.c", 2);
    b_kv_u32(&b, "a.b", 3);
    expect_fail(&b, "dupkey.gguf", "duplicate metadata key \"a.b\"", "keys 0 and 2");
}

static void test_duplicate_tensor(void **state)
{
    (void)state;
    bytes b = {0};
    const uint64_t dims[1] = {8};
    b_header(&b, 3, 2, 0);
    b_tensor(&b, "output.weight", 1, dims, GGML_F32, 0);
    b_tensor(&b, "output.weight", 1, dims, GGML_F32, 32);
    b_pad(&b, 32);
    b_zeros(&b, 64);
    expect_fail(&b, "duptensor.gguf", "duplicate tensor name \"output.weight\"", NULL);
}

static void test_bool_value_2(void **state)
{
    (void)state;
    bytes b = {0};
    b_header(&b, 3, 0, 1);
    b_str(&b, "test.flag");
    b_u32(&b, SOL_GGUF_BOOL);
    b_u8(&b, 2);
    expect_fail(&b, "bool.gguf", "\"test.flag\"", "bool value 2 is not 0 or 1");

    b_header(&b, 3, 0, 1);
    b_str(&b, "test.flags");
    b_u32(&b, SOL_GGUF_ARRAY);
    b_u32(&b, SOL_GGUF_BOOL);
    b_u64(&b, 3);
    b_u8(&b, 1);
    b_u8(&b, 0);
    b_u8(&b, 7);
    expect_fail(&b, "boolarr.gguf", "\"test.flags\"): element 2", "bool value 7");
}

static void test_unknown_value_type(void **state)
{
    (void)state;
    bytes b = {0};
    b_header(&b, 3, 0, 1);
    b_str(&b, "test.odd");
    b_u32(&b, 13);
    b_zeros(&b, 16);
    expect_fail(&b, "type13.gguf", "\"test.odd\"", "unknown value type 13");

    b_header(&b, 3, 0, 1);
    b_str(&b, "test.odd_arr");
    b_u32(&b, SOL_GGUF_ARRAY);
    b_u32(&b, 77);
    b_u64(&b, 1);
    b_zeros(&b, 16);
    expect_fail(&b, "type77.gguf", "\"test.odd_arr\"", "unknown array element type 77");
}

static void test_nested_array(void **state)
{
    (void)state;
    bytes b = {0};
    b_header(&b, 3, 0, 1);
    b_str(&b, "test.nested");
    b_u32(&b, SOL_GGUF_ARRAY);
    b_u32(&b, SOL_GGUF_ARRAY);
    b_u64(&b, 1);
    b_u32(&b, SOL_GGUF_U8);
    b_u64(&b, 1);
    b_u8(&b, 1);
    expect_fail(&b, "nested.gguf", "\"test.nested\"", "arrays of arrays are not supported");
}

static void test_empty_key(void **state)
{
    (void)state;
    bytes b = {0};
    b_header(&b, 3, 0, 1);
    b_kv_u32(&b, "", 1);
    expect_fail(&b, "emptykey.gguf", "metadata key 0 has an empty name", NULL);
}

static void test_missing_file(void **state)
{
    (void)state;
    char path[256];
    sol_gguf g;
    sol_err err = {0};
    tpath(path, sizeof path, "missing.gguf");
    assert_int_equal(sol_gguf_open(&g, path, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "No such file");
    sol_gguf_close(&g);
}

static void test_empty_file_and_directory(void **state)
{
    (void)state;
    bytes b = {0};
    b_u8(&b, 0);
    b.n = 0;
    expect_fail(&b, "empty.gguf", "not a GGUF file (empty)", NULL);

    sol_gguf g;
    sol_err err = {0};
    assert_int_equal(sol_gguf_open(&g, tmpdir, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "not a regular file");
}

static void test_unknown_tensor_type(void **state)
{
    (void)state;
    bytes b = {0};
    sol_gguf g;
    sol_err err = {0};
    const uint64_t dims[2] = {256, 4};
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "iq.weight", 2, dims, GGML_IQ2_XXS, 0);
    b_pad(&b, 32); /* no data: the analyzer only needs the metadata */
    int rc = open_raw(b.p, b.n, "iq.gguf", &g, &err);
    if (rc != SOL_OK)
        fail_msg("%s", err.msg);
    const sol_gguf_tensor *t = sol_gguf_find_tensor(&g, "iq.weight");
    assert_non_null(t);
    assert_int_equal(t->n_elems, 1024);
    assert_int_equal(t->n_bytes, 0);
    assert_null(t->data);
    assert_int_equal(t->dims[2], 1);
    assert_int_equal(t->dims[3], 1);
    sol_gguf_close(&g);
    free(b.p);
}

/* Type 0xFFFFFFFF is no GGML type: it once matched the -1 that marks sol's
 * types without a GGML id and read as fp8. */
static void test_type_all_ones(void **state)
{
    (void)state;
    sol_dtype t = SOL_DT_F32;
    assert_int_equal(sol_dtype_from_ggml(0xFFFFFFFFu, &t), -1);
    assert_int_equal(sol_dtype_from_ggml(0x80000000u, &t), -1);
    assert_int_equal(t, SOL_DT_F32); /* untouched */
    for (int d = 0; d < SOL_DT_COUNT; d++) { /* every GGML id maps back to its type */
        int id = sol_dtype_to_ggml((sol_dtype)d);
        if (id >= 0) {
            assert_int_equal(sol_dtype_from_ggml((uint32_t)id, &t), 0);
            assert_int_equal(t, d);
        }
    }
    bytes b = {0};
    sol_gguf g;
    sol_err err = {0};
    const uint64_t dims[2] = {256, 4};
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "odd.weight", 2, dims, 0xFFFFFFFFu, 0);
    b_pad(&b, 32);
    if (open_raw(b.p, b.n, "odd.gguf", &g, &err) == SOL_OK) { /* unknown types open, with no data */
        const sol_gguf_tensor *tt = sol_gguf_find_tensor(&g, "odd.weight");
        assert_non_null(tt);
        assert_int_equal(tt->n_bytes, 0);
        sol_gguf_close(&g);
    }
    free(b.p);
}

/* ---- getters ---------------------------------------------------------- */

static void test_getter_errors(void **state)
{
    (void)state;
    char path[256];
    sol_gguf g;
    sol_err err = {0};
    int64_t i;
    double d;
    int bv;
    sol_gguf_str s;
    tpath(path, sizeof path, "getters.gguf");
    write_sample(path, 0);
    assert_int_equal(sol_gguf_open(&g, path, &err), SOL_OK);

    assert_int_equal(sol_gguf_get_i64(&g, "general.architecture", &i, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "getters.gguf");
    assert_contains(err.msg, "\"general.architecture\" has type string, expected an integer");

    memset(&err, 0, sizeof err);
    assert_int_equal(sol_gguf_get_i64(&g, "test.f32", &i, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "\"test.f32\" has type f32");

    memset(&err, 0, sizeof err);
    assert_int_equal(sol_gguf_get_i64(&g, "test.u64", &i, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "\"test.u64\"");
    assert_contains(err.msg, "18446744073709551615 does not fit");

    memset(&err, 0, sizeof err);
    assert_int_equal(sol_gguf_get_f64(&g, "tokenizer.ggml.tokens", &d, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "\"tokenizer.ggml.tokens\" has type array of string, expected a number");

    memset(&err, 0, sizeof err);
    assert_int_equal(sol_gguf_get_bool(&g, "llama.block_count", &bv, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "\"llama.block_count\" has type u32, expected bool");

    memset(&err, 0, sizeof err);
    assert_int_equal(sol_gguf_get_str(&g, "test.true", &s, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "\"test.true\" has type bool, expected string");

    memset(&err, 0, sizeof err);
    assert_int_equal(sol_gguf_get_i64(&g, "no.such.key", &i, &err), -1);
    assert_int_equal(sol_gguf_get_f64(&g, "no.such.key", &d, &err), -1);
    assert_int_equal(sol_gguf_get_bool(&g, "no.such.key", &bv, &err), -1);
    assert_int_equal(sol_gguf_get_str(&g, "no.such.key", &s, &err), -1);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.msg, "");

    const sol_gguf_kv *tok = sol_gguf_find(&g, "tokenizer.ggml.tokens");
    const sol_gguf_kv *ints_kv = sol_gguf_find(&g, "test.ints");
    assert_int_equal(sol_gguf_arr_i64(tok, 0, &i), -1);
    assert_int_equal(sol_gguf_arr_f64(tok, 0, &d), -1);
    assert_int_equal(sol_gguf_arr_str(&g, ints_kv, 0, &s), -1);
    assert_int_equal(sol_gguf_arr_str(&g, sol_gguf_find(&g, "test.true"), 0, &s), -1);
    assert_int_equal(sol_gguf_arr_i64(NULL, 0, &i), -1);
    sol_gguf_close(&g);
}

static void test_arr_str_access_orders(void **state)
{
    (void)state;
    enum { N = 1000, M = 300 };
    static char a_buf[N][16], b_buf[M][16];
    const char *a[N], *bb[M];
    for (int k = 0; k < N; k++) {
        snprintf(a_buf[k], sizeof a_buf[k], "tok%d", k * 37);
        a[k] = a_buf[k];
    }
    for (int k = 0; k < M; k++) {
        snprintf(b_buf[k], sizeof b_buf[k], "m %d", k);
        bb[k] = b_buf[k];
    }
    char path[256];
    sol_err err = {0};
    sol_gguf g;
    sol_gguf_str s;
    tpath(path, sizeof path, "vocab.gguf");
    sol_gguf_writer *w = sol_gguf_writer_new();
    sol_gguf_set_arr_str(w, "tokenizer.ggml.tokens", a, N);
    sol_gguf_set_arr_str(w, "tokenizer.ggml.merges", bb, M);
    assert_int_equal(sol_gguf_writer_write(w, path, &err), SOL_OK);
    sol_gguf_writer_free(w);
    assert_int_equal(sol_gguf_open(&g, path, &err), SOL_OK);
    const sol_gguf_kv *ka = sol_gguf_find(&g, "tokenizer.ggml.tokens");
    const sol_gguf_kv *kb = sol_gguf_find(&g, "tokenizer.ggml.merges");

    for (int k = 0; k < N; k++) { /* forward, interleaved with the other array */
        assert_int_equal(sol_gguf_arr_str(&g, ka, (uint64_t)k, &s), 0);
        assert_true(sol_gguf_str_eq(s, a[k]));
        if (k < M) {
            assert_int_equal(sol_gguf_arr_str(&g, kb, (uint64_t)k, &s), 0);
            assert_true(sol_gguf_str_eq(s, bb[k]));
        }
    }
    for (int k = N - 1; k >= 0; k -= 7) { /* backward */
        assert_int_equal(sol_gguf_arr_str(&g, ka, (uint64_t)k, &s), 0);
        assert_true(sol_gguf_str_eq(s, a[k]));
    }
    uint32_t x = 12345;
    for (int r = 0; r < 500; r++) { /* random, with repeats */
        x = x * 1103515245u + 12345u;
        uint64_t k = (x >> 8) % N;
        assert_int_equal(sol_gguf_arr_str(&g, ka, k, &s), 0);
        assert_true(sol_gguf_str_eq(s, a[k]));
        assert_int_equal(sol_gguf_arr_str(&g, ka, k, &s), 0);
        assert_true(sol_gguf_str_eq(s, a[k]));
    }
    assert_int_equal(sol_gguf_arr_str(&g, ka, N, &s), -1);

    /* a copy of the kv outside g works too, without the cache */
    sol_gguf_kv copy = *kb;
    assert_int_equal(sol_gguf_arr_str(&g, &copy, M - 1, &s), 0);
    assert_true(sol_gguf_str_eq(s, bb[M - 1]));
    assert_int_equal(sol_gguf_arr_str(NULL, &copy, 3, &s), 0);
    assert_true(sol_gguf_str_eq(s, bb[3]));
    sol_gguf_close(&g);
}

/* ---- writer ----------------------------------------------------------- */

static void test_writer_replaces_key(void **state)
{
    (void)state;
    char path[256];
    sol_err err = {0};
    sol_gguf g;
    sol_gguf_str s;
    int64_t v;
    tpath(path, sizeof path, "replace.gguf");
    sol_gguf_writer *w = sol_gguf_writer_new();
    sol_gguf_set_u32(w, "k.first", 1);
    sol_gguf_set_u32(w, "k.second", 2);
    sol_gguf_set_u32(w, "k.second", 3);
    sol_gguf_set_str(w, "k.first", "now a string");
    assert_int_equal(sol_gguf_writer_write(w, path, &err), SOL_OK);
    sol_gguf_writer_free(w);
    assert_int_equal(sol_gguf_open(&g, path, &err), SOL_OK);
    assert_int_equal(g.n_kv, 2);
    assert_true(sol_gguf_str_eq(g.kv[0].key, "k.first"));
    assert_int_equal(sol_gguf_get_str(&g, "k.first", &s, &err), 0);
    assert_true(sol_gguf_str_eq(s, "now a string"));
    assert_int_equal(sol_gguf_get_i64(&g, "k.second", &v, &err), 0);
    assert_int_equal(v, 3);
    sol_gguf_close(&g);
}

static void test_writer_null_data_is_zeros(void **state)
{
    (void)state;
    char path[256];
    sol_err err = {0};
    sol_gguf g;
    const uint64_t dims[2] = {32, 2};
    tpath(path, sizeof path, "zeros.gguf");
    sol_gguf_writer *w = sol_gguf_writer_new();
    sol_gguf_add_tensor(w, "z", 2, dims, GGML_Q8_0, NULL, 2 * 34);
    assert_int_equal(sol_gguf_writer_write(w, path, &err), SOL_OK);
    sol_gguf_writer_free(w);
    assert_int_equal(sol_gguf_open(&g, path, &err), SOL_OK);
    const sol_gguf_tensor *t = sol_gguf_find_tensor(&g, "z");
    assert_int_equal(t->n_bytes, 68);
    for (int k = 0; k < 68; k++)
        assert_int_equal(t->data[k], 0);
    sol_gguf_close(&g);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_writer_errors(void **state)
{
    (void)state;
    char path[256], tmp[272];
    sol_err err = {0};
    const uint64_t dims[1] = {4};
    float data[4] = {0};

    /* missing directory */
    tpath(path, sizeof path, "no_dir/out.gguf");
    sol_gguf_writer *w = sol_gguf_writer_new();
    sol_gguf_set_u32(w, "a", 1);
    assert_int_equal(sol_gguf_writer_write(w, path, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "no_dir/out.gguf");
    assert_contains(err.msg, "No such file");
    sol_gguf_writer_free(w);

    /* bad tensors fail before anything is written */
    tpath(path, sizeof path, "bad_out.gguf");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    w = sol_gguf_writer_new();
    sol_gguf_add_tensor(w, "w", 1, dims, GGML_F32, data, 12);
    memset(&err, 0, sizeof err);
    assert_int_equal(sol_gguf_writer_write(w, path, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "bad_out.gguf: tensor \"w\": 12 bytes given");
    sol_gguf_writer_free(w);
    assert_false(exists(path));
    assert_false(exists(tmp));

    w = sol_gguf_writer_new();
    sol_gguf_add_tensor(w, "w", 1, dims, GGML_F32, data, 16);
    sol_gguf_add_tensor(w, "w", 1, dims, GGML_F32, data, 16);
    memset(&err, 0, sizeof err);
    assert_int_equal(sol_gguf_writer_write(w, path, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "duplicate tensor name \"w\"");
    sol_gguf_writer_free(w);

    w = sol_gguf_writer_new();
    sol_gguf_add_tensor(w, "w5", 5, dims, GGML_F32, data, 16);
    memset(&err, 0, sizeof err);
    assert_int_equal(sol_gguf_writer_write(w, path, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "tensor \"w5\": 5 dimensions");
    sol_gguf_writer_free(w);

    w = sol_gguf_writer_new();
    sol_gguf_set_u32(w, "general.alignment", 24);
    memset(&err, 0, sizeof err);
    assert_int_equal(sol_gguf_writer_write(w, path, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "general.alignment 24 is not a power of two");
    sol_gguf_writer_free(w);
    assert_false(exists(path));
    assert_false(exists(tmp));

    w = sol_gguf_writer_new();
    sol_gguf_set_u32(w, "", 1);
    memset(&err, 0, sizeof err);
    assert_int_equal(sol_gguf_writer_write(w, path, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "bad_out.gguf: cannot write: empty metadata key");
    sol_gguf_writer_free(w);

    const char *with_null[] = {"a", NULL};
    w = sol_gguf_writer_new();
    sol_gguf_set_arr_str(w, "tokenizer.ggml.tokens", with_null, 2);
    memset(&err, 0, sizeof err);
    assert_int_equal(sol_gguf_writer_write(w, path, &err), SOL_ERR_RUNTIME);
    assert_contains(err.msg, "\"tokenizer.ggml.tokens\": element 1 is NULL");
    sol_gguf_writer_free(w);
    assert_false(exists(path));
    assert_false(exists(tmp));

    /* an existing file is replaced whole; no .tmp is left behind */
    write_raw(path, "old contents", 12);
    w = sol_gguf_writer_new();
    sol_gguf_set_u32(w, "a", 7);
    assert_int_equal(sol_gguf_writer_write(w, path, &err), SOL_OK);
    sol_gguf_writer_free(w);
    assert_false(exists(tmp));
    sol_gguf g;
    int64_t v;
    assert_int_equal(sol_gguf_open(&g, path, &err), SOL_OK);
    assert_int_equal(sol_gguf_get_i64(&g, "a", &v, &err), 0);
    assert_int_equal(v, 7);
    sol_gguf_close(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_alignment_64),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_byte_flips),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_version_1),
        cmocka_unit_test(test_version_99),
        cmocka_unit_test(test_version_big_endian),
        cmocka_unit_test(test_version_2_opens),
        cmocka_unit_test(test_huge_tensor_count),
        cmocka_unit_test(test_huge_string_length),
        cmocka_unit_test(test_huge_array_count),
        cmocka_unit_test(test_dims_overflow),
        cmocka_unit_test(test_bad_dims),
        cmocka_unit_test(test_data_past_eof),
        cmocka_unit_test(test_misaligned_offset),
        cmocka_unit_test(test_bad_alignment),
        cmocka_unit_test(test_alignment_honoured),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_duplicate_tensor),
        cmocka_unit_test(test_bool_value_2),
        cmocka_unit_test(test_unknown_value_type),
        cmocka_unit_test(test_nested_array),
        cmocka_unit_test(test_empty_key),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_empty_file_and_directory),
        cmocka_unit_test(test_unknown_tensor_type),
        cmocka_unit_test(test_type_all_ones),
        cmocka_unit_test(test_getter_errors),
        cmocka_unit_test(test_arr_str_access_orders),
        cmocka_unit_test(test_writer_replaces_key),
        cmocka_unit_test(test_writer_null_data_is_zeros),
        cmocka_unit_test(test_writer_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
