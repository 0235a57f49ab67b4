/* The identity of a file for caches keyed by it: FNV-1a over its first MiB
 * and its size (cheap for multi-GB models; a different model differs in
 * its header, tensor table or size). */
#ifndef SOL_UTIL_FILE_ID_H
#define SOL_UTIL_FILE_ID_H

#include <stdint.h>

/* The identity, or the FNV-1a seed alone when the file cannot be read. */
uint64_t sol_file_identity(const char *path);

#endif
