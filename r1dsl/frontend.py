"""The whole front end in one call: read, import, override, check. What the CLI and the tests use."""

from __future__ import annotations

import re
from dataclasses import dataclass

from r1dsl import ir
from r1dsl.diagnostics import Diagnostic, Diagnostics


@dataclass
class CheckResult:
    recipe: ir.Recipe | None  # None when there is an error
    diagnostics: list[Diagnostic]  # in source order
    sources: dict[str, str]  # file -> text, to render the diagnostics

    @property
    def ok(self) -> bool:
        return self.recipe is not None


def check_file(path: str, overrides: list[str] | tuple[str, ...] = (), text: str | None = None) -> CheckResult:
    """Check one recipe file (and its imports) with `--set` overrides; raises loader.UsageError if unreadable."""
    from r1dsl import checker, loader, overrides as ov

    diags = Diagnostics()
    modules = loader.load(path, diags, text=text)
    syntax = len(diags.items)  # syntax errors (and import errors) come first; what parsed is still checked
    ov.apply(modules, list(overrides), diags)  # a bad override does not hide the recipe's own errors
    recipe = checker.check(modules, diags)
    if any(m.skipped or m.lost_names for m in modules) or syntax:
        at = {(d.span.file, d.span.line, d.span.col) for d in diags.items[:syntax] if d.span}
        diags.items[syntax:] = [d for d in diags.items[syntax:] if not _knock_on(d, modules, diags.sources)
                                and not (d.span and (d.span.file, d.span.line, d.span.col) in at)]
    diags.items = [d for d in diags.items if not _explained_by_a_misspelling(d, diags.items, modules)]
    return CheckResult(recipe if not diags.has_errors else None, diags.sorted(), diags.sources)


# Diagnostics that a skipped setting or declaration explains: a name it declared is unknown, a setting it
# held is missing, a declaration only it used is unused.
_UNKNOWN = ("E002", "E007")
_MISSING = ("E011", "W106")
_CONSISTENCY = ("is not a dataset of stage", "is not in this stage's rewards")


def _knock_on(d: Diagnostic, modules, sources: dict[str, str]) -> bool:
    if d.span is None:
        return False
    module = next((m for m in modules if m.path == d.span.file), None)
    if module is None or not (module.skipped or module.lost_names):
        return False
    if d.code == "E002" and any(m in d.message for m in _CONSISTENCY):  # route { } against a skipped data/rewards list
        return any(_within(s, item.span) for s in module.skipped for item in module.items if _within(d.span, item.span))
    if d.code in _UNKNOWN:
        lines = sources.get(d.span.file, "").split("\n")
        written = lines[d.span.line - 1][d.span.col - 1:d.span.end_col - 1] if d.span.line <= len(lines) else ""
        return written in module.lost_names
    if d.code == "W106":
        return True  # what used it may be what was skipped
    if d.code in _MISSING:  # inside the declaration that lost a setting
        return any(_within(s, item.span) for s in module.skipped for item in module.items if _within(d.span, item.span))
    return False


def _within(inner, outer) -> bool:
    return (outer.line, outer.col) <= (inner.line, inner.col) and (inner.end_line, inner.end_col) <= (outer.end_line, outer.end_col)


class RecipeError(Exception):
    """A recipe with errors; `str()` is the rendered diagnostics."""

    def __init__(self, result: CheckResult):
        from r1dsl.diagnostics import render_text

        self.result = result
        super().__init__("\n".join(render_text(d, result.sources) for d in result.diagnostics if d.is_error))


def load_recipe(path: str, overrides: list[str] | tuple[str, ...] = ()) -> ir.Recipe:
    """The checked IR of a recipe file, or RecipeError."""
    result = check_file(path, overrides)
    if result.recipe is None:
        raise RecipeError(result)
    return result.recipe


# A missing setting (E011) that a misspelt one in the same declaration explains: `form = base` is reported as
# "unknown setting `form`; did you mean `from`?", not also as "stage has no `from`".
_MEANT = re.compile(r"did you mean `([A-Za-z_][A-Za-z0-9_]*)`")
_SOURCES = ("hf", "path", "tiny", "generator", "jsonl", "parquet")


def _explained_by_a_misspelling(d: Diagnostic, items: list[Diagnostic], modules) -> bool:
    if d.code != "E011" or d.span is None:
        return False
    decl = next((item for m in modules if m.path == d.span.file for item in m.items if _within(d.span, item.span)), None)
    if decl is None:
        return False
    for other in items:
        if other.code != "E002" or other.span is None or other.span.file != d.span.file or not _within(other.span, decl.span):
            continue
        meant = _MEANT.search(other.help or "")
        if meant is None:
            continue
        key = meant.group(1)
        if f"`{key}`" in d.message or f" {key}" in d.message or (key in _SOURCES and ("source" in d.message or "nowhere" in d.message)):
            return True
    return False
