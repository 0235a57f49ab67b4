/* Non-cryptographic hashing and seeded streams: FNV-1a (identities of
 * files, plans and logits) and splitmix64 (reproducible random weights). */
#ifndef SOL_UTIL_HASH_H
#define SOL_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SOL_FNV1A_INIT 14695981039346656037ULL

/* Continues an FNV-1a hash h over n bytes (start with SOL_FNV1A_INIT). */
static inline uint64_t sol_fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* Next value of a splitmix64 stream (Steele, Lea, Flood 2014). */
static inline uint64_t sol_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
