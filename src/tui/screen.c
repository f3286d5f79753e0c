/* screen: see screen.h. */
#include "tui/screen.h"

#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The terminal belongs to the process: one screen, owned by the UI
 * thread. */
static int active;
static SCREEN *term;
static int utf8;
static screen_colors mode;
static attr_t attrs[TONE_COUNT];

static void set_pair(tone t, short fg, short bg, attr_t extra)
{
	init_pair((short)t, fg, bg);
	attrs[t] = COLOR_PAIR(t) | extra;
}

static void plain_attrs(void)
{
	attrs[TONE_PLAIN] = A_NORMAL;
	attrs[TONE_OK] = A_NORMAL;
	attrs[TONE_WARN] = A_BOLD;
	attrs[TONE_BAD] = A_BOLD | A_UNDERLINE;
	attrs[TONE_FORCED] = A_BOLD | A_UNDERLINE;
	attrs[TONE_INFO] = A_BOLD;
	attrs[TONE_DIM] = A_DIM;
	attrs[TONE_TITLE] = A_REVERSE;
	attrs[TONE_TAB] = A_BOLD | A_UNDERLINE;
	attrs[TONE_BANNER] = A_REVERSE | A_BOLD;
	attrs[TONE_HEAD] = A_BOLD | A_UNDERLINE;
	attrs[TONE_KEY] = A_BOLD;
}

static void color_attrs(void)
{
	start_color();
	use_default_colors();
	if (COLORS >= 256 && COLOR_PAIRS >= TONE_COUNT) {
		mode = SCREEN_256;
		set_pair(TONE_OK, 34, -1, 0);
		set_pair(TONE_WARN, 214, -1, A_BOLD);
		set_pair(TONE_BAD, 196, -1, A_BOLD);
		set_pair(TONE_FORCED, 201, -1, A_BOLD);
		set_pair(TONE_INFO, 39, -1, 0);
		set_pair(TONE_DIM, 244, -1, 0);
		set_pair(TONE_TITLE, 255, 24, 0);
		set_pair(TONE_TAB, 16, 214, A_BOLD);
		set_pair(TONE_BANNER, 231, 160, A_BOLD);
		set_pair(TONE_HEAD, 250, 236, A_BOLD);
		set_pair(TONE_KEY, 214, -1, A_BOLD);
	} else {
		mode = SCREEN_16;
		set_pair(TONE_OK, COLOR_GREEN, -1, 0);
		set_pair(TONE_WARN, COLOR_YELLOW, -1, A_BOLD);
		set_pair(TONE_BAD, COLOR_RED, -1, A_BOLD);
		set_pair(TONE_FORCED, COLOR_MAGENTA, -1, A_BOLD);
		set_pair(TONE_INFO, COLOR_CYAN, -1, 0);
		attrs[TONE_DIM] = A_DIM;
		set_pair(TONE_TITLE, COLOR_WHITE, COLOR_BLUE, A_BOLD);
		set_pair(TONE_TAB, COLOR_BLACK, COLOR_YELLOW, 0);
		set_pair(TONE_BANNER, COLOR_WHITE, COLOR_RED, A_BOLD);
		attrs[TONE_HEAD] = A_BOLD | A_UNDERLINE;
		set_pair(TONE_KEY, COLOR_YELLOW, -1, A_BOLD);
	}
	attrs[TONE_PLAIN] = A_NORMAL;
}

int screen_start(int wait_ms)
{
	if (active)
		return 0;
	setlocale(LC_ALL, "");
	const char *cs = nl_langinfo(CODESET);
	utf8 = cs && strcmp(cs, "UTF-8") == 0;
	term = newterm(NULL, stdout, stdin);
	if (!term)
		return -1;
	active = 1;
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	intrflush(stdscr, FALSE);
	set_escdelay(25);
	curs_set(0);
	timeout(wait_ms);
	const char *nc = getenv("NO_COLOR");
	mode = SCREEN_NO_COLOR;
	plain_attrs();
	if (!(nc && *nc) && has_colors())
		color_attrs();
	return 0;
}

void screen_stop(void)
{
	if (!active)
		return;
	curs_set(1);
	endwin();
	delscreen(term);
	term = NULL;
	active = 0;
}

int screen_active(void)
{
	return active;
}

screen_colors screen_color_mode(void)
{
	return mode;
}

int screen_utf8(void)
{
	return utf8;
}

attr_t screen_attr(tone t)
{
	return t >= 0 && t < TONE_COUNT ? attrs[t] : A_NORMAL;
}

int screen_width(const char *s)
{
	int w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

int screen_text(int y, int x, int w, attr_t a, const char *s, int pad)
{
	if (w <= 0 || y < 0 || y >= LINES || x >= COLS)
		return 0;
	if (x + w > COLS)
		w = COLS - x;
	/* The bytes of the first w characters; control bytes shown as '?'. */
	char buf[1024];
	size_t k = 0;
	int cols = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && k < sizeof(buf) - 5;) {
		size_t len = 1;
		if (*p >= 0xC0)
			len = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
		size_t have = 1;
		while (have < len && p[have] && (p[have] & 0xC0) == 0x80)
			have++;
		if (cols == w)
			break;
		if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && (have != len || *p < 0xC0) ) ||
		    (!utf8 && *p >= 0x80)) {
			buf[k++] = '?';
			p += have;
		} else {
			memcpy(buf + k, p, len);
			k += len;
			p += len;
		}
		cols++;
	}
	if (pad)
		while (cols < w && k < sizeof(buf) - 1) {
			buf[k++] = ' ';
			cols++;
		}
	buf[k] = '\0';
	attron(a);
	mvaddstr(y, x, buf);
	attroff(a);
	return cols;
}

int screen_printf(int y, int x, int w, attr_t a, int pad, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return screen_text(y, x, w, a, buf, pad);
}

void screen_box(int y, int x, int h, int w, attr_t a)
{
	if (h < 2 || w < 2)
		return;
	for (int r = 0; r < h; r++)
		screen_text(y + r, x, w, a, "", 1);
	attron(a);
	mvaddch(y, x, ACS_ULCORNER);
	mvhline(y, x + 1, ACS_HLINE, w - 2);
	mvaddch(y, x + w - 1, ACS_URCORNER);
	mvvline(y + 1, x, ACS_VLINE, h - 2);
	mvvline(y + 1, x + w - 1, ACS_VLINE, h - 2);
	mvaddch(y + h - 1, x, ACS_LLCORNER);
	mvhline(y + h - 1, x + 1, ACS_HLINE, w - 2);
	mvaddch(y + h - 1, x + w - 1, ACS_LRCORNER);
	attroff(a);
}
