/* console: `ecom console`, the operator console: an ncurses dashboard over
 * a running platform, found through --state or --url, using the admin API
 * only. Eight views (Overview, Breakers, Sagas, Inventory, Queues, Faults,
 * Load, Logs; doc/console.md), data fetched off the UI thread
 * (tui/poller), every change confirmed first, --read-only without them. */
#ifndef ECOM_TUI_CONSOLE_H
#define ECOM_TUI_CONSOLE_H

int console_main(int argc, char **argv);

#endif
