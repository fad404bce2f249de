"""Untrusted math text -> tokens -> bounded value trees. No regex, no eval, no sympy: every scan is linear.

One hand-written scanner turns an answer (LaTeX or plain math) into tokens; token-level passes strip what a
grader ignores (units after a number, `$`, degree signs, thousands separators in their strict form); a
recursive-descent parser with a depth and a size limit builds trees of plain tuples:

    ('num', Fraction) | ('var', name) | ('const', 'pi'|'e'|'i'|'inf') | ('neg', a) | ('add', a, b) |
    ('mul', a, b) | ('div', a, b) | ('pow', a, b) | ('root', n, a) | ('fact', a) | ('binom', n, k) |
    ('log', base, a) | ('fn', name, a)

and answers are values built from them:

    ('expr', node) | ('pct', node) | ('text', words) | ('seq', open, close, [value]) | ('set', [value]) |
    ('matrix', [[value]]) | ('eq', lhs, rhs)

Numbers are bounded before they are built: a literal longer than MAX_DIGITS digits or with a decimal
exponent beyond MAX_EXP10 raises `Refused` (the answer scores 0 unless written exactly as the gold). What
is equivalent to what is documented in docs/rewards.md; `equivalence` compares the values.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from fractions import Fraction

MAX_DEPTH = 50  # nesting of brackets / unary signs / powers the parser follows
MAX_NODES = 600  # tree nodes per answer (also bounds the depth of the recursive evaluators)
MAX_DIGITS = 400  # digits in one number literal
MAX_EXP10 = 400  # |k| in a literal's 1.5e{k} or in a repeating decimal's length


class ParseError(ValueError):
    """The text is not an answer this parser understands (it can still match the gold as text)."""


class Refused(ArithmeticError):
    """A bound was hit (size, depth, magnitude, time): the answer is not computed and scores 0."""


# ----------------------------------------------------------------------------------------------------------
# tokens


@dataclass(frozen=True)
class Tok:
    kind: str  # num | word | cmd | text | op | rel | begin | end | other
    text: str  # digits for num (as written), letters for word, name for cmd/begin/end, the symbol for op/rel
    sp: bool = False  # whitespace (or a TeX space) right before it
    val: Fraction | None = None  # value of a num


_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u2010": "-", "\u2011": "-", "\u00d7": "\\times ", "\u22c5": "\\cdot ",
    "\u00b7": "\\cdot ", "\u2219": "\\cdot ", "\u00f7": "/", "\u03c0": "\\pi ", "\u221a": "\\sqrt", "\u221e": "\\infty ",
    "\u2264": "\\le ", "\u2265": "\\ge ", "\u2260": "\\ne ", "\u222a": "\\cup ", "\u2208": "\\in ", "\u00b1": "\\pm ",
    "\u00b0": "\\circ ", "\u2032": "'", "\u00a0": " ", "\u2205": "\\emptyset ", "\u211d": "\\mathbb{R}",
    "\u2044": "/", "\u2215": "/",
}
# commands that only decorate: dropped (a space for the thousands rule)
_SPACES = {
    "left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr", "displaystyle",
    "textstyle", "scriptstyle", "quad", "qquad", "limits", "nolimits", "mathstrut", "strut", "hspace", "phantom",
    "middle", "cdotp",
}
_TRANSPARENT = {  # formatting around math: `\textbf{7}` is 7, `\boxed{3}` is 3
    "textbf", "mathbf", "boldsymbol", "bm", "boxed", "fbox", "mathit", "mathsf", "mathnormal", "underline",
    "emph", "pmb", "mathup",
}
_TEXT = {"text", "textrm", "textnormal", "textit", "textsf", "texttt", "mbox", "hbox", "mathrm", "operatorname", "textup"}
_ALIASES = {  # command -> (kind, text)
    "cdot": ("op", "*"), "times": ("op", "*"), "ast": ("op", "*"), "div": ("op", "/"), "colon": ("op", ":"),
    "le": ("rel", "<="), "leq": ("rel", "<="), "leqslant": ("rel", "<="), "ge": ("rel", ">="), "geq": ("rel", ">="),
    "geqslant": ("rel", ">="), "lt": ("rel", "<"), "gt": ("rel", ">"), "ne": ("rel", "!="), "neq": ("rel", "!="),
    "in": ("rel", "in"), "approx": ("rel", "~"), "sim": ("rel", "~"), "equiv": ("rel", "="), "to": ("rel", "to"),
    "rightarrow": ("rel", "to"), "implies": ("rel", "to"), "Rightarrow": ("rel", "to"), "cup": ("op", "cup"),
    "lor": ("op", ","), "vee": ("op", ","), "land": ("op", ","), "wedge": ("op", ","), "lbrace": ("op", "{{"),
    "rbrace": ("op", "}}"), "langle": ("op", "("), "rangle": ("op", ")"), "lvert": ("op", "|"), "rvert": ("op", "|"),
    "vert": ("op", "|"), "mid": ("op", "|"), "dfrac": ("cmd", "frac"), "tfrac": ("cmd", "frac"),
    "cfrac": ("cmd", "frac"), "dbinom": ("cmd", "binom"), "tbinom": ("cmd", "binom"), "varnothing": ("cmd", "emptyset"),
    "infin": ("cmd", "infty"), "lbrack": ("op", "["), "rbrack": ("op", "]"), "lceil": ("cmd", "lceil"), "rceil": ("cmd", "rceil"), "varpi": ("cmd", "pi"),
}
_DIGIT_ARGS = {"frac": 2, "binom": 2, "sqrt": 1}  # \frac12, \sqrt2: single-digit arguments without braces
_OPS = set("+-*/^_()[]{},!|'=<>%&;:.")
_REL_WORDS = {"or", "and", ","}  # \text{ or } between answers is a separator


def _fold(s: str) -> str:
    """Unicode to the ASCII the tokenizer reads. Compatibility characters keep their meaning, which NFKC alone
    loses: a run of superscripts is an exponent (`2³` is 2^{3}, not 23; `10⁻²`), subscripts an index (`x₁`),
    and a vulgar fraction a fraction (`½` is (1/2); `3½` is 3+(1/2), not 31/2)."""
    if s.isascii():
        return s
    s = _scripts(s)
    s = unicodedata.normalize("NFKC", s)
    return "".join(_UNICODE.get(ch, ch) for ch in s)


def _scripts(s: str) -> str:
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        tag = _compat_tag(s[i])
        if tag in ("<super>", "<sub>"):
            j = i
            while j < n and _compat_tag(s[j]) == tag:
                j += 1
            out.append(("^{" if tag == "<super>" else "_{") + unicodedata.normalize("NFKC", s[i:j]) + "}")
            i = j
            continue
        after_digit = bool(out) and out[-1][-1:].isdigit()
        if tag == "<fraction>":
            num, _, den = unicodedata.normalize("NFKC", s[i]).partition("\u2044")
            out.append(f"{'+' if after_digit else ''}({num}/{den or 1})")
        elif unicodedata.category(s[i]) in ("No", "Nl") and unicodedata.normalize("NFKC", s[i]) != s[i]:
            # circled and parenthesised digits, roman numerals: their own value (`①` 1, `Ⅻ` 12), never digits
            # joined to a neighbour (`①②` is not 12); after a digit there is no reading without a guess
            value = unicodedata.numeric(s[i], None)
            out.append("\u00bf" if after_digit or value is None or value != int(value) else f" {{{int(value)}}} ")
        else:
            out.append(s[i])
        i += 1
    return "".join(out)


def _compat_tag(ch: str) -> str:
    d = unicodedata.decomposition(ch) if not ch.isascii() else ""
    return d.split(" ", 1)[0] if d.startswith("<") else ""


def _brace_closes(s: str) -> dict[int, int]:
    """For each '{' in s, the index of its '}' (raw brace counting); one linear pass, so reading a group is O(1)
    and nested or unclosed groups (`\\text{\\text{...`) are never rescanned (33,000 of them took minutes)."""
    close, stack = {}, []
    for k, ch in enumerate(s):
        if ch == "{":
            stack.append(k)
        elif ch == "}" and stack:
            close[stack.pop()] = k
    return close


def _read_group(s: str, i: int, close: dict[int, int], max_len: int | None = None) -> tuple[str, int] | None:
    """s[i] == '{': the braced text and the index after its '}', or None if unclosed (or longer than max_len)."""
    k = close.get(i)
    if k is None or max_len is not None and k - i - 1 > max_len:
        return None
    return s[i + 1 : k], k + 1


def _text_content(raw: str) -> str:
    """Words of a \\text{} argument: commands, braces and backslashes dropped, spaces collapsed."""
    out, i = [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            j = i + 1
            while j < len(raw) and raw[j].isascii() and raw[j].isalpha():
                j += 1
            i = max(j, i + 2) if j == i + 1 else j
            out.append(" ")
            continue
        out.append(" " if ch in "{}$~" else ch)
        i += 1
    return " ".join("".join(out).split())


def tokenize(s: str) -> list[Tok]:
    """Tokens of an answer. Linear: each character is looked at a bounded number of times."""
    s = _fold(s)
    close = _brace_closes(s)
    out: list[Tok] = []
    braces: list[bool] = []  # one entry per open '{': True when it opened a transparent command (drop its '}')
    i, n, sp = 0, len(s), False

    def emit(kind, text, val=None):
        nonlocal sp
        out.append(Tok(kind, text, sp, val))
        sp = False

    while i < n:
        ch = s[i]
        if ch in " \t\n\r~":
            sp, i = True, i + 1
        elif ch == "$":
            i += 1
        elif ch.isdigit() and ch.isascii() or (ch == "." and i + 1 < n and s[i + 1].isdigit()):
            i = _number(s, i, emit, close)
        elif ch.isascii() and ch.isalpha():
            j = i
            while j < n and s[j].isascii() and s[j].isalpha():
                j += 1
            emit("word", s[i:j])
            i = j
        elif ch == "\\":
            i = _command(s, i, out, braces, emit, close)
            if out and out[-1].kind == "sp":  # a TeX space: remembered for the next token
                out.pop()
                sp = True
        elif s.startswith("{,}", i):  # 1{,}000
            emit("op", ",")
            i += 3
        elif ch == "{":
            braces.append(False)
            emit("op", "{")
            i += 1
        elif ch == "}":
            if not (braces and braces.pop()):
                emit("op", "}")
            i += 1
        elif ch == "*" and s.startswith("**", i):
            emit("op", "^")
            i += 2
        elif ch in "<>" and i + 1 < n and s[i + 1] == "=":
            emit("rel", ch + "=")
            i += 2
        elif ch in "<>=":
            emit("rel", ch)
            i += 1
        elif ch in _OPS:
            emit("op", ch)
            i += 1
        else:
            emit("other", ch)
            i += 1
    return out


def _digits(s: str, i: int) -> int:
    while i < len(s) and s[i].isascii() and s[i].isdigit():
        i += 1
    return i


def _number(s: str, i: int, emit, close: dict[int, int]) -> int:
    """A literal: 12, 1.5, .5, 18., 1.5e3, 0.1\\overline{6}. Its value is bounded before it is built."""
    j = _digits(s, i)
    whole = s[i:j]
    frac = ""
    if j < len(s) and s[j] == "." and not s.startswith("..", j):
        k = _digits(s, j + 1)
        frac, j = s[j + 1 : k], k
    exp = 0
    if j + 1 < len(s) and s[j] in "eE":
        k = j + 1 + (s[j + 1] in "+-")
        if k < len(s) and s[k].isascii() and s[k].isdigit():
            end = _digits(s, k)
            if end - k > 6:
                raise Refused("exponent too large")
            exp, j = int(s[j + 1 : end]), end
    if len(whole) + len(frac) > MAX_DIGITS or abs(exp) > MAX_EXP10:
        raise Refused("number too large")
    value = Fraction(int(whole or "0") * 10 ** len(frac) + int(frac or "0"), 10 ** len(frac))
    k = j
    while k < len(s) and s[k] == " ":
        k += 1
    if (frac or s[j - 1 : j] == ".") and s.startswith("\\overline", k) or s.startswith("\\dot", k) and frac:
        k2 = k + (9 if s.startswith("\\overline", k) else 4)
        while k2 < len(s) and s[k2] == " ":
            k2 += 1
        grp = _read_group(s, k2, close, MAX_EXP10 + 8) if k2 < len(s) and s[k2] == "{" else None
        if grp is not None and grp[0].strip().isdigit() and grp[0].strip().isascii():
            rep = grp[0].strip()
            if len(rep) + len(frac) > MAX_EXP10:
                raise Refused("repeating decimal too long")
            # 0.1\overline{6} = 0.1 + 6 / (9 * 10)
            value += Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(frac))
            j = grp[1]
            frac = frac + "(" + rep + ")"
    if exp:
        value *= Fraction(10) ** exp
    emit("num", whole + ("." + frac if frac or s[i:j].rstrip().endswith(".") else "") + (f"e{exp}" if exp else ""), value)
    return j


def _command(s: str, i: int, out: list[Tok], braces: list[bool], emit, close: dict[int, int]) -> int:
    n = len(s)
    if i + 1 >= n:
        return i + 1
    nxt = s[i + 1]
    if not (nxt.isascii() and nxt.isalpha()):
        if nxt == "\\":
            emit("op", "\\\\")
        elif nxt == "{":
            emit("op", "{{")
        elif nxt == "}":
            emit("op", "}}")
        elif nxt == "%":
            emit("op", "%")
        elif nxt in "|":
            emit("op", "|")
        elif nxt in " ,;:!>":
            out.append(Tok("sp", ""))
        # \$ \( \) \[ \] and anything else: dropped
        return i + 2
    j = i + 1
    while j < n and s[j].isascii() and s[j].isalpha():
        j += 1
    name = s[i + 1 : j]
    if name in _SPACES:
        out.append(Tok("sp", ""))
        return j
    if name in ("circ", "degree"):  # 30^\circ, 30^{\circ}: the degree sign goes, with its '^'
        if out and out[-1].text == "^":
            out.pop()
        elif len(out) >= 2 and out[-1].text == "{" and out[-2].text == "^" and braces and not braces[-1]:
            out.pop()
            out.pop()
            braces[-1] = True
        return j
    k = j
    while k < n and s[k] == " ":
        k += 1
    if name in _TRANSPARENT:
        if k < n and s[k] == "{":
            braces.append(True)
            return k + 1
        return j
    if name in _TEXT:
        grp = _read_group(s, k, close) if k < n and s[k] == "{" else None
        if grp is None:
            return j
        words = _text_content(grp[0])
        if words.lower() in _REL_WORDS:
            emit("op", ",")
        elif words[:1].isdigit() and words.isascii() and words.replace(" ", "").replace(".", "").isalnum():
            for t in tokenize(words):  # \text{5 cm}: a number and words, scanned once more (no commands left)
                emit(t.kind, t.text, t.val)
        elif words:
            emit("text", words)
        return grp[1]
    if name in ("begin", "end"):
        grp = _read_group(s, k, close, 64) if k < n and s[k] == "{" else None
        if grp is None:
            emit("other", name)
            return j
        emit(name, grp[0].strip().rstrip("*"))
        k = grp[1]
        if name == "begin" and grp[0].strip() == "array" and k < n and s[k] == "{":  # column spec
            spec = _read_group(s, k, close)
            if spec is not None:
                k = spec[1]
        return k
    if name == "mathbb":
        grp = _read_group(s, k, close, 16) if k < n and s[k] == "{" else None
        if grp is not None and grp[0].strip() in ("R", "C", "Z", "N", "Q"):
            emit("cmd", "mathbb" + grp[0].strip())
            return grp[1]
        emit("other", name)
        return j
    kind, text = _ALIASES.get(name, ("cmd", name))
    emit(kind, text)
    if kind == "cmd" and text in _DIGIT_ARGS:  # \frac12 -> \frac{1}{2}
        for _ in range(_DIGIT_ARGS[text]):
            if k < n and s[k].isascii() and s[k].isdigit():
                emit("num", s[k], Fraction(int(s[k])))
                k += 1
                j = k
            else:
                break
    return j


# ----------------------------------------------------------------------------------------------------------
# token-level normalisation: what a grader ignores

UNIT_WORDS = frozenset(
    """unit units cm mm km dm meter meters metre metres centimeter centimeters centimetre centimetres kilometer
    kilometers millimeter millimeters inch inches feet foot ft yard yards yd yds mile miles mi second seconds sec
    secs minute minutes min mins hour hours hr hrs day days week weeks month months year years yr yrs gram grams
    kg kilogram kilograms mg milligram milligrams pound pounds lb lbs oz ounce ounces ton tons liter liters litre
    litres ml milliliter milliliters mL L gallon gallons gal quart quarts pint pints cup cups dollar dollars
    cent cents euro euros pct percentage degree degrees deg radian radians rad mph kph kmh sq square cubic per people person
    persons student students apple apples marble marbles book books cookie cookies page pages point points way ways
    times percent customer customers child children item items coin coins ball balls box boxes car cars tile tiles
    cents candies candy hands handshakes games outfits integers numbers arrangements sequences triangles squares
    cubes paths words letters digits pieces""".split()
)
_SLASH_UNITS = frozenset("m s h g l min hr km cm kg".split())  # single letters only as part of km/h, m/s
_DAY_WORDS = frozenset("the final answer is".split())


def _is_unit_word(t: Tok) -> bool:
    return t.kind == "word" and (t.text in UNIT_WORDS or t.text.lower() in UNIT_WORDS and len(t.text) > 1)


_HEDGES = frozenset("or and not nor no either but except maybe possibly otherwise else if unless".split())


def _unit_text(t: Tok) -> bool:
    """A \text{} after a number that may be a unit: letters (and / ^ . -) only, no hedging words:
    `5 \text{ or } 6`, `5 \text{(or 6)}` keep their text and are not the number 5."""
    if t.kind != "text" or not all(c.isalpha() or c in " /^.-" for c in t.text):
        return False
    return not any(w in _HEDGES for w in t.text.lower().replace("/", " ").split())


def _unit_like(t: Tok) -> bool:
    return _unit_text(t) or _is_unit_word(t)


def _numeric_end(toks: list[Tok], tail: list[Tok]) -> bool:
    r"""May `tail` be units after `toks`? \text units may follow a number, a closing bracket or pi (`16\pi
    \text{ cm}^2`); plain unit words only a number (`2\pi hr` is a product, `5 cm` a length)."""
    if not toks:
        return False
    t = toks[-1]
    if t.kind == "num":
        return True
    plain_words = any(x.kind == "word" for x in tail)
    return not plain_words and t.text in (")", "}", "]", "pi", "infty") and t.kind in ("op", "cmd")


def strip_units(toks: list[Tok]) -> list[Tok]:
    """`5 cm`, `16\\pi \\text{ cm}^2`, `7 \\text{ miles per hour}`, `40 km/h` -> the number. Never strips a
    single-letter variable (`4m`, `2\\pi rh`), never strips what does not follow a number. Linear."""
    end = len(toks)
    while end > 0 and toks[end - 1].text == "." and toks[end - 1].kind == "op":
        end -= 1
    k = end
    while k > 0:
        t = toks[k - 1]
        if _unit_like(t):
            k -= 1
        elif t.kind == "num" and t.text in ("2", "3") and k >= 3 and toks[k - 2].text == "^" and _unit_like(toks[k - 3]):
            k -= 2  # cm^2
        elif t.text == "}" and k >= 5 and toks[k - 2].text in ("2", "3") and toks[k - 3].text == "{" and (
            toks[k - 4].text == "^" and _unit_like(toks[k - 5])
        ):
            k -= 4  # cm^{2}
        elif t.kind == "word" and t.text in _SLASH_UNITS and k >= 3 and toks[k - 2].text == "/" and (
            toks[k - 3].kind == "word" and (toks[k - 3].text in _SLASH_UNITS or _is_unit_word(toks[k - 3]))
            or _unit_text(toks[k - 3])
        ):
            k -= 3  # km/h, m/s
        elif t.text == "/" and t.kind == "op" and k < end and _unit_like(toks[k]):
            k -= 1  # \text{km}/\text{h}
        else:
            break
    if k == end or not _numeric_end(toks[:k], toks[k:end]):
        return toks[:end]
    tail = toks[k:end]
    if any(t.kind == "word" and t.text.lower() in ("percent", "pct", "percentage") for t in tail):
        return toks[:k] + [Tok("op", "%")]
    return toks[:k]


def merge_thousands(toks: list[Tok]) -> list[Tok]:
    """`1,000` / `12,345.5` / `1\\,000` / `1 000` at the top level (not inside brackets) -> one number. Only the
    strict form: a first group of 1-3 digits, then groups of exactly 3, no space after a comma."""
    out: list[Tok] = []
    i, depth = 0, 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "op" and t.text in "([{":
            depth += 1
        elif t.kind == "op" and t.text in ")]}":
            depth -= 1
        if depth == 0 and t.kind == "num" and t.text.isdigit() and len(t.text) <= 3 and (not out or out[-1].kind != "num"):
            j, groups = i, [t.text]
            while True:
                comma = j + 2 < len(toks) and toks[j + 1].text == "," and not toks[j + 2].sp and not toks[j + 1].sp
                space = j + 1 < len(toks) and toks[j + 1].sp and toks[j + 1].kind == "num"
                nxt = toks[j + 2] if comma else toks[j + 1] if space else None
                if nxt is None or nxt.kind != "num" or len(nxt.text.split(".")[0]) != 3 or not nxt.text.split(".")[0].isdigit() or "e" in nxt.text:
                    break
                if (comma and space) or (groups and "." in groups[-1]):
                    break
                groups.append(nxt.text)
                j = j + 2 if comma else j + 1
            following = toks[j + 1] if j + 1 < len(toks) else None
            if len(groups) > 1 and not (following is not None and following.kind == "num"):
                text = "".join(groups)
                if len(text) > MAX_DIGITS:
                    raise Refused("number too large")
                whole, _, frac = text.partition(".")
                out.append(Tok("num", text, t.sp, Fraction(int(whole + frac), 10 ** len(frac))))
                i = j + 1
                continue
        out.append(t)
        i += 1
    return out


def _drop_preamble(toks: list[Tok]) -> list[Tok]:
    """'the final answer is: 5' -> '5'."""
    k = 0
    while k < len(toks) and toks[k].kind == "word" and toks[k].text.lower() in _DAY_WORDS and k < 4:
        k += 1
    if k and any(t.text.lower() == "answer" for t in toks[:k]):
        while k < len(toks) and toks[k].text in (":", "="):
            k += 1
        return toks[k:]
    return toks


def _or_as_comma(toks: list[Tok]) -> list[Tok]:
    """`x = 2 or x = 3` is the list `x = 2, x = 3` (a plain `or`/`and` between two non-words)."""
    out = list(toks)
    for k in range(1, len(toks) - 1):
        t = toks[k]
        if t.kind == "word" and t.text.lower() in ("or", "and") and toks[k - 1].kind not in ("word", "text") and (
            toks[k + 1].kind not in ("word", "text") or len(toks[k + 1].text) == 1
        ):
            out[k] = Tok("op", ",", t.sp)
    return out


def normalize(s: str, thousands: bool = True) -> list[Tok]:
    """Tokens of an answer with what graders ignore removed."""
    toks = _or_as_comma(tokenize(s))
    toks = _drop_preamble(toks)
    toks = strip_units(toks)
    if thousands:
        toks = merge_thousands(toks)
    return toks


def render(toks: list[Tok]) -> str:
    """Canonical text of a token list (for the exact-text fast path and for the cache)."""
    return " ".join(f"{t.kind[0]}:{t.text}" for t in toks)


# ----------------------------------------------------------------------------------------------------------
# text answers

_VOWELS = set("aeiouAEIOU")


def as_text(toks: list[Tok]) -> str | None:
    """The words of an answer that is only words (`\\text{Monday}`, `yes`, `(C)`), lower-cased; else None."""
    words = []
    for t in toks:
        if t.kind in ("text", "word"):
            words.append(t.text)
        elif t.kind == "op" and t.text in "().":
            continue
        else:
            return None
    text = " ".join(words).replace("(", " ").replace(")", " ").replace(".", " ")
    text = " ".join(text.lower().split())
    return text or None


def is_letter_product(toks: list[Tok]) -> bool:
    """A plain run of consonant letters (`lwh`, `xy`, `bh`) reads as a product of variables; a run with a vowel
    (`no`, `listen`, `ab`) reads as a word. Documented in docs/rewards.md."""
    return len(toks) == 1 and toks[0].kind == "word" and not any(c in _VOWELS for c in toks[0].text)


# ----------------------------------------------------------------------------------------------------------
# expression parser

_FUNC_NAMES = ("arcsin", "arccos", "arctan", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "ln", "log", "exp")
_FUNCS = set(_FUNC_NAMES) | {"sinh", "cosh", "tanh"}
_INVERSE = {"sin": "arcsin", "cos": "arccos", "tan": "arctan"}
_WORD_NAMES = _FUNC_NAMES + ("infinity", "infty", "inf", "pi")  # recognised inside a plain letter run: `2pi`, `sqrt2`, `sinx`
_STOP = {")", "]", "}", "}}", ",", "=", "&", "\\\\", "|", "cup", ":", ";"}


def _split_words(toks: list[Tok]) -> list[Tok]:
    """A plain letter run is function names and single-letter variables: `2pi r` -> 2 pi r, `sinx` -> sin x."""
    out: list[Tok] = []
    for t in toks:
        if t.kind != "word" or len(t.text) == 1:
            out.append(t)
            continue
        w, i, sp = t.text, 0, t.sp
        low = w.lower()
        while i < len(w):
            for name in _WORD_NAMES:
                if (low if len(name) > 2 else w).startswith(name, i):  # `Infinity`, `Pi` too
                    out.append(Tok("cmd", name, sp))
                    i += len(name)
                    break
            else:
                out.append(Tok("word", w[i], sp))
                i += 1
            sp = False
    return out


class _Parser:
    def __init__(self, toks: list[Tok]):
        self.t = _split_words(toks)
        self.i = 0
        self.depth = 0
        self.nodes = 0

    # -- helpers
    def peek(self, k: int = 0) -> Tok:
        j = self.i + k
        return self.t[j] if j < len(self.t) else Tok("end", "")

    def take(self, text: str | None = None) -> Tok:
        tok = self.peek()
        if tok.kind == "end" or text is not None and tok.text != text:
            raise ParseError(f"expected {text!r}, got {tok.text!r}")
        self.i += 1
        return tok

    def node(self, *parts):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise Refused("expression too large")
        return parts

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Refused("nested too deeply")

    def leave(self):
        self.depth -= 1

    # -- grammar
    def parse(self):
        if not self.t:
            raise ParseError("empty")
        node = self.expr()
        if self.peek().kind != "end":
            raise ParseError(f"unexpected {self.peek().text!r}")
        return node

    def expr(self):
        self.enter()
        node = self.term()
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            op = self.take().text
            rhs = self.term()
            node = self.node("add", node, rhs if op == "+" else self.node("neg", rhs))
        self.leave()
        return node

    def _starts_factor(self) -> bool:
        t = self.peek()
        if t.kind in ("num", "word"):
            return True
        if t.kind == "cmd":
            return t.text not in ("pm", "mp", "rfloor", "rceil", "emptyset")
        return t.kind == "op" and t.text in ("(", "[", "{")

    def term(self):
        node = self.unary()
        while True:
            t = self.peek()
            if t.kind == "op" and t.text in ("*", "/"):
                self.take()
                rhs = self.unary()
                node = self.node("mul" if t.text == "*" else "div", node, rhs)
            elif self._starts_factor():
                node = self.node("mul", node, self.power())
            else:
                return node

    def unary(self):
        t = self.peek()
        if t.kind == "op" and t.text in ("-", "+"):
            self.take()
            self.enter()
            node = self.unary()
            self.leave()
            return self.node("neg", node) if t.text == "-" else node
        return self.power()

    def power(self):
        node = self.postfix()
        if self.peek().text == "^" and self.peek().kind == "op":
            self.take()
            self.enter()
            t = self.peek()
            if t.kind == "op" and t.text in ("-", "+"):
                exp = self.unary()
            elif t.kind == "num" and not t.text.isdigit():
                exp = self.atom()
            else:
                exp = self.power()
            self.leave()
            node = self.node("pow", node, exp)
        return node

    def postfix(self):
        node = self.atom()
        while self.peek().kind == "op" and self.peek().text in ("!", "'"):
            if self.take().text == "'":
                raise ParseError("a prime is not a value")
            node = self.node("fact", node)
        return node

    def group(self):
        """A braced argument {..} or a single atom (\\frac12, \\sqrt2, \\frac\\pi2)."""
        if self.peek().text == "{" and self.peek().kind == "op":
            self.take()
            self.enter()
            node = self.expr()
            self.take("}")
            self.leave()
            return node
        return self.atom()

    def atom(self):
        t = self.take()
        if t.kind == "num":
            return self._number(t)
        if t.kind == "word":
            return self._variable(t.text)
        if t.kind == "op" and t.text in ("(", "[", "{"):
            self.enter()
            node = self.expr()
            self.take({"(": ")", "[": "]", "{": "}"}[t.text])
            self.leave()
            return node
        if t.kind == "op" and t.text == "|":
            self.enter()
            node = self.expr()
            self.take("|")
            self.leave()
            return self.node("fn", "abs", node)
        if t.kind == "cmd":
            return self.command(t.text)
        raise ParseError(f"unexpected {t.text!r}")

    def _number(self, t: Tok):
        # mixed number: 2\frac{1}{2} = 5/2 (a proper fraction of integer literals right after an integer)
        if t.text.isdigit() and self.peek().kind == "cmd" and self.peek().text == "frac":
            save = self.i
            self.take()
            try:
                p, q = self._int_arg(), self._int_arg()
            except ParseError:
                p = q = None
            if p is not None and q is not None and 0 < p < q:
                return self.node("num", t.val + Fraction(p, q))
            self.i = save
        return self.node("num", t.val)

    def _int_arg(self) -> int | None:
        t = self.peek()
        if t.kind == "num" and t.text.isdigit():
            self.take()
            return int(t.text)
        if t.text == "{" and self.peek(1).kind == "num" and self.peek(1).text.isdigit() and self.peek(2).text == "}":
            self.i += 3
            return int(self.peek(-2).text)
        return None

    def _variable(self, name: str):
        if self.peek().text == "_" and self.peek().kind == "op":  # x_1, a_{n+1}
            self.take()
            sub = self.take()
            if sub.text == "{":
                parts = []
                while self.peek().text != "}":
                    tok = self.take()
                    parts.append(tok.text)
                    if len(parts) > 16:
                        raise ParseError("subscript too long")
                self.take("}")
                text = "".join(parts)
            else:
                text = sub.text
            if not text.replace("+", "").replace("-", "").isalnum():
                raise ParseError("odd subscript")
            return self.node("var", f"{name}_{text}")
        if name == "e":
            return self.node("const", "e")
        if name == "i":
            return self.node("const", "i")
        return self.node("var", name)

    def command(self, name: str):
        if name == "pi":
            return self.node("const", "pi")
        if name in ("infty", "infinity", "inf"):
            return self.node("const", "inf")
        if name == "frac":
            return self.node("div", self.group(), self.group())
        if name == "binom":
            return self.node("binom", self.group(), self.group())
        if name == "sqrt":
            if self.peek().text == "[":
                self.take()
                self.enter()
                n = self.expr()
                self.take("]")
                self.leave()
                return self.node("root", n, self.group())
            return self.node("root", self.node("num", Fraction(2)), self.group())
        if name in ("lfloor", "lceil"):
            self.enter()
            node = self.expr()
            self.take("rfloor" if name == "lfloor" else "rceil")
            self.leave()
            return self.node("fn", "floor" if name == "lfloor" else "ceil", node)
        if name in _FUNCS:
            if name == "log" and self.peek().text == "_":
                self.take()
                base = self.group()
                return self.node("log", base, self.power())
            exp = None
            if self.peek().text == "^":  # \sin^2 x
                self.take()
                exp = self.group()
                if name in _INVERSE and exp == ("num", Fraction(-1)) or name in _INVERSE and exp[0] == "neg" and exp[1] == (
                    "num", Fraction(1)
                ):
                    name, exp = _INVERSE[name], None  # \sin^{-1} x is arcsin x
            if self.peek().kind == "end":
                raise ParseError("function without argument")
            # \sin(x)^2 is (\sin x)^2; \sin x^2 is \sin(x^2)
            arg = self.postfix() if self.peek().text == "(" and exp is None else self.power()
            node = self.node("fn", name, arg) if name != "sqrt" else self.node("root", self.node("num", Fraction(2)), arg)
            return self.node("pow", node, exp) if exp is not None else node
        raise ParseError(f"unknown command \\{name}")


def parse_scalar(toks: list[Tok]):
    """A scalar expression's tree, or raise ParseError / Refused."""
    return _Parser(toks).parse()


