// sol_err filled from a format inside the plugin's C++ (the library's
// sol_fail lives in util/err.c, which the plugin does not link).
#ifndef SOL_KERNELS_CUDA_FAIL_H
#define SOL_KERNELS_CUDA_FAIL_H

#include <cstdarg>
#include <cstdio>

extern "C" {
#include "util/err.h"
}

inline int sol_cuda_vfail(sol_err *err, int code, const char *fmt, va_list ap)
{
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    err->code = code;
    return code;
}

// Fills err with code and the message; returns code.
__attribute__((format(printf, 3, 4))) inline int sol_cuda_failc(sol_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sol_cuda_vfail(err, code, fmt, ap);
    va_end(ap);
    return code;
}

// A variant refused: the reason written to why (when given, one line),
// and 1, as the checks that say whether a variant fits return.
__attribute__((format(printf, 3, 4))) inline int sol_cuda_refuse(char *why, size_t cap, const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return 1;
}

#endif
