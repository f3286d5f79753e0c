/* stock: the `ecom inventory` command, an operator's view of one sku's
 * stock through the gateway: `get SKU` prints on_hand, reserved and
 * available; `set SKU N` sets on_hand with the admin token. */
#ifndef ECOM_STOCK_H
#define ECOM_STOCK_H

/* argv[0] is "inventory". Returns the exit code: 0, 1 when the operation
 * failed (the API's message is printed), 2 for bad usage. */
int stock_main(int argc, char **argv);

#endif
