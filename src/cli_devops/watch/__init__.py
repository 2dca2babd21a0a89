"""`watch`."""
