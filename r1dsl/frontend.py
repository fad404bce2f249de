"""The whole front end in one call: read, import, override, check. What the CLI and the tests use."""

from __future__ import annotations

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
    recipe = None
    if not diags.has_errors:  # a syntax error stops here; a bad override does not hide the recipe's own errors
        ov.apply(modules, list(overrides), diags)
        recipe = checker.check(modules, diags)
    return CheckResult(recipe if not diags.has_errors else None, diags.sorted(), diags.sources)


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