# ----------------------------------------------------------------------------------------------------------
# answers: scalars and structures


def split_top(toks: list[Tok], sep: str) -> list[list[Tok]]:
    """Split at `sep` tokens outside any bracket. Linear."""
    parts, depth, start = [], 0, 0
    for k, t in enumerate(toks):
        if t.kind in ("op", "rel", "begin", "end"):
            if t.kind == "begin" or t.kind == "op" and t.text in ("(", "[", "{", "{{"):
                depth += 1
            elif t.kind == "end" or t.kind == "op" and t.text in (")", "]", "}", "}}"):
                depth -= 1
            elif depth == 0 and t.text == sep:
                parts.append(toks[start:k])
                start = k + 1
    parts.append(toks[start:])
    return parts


def _closes_at_end(toks: list[Tok]) -> bool:
    """toks[0] opens a bracket whose match is the last token."""
    depth = 0
    for k, t in enumerate(toks):
        if t.kind == "op" and t.text in ("(", "[", "{", "{{"):
            depth += 1
        elif t.kind == "op" and t.text in (")", "]", "}", "}}"):
            depth -= 1
            if depth == 0:
                return k == len(toks) - 1
    return False


def _assignment(toks: list[Tok]) -> tuple[str, list[Tok]] | None:
    """`x = 3`, `x_1 = 3`, `f(x) = ...`, `(x, y) = ...` -> (name, right-hand side); None otherwise."""
    parts = split_top(toks, "=")
    eqs = [k for k, t in enumerate(toks) if t.kind == "rel"]
    if len(parts) != 2 or len(eqs) != 1 or not parts[1]:
        return None
    lhs = parts[0]
    if len(lhs) == 1 and lhs[0].kind == "word" and len(lhs[0].text) == 1:
        return lhs[0].text, parts[1]
    if len(lhs) == 3 and lhs[0].kind == "word" and len(lhs[0].text) == 1 and lhs[1].text == "_":
        return lhs[0].text + "_" + lhs[2].text, parts[1]
    if len(lhs) == 5 and lhs[1].text == "_" and lhs[2].text == "{" and lhs[4].text == "}":
        return lhs[0].text + "_" + lhs[3].text, parts[1]
    if len(lhs) == 4 and lhs[0].kind == "word" and lhs[1].text == "(" and lhs[2].kind == "word" and lhs[3].text == ")":
        return lhs[0].text + "()", parts[1]
    if lhs and lhs[0].text == "(" and lhs[-1].text == ")" and all(
        t.kind == "word" and len(t.text) == 1 or t.text == "," for t in lhs[1:-1]
    ):
        return "()", parts[1]
    return None


