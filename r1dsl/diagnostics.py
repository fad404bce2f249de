"""Diagnostics: what went wrong, where, and how to fix it; rendered as text, JSON or GitHub annotations.

Text follows rustc/Elm: `file:line:col: error[E002]: message`, the source line, a caret under the
exact span, then `help:` (the fix) and `note:` lines (related places).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

from r1dsl.ir import Span


@dataclass(frozen=True)
class Diagnostic:
    code: str  # E001..., W101... (documented in r1dsl.codes, shown by `r1dsl explain CODE`)
    message: str
    span: Span | None
    help: str | None = None
    notes: tuple[tuple[str, Span | None], ...] = ()  # (text, where)

    @property
    def severity(self) -> str:
        return "warning" if self.code.startswith("W") else "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


@dataclass
class Diagnostics:
    """Collects diagnostics during one check; `sources` maps a file name to its text for rendering."""

    items: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def error(self, code: str, message: str, span: Span | None, help: str | None = None, notes=()) -> None:
        self.items.append(Diagnostic(code, message, span, help, tuple(notes)))

    warn = error  # the code's letter (E/W) decides the severity

    def extend(self, other: Iterable[Diagnostic]) -> None:
        self.items.extend(other)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        """Errors and warnings in source order (file, line, column), stable otherwise."""

        def key(d: Diagnostic):
            s = d.span
            return (s.file, s.line, s.col) if s else ("", 0, 0)

        unique = list(dict.fromkeys(self.items))  # a bad constant used three times is one mistake
        return sorted(unique, key=key)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """`did you mean `x`?` for the closest candidate, or None when nothing is close."""
    import difflib

    pool = sorted(set(candidates))
    found = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not found and len(name) >= 4:  # a shortened name: `samples` for samples_per_prompt
        found = [c for c in pool if c.startswith(name) or c.startswith(name.rstrip("s") + "_")]
        found = found if len(found) == 1 else []
    return f"did you mean `{found[0]}`?" if found else None


# ---------------------------------------------------------------- rendering


def _where(span: Span | None) -> str:
    return f"{span.file}:{span.line}:{span.col}" if span else "<recipe>"


def render_text(diag: Diagnostic, sources: dict[str, str]) -> str:
    out = [f"{_where(diag.span)}: {diag.severity}[{diag.code}]: {diag.message}"]
    out += _excerpt(diag.span, sources)
    if diag.help:
        out.append(f"  help: {diag.help}")
    for text, where in diag.notes:
        out.append(f"  note: {text}" + (f" ({_where(where)})" if where else ""))
    return "\n".join(out)


def _excerpt(span: Span | None, sources: dict[str, str]) -> list[str]:
    """The source line of `span` and a caret line under its columns (first line only when it spans several)."""
    if span is None or span.file not in sources:
        return []
    lines = sources[span.file].split("\n")
    if not 1 <= span.line <= len(lines):
        return []
    line = lines[span.line - 1].expandtabs(1)
    end = span.end_col if span.end_line == span.line else len(line) + 1
    width = max(1, end - span.col)
    gutter = " " * len(str(span.line))
    col = span.col
    if len(line) > MAX_LINE:  # a long line is shown around the span, not whole
        start = max(0, col - 1 - MAX_LINE // 2)
        shown = line[start:start + MAX_LINE]
        line = ("…" if start else "") + shown + ("…" if start + MAX_LINE < len(line) else "")
        col = col - start + (1 if start else 0)
    carets = "^" * min(width, MAX_CARETS) + ("…" if width > MAX_CARETS else "")
    return [
        f"  {span.line} | {line}",
        f"  {gutter} | {' ' * (col - 1)}{carets}",
    ]


MAX_LINE = 120  # characters of a source line shown in an excerpt
MAX_CARETS = 40


def render_json(diags: list[Diagnostic]) -> str:
    rows = []
    for d in diags:
        s = d.span
        rows.append(
            {
                "file": s.file if s else None,
                "line": s.line if s else None,
                "col": s.col if s else None,
                "end_line": s.end_line if s else None,
                "end_col": s.end_col if s else None,
                "severity": d.severity,
                "code": d.code,
                "message": d.message,
                "help": d.help,
                "notes": [{"message": t, "file": w.file if w else None, "line": w.line if w else None} for t, w in d.notes],
            }
        )
    return json.dumps(rows, indent=2)


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(diag: Diagnostic) -> str:
    """A GitHub Actions workflow command: `::error file=F,line=L,col=C,...::message`."""
    props = []
    if diag.span:
        s = diag.span
        props = [
            f"file={_gh_escape(s.file, True)}",
            f"line={s.line}",
            f"col={s.col}",
            f"endLine={s.end_line}",
            f"endColumn={s.end_col}",
        ]
    props.append(f"title={diag.code}")
    message = diag.message + (f" (help: {diag.help})" if diag.help else "")
    return f"::{diag.severity} {','.join(props)}::{_gh_escape(message)}"


def summary(diags: list[Diagnostic]) -> str:
    errors = sum(d.is_error for d in diags)
    warnings = len(diags) - errors

    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"
