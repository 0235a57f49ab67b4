/* Generated text for the terminal: UTF-8 decoding that survives a token
 * ending mid-character, display widths without the C library's locale
 * (so it is the same in tests), word wrapping and an ASCII fallback. */
#include <stdio.h>
#include <string.h>

#include "tui/tui.h"

int sol_text_next(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0)
        return 0;
    unsigned b = p[0];
    int len;
    uint32_t c;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
        len = 2, c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3, c = b & 0x0F;
        if (b == 0xE0)
            lo = 0xA0; /* overlong */
        if (b == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4, c = b & 0x07;
        if (b == 0xF0)
            lo = 0x90;
        if (b == 0xF4)
            hi = 0x8F;
    } else {
        return -1;
    }
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return 0; /* valid so far, cut short */
        unsigned cb = p[i];
        if (i == 1 ? (cb < lo || cb > hi) : (cb < 0x80 || cb > 0xBF))
            return -1;
        c = (c << 6) | (cb & 0x3F);
    }
    *cp = c;
    return len;
}

size_t sol_text_complete(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int k = sol_text_next(s + i, n - i, &cp);
        if (k == 0)
            return i;
        i += k < 0 ? 1 : (size_t)k;
    }
    return n;
}

size_t sol_text_sanitize(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0, i = 0;
    if (cap == 0)
        return 0;
    while (i < n) {
        uint32_t cp;
        int k = sol_text_next(s + i, n - i, &cp);
        const char *src = s + i;
        size_t len = (size_t)k;
        if (k <= 0) {
            src = "\xEF\xBF\xBD"; /* U+FFFD for a bad byte, or for a cut-off character */
            len = 3;
            k = k < 0 ? 1 : (int)(n - i);
        }
        if (o + len >= cap)
            break;
        memcpy(out + o, src, len);
        o += len;
        i += (size_t)k;
    }
    out[o] = '\0';
    return o;
}

