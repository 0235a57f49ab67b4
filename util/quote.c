/* Quoting of untrusted bytes for messages (see quote.h). */
#include "util/quote.h"

#include "util/utf8.h"

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

char *sol_printable(char *s)
{
    size_t left = strlen(s);
    for (unsigned char *p = (unsigned char *)s; *p;) {
        uint32_t cp = 0;
        int len = sol_utf8_next(p, left, &cp), step = len ? len : 1;
        if (len == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            memset(p, '?', (size_t)step); /* a whole bad sequence: one '?' per byte, length kept */
        p += step;
        left -= (size_t)step;
    }
    return s;
}

const char *sol_elide(const char *s, char *buf, size_t cap)
{
    size_t n = strlen(s);
    if (n < cap || cap < 16)
        return s;
    size_t keep = cap - 4, head = keep / 3, tail = keep - head; /* the file name is at the end */
    memcpy(buf, s, head);
    memcpy(buf + head, "...", 3);
    memcpy(buf + head + 3, s + n - tail, tail);
    buf[cap - 1] = '\0';
    return buf;
}
