// NVRTC compiles of matvec and decode attention variants for one exact
// architecture, from the same matvec.cuh and attention_decode.cuh nvcc
// builds the defaults from: the files they include are embedded in the
// plugin when it is built (build/cuda/rtc_sources.inc, from the Makefile),
// so nothing is read from a source tree at run time.
// ptxas -v's log gives each kernel's registers, spills and shared memory,
// and a variant that spills or cannot fit an SM is rejected before anything
// is launched. Images are cached on disk (variant_cache.cu).
#include <nvrtc.h>

#include <cctype>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/cuda/attn_variant.h"
#include "kernels/cuda/fail.h"
#include "kernels/cuda/variant.h"

namespace {

struct rtc_header {
    const char *name, *text;
};

// dequant.cuh includes <cstdint> and <cstring>, which NVRTC lacks: fixed
// width integers as on LP64 hosts, and nothing for memcpy, a builtin in
// device code.
const char kStdint[] = "#pragma once\n"
                       "typedef signed char int8_t; typedef short int16_t; typedef int int32_t;\n"
                       "typedef long int64_t; typedef unsigned char uint8_t; typedef unsigned short uint16_t;\n"
                       "typedef unsigned int uint32_t; typedef unsigned long uint64_t;\n"
                       "typedef unsigned long uintptr_t; typedef unsigned long size_t;\n";

// kernels/backend.h (attention_decode.cuh's cache layout and rules)
// includes <stddef.h>: size_t, and NULL for its C callers.
const char kStddef[] = "#pragma once\n"
                       "typedef unsigned long size_t; typedef long ptrdiff_t;\n"
                       "#ifndef NULL\n#define NULL 0\n#endif\n";

// New headers and stubs go after the ones before them: a source's key
// hashes the headers it includes in this order (hash_source), so a
// matvec's key stays what it was when attention's headers came in.
const rtc_header kHeaders[] = {
#include "rtc_sources.inc"
    {"cstdint", kStdint},
    {"stdint.h", kStdint},
    {"cstring", "#pragma once\n"},
    {"stddef.h", kStddef},
};
const int kHeaderCount = (int)(sizeof kHeaders / sizeof kHeaders[0]);
const char kSource[] = "#include \"kernels/cuda/matvec.cuh\"\n";
const char kAttnSource[] = "#include \"kernels/cuda/attention_decode.cuh\"\n";

// The compile's inputs: the source, options and the names to instantiate.
struct rtc_job {
    const char *source, *program_name;
    std::string arch;
    const char *options[4];
    char kernel_expr[160], sum_expr[64];
};

// The options after the architecture (job_init), the same for every job.
const char *const kOptions[] = {
    "-std=c++17",
    "-default-device", // util/dtype.h declares host functions NVRTC would refuse
    "-Xptxas=-v",
};

void job_init_common(rtc_job *j, const char *source, const char *program_name, int sm)
{
    j->source = source;
    j->program_name = program_name;
    j->arch = "--gpu-architecture=sm_" + std::to_string(sm);
    j->options[0] = j->arch.c_str();
    for (int i = 0; i < 3; i++)
        j->options[i + 1] = kOptions[i];
}

void job_init(rtc_job *j, const sol_mv_variant *v, int sm)
{
    job_init_common(j, kSource, "sol_matvec.cu", sm);
    sol_mv_kernel_expr(v, j->kernel_expr, sizeof j->kernel_expr);
    sol_mv_sum_expr(v, j->sum_expr, sizeof j->sum_expr);
}

void job_init(rtc_job *j, const sol_attn_variant *v, int sm)
{
    job_init_common(j, kAttnSource, "sol_attention.cu", sm);
    sol_av_kernel_expr(v, j->kernel_expr, sizeof j->kernel_expr);
    sol_av_combine_expr(j->sum_expr, sizeof j->sum_expr);
}

uint64_t hash_str(uint64_t h, const char *s) { return sol_mv_hash(h, s, strlen(s) + 1); }

int header_index(const std::string &name)
{
    for (int i = 0; i < kHeaderCount; i++)
        if (name == kHeaders[i].name)
            return i;
    return -1;
}

const char *next_line(const char *line)
{
    const char *end = strchr(line, '\n');
    return end ? end + 1 : nullptr;
}

// Marks the embedded headers that text's #include lines name, and theirs.
// An include inside an #if counts too: a key that covers a header it did
// not need only costs a compile.
void mark_includes(const char *text, bool (&used)[kHeaderCount])
{
    for (const char *line = text; line; line = next_line(line)) {
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "#include", 8) != 0)
            continue;
        p += 8;
        while (*p == ' ' || *p == '\t')
            p++;
        char close = *p == '<' ? '>' : *p == '"' ? '"' : 0;
        const char *end = close ? strchr(p + 1, close) : nullptr;
        int i = end ? header_index(std::string(p + 1, (size_t)(end - p - 1))) : -1;
        if (i >= 0 && !used[i]) {
            used[i] = true;
            mark_includes(kHeaders[i].text, used);
        }
    }
}

