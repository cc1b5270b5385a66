"""Regulars: shared settings and the `regulars` command line.

Kept apart from the four pipeline packages because every one of them (and the CLI) needs the
same answer to "where does this checkout keep its data", and none of them should own it.
"""
