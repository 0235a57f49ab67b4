/* Error reporting for library code: functions return a status and fill a
 * sol_err; only cli/ prints it and chooses the exit code. */
#ifndef SOL_UTIL_ERR_H
#define SOL_UTIL_ERR_H

enum {
    SOL_OK = 0,
    SOL_ERR_RUNTIME = 1, /* bad file, I/O, resource: exit 1 */
    SOL_ERR_USAGE = 2,   /* bad flag or value the user typed: exit 2 */
};

typedef struct sol_err {
    int code;
    char msg[512];
} sol_err;

/* Sets err (when not NULL) to code and a printf-style message; returns code. */
int sol_fail(sol_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
