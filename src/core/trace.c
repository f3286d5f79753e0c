/* trace: see trace.h. */
#include "core/trace.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

static int lower_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* n bytes from 2n lowercase hex digits at s. */
static int hex_bytes(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = lower_hex(s[2 * i]), lo = lower_hex(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return ERR_PARSE;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

static void to_hex(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

int trace_parse(const char *s, trace_ctx *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return ERR_PARSE;
	size_t len = strlen(s);
	if (len < TRACE_PARENT_LEN)
		return ERR_PARSE;
	uint8_t version;
	if (hex_bytes(s, &version, 1) || s[2] != '-' || s[35] != '-' || s[52] != '-')
		return ERR_PARSE;
	if (version == 0xff)
		return ERR_PARSE;
	/* Version 00 is exactly this long; a later version may carry more,
	 * after a '-'. */
	if (version == 0 ? len != TRACE_PARENT_LEN
			 : len > TRACE_PARENT_LEN && s[TRACE_PARENT_LEN] != '-')
		return ERR_PARSE;
	trace_ctx t;
	if (hex_bytes(s + 3, t.trace_id, 16) || hex_bytes(s + 36, t.span_id, 8) ||
	    hex_bytes(s + 53, &t.flags, 1))
		return ERR_PARSE;
	if (all_zero(t.trace_id, 16) || all_zero(t.span_id, 8))
		return ERR_PARSE;
	*out = t;
	return 0;
}

void trace_format(const trace_ctx *t, char *buf, size_t size)
{
	char tid[TRACE_ID_HEX], sid[TRACE_SPAN_HEX];
	to_hex(t->trace_id, 16, tid);
	to_hex(t->span_id, 8, sid);
	snprintf(buf, size, "00-%s-%s-%02x", tid, sid, t->flags);
}

/* Random bytes that are not all zero (a zero id is invalid). */
static void random_id(uint8_t *b, size_t n, rng *r)
{
	do {
		for (size_t i = 0; i < n; i += 8) {
			uint64_t v = rng_u64(r);
			for (size_t k = 0; k < 8 && i + k < n; k++)
				b[i + k] = (uint8_t)(v >> (8 * k));
		}
	} while (all_zero(b, n));
}

void trace_new_root(trace_ctx *out, rng *r)
{
	random_id(out->trace_id, 16, r);
	random_id(out->span_id, 8, r);
	out->flags = TRACE_FLAG_SAMPLED;
}

void trace_child(const trace_ctx *parent, trace_ctx *out, rng *r)
{
	trace_ctx t = *parent;
	random_id(t.span_id, 8, r);
	*out = t;
}

int trace_valid(const trace_ctx *t) { return t && !all_zero(t->trace_id, 16); }

void trace_id_hex(const uint8_t id[16], char *out) { to_hex(id, 16, out); }

void trace_span_hex(const uint8_t id[8], char *out) { to_hex(id, 8, out); }

int trace_id_from_hex(const char *hex, uint8_t id[16])
{
	if (!hex || strlen(hex) != 32)
		return ERR_PARSE;
	return hex_bytes(hex, id, 16);
}

int trace_span_from_hex(const char *hex, uint8_t id[8])
{
	if (!hex || strlen(hex) != 16)
		return ERR_PARSE;
	return hex_bytes(hex, id, 8);
}