// A source and the embedded headers it includes (in kHeaders' order), so
// that editing one kernel's header leaves the other kernels' keys alone.
uint64_t hash_source(uint64_t h, const char *source)
{
    bool used[kHeaderCount] = {};
    mark_includes(source, used);
    h = hash_str(h, source);
    for (int i = 0; i < kHeaderCount; i++)
        if (used[i])
            h = hash_str(hash_str(h, kHeaders[i].name), kHeaders[i].text);
    return h;
}

// Everything the image depends on: source, headers, options, names, NVRTC.
uint64_t job_key(const rtc_job *j)
{
    int version[2] = {0, 0};
    nvrtcVersion(&version[0], &version[1]);
    uint64_t h = sol_mv_hash(SOL_MV_HASH_SEED, version, sizeof version);
    h = hash_source(h, j->source);
    for (const char *o : j->options)
        h = hash_str(h, o);
    return hash_str(hash_str(h, j->kernel_expr), j->sum_expr);
}

struct program { // destroys the NVRTC program on every return
    nvrtcProgram p = nullptr;
    ~program()
    {
        if (p)
            nvrtcDestroyProgram(&p);
    }
};

std::string log_of(nvrtcProgram p)
{
    size_t n = 0;
    if (nvrtcGetProgramLogSize(p, &n) != NVRTC_SUCCESS || n == 0)
        return "";
    std::string log(n, '\0');
    nvrtcGetProgramLog(p, &log[0]);
    log.resize(strlen(log.c_str()));
    return log;
}

// The log's first line that says "error" (or its first line).
std::string first_error(const std::string &log)
{
    size_t at = log.find("error");
    at = at == std::string::npos ? 0 : log.rfind('\n', at) + 1; // npos + 1 is 0: the first line
    return log.substr(at, log.find('\n', at) - at);
}

