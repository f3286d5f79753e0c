/* text: byte-level text helpers shared by the parsers of outside input
 * (JSON fields, log escaping, URL decoding, configuration): UTF-8 sequence
 * validation, hex digits, trimming, and the names services go by. */
#ifndef ECOM_TEXT_H
#define ECOM_TEXT_H

#include <stddef.h>

/* Length (1-4) of the well-formed UTF-8 sequence at s, reading at most n
 * bytes; 0 when it is malformed (overlong, surrogate, past U+10FFFF,
 * truncated). n must be >= 1. */
size_t text_utf8_len(const unsigned char *s, size_t n);

/* The value of hex digit c (either case), or -1. */
int text_hexval(char c);

/* s without leading and trailing white space: the trailing part is cut in
 * place, the return points into s. */
char *text_trim(char *s);

/* 1 when s is a name of 1..max-1 bytes of [a-z0-9_-] (a service, an edge's
 * callee), else 0 (NULL included). */
int text_is_name(const char *s, size_t max);

/* 1 when s is 1..max bytes of printable ASCII (0x21..0x7e, and the space
 * when spaces is set), else 0 (NULL included). */
int text_is_printable(const char *s, size_t max, int spaces);

/* 1 when s is 1..max bytes of letters, digits and the bytes of extra. */
int text_is_token(const char *s, size_t max, const char *extra);

/* Copies src into dst of len bytes: 0, or ERR_INVALID (dst untouched) when
 * src is NULL or does not fit. */
int text_copy(char *dst, size_t len, const char *src);

#endif
