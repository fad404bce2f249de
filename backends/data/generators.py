"""Synthetic datasets the project generates, so every recipe runs with no download.

Torch-free: the checker reads `provides` to know which fields a generated row carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

GenerateFn = Callable[..., list[dict[str, Any]]]  # fn(size: int, seed: int, **params) -> rows
DEFAULT_SIZE = 1000  # rows a generator dataset makes when the recipe sets no size


@dataclass(frozen=True)
class Generator:
    name: str
    fn: GenerateFn
    provides: tuple[str, ...]  # canonical fields of each row: prompt, answer, tests, response, text
    doc: str


GENERATORS: dict[str, Generator] = {}


def register(name: str, *, provides: Sequence[str], doc: str = ""):
    def wrap(fn: GenerateFn) -> GenerateFn:
        GENERATORS[name] = Generator(name, fn, tuple(provides), doc or (fn.__doc__ or "").strip())
        return fn

    return wrap