// Fills err (code SOL_ERR_RUNTIME, as the plugin reports) and returns status.
int fail(sol_err *err, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int fail(sol_err *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sol_cuda_vfail(err, SOL_ERR_RUNTIME, fmt, ap);
    va_end(ap);
    return status;
}

int nvrtc_failed(sol_err *err, const char *what, nvrtcResult r, const std::string &detail)
{
    return fail(err, SOL_MV_FAILED, "NVRTC %s: %s%s%s", what, nvrtcGetErrorString(r), detail.empty() ? "" : ": ",
                detail.c_str());
}

int copy_lowered(nvrtcProgram p, const char *expr, char *out, size_t cap)
{
    const char *name = nullptr;
    if (!*expr) {
        out[0] = 0;
        return 0;
    }
    if (nvrtcGetLoweredName(p, expr, &name) != NVRTC_SUCCESS || strlen(name) >= cap)
        return -1;
    snprintf(out, cap, "%s", name);
    return 0;
}

// Compiles the job into out (cubin, lowered names, the kernel's resources).
int run_nvrtc(const rtc_job *j, sol_mv_image *out, sol_err *err)
{
    const char *names[kHeaderCount], *texts[kHeaderCount];
    for (int i = 0; i < kHeaderCount; i++) {
        names[i] = kHeaders[i].name;
        texts[i] = kHeaders[i].text;
    }
    program prog;
    nvrtcResult r = nvrtcCreateProgram(&prog.p, j->source, j->program_name, kHeaderCount, texts, names);
    if (r == NVRTC_SUCCESS)
        r = nvrtcAddNameExpression(prog.p, j->kernel_expr);
    if (r == NVRTC_SUCCESS && j->sum_expr[0])
        r = nvrtcAddNameExpression(prog.p, j->sum_expr);
    if (r != NVRTC_SUCCESS)
        return nvrtc_failed(err, "setting up the program", r, "");
    auto start = std::chrono::steady_clock::now();
    r = nvrtcCompileProgram(prog.p, 4, j->options);
    out->compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::string log = log_of(prog.p);
    if (r != NVRTC_SUCCESS)
        return nvrtc_failed(err, j->kernel_expr, r, first_error(log));
    size_t bytes = 0;
    r = nvrtcGetCUBINSize(prog.p, &bytes);
    out->cubin.resize(bytes);
    if (r == NVRTC_SUCCESS)
        r = nvrtcGetCUBIN(prog.p, reinterpret_cast<char *>(out->cubin.data()));
    if (r != NVRTC_SUCCESS)
        return nvrtc_failed(err, "reading the cubin", r, "");
    if (copy_lowered(prog.p, j->kernel_expr, out->kernel, sizeof out->kernel) ||
        copy_lowered(prog.p, j->sum_expr, out->sum, sizeof out->sum))
        return nvrtc_failed(err, "lowered names", NVRTC_ERROR_INVALID_INPUT, j->kernel_expr);
    if (sol_mv_parse_ptxas(log.c_str(), out->kernel, &out->res) != 0)
        return nvrtc_failed(err, "ptxas log", NVRTC_ERROR_INVALID_INPUT, "no figures for " + std::string(out->kernel));
    return SOL_MV_OK;
}

// The integer written just before `label` in [from, to), or -1.
int number_before(const char *from, const char *to, const char *label)
{
    std::string section(from, (size_t)(to - from));
    size_t at = section.find(label);
    if (at == std::string::npos || at == 0)
        return -1;
    size_t end = section.find_last_not_of(' ', at - 1);
    if (end == std::string::npos || !isdigit((unsigned char)section[end]))
        return -1;
    size_t begin = end;
    while (begin > 0 && isdigit((unsigned char)section[begin - 1]))
        begin--;
    return atoi(section.c_str() + begin);
}

// SOL_MV_OK, or SOL_MV_REJECTED with the reason: spills, or more than an SM
// gives one block of `threads`.
int check_resources(int threads, const sol_mv_image *img, sol_err *err)
{
    const sol_mv_resources &r = img->res;
    if (r.spill_store_bytes > 0 || r.spill_load_bytes > 0)
        return fail(err, SOL_MV_REJECTED, "spills on sm_%d: %d bytes stored, %d loaded", img->sm,
                    r.spill_store_bytes, r.spill_load_bytes);
    if ((long)r.registers * threads > SOL_MV_REGS_PER_BLOCK)
        return fail(err, SOL_MV_REJECTED, "%d registers x %d threads: more than the %d of an SM's register file",
                    r.registers, threads, (int)SOL_MV_REGS_PER_BLOCK);
    if (r.smem_bytes > SOL_MV_MAX_STATIC_SMEM)
        return fail(err, SOL_MV_REJECTED, "%d bytes of shared memory: more than %d", r.smem_bytes,
                    (int)SOL_MV_MAX_STATIC_SMEM);
    return SOL_MV_OK;
}

} // namespace

