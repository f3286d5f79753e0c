/* text: byte-level text helpers shared by the parsers of outside input
 * (JSON fields, log escaping, URL decoding, config and scenario files):
 * UTF-8 sequence validation, hex digits, trimming. */
#ifndef ECOM_TEXT_H
#define ECOM_TEXT_H

#include <stddef.h>

/* Length (1-4) of the well-formed UTF-8 sequence at s, reading at most n
 * bytes; 0 when it is malformed (overlong, surrogate, past U+10FFFF,
 * truncated). n must be >= 1. */
size_t text_utf8_len(const unsigned char *s, size_t n);

/* The value of hex digit c (either case), or -1. */
int text_hexval(char c);

/* s without leading and trailing white space: cuts the trailing in place
 * and returns a pointer past the leading (into s). */
char *text_trim(char *s);

#endif
