/* Finds and loads the CUDA plugin (build/sol-cuda.so) on demand, so `sol`
 * itself needs no CUDA library to start. Search order: $SOL_CUDA_PLUGIN,
 * then sol-cuda.so beside the running binary and one folder up (the test
 * build lives in build/test/). */
#ifndef SOL_KERNELS_CUDA_LOADER_H
#define SOL_KERNELS_CUDA_LOADER_H

#include "kernels/cuda/plugin.h"

/* Loads the plugin once per process (later calls return the same table)
 * and checks that a device is there: errors say which file was tried and
 * why, or that no CUDA device is visible. path gets the file loaded. */
int sol_cuda_open(const sol_cuda_plugin **out, char *path, int cap, sol_err *err);

/* Loads the plugin file at path (any backend plugin of this ABI, devices
 * or not); a file already loaded returns its table again. */
int sol_plugin_load(const char *path, const sol_cuda_plugin **out, sol_err *err);

#endif
