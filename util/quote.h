/* Untrusted bytes quoted for a one-line error message. */
#ifndef SOL_UTIL_QUOTE_H
#define SOL_UTIL_QUOTE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sol_qbuf {
    char s[112];
} sol_qbuf;

/* s[0..len) quoted: printable ASCII kept, '"' and '\' escaped, other bytes
 * as \xNN, cut with "..." when long. Returns q->s. */
const char *sol_quote(sol_qbuf *q, const char *s, uint64_t len);
/* The same for a NUL-terminated string. */
const char *sol_quote_z(sol_qbuf *q, const char *s);

/* s itself when it is shorter than cap bytes, else its head and tail joined
 * by "..." in buf: a very long path leaves room for the reason in a
 * one-line message. */
const char *sol_elide(const char *s, char *buf, size_t cap);

/* Makes file-derived text (a model's name, a hardware entry's, a stored
 * row's) safe to print on a terminal, in place: C0 controls, DEL, C1
 * controls (U+0080..U+009F) and bytes that are not valid UTF-8 become '?',
 * so no escape sequence reaches the terminal; other UTF-8 is kept. Returns s. */
char *sol_printable(char *s);

#endif
