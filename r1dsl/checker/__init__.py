"""Syntax trees -> the frozen IR (`r1dsl.ir.Recipe`), or diagnostics. Nothing here touches a GPU.

The checker is a sequence of passes, one concern each (README.md): names, constants, declarations,
stage outlines, run order, stage bodies (with references, distill lowering and cross-checks), unused
declarations. Every finding is a diagnostic with a code from r1dsl/codes.py; checking goes on after
an error so that one run reports as much as it can.
"""

from __future__ import annotations

from r1dsl import ast, ir
from r1dsl.catalogue import Catalogue, current
from r1dsl.checker import constants, declarations, order, outline, rules, scope, stages
from r1dsl.diagnostics import Diagnostics

__all__ = ["check"]


def check(modules: list[ast.Module], diags: Diagnostics, catalogue: Catalogue | None = None) -> ir.Recipe | None:
    """The IR of the recipe whose main file is `modules[-1]`, or None when `diags` holds an error.

    `catalogue`: the reward rules and generators to check against (default: the one installed at the edge).
    """
    if not modules:
        return None
    if catalogue is None:
        catalogue = current()
    cx = scope.Context(modules, diags, catalogue)
    name = scope.collect(cx)
    constants.fold(cx)
    declarations.declarations(cx)
    outline.outlines(cx)
    run_order = order.order(cx)
    for stage_name in run_order:
        stages.stage(cx, cx.stages[stage_name])
    if not diags.has_errors:  # after an error, uses may hide behind it
        rules.unused(cx)
    if diags.has_errors:
        return None
    jobs = tuple(job for n in run_order for job in cx.jobs.get(n, ()))
    return ir.Recipe(name, cx.main.path, cx.models, cx.datasets, cx.templates, cx.rewards, jobs)
