/* UTF-8 decoding, one definition for the tokenizer, the CLI and the
 * printable copies of file-derived text (util/quote.c). */
#ifndef SOL_UTIL_UTF8_H
#define SOL_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s (n > 0 bytes left) and its code
 * point; 0 when the bytes there are not valid UTF-8 (overlong, surrogate,
 * above U+10FFFF, cut off). */
int sol_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

#endif
