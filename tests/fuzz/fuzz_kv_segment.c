/* A stored KV segment (sol chat --session) from anywhere: refused with a
 * notice or loaded into the engine's cache, never a crash or a read past
 * the file. The input is written under the name its header claims (so the
 * checks past the name run); the engine is the synth model of
 * $SOL_FUZZ_GGUF with its own scheme and an f16 cache, as the seeds were
 * written (tests/fuzz/seeds/kv_segment, by `sol chat --session`). */
#include "tests/fuzz/fuzz.h"

#include <sys/stat.h>

#include "engine/engine.h"
#include "engine/kv_segments.h"
#include "kernels/cpu.h"

static sol_engine *engine;
static sol_kv_store store;

static void setup(void)
{
    const char *path = getenv("SOL_FUZZ_GGUF");
    sol_cpu_options opt = {.threads = 1};
    sol_backend *be = NULL;
    sol_engine_config cfg;
    sol_err err = {0};
    sol_engine_defaults(&cfg);
    cfg.ctx = 512;
    char dir[64];
    snprintf(dir, sizeof dir, "%s/sol-fuzz-%d.store", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
             (int)getpid());
    if (!path || sol_cpu_backend_new(&opt, &be, &err) || (cfg.backend = be, sol_engine_open(path, &cfg, &engine, &err)) ||
        sol_kv_store_open(dir, engine, 0, &store, &err)) {
        fprintf(stderr, "fuzz_kv_segment: set SOL_FUZZ_GGUF to the synth model (%s)\n", err.msg);
        exit(2);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!engine)
        setup();
    uint64_t hash = 0;
    if (size >= 40)
        memcpy(&hash, data + 32, sizeof hash); /* the name the header claims */
    char path[3400];
    snprintf(path, sizeof path, "%s/segments/%016llx.seg", store.dir, (unsigned long long)hash);
    fuzz_write(path, data, size);
    sol_kv_loaded l;
    sol_err err = {0};
    if (sol_kv_segment_load(&store, engine, hash, &l, &err) == 0)
        sol_kv_loaded_free(&l);
    unlink(path);
    return 0;
}
