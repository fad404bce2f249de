"""The syntax tree of a recipe file: what was written, where, with its comments (for `r1dsl fmt`).

Nodes are plain (mutable) dataclasses so that `--set` overrides can edit them before checking;
the checker turns them into the frozen IR of `r1dsl.ir` and nothing downstream sees them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from r1dsl.ir import Span


@dataclass
class Trivia:
    """Comments and spacing around a node, kept so that `fmt` can put them back."""

    before: list[str] = field(default_factory=list)  # whole-line comments above the node
    trailing: str | None = None  # comment after the node on its last line
    trailing_col: int = 0  # its column in the source (fmt keeps comment columns where it can)
    header: str | None = None  # comment after the node's opening `{`
    header_col: int = 0
    blank_before: bool = False  # a blank line separated it from what came before


# ---------------------------------------------------------------- values


@dataclass
class Str:
    value: str
    raw: str  # as written, quotes included
    span: Span


@dataclass
class Num:
    value: int | float
    raw: str
    span: Span


@dataclass
class Bool:
    value: bool
    span: Span


@dataclass
class Null:
    span: Span


@dataclass
class Ref:
    """A bare name: a constant, or a model, dataset, template, reward or stage."""

    name: str
    span: Span


@dataclass
class List:
    items: list[Value]
    span: Span


Value = Union[Str, Num, Bool, Null, Ref, List]


# ---------------------------------------------------------------- entries of a `{ ... }` body


@dataclass
class Assign:
    key: str
    key_span: Span
    value: Value
    span: Span
    trivia: Trivia = field(default_factory=Trivia)


@dataclass
class Section:
    key: str
    key_span: Span
    body: Body
    span: Span
    trivia: Trivia = field(default_factory=Trivia)


Entry = Union[Assign, Section]


@dataclass
class Body:
    entries: list[Entry]
    span: Span  # from `{` to `}`
    end_comments: list[str] = field(default_factory=list)  # comments before the closing `}`


# ---------------------------------------------------------------- top-level items


@dataclass
class RecipeDecl:
    name: str
    name_span: Span
    span: Span
    trivia: Trivia = field(default_factory=Trivia)


@dataclass
class ImportDecl:
    keyword: str  # import | include
    path: Str
    span: Span
    trivia: Trivia = field(default_factory=Trivia)


@dataclass
class ConstDecl:
    name: str
    name_span: Span
    value: Value
    span: Span
    trivia: Trivia = field(default_factory=Trivia)


@dataclass
class TemplateDecl:
    name: str
    name_span: Span
    value: Value
    span: Span
    trivia: Trivia = field(default_factory=Trivia)


@dataclass
class BlockDecl:
    """`model NAME {...}`, `dataset NAME {...}` or `reward NAME {...}`."""

    keyword: str
    name: str
    name_span: Span
    body: Body
    span: Span
    trivia: Trivia = field(default_factory=Trivia)


@dataclass
class StageDecl:
    name: str
    name_span: Span
    kind: str
    kind_span: Span
    body: Body
    span: Span
    trivia: Trivia = field(default_factory=Trivia)


Item = Union[RecipeDecl, ImportDecl, ConstDecl, TemplateDecl, BlockDecl, StageDecl]
Decl = Union[ConstDecl, TemplateDecl, BlockDecl, StageDecl]  # the items that declare a name


@dataclass
class Module:
    """One parsed file."""

    path: str  # as shown in diagnostics
    text: str
    items: list[Item]
    end_comments: list[str] = field(default_factory=list)  # comments after the last item
    skipped: list[Span] = field(default_factory=list)  # source skipped after syntax errors (nothing else is lost)
    lost_names: set[str] = field(default_factory=set)  # declarations dropped with a syntax error: not "unknown"


def decl_keyword(decl: Decl) -> str:
    """What a declaration is, in the recipe's own words: const, template, model, dataset, reward, stage."""
    if isinstance(decl, ConstDecl):
        return "const"
    if isinstance(decl, TemplateDecl):
        return "template"
    if isinstance(decl, StageDecl):
        return "stage"
    return decl.keyword
