/* Files compiled into the binary by tools/embed.c: a NULL-terminated table
 * of {name, NUL-terminated text}. */
#ifndef SOL_UTIL_EMBEDDED_H
#define SOL_UTIL_EMBEDDED_H

typedef struct sol_embedded_file {
    const char *name; /* file name without .json */
    const char *text;
} sol_embedded_file;

int sol_embedded_count(const sol_embedded_file *table);
/* The text of `name`, or NULL. */
const char *sol_embedded_find(const sol_embedded_file *table, const char *name);

#endif
