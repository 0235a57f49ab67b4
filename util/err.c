/* Error reporting for library code (see err.h). */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>

int sol_fail(sol_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}
