/* reindex: `ecom search reindex`, which has every search instance of the
 * running platform rebuild its index from the catalog and waits until they
 * have. */
#ifndef ECOM_REINDEX_H
#define ECOM_REINDEX_H

int reindex_main(int argc, char **argv);

#endif
