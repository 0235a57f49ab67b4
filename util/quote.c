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

/* Length of the valid UTF-8 sequence at s (1..4), 0 when it is not one;
 * *cp gets its code point. */
static int utf8_length(const unsigned char *s, uint32_t *cp)
{
    int len = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3 : (s[0] >> 3) == 30 ? 4 : 0;
    uint32_t v = len == 1 ? s[0] : len == 2 ? s[0] & 0x1fu : len == 3 ? s[0] & 0x0fu : s[0] & 0x07u;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3fu);
    }
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (len == 0 || v < least[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

char *sol_printable(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p;) {
        uint32_t cp = 0;
        int len = utf8_length(p, &cp);
        if (len == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
            int bad = len ? len : 1;
            for (int i = 0; i < bad; i++) /* a whole bad sequence: one '?' per byte, length kept */
                p[i] = '?';
            p += bad;
        } else {
            p += len;
        }
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
