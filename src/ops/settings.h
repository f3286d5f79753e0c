/* settings: `ecom config`, the platform's settings as the processes would
 * see them (defaults, then --config FILE, then ECOM_* environment), or
 * `--doc`, the Markdown table of every key that doc/configuration.md
 * holds. */
#ifndef ECOM_SETTINGS_H
#define ECOM_SETTINGS_H

/* argv[0] is "config". Returns the exit code. */
int settings_main(int argc, char **argv);

#endif
