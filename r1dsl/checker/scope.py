"""Scope: the state one check builds up, and the one namespace of every declaration of every file.

May import: r1dsl.ast, r1dsl.ir, r1dsl.diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1dsl import ast, ir
from r1dsl.diagnostics import Diagnostics
from r1dsl.ir import Span

BAD = object()  # a value that already produced a diagnostic

# declarations that may not share a name: a bare name must say what it is where it is used
_CLASHES = {("const", k) for k in ("template", "model", "dataset", "reward", "stage")} | {("model", "stage"), ("dataset", "stage")}


@dataclass
class StageInfo:
    """A stage while it is being checked: its declaration and what its body said."""

    decl: ast.StageDecl
    refs: dict[str, ast.Assign] = field(default_factory=dict)  # from, data, template, rewards, eval, students(list)
    sections: dict[str, ast.Section] = field(default_factory=dict)  # route, students
    knobs: dict[tuple[str, str], ast.Assign] = field(default_factory=dict)  # (section, key) -> setting
    deps: dict[str, Span] = field(default_factory=dict)  # stages it reads from -> where it says so


class Context:
    """What the passes share: the inputs, the catalogue of rules and generators, and what each pass found."""

    def __init__(self, modules: list[ast.Module], diags: Diagnostics, catalogue):
        self.modules = modules
        self.main = modules[-1]
        self.d = diags
        self.catalogue = catalogue  # reward rules and generators (r1dsl.catalogue)
        # scope
        self.decls: dict[str, tuple[Any, ast.Module]] = {}  # "kind name" -> declaration (see collect)
        self.names: dict[str, list[str]] = {}  # name -> the kinds declaring it
        self.used: set[str] = set()
        # constants (constants.fold)
        self.consts: dict[str, ast.Value] = {}
        self.folded: dict[str, ast.Value | object] = {}  # const -> its value with constants substituted, or BAD
        self.const_deps: dict[str, set[str]] = {}  # const -> the constants its value reads
        # declarations
        self.failed: set[str] = set()  # names whose declaration had an error (no cascades of follow-up errors)
        self.models: dict[str, ir.Model] = {}
        self.datasets: dict[str, ir.Dataset] = {}
        self.templates: dict[str, ir.Template] = {}
        self.rewards: dict[str, ir.Reward] = {}
        self.provides: dict[str, tuple[str, ...] | None] = {}  # None: unknown (unregistered generator)
        # stages
        self.stages: dict[str, StageInfo] = {}
        self.jobs: dict[str, list[ir.Stage]] = {}  # stage name -> its IR stages (several for distill)
        self.job_names: dict[str, str] = {}  # expanded distill job -> its declaration

    def kind_of(self, name: str, prefer: tuple[str, ...] = ()) -> str | None:
        """What `name` declares, preferring the kinds a context expects (a template and a stage may share a name)."""
        kinds = self.names.get(name, [])
        return next((k for k in prefer if k in kinds), kinds[0] if kinds else None)

    def named(self, kinds: tuple[str, ...]) -> list[str]:
        return [n for n, ks in self.names.items() if any(k in kinds for k in ks)]


def collect(cx: Context) -> str:
    """One namespace for every declaration of every file; returns the recipe's name."""
    recipe_name = None
    for module in cx.modules:
        for item in module.items:
            if isinstance(item, ast.RecipeDecl):
                if module is not cx.main:
                    continue  # an imported file's own name does not rename this recipe
                if recipe_name is not None:
                    cx.d.error("E003", "the recipe is named twice", item.name_span, help="keep one `recipe NAME` line")
                recipe_name = recipe_name or item.name
                continue
            if isinstance(item, ast.ImportDecl):
                continue
            kind = ast.decl_keyword(item)
            clash = [k for k in cx.names.get(item.name, ()) if (k, kind) in _CLASHES or (kind, k) in _CLASHES or k == kind]
            if clash:
                prev, _ = cx.decls[f"{clash[0]} {item.name}"]
                if clash[0] == kind:
                    message, help = f"{kind} `{item.name}` is declared twice", "rename or remove one of them"
                else:
                    message = f"`{item.name}` names both a {clash[0]} and a {kind}"
                    help = ("a constant's name must be unique" if "const" in (kind, clash[0]) else
                            "`from` and `data` could not tell them apart") + "; rename one"
                cx.d.error("E003", message, item.name_span, help=help, notes=[("first declared here", prev.name_span)])
                continue
            cx.decls[f"{kind} {item.name}"] = (item, module)
            cx.names.setdefault(item.name, []).append(kind)
    for decl, _ in cx.decls.values():
        if isinstance(decl, ast.ConstDecl):
            cx.consts[decl.name] = decl.value
    return recipe_name or Path(cx.main.path).stem


