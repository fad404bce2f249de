"""Datasets. Importing this package registers the built-in synthetic generators in `generators.GENERATORS`."""

from backends.data import synthetic  # noqa: F401  (registers arithmetic, countdown, code, chat, corpus)
from backends.data import cot, preference  # noqa: F401,E402  (registers arithmetic_cot, preference_pairs)
