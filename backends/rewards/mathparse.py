"""Normalise a math answer and parse it into a small value tree, without sympy.

The fast path of `equivalence`: most answers a model writes (integers, decimals, fractions, roots, pi,
percentages, intervals, tuples, sets, matrices, `x = 3`) are decided here in microseconds. Anything this
parser does not know returns None and goes to sympy in a worker process.

Bounded by construction: the caller caps the input length, the parser caps the nesting depth, and the
evaluators refuse powers, factorials and roots whose results would be astronomically large (they raise
`Inconclusive`, they never compute them).
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

MAX_DEPTH = 60  # brackets nested deeper than this are not parsed (recursion stays far below Python's limit)
MAX_BITS = 20_000  # an exact rational bigger than this is not computed


class ParseError(ValueError):
    pass


class Inconclusive(ArithmeticError):
    """The fast path cannot decide (overflow, a value too large to compute exactly, ...)."""


# ----------------------------------------------------------------------------------------------------------
# string normalisation

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u2010": "-", "\u2011": "-", "\u00d7": "*", "\u22c5": "*",
    "\u00b7": "*", "\u2219": "*", "\u00f7": "/", "\u03c0": "\\pi ", "\u221a": "\\sqrt", "\u221e": "\\infty ",
    "\u2264": "\\le ", "\u2265": "\\ge ", "\u222a": "\\cup ", "\u00b0": "", "\u2032": "'", "\u00a0": " ",
}
_TEXT_CMDS = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname|boxed|fbox)\s*\{([^{}]*)\}")
_UNITS = (
    "units?|cm|mm|km|m|meters?|metres?|centimeters?|kilometers?|inch(?:es)?|in|feet|foot|ft|yards?|yd|miles?|mi|"
    "seconds?|sec|s|minutes?|min|hours?|hrs?|h|days?|weeks?|months?|years?|grams?|g|kg|kilograms?|pounds?|lbs?|oz|"
    "liters?|litres?|l|ml|dollars?|cents?|euros?|degrees?|deg|radians?|rad|mph|kmh|sq|square|cubic|people|"
    "students?|apples?|marbles?|books?|cookies?|pages?|points?|ways?|times|percent"
)
_TRAILING_UNITS = re.compile(rf"(?<=[\d}}a-zA-Z.)])\s*(?:(?:{_UNITS})(?:\s*\^?\{{?[23]\}}?)?\.?\s*)+$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")


def normalize(s: str) -> str:
    """Canonical text of an answer: unicode folded, TeX decoration removed, units and `x =` stripped."""
    s = unicodedata.normalize("NFKC", s)
    s = "".join(_UNICODE.get(ch, ch) for ch in s)
    s = s.strip()
    for a in ("\\displaystyle", "\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\qquad", "\\quad", "~"):
        s = s.replace(a, " " if a in ("\\qquad", "\\quad", "~") else "")
    s = re.sub(r"(?<!\\)\\ ", " ", s)  # "\ " is a space, "\\ " a matrix row break
    s = s.replace("\\$", "").replace("$", "").replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\cfrac", "\\frac")
    s = s.replace("\\%", "%").replace("{,}", "").replace("\\{", "\\lbrace ").replace("\\}", " \\rbrace")
    s = s.replace("\\lbrace", "\\{").replace("\\rbrace", "\\}")
    s = re.sub(r"\^\s*\{?\\circ\}?|\\circ|\\degree", "", s)
    for _ in range(4):  # \text{\textbf{x}}: a few levels of nesting, never unbounded
        t = _TEXT_CMDS.sub(r" \1 ", s)
        if t == s:
            break
        s = t
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"^(?:the )?(?:final )?answer(?: is)?\s*[:=]?\s*", "", s, flags=re.I)
    s = s.rstrip(".").strip()
    s = re.sub(r"\s+(?:or|and)\s+|\\lor|\\vee", ", ", s)
    s = re.sub(r"\\emptyset|\\varnothing|\\\{\s*\\\}", "\\{\\}", s)
    if "%" not in s and not s.startswith("\\begin"):
        t = _TRAILING_UNITS.sub("", s).strip()
        if t and t != s and not re.fullmatch(r"[a-zA-Z]", t):
            s = t
    if s.endswith("percent"):
        s = s[: -len("percent")].strip() + "%"
    if _THOUSANDS.match(s.replace(" ", "")):
        s = s.replace(",", "").replace(" ", "")
    return s


def compact(s: str) -> str:
    """Whitespace-free form, for the exact-string fast path."""
    return s.replace(" ", "")


# ----------------------------------------------------------------------------------------------------------
# tokenizer and parser of scalar expressions

_TOKEN = re.compile(
    r"(?P<num>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<cmd>\\[a-zA-Z]+)"
    r"|(?P<name>arcsin|arccos|arctan|sqrt|sin|cos|tan|cot|sec|csc|ln|log|exp|pi|infty|inf)(?![a-zA-Z])"
    r"|(?P<letter>[a-zA-Z])"
    r"|(?P<op>\*\*|[-+*/^()\[\]{}!|_,'])"
    r"|(?P<ws>\s+)"
)
_FUNCS = {"sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "ln", "log", "exp", "sqrt"}
_CONSTS = {"pi": ("const", "pi"), "infty": ("const", "inf"), "inf": ("const", "inf")}
_CMD_ALIASES = {"cdot": "*", "times": "*", "ast": "*", "div": "/"}
_CLOSE = {"(": ")", "[": "]", "{": "}"}


def tokenize(s: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m:
            raise ParseError(f"unexpected {s[pos]!r}")
        pos = m.end()
        kind = m.lastgroup
        text = m.group(0)
        if kind == "ws":
            continue
        if kind == "cmd":
            name = text[1:]
            if name in _CMD_ALIASES:
                out.append(("op", _CMD_ALIASES[name]))
                continue
            kind, text = "name", name
        if text == "**":
            text = "^"
        out.append((kind, text))
    return out


class _Parser:
    """Recursive descent over tokens; nodes are tuples ('num', Fraction) | ('var', name) | ('const', c) |
    ('add', a, b) | ('mul', a, b) | ('div', a, b) | ('pow', a, b) | ('neg', a) | ('fn', name, a) |
    ('root', n, a) | ('fact', a) | ('binom', n, k) | ('log', base, a)."""

    def __init__(self, tokens):
        self.t = tokens
        self.i = 0
        self.depth = 0

    def peek(self, k=0):
        j = self.i + k
        return self.t[j] if j < len(self.t) else ("end", "")

    def take(self, text=None):
        tok = self.peek()
        if text is not None and tok[1] != text:
            raise ParseError(f"expected {text!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self):
        node = self.expr()
        if self.peek()[0] != "end":
            raise ParseError(f"unexpected {self.peek()[1]!r}")
        return node

    def expr(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError("nested too deeply")
        node = self.term()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            rhs = self.term()
            node = ("add", node, rhs if op == "+" else ("neg", rhs))
        self.depth -= 1
        return node

    def _starts_atom(self):
        kind, text = self.peek()
        if kind in ("num", "letter"):
            return True
        if kind == "name":
            return text not in ("cup", "le", "ge", "leq", "geq", "lt", "gt", "rfloor", "rceil", "pm", "mp")
        return text in ("(", "{", "[")

    def term(self):
        node = self.unary()
        while True:
            text = self.peek()[1]
            if text in ("*", "/"):
                self.take()
                rhs = self.unary()
                node = ("mul", node, rhs) if text == "*" else ("div", node, rhs)
            elif self._starts_atom():
                rhs = self.power()
                if node[0] == "num" and rhs[0] == "div" and rhs[1][0] == "num" and rhs[2][0] == "num" and self._mixed:
                    node = ("add", node, rhs)  # mixed number: 2\frac{1}{2}
                else:
                    node = ("mul", node, rhs)
            else:
                return node

    _mixed = False

    def unary(self):
        text = self.peek()[1]
        if text in ("-", "+"):
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ParseError("nested too deeply")
            node = self.unary()
            self.depth -= 1
            return ("neg", node) if text == "-" else node
        return self.power()

    def power(self):
        node = self.postfix()
        if self.peek()[1] == "^":
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ParseError("nested too deeply")
            exp = self.unary() if self.peek()[1] in ("-", "+") else self.power()
            self.depth -= 1
            node = ("pow", node, exp)
        return node

    def postfix(self):
        node = self.atom()
        while self.peek()[1] in ("!", "'"):
            if self.take()[1] == "'":
                raise ParseError("prime")
            node = ("fact", node)
        return node

    def group(self):
        """A braced argument {..}, or a single token (\\frac12, \\sqrt2)."""
        if self.peek()[1] == "{":
            self.take()
            node = self.expr()
            self.take("}")
            return node
        return self.atom()

    def atom(self):
        kind, text = self.take()
        self._mixed = False
        if kind == "num":
            try:
                return ("num", Fraction(text))
            except (ValueError, OverflowError) as e:
                raise ParseError(str(e)) from None
        if kind == "letter":
            name = text
            if self.peek()[1] == "_":
                self.take()
                sub = self.take()
                if sub[1] == "{":
                    parts = []
                    while self.peek()[1] != "}":
                        if self.peek()[0] == "end":
                            raise ParseError("unclosed subscript")
                        parts.append(self.take()[1])
                    self.take("}")
                    sub = ("", "".join(parts))
                name = f"{name}_{sub[1]}"
            if name == "e":
                return ("const", "e")
            if name == "i":
                return ("const", "i")
            return ("var", name)
        if text in _CLOSE:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ParseError("nested too deeply")
            node = self.expr()
            self.take(_CLOSE[text])
            self.depth -= 1
            return node
        if text == "|":
            node = self.expr()
            self.take("|")
            return ("fn", "abs", node)
        if kind == "name":
            return self.command(text)
        raise ParseError(f"unexpected {text!r}")

    def command(self, name):
        if name in _CONSTS:
            return _CONSTS[name]
        if name == "frac":
            num = self.group()
            den = self.group()
            node = ("div", num, den)
            self._mixed = True
            return node
        if name == "binom":
            return ("binom", self.group(), self.group())
        if name == "sqrt":
            if self.peek()[1] == "[":
                self.take()
                n = self.expr()
                self.take("]")
                return ("root", n, self.group())
            return ("root", ("num", Fraction(2)), self.group() if self.peek()[1] != "(" else self.atom())
        if name in ("lfloor", "lceil"):
            node = self.expr()
            self.take("rfloor" if name == "lfloor" else "rceil")
            return ("fn", "floor" if name == "lfloor" else "ceil", node)
        if name in _FUNCS:
            exp = None
            if name == "log" and self.peek()[1] == "_":
                self.take()
                base = self.group()
                return ("log", base, self.power())
            if self.peek()[1] == "^":  # \sin^2 x
                self.take()
                exp = self.group()
            arg = self.power()
            node = ("fn", name, arg)
            return ("pow", node, exp) if exp is not None else node
        raise ParseError(f"unknown command \\{name}")


def parse_expr(s: str):
    """A scalar expression's tree, or raise ParseError."""
    if not s:
        raise ParseError("empty")
    return _Parser(tokenize(s)).parse()


