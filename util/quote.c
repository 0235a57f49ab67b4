/* Quoting of untrusted bytes for messages (see quote.h). */
#include "util/quote.h"

#include <string.h>

const char *sol_quote(sol_qbuf *q, const char *s, uint64_t len)
{
    size_t n = 0;
    q->s[n++] = '"';
    for (uint64_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (n + 4 + 3 + 2 > sizeof q->s) { /* widest escape, "...", quote, NUL */
            memcpy(q->s + n, "...", 3);
            n += 3;
            break;
        }
        if (ch == '"' || ch == '\\') {
            q->s[n++] = '\\';
            q->s[n++] = (char)ch;
        } else if (ch >= 0x20 && ch < 0x7f) {
            q->s[n++] = (char)ch;
        } else {
            static const char hex[] = "0123456789abcdef";
            q->s[n++] = '\\';
            q->s[n++] = 'x';
            q->s[n++] = hex[ch >> 4];
            q->s[n++] = hex[ch & 15];
        }
    }
    q->s[n++] = '"';
    q->s[n] = '\0';
    return q->s;
}

const char *sol_quote_z(sol_qbuf *q, const char *s) { return sol_quote(q, s, strlen(s)); }
