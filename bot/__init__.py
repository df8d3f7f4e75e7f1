"""Front doors and I/O: the `kounen` command line."""