# ----------------------------------------------------------------------------------------------------------
# answers: scalars and structures

_REL = re.compile(r"(?:\\leq?|\\geq?|\\lt|\\gt|\\neq|\\ne|\\approx|\\in|\\to)(?![a-zA-Z])|<=|>=|<|>|=")


def split_top(s: str, sep: str = ",") -> list[str]:
    """Split at separators that are not inside any brackets."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        ch = s[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            start = i + len(sep)
            i = start
            continue
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _matching_close(s: str, open_idx: int) -> int:
    depth = 0
    for k in range(open_idx, len(s)):
        if s[k] in "([{":
            depth += 1
        elif s[k] in ")]}":
            depth -= 1
            if depth == 0:
                return k
    return -1


def _scalar(s: str):
    s = s.strip()
    if s.endswith("%"):
        return ("pct", parse_expr(s[:-1].strip()))
    return ("expr", parse_expr(s))


def _strip_var_eq(s: str) -> str:
    """'x = 3' -> '3' (also 'f(x) = ...', 'x_1 = ...'); other text unchanged."""
    m = re.match(r"^\s*(?:[a-zA-Z](?:_\{?\w+\}?)?|[a-zA-Z]\([a-zA-Z]\)|\(\s*[a-zA-Z](?:\s*,\s*[a-zA-Z])*\s*\))\s*=\s*(.+)$", s)
    if m and "=" not in m.group(1):
        return m.group(1)
    return s


def _inequality(s: str):
    """'x > 3', 'x \\ge 3', '3 < x \\le 5' -> an interval value; None if not of that shape."""
    parts = re.split(r"((?:\\leq?|\\geq?|\\lt|\\gt)(?![a-zA-Z])|<=|>=|<|>)", s)
    if len(parts) not in (3, 5):
        return None
    ops = parts[1::2]
    terms = [p.strip() for p in parts[0::2]]
    closed = lambda op: "=" in op or op in ("\\le", "\\leq", "\\ge", "\\geq")  # noqa: E731
    less = lambda op: op in ("<", "<=", "\\le", "\\leq", "\\lt")  # noqa: E731
    inf = ("expr", ("const", "inf"))
    if len(parts) == 3:
        lhs, rhs, op = terms[0], terms[1], ops[0]
        if re.fullmatch(r"[a-zA-Z]", lhs):
            bound = _scalar(rhs)
            if less(op):
                return ("seq", "(", ")" if not closed(op) else "]", [("expr", ("neg", ("const", "inf"))), bound])
            return ("seq", "[" if closed(op) else "(", ")", [bound, inf])
        if re.fullmatch(r"[a-zA-Z]", rhs):
            flipped = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "\\le": "\\ge", "\\leq": "\\geq", "\\ge": "\\le",
                       "\\geq": "\\leq", "\\lt": "\\gt", "\\gt": "\\lt"}[op]
            return _inequality(f"{rhs} {flipped} {lhs}")
        return None
    if not re.fullmatch(r"[a-zA-Z]", terms[1]) or less(ops[0]) != less(ops[1]):
        return None
    lo, hi = (terms[0], terms[2]) if less(ops[0]) else (terms[2], terms[0])
    lo_op, hi_op = (ops[0], ops[1]) if less(ops[0]) else (ops[1], ops[0])
    return ("seq", "[" if closed(lo_op) else "(", "]" if closed(hi_op) else ")", [_scalar(lo), _scalar(hi)])


def parse_answer(s: str, keep_eq: bool = False):
    """Value tree of a normalised answer: ('expr'|'pct', node) | ('seq', open, close, [v]) | ('set', [v]) |
    ('matrix', [[v]]) | ('eq', lhs, rhs). Raises ParseError when the fast path does not understand it."""
    s = s.strip()
    if not s:
        raise ParseError("empty")
    m = re.fullmatch(r"\\begin\{([pbvB]?matrix|array)\}(?:\{[lcr|]*\})?(.*)\\end\{\1\}", s, flags=re.S)
    if m:
        rows = [r for r in (r.strip() for r in m.group(2).split("\\\\")) if r]
        return ("matrix", [[parse_answer(c) for c in r.split("&")] for r in rows])
    if "\\cup" in s:
        parts = split_top(s, "\\cup")
        if len(parts) > 1:
            return ("set", [parse_answer(p) for p in parts])
    if s.startswith("\\{") and s.endswith("\\}") and _matching_close(s, 1) == len(s) - 1:
        inner = s[2:-2].strip()
        return ("set", [parse_answer(_strip_var_eq(p)) for p in split_top(inner)] if inner else [])
    items = split_top(s)
    if len(items) > 1:
        if any(not it for it in items):
            raise ParseError("empty item")
        return ("set", [parse_answer(_strip_var_eq(it)) for it in items])
    if s[0] in "([" and s[-1] in ")]" and _matching_close(s, 0) == len(s) - 1:
        inner = split_top(s[1:-1])
        if len(inner) > 1:
            return ("seq", s[0], s[-1], [parse_answer(_strip_var_eq(it)) for it in inner])
    rels = _REL.findall(s)
    if rels:
        if all(r == "=" for r in rels):
            stripped = s if keep_eq else _strip_var_eq(s)
            if stripped != s:
                return parse_answer(stripped)
            sides = s.split("=")
            if len(sides) == 2:
                return ("eq", parse_expr(sides[0].strip()), parse_expr(sides[1].strip()))
            return parse_answer(sides[-1])  # a = b = 5: the last value
        ineq = _inequality(s)
        if ineq is not None:
            return ineq
        if rels[-1] in ("\\approx", "="):
            return parse_answer(re.split(r"\\approx(?![a-zA-Z])|=", s)[-1])
        raise ParseError("relation")
    return _scalar(s)