def _strip_var_eq(toks: list[Tok]) -> list[Tok]:
    got = _assignment(toks)
    return got[1] if got else toks


def _scalar(toks: list[Tok]):
    if toks and toks[-1].text == "%" and toks[-1].kind == "op":
        return ("pct", parse_scalar(toks[:-1]))
    return ("expr", parse_scalar(toks))


_INF = ("expr", ("const", "inf"))
_NEG_INF = ("expr", ("neg", ("const", "inf")))
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}


def _single_var(toks: list[Tok]) -> bool:
    return len(toks) == 1 and toks[0].kind == "word" and len(toks[0].text) == 1


def _inequality(toks: list[Tok]):
    """`x > 3`, `x \\ge 3`, `3 < x \\le 5` -> an interval value; None if not of that shape."""
    rels = [k for k, t in enumerate(toks) if t.kind == "rel"]
    if not rels or any(toks[k].text not in _FLIP for k in rels) or len(rels) > 2:
        return None
    bounds = [0] + [k for r in rels for k in (r, r + 1)] + [len(toks)]
    terms = [toks[bounds[2 * m] : bounds[2 * m + 1]] for m in range(len(rels) + 1)]
    ops = [toks[k].text for k in rels]
    less = lambda op: op in ("<", "<=")  # noqa: E731
    if len(rels) == 1:
        lhs, rhs, op = terms[0], terms[1], ops[0]
        if not _single_var(lhs):
            if not _single_var(rhs):
                return None
            lhs, rhs, op = rhs, lhs, _FLIP[op]
        bound = _scalar(rhs)
        if less(op):
            return ("seq", "(", "]" if "=" in op else ")", [_NEG_INF, bound])
        return ("seq", "[" if "=" in op else "(", ")", [bound, _INF])
    if not _single_var(terms[1]) or less(ops[0]) != less(ops[1]):
        return None
    lo, hi = (terms[0], terms[2]) if less(ops[0]) else (terms[2], terms[0])
    lo_op, hi_op = (ops[0], ops[1]) if less(ops[0]) else (ops[1], ops[0])
    return ("seq", "[" if "=" in lo_op else "(", "]" if "=" in hi_op else ")", [_scalar(lo), _scalar(hi)])


