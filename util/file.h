/* Opening files a user names: only regular files are read. A FIFO, a
 * device or a socket is refused at once (opened without blocking, so a FIFO
 * with no writer cannot hang the open), with one line naming the path. */
#ifndef SOL_UTIL_FILE_H
#define SOL_UTIL_FILE_H

#include <stdio.h>

#include "util/err.h"

/* A read-only descriptor of the regular file at path, or -1 with err set
 * ("PATH: No such file or directory", "PATH: not a regular file"). */
int sol_open_regular(const char *path, sol_err *err);
/* The same as a stdio stream ("rb"); NULL with err set. */
FILE *sol_fopen_regular(const char *path, sol_err *err);

/* A whole regular file of at most max_bytes, NUL-terminated, into *out
 * (the caller frees it); what names the file's kind in the error when it
 * is larger ("PATH: not a routing file (size N bytes, limit M)"). */
int sol_read_text_file(const char *path, size_t max_bytes, const char *what, char **out, sol_err *err);

#endif