int sol_codepoint_width(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
        return 0;
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x200B && cp <= 0x200F) || (cp >= 0xFE00 && cp <= 0xFE0F) ||
        (cp >= 0x1AB0 && cp <= 0x1AFF) || (cp >= 0x20D0 && cp <= 0x20FF))
        return 0; /* combining marks, zero-width spaces, variation selectors */
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) || (cp >= 0x3041 && cp <= 0x33FF) ||
        (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
        (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
        (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
        (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD))
        return 2;
    return 1;
}

/* Width of the character at s: tabs count one (drawn as a space), bytes
 * that are not UTF-8 one (drawn as a replacement), a cut-off tail none. */
static int char_at(const char *s, size_t n, int *width)
{
    uint32_t cp;
    int k = sol_text_next(s, n, &cp);
    if (k == 0) {
        *width = 0;
        return (int)n;
    }
    if (k < 0) {
        *width = 1;
        return 1;
    }
    *width = cp == '\t' ? 1 : sol_codepoint_width(cp);
    return k;
}

typedef struct {
    sol_text_line *lines;
    int max, count, next;
} line_ring;

static void keep(line_ring *r, size_t off, size_t end)
{
    r->lines[r->next] = (sol_text_line){off, end - off};
    r->next = (r->next + 1) % r->max;
    if (r->count < r->max)
        r->count++;
}

static void reverse(sol_text_line *a, int lo, int hi)
{
    for (; lo < hi; lo++, hi--) {
        sol_text_line t = a[lo];
        a[lo] = a[hi];
        a[hi] = t;
    }
}

int sol_text_wrap(const char *text, size_t n, int width, sol_text_line *lines, int max_lines)
{
    if (max_lines <= 0 || width <= 0)
        return 0;
    line_ring ring = {lines, max_lines, 0, 0};
    size_t start = 0, i = 0;
    size_t break_at = 0; /* offset of the last space on this line (0: none) */
    int col = 0, col_after_break = 0;
    while (i < n) {
        if (text[i] == '\n') {
            keep(&ring, start, i);
            start = ++i;
            col = 0;
            break_at = 0;
            continue;
        }
        int cw;
        int k = char_at(text + i, n - i, &cw);
        if (col + cw > width && col > 0) {
            if (break_at > start) { /* word wrap: the space ends the line */
                keep(&ring, start, break_at);
                start = break_at + 1;
                col -= col_after_break;
            } else {
                keep(&ring, start, i);
                start = i;
                col = 0;
            }
            break_at = 0;
            continue;
        }
        if (text[i] == ' ') {
            break_at = i;
            col_after_break = col + 1;
        }
        col += cw;
        i += (size_t)k;
    }
    if (start < n || n == 0 || text[n - 1] == '\n')
        keep(&ring, start, n);
    /* oldest first: rotate left by ring.next (three reversals) */
    int count = ring.count;
    if (count == max_lines && ring.next != 0) {
        reverse(lines, 0, ring.next - 1);
        reverse(lines, ring.next, count - 1);
        reverse(lines, 0, count - 1);
    }
    return count;
}

int sol_text_render(const char *text, const sol_text_line *line, int utf8, char *out, size_t cap)
{
    const char *s = text + line->off;
    size_t n = line->len, i = 0, o = 0;
    int cols = 0;
    if (cap == 0)
        return 0;
    while (i < n) {
        uint32_t cp;
        int k = sol_text_next(s + i, n - i, &cp);
        const char *src = s + i;
        size_t len;
        int cw;
        if (k == 0)
            break; /* a character still being generated */
        if (k < 0) {
            src = utf8 ? "\xEF\xBF\xBD" : "?";
            len = strlen(src), cw = 1, k = 1;
        } else if (cp == '\t') {
            src = " ", len = 1, cw = 1;
        } else if ((cw = sol_codepoint_width(cp)) == 0 && (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))) {
            i += (size_t)k; /* controls are not drawn */
            continue;
        } else if (!utf8 && cp >= 0x80) {
            if (cw == 0) {
                i += (size_t)k;
                continue;
            }
            src = "?", len = 1, cw = 1;
        } else {
            len = (size_t)k;
        }
        if (o + len >= cap)
            break;
        memcpy(out + o, src, len);
        o += len;
        cols += cw;
        i += (size_t)k;
    }
    out[o] = '\0';
    return cols;
}

int sol_text_width(const char *s)
{
    size_t n = strlen(s), i = 0;
    int cols = 0;
    while (i < n) {
        int cw;
        i += (size_t)char_at(s + i, n - i, &cw);
        cols += cw;
    }
    return cols;
}

/* The byte offset in s (n bytes) after its first `cols` display columns
 * (fewer when a wide character straddles them; *used says how many). */
static size_t prefix_bytes(const char *s, size_t n, int cols, int *used)
{
    size_t i = 0;
    *used = 0;
    while (i < n) {
        int cw, k = char_at(s + i, n - i, &cw);
        if (*used + cw > cols)
            break;
        *used += cw;
        i += (size_t)k;
    }
    return i;
}

int sol_text_elide(const char *s, int width, char *out, size_t cap)
{
    size_t n = strlen(s);
    int total = sol_text_width(s), used;
    if (total <= width || width < 3) {
        snprintf(out, cap, "%s", s);
        return sol_text_width(out);
    }
    int keep = width - 1, head_cols = keep / 2, tail_cols = keep - head_cols;
    size_t head = prefix_bytes(s, n, head_cols, &used);
    /* the tail starts at the first character wholly inside the last tail_cols columns */
    size_t tail = prefix_bytes(s, n, total - tail_cols, &used);
    if (used < total - tail_cols && tail < n) {
        int cw;
        tail += (size_t)char_at(s + tail, n - tail, &cw);
    }
    snprintf(out, cap, "%.*s~%s", (int)head, s, s + (tail < head ? head : tail));
    return sol_text_width(out);
}
