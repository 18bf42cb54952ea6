"""Pure, synchronous completion logic: no I/O, no pygls, no httpx."""
