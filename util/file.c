/* See file.h. */
#include "util/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sol_open_regular(const char *path, sol_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        sol_fail(err, SOL_ERR_RUNTIME, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        sol_fail(err, SOL_ERR_RUNTIME, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

FILE *sol_fopen_regular(const char *path, sol_err *err)
{
    int fd = sol_open_regular(path, err);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        sol_fail(err, SOL_ERR_RUNTIME, "%s: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

int sol_read_text_file(const char *path, size_t max_bytes, const char *what, char **out, sol_err *err)
{
    FILE *f = sol_fopen_regular(path, err);
    if (!f)
        return SOL_ERR_RUNTIME;
    int rc = 0;
    char *buf = NULL;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size < 0 || (size_t)size > max_bytes) {
        rc = size < 0 ? sol_fail(err, SOL_ERR_RUNTIME, "%s: cannot seek: %s", path, strerror(errno))
                      : sol_fail(err, SOL_ERR_RUNTIME, "%s: not a %s (size %ld bytes, limit %zu)", path, what, size,
                                 max_bytes);
        goto exit;
    }
    rewind(f);
    buf = malloc((size_t)size + 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: read failed", path);
        goto exit;
    }
    buf[size] = '\0';
    *out = buf;
    buf = NULL;
exit:
    free(buf);
    fclose(f);
    return rc;
}
