"""Synthetic datasets the project generates, so every recipe runs with no download.

Torch-free: the checker reads `provides` to know which fields a generated row carries, and `params` (the
settings vocabulary of r1dsl/settings.py) to type and range-check a dataset's `params { }`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from r1dsl.settings import GENERATED_ROWS_MAX, Check, Param, agree

GenerateFn = Callable[..., list[dict[str, Any]]]  # fn(size: int, seed: int, **params) -> rows
DEFAULT_SIZE = 1000  # rows a generator dataset makes when the recipe sets no size


@dataclass(frozen=True)
class Generator:
    name: str
    fn: GenerateFn
    provides: tuple[str, ...]  # canonical fields of each row: prompt, answer, tests, response, text
    doc: str
    params: Mapping[str, Param] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()

    def defaults(self) -> dict[str, Any]:
        """Every parameter's declared default."""
        return {k: p.default for k, p in self.params.items()}

    def __call__(self, size: int | None = None, seed: int = 0, **params: Any) -> list[dict[str, Any]]:
        """`size` rows (DEFAULT_SIZE when None), the declared defaults for the parameters not given."""
        size = DEFAULT_SIZE if size is None else int(size)
        if not 0 <= size <= GENERATED_ROWS_MAX:
            raise ValueError(f"generator {self.name}: size must be 0 .. {GENERATED_ROWS_MAX} (got {size}); "
                             "for more rows write a jsonl file")
        unknown = set(params) - set(self.params)
        if unknown:
            raise TypeError(f"generator {self.name}: unknown parameter(s) {sorted(unknown)}; its parameters: "
                            f"{', '.join(self.params) or 'none'}")
        return self.fn(size, seed, **{**self.defaults(), **params})


GENERATORS: dict[str, Generator] = {}


def register(name: str, *, provides: Sequence[str], params: Mapping[str, Param] | None = None, doc: str = "",
             checks: Sequence[Check] = ()):
    """Decorator: `@register("countdown", provides=(...), params={...})` on `fn(size, seed, *, PARAM, ...) -> rows`.

    Returns the `Generator`, which calls `fn` with every parameter, the declared defaults filled in: the
    `Param`s are the one place a default is written.
    """

    def wrap(fn: GenerateFn) -> Generator:
        declared = dict(params or {})
        agree(f"generator {name!r}", fn, declared, tuple(checks), positional=("size", "seed"))
        gen = Generator(name, fn, tuple(provides), doc or (fn.__doc__ or "").strip(), declared, tuple(checks))
        GENERATORS[name] = gen
        return gen

    return wrap
