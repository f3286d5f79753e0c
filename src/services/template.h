/* template: text with {{placeholders}}, as the notification service's
 * messages are written (data/templates). A placeholder is a name of
 * letters, digits and '_' between "{{" and "}}", spaces around it allowed;
 * it is replaced by the value of that member of a JSON object (a string,
 * an integer, or a real), as is: the output is plain text. There is no
 * logic and no escaping; "{{" cannot be written literally. A name the
 * object lacks is an error, so that a misspelt placeholder is caught
 * rather than sent. */
#ifndef ECOM_TEMPLATE_H
#define ECOM_TEMPLATE_H

#include <stddef.h>

#include <jansson.h>

/* Renders text with vars into a new string (*out, caller frees). 0;
 * ERR_NOT_FOUND (a placeholder vars lacks, or whose value is not a
 * string or number), ERR_PARSE (an unterminated or malformed
 * placeholder), ERR_NOMEM; err says which and where. */
int template_render(const char *text, const json_t *vars, char **out, char *err, size_t errlen);

/* The names of the placeholders of text, each once, in order of first use,
 * as a JSON array (new reference); NULL when text is malformed. For
 * checking a template against what its sender provides. */
json_t *template_names(const char *text);

#endif
