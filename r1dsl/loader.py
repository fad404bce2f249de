"""A recipe file and everything it imports, parsed: imports resolve relative to the importing file.

Each file is read once (a diamond of imports is fine); an import cycle is reported as a warning and
the repeated import skipped, so loading always terminates.
"""

from __future__ import annotations

import os
from pathlib import Path

from r1dsl import ast
from r1dsl.diagnostics import Diagnostics
from r1dsl.parser import BOM, parse_recovering


class UsageError(Exception):
    """The command itself is wrong (a missing main file): exit status 2, not a recipe diagnostic."""


def read_source(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None


def load(path: str, diags: Diagnostics, text: str | None = None) -> list[ast.Module]:
    """The main file (last) and its imports (first, in dependency order); syntax errors go to `diags`."""
    if text is None:
        text = read_source(path)
    modules: list[ast.Module] = []
    done: set[str] = set()
    _load(path, text, diags, modules, done, stack=[])
    return modules


def _load(display: str, text: str, diags: Diagnostics, out: list, done: set, stack: list[str]) -> None:
    key = os.path.abspath(display)
    text = text[1:] if text.startswith(BOM) else text
    diags.sources[display] = text
    module, syntax_errors = parse_recovering(text, display)  # every syntax error; what parsed is still checked
    diags.extend(syntax_errors)
    stack.append(key)
    for item in module.items:
        if not isinstance(item, ast.ImportDecl):
            continue
        target = os.path.normpath(os.path.join(os.path.dirname(display), item.path.value))
        target_key = os.path.abspath(target)
        if target_key in stack:
            chain = " -> ".join(os.path.basename(p) for p in stack[stack.index(target_key):] + [target_key])
            diags.warn("W111", f"import cycle {chain}; the repeated import is skipped", item.path.span,
                       help="remove one of the imports: each file's declarations are loaded once")
            continue
        if target_key in done:
            continue
        try:
            imported = Path(target).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            why = "no such file" if isinstance(e, FileNotFoundError) else f"cannot read it ({type(e).__name__})"
            diags.error("E013", f"cannot import `{item.path.value}`: {why}", item.path.span,
                        help=f"the path is relative to this file; it resolved to {target}")
            done.add(target_key)
            continue
        _load(target, imported, diags, out, done, stack)
    stack.pop()
    done.add(key)
    out.append(module)
