/* screen: the console's terminal, through ncursesw: starting and
 * restoring it (also from a signal's aftermath: the caller's loop sees the
 * flag and calls screen_stop), the colours it can show (256, the basic
 * 8/16, or none when NO_COLOR is set or the terminal has none; meaning
 * then rides on bold, dim and reverse), and text drawn within a width,
 * UTF-8 aware. Only the UI thread calls these. */
#ifndef ECOM_TUI_SCREEN_H
#define ECOM_TUI_SCREEN_H

#include <curses.h>

/* What a piece of text means; screen_attr turns it into attributes. */
typedef enum tone {
	TONE_PLAIN = 0,
	TONE_OK,     /* healthy, CLOSED, succeeded */
	TONE_WARN,   /* HALF_OPEN, low stock, lag */
	TONE_BAD,    /* down, OPEN, errors, dead letters */
	TONE_FORCED, /* FORCED_OPEN: an operator's hand */
	TONE_INFO,   /* figures, the console's own order */
	TONE_DIM,    /* n/a, DISABLED, secondary text */
	TONE_TITLE,  /* the title bar */
	TONE_TAB,    /* the current view's tab */
	TONE_BANNER, /* the lost-connection banner */
	TONE_HEAD,   /* table headers */
	TONE_KEY,    /* key names in the footer and help */
	TONE_COUNT
} tone;

typedef enum screen_colors { SCREEN_NO_COLOR = 0, SCREEN_16 = 16, SCREEN_256 = 256 } screen_colors;

/* Takes over the terminal (the locale's encoding, raw keys, no echo,
 * hidden cursor, getch waiting at most wait_ms). 0, or -1 when there is no
 * usable terminal. */
int screen_start(int wait_ms);
/* Gives the terminal back as it was (idempotent). */
void screen_stop(void);
/* 1 while started. */
int screen_active(void);

screen_colors screen_color_mode(void);
/* 1 when the terminal speaks UTF-8 (block characters may be drawn). */
int screen_utf8(void);
attr_t screen_attr(tone t);

/* Draws s at (y, x) in at most w columns (cut at a character boundary),
 * padding with spaces to w when pad is set. Returns the columns used. */
int screen_text(int y, int x, int w, attr_t a, const char *s, int pad);
/* printf into a row, as screen_text. */
int screen_printf(int y, int x, int w, attr_t a, int pad, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* Display columns of UTF-8 text (one per code point: the console's text
 * is ids, names and figures). */
int screen_width(const char *s);
/* A box of h rows and w columns at (y, x), cleared inside. */
void screen_box(int y, int x, int h, int w, attr_t a);

#endif