int sol_mv_parse_ptxas(const char *log, const char *entry, sol_mv_resources *out)
{
    std::string needle = std::string("entry function '") + entry + "'";
    const char *from = strstr(log, needle.c_str());
    if (!from)
        return -1;
    from += needle.size();
    const char *to = strstr(from, "entry function '");
    to = to ? to : from + strlen(from);
    out->registers = number_before(from, to, "registers");
    out->stack_bytes = number_before(from, to, "bytes stack frame");
    out->spill_store_bytes = number_before(from, to, "bytes spill stores");
    out->spill_load_bytes = number_before(from, to, "bytes spill loads");
    int smem = number_before(from, to, "bytes smem");
    out->smem_bytes = smem < 0 ? 0 : smem; // ptxas leaves out "0 bytes smem"
    return out->registers < 0 || out->stack_bytes < 0 || out->spill_store_bytes < 0 || out->spill_load_bytes < 0
               ? -1
               : 0;
}

namespace {

uint64_t source_key(const char *source)
{
    int version[2] = {0, 0};
    nvrtcVersion(&version[0], &version[1]);
    uint64_t h = sol_mv_hash(SOL_MV_HASH_SEED, version, sizeof version);
    h = hash_source(h, source);
    for (const char *o : kOptions)
        h = hash_str(h, o);
    return h;
}

// The job's image from the cache or NVRTC (caching what NVRTC made), then
// its resources checked for a block of `threads`.
int build_job(sol_mv_compiler *c, const rtc_job *job, int threads, sol_mv_image *out, char *notice,
              size_t notice_cap, sol_err *err)
{
    out->key = job_key(job);
    out->from_cache = c->cache_dir && sol_mv_cache_load(c->cache_dir, out->key, out, notice, notice_cap);
    if (out->from_cache) {
        c->cache_hits++;
    } else {
        c->nvrtc_compiles++;
        int rc = run_nvrtc(job, out, err);
        if (rc != SOL_MV_OK)
            return rc;
        char stored[512] = "";
        if (c->cache_dir && sol_mv_cache_store(c->cache_dir, out, stored, sizeof stored) != 0) {
            size_t used = strlen(notice); // after a bad file's notice
            snprintf(notice + used, notice_cap - used, "%s%s", used ? "; " : "", stored);
        }
    }
    return check_resources(threads, out, err);
}

void image_init(sol_mv_image *out, int sm, char *notice)
{
    notice[0] = 0;
    out->sm = sm;
    out->res = sol_mv_resources{0, 0, 0, 0, 0};
    out->compile_ms = 0;
}

} // namespace

uint64_t sol_mv_source_key(void) { return source_key(kSource); }

uint64_t sol_av_source_key(void) { return source_key(kAttnSource); }

void sol_mv_nvrtc_version(int *major, int *minor)
{
    *major = *minor = 0;
    if (nvrtcVersion(major, minor) != NVRTC_SUCCESS)
        *major = *minor = 0;
}

void sol_mv_rtc_options(char *buf, size_t cap)
{
    size_t used = 0;
    if (cap)
        buf[0] = 0;
    for (const char *o : kOptions)
        if (used < cap)
            used += (size_t)snprintf(buf + used, cap - used, "%s%s", used ? " " : "", o);
}

int sol_mv_build(sol_mv_compiler *c, const sol_mv_variant *v, int sm, sol_mv_image *out, char *notice,
                 size_t notice_cap, sol_err *err)
{
    char why[256];
    image_init(out, sm, notice);
    if (sol_mv_check_params(v, why, sizeof why))
        return fail(err, SOL_MV_INVALID, "%s", why);
    rtc_job job;
    job_init(&job, v, sm);
    return build_job(c, &job, v->p.rows_per_block * v->p.threads_per_row, out, notice, notice_cap, err);
}

int sol_av_build(sol_mv_compiler *c, const sol_attn_variant *v, int sm, sol_mv_image *out, char *notice,
                 size_t notice_cap, sol_err *err)
{
    char why[256];
    image_init(out, sm, notice);
    if (sol_av_check_params(v, why, sizeof why))
        return fail(err, SOL_MV_INVALID, "%s", why);
    rtc_job job;
    job_init(&job, v, sm);
    return build_job(c, &job, v->warps * 32, out, notice, notice_cap, err);
}