_MATRIX_ENVS = {"matrix", "pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "smallmatrix", "array"}


class _Budget:
    """Counts recursive parse_answer calls so nested structures stay bounded."""

    def __init__(self):
        self.calls = 0

    def tick(self, depth: int):
        self.calls += 1
        if self.calls > 2 * MAX_NODES or depth > MAX_DEPTH:
            raise Refused("structure too large")


def parse_answer(toks: list[Tok], keep_eq: bool = False, words: bool = True, _b: _Budget | None = None, _d: int = 0):
    """Value of a normalised answer; raises ParseError when it is not math this parser understands. With
    `words` False a plain letter run is always a product of variables (the other answer is not text)."""
    b = _b or _Budget()
    b.tick(_d)
    sub = lambda ts, keep=False: parse_answer(ts, keep, words, b, _d + 1)  # noqa: E731
    while toks and toks[-1].kind == "op" and toks[-1].text == ".":
        toks = toks[:-1]
    if not toks:
        raise ParseError("empty")
    first, last = toks[0], toks[-1]
    if first.kind == "begin" and first.text in _MATRIX_ENVS and last.kind == "end" and last.text == first.text:
        rows = [r for r in split_top(toks[1:-1], "\\\\") if r]
        return ("matrix", [[sub(c) for c in split_top(r, "&")] for r in rows])
    if len(toks) >= 3 and _single_var(toks[:1]) and toks[1].kind == "rel" and toks[1].text == "in":
        return sub(toks[2:])  # x \in (-1, 1)
    parts = split_top(toks, "cup")
    if len(parts) > 1:
        return ("set", [sub(p) for p in parts])
    if len(toks) == 1 and first.kind == "cmd" and first.text == "mathbbR":
        return ("seq", "(", ")", [_NEG_INF, _INF])
    if len(toks) == 1 and first.kind == "cmd" and first.text == "emptyset":
        return ("set", [])
    if first.text == "{{" and last.text == "}}" and _closes_at_end(toks):
        inner = toks[1:-1]
        return ("set", [sub(_strip_var_eq(p)) for p in split_top(inner, ",")] if inner else [])
    items = split_top(toks, ",")
    if len(items) > 1:
        if any(not it for it in items):
            raise ParseError("empty item")
        assigned = [_assignment(it) for it in items]
        names = [a[0] for a in assigned if a]
        if all(assigned) and len(set(names)) == len(names) and all(n[0].isalpha() for n in names):
            # x = 4, y = 3: the ordered pair (x, y), variables in alphabetical order
            ordered = sorted(zip(names, [a[1] for a in assigned]), key=lambda p: p[0])
            return ("seq", "(", ")", [sub(rhs) for _, rhs in ordered])
        return ("set", [sub(_strip_var_eq(it)) for it in items])
    if first.text in ("(", "[") and last.text in (")", "]") and _closes_at_end(toks):
        inner = split_top(toks[1:-1], ",")
        if len(inner) > 1:
            return ("seq", first.text, last.text, [sub(_strip_var_eq(it)) for it in inner])
    pm = [k for k, t in enumerate(toks) if t.kind == "cmd" and t.text in ("pm", "mp")]
    if len(pm) == 1:  # a \pm b -> {a + b, a - b}
        k = pm[0]
        plus, minus = Tok("op", "+"), Tok("op", "-")
        return ("set", [sub(toks[:k] + [plus] + toks[k + 1 :]), sub(toks[:k] + [minus] + toks[k + 1 :])])
    text = as_text(toks)
    if text is not None and (any(t.kind == "text" for t in toks) or words and not is_letter_product(toks) and (
        len(toks) > 1 or len(toks[0].text) > 1
    ) and not any(t.kind == "word" and t.text.lower().startswith(_WORD_NAMES) for t in toks)):
        return ("text", text)
    rels = [t for t in toks if t.kind == "rel"]
    if rels:
        if all(r.text == "=" for r in rels):
            stripped = toks if keep_eq else _strip_var_eq(toks)
            if stripped is not toks:
                return sub(stripped)
            sides = split_top(toks, "=")
            if len(sides) == 2:
                return ("eq", parse_scalar(sides[0]), parse_scalar(sides[1]))
            return sub(sides[-1])  # a = b = 5: the last value
        ineq = _inequality(toks)
        if ineq is not None:
            return ineq
        if rels[-1].text in ("~", "="):
            k = max(k for k, t in enumerate(toks) if t.kind == "rel")
            return sub(toks[k + 1 :])
        raise ParseError("relation")
    return _scalar(toks)


def is_list(toks: list[Tok]) -> bool:
    """A top-level comma list (`1, 100`), as opposed to one number or a bracketed structure."""
    return len(split_top(toks, ",")) > 1
