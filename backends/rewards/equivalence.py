"""Are two math answers equivalent? One bounded decision, documented in docs/rewards.md.

Layers, cheapest first, each deciding what it can:
1. the same tokens after `mathparse.normalize` (unicode, TeX decoration, units after a number, `$`, strict
   thousands separators removed);
2. text answers (`\\text{Monday}`, `yes`, `(C)`): the same words, case-insensitively;
3. value trees from `mathparse.parse_answer`, compared exactly over the rationals, else numerically at 200
   bits (about 60 digits) at fixed pseudo-random points: values must agree to 45 significant digits, and
   then again to 300 at 1100 bits, so a decimal approximation of an irrational answer never passes;
4. sympy, only where 3 is not exact: a long decimal against a closed form that agrees with it to 45 digits
   (a 50-digit decimal for pi), or values the numbers cannot separate (cancellation). Sympy gets the trees (never text), in a worker
   process under the remaining time budget (`sympy_pool`).

Bounded: inputs longer than `max_answer_chars` are not equivalent; tokenizing and parsing are linear with
depth and size limits; numbers, powers and factorials are bounded before they are computed (`Refused`:
not equivalent); the whole decision, sympy included, ends by `timeout_s`. Results are cached.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import OrderedDict
from fractions import Fraction
from threading import Lock

import mpmath

from backends.rewards.extract import MAX_ANSWER_CHARS
from backends.rewards.mathparse import (
    ParseError, Refused, as_text, is_letter_product, is_list, normalize, parse_answer, render,
)

MAX_SET_ITEMS = 64
MAX_BITS = 12_000  # an exact rational bigger than this is refused, not computed
MAX_POWER = 10_000  # |exponent| of a numeric power beyond this is refused (unless the base is 0 or +-1)
MAX_PLAIN_RATIONAL = 10**12  # a rational of larger height equal to a closed form to 45 digits is checked by sympy
MAX_FN_ARG = 1e6  # |argument| of sin, exp, ... beyond this is refused (range reduction would be slow)
MAX_ROOT_INDEX = 10_000  # n of an n-th root beyond this is refused
_CACHE_SIZE = 200_000
_cache: OrderedDict = OrderedDict()
_cache_lock = Lock()
STATS = {"same_tokens": 0, "text": 0, "fast": 0, "sympy": 0, "sympy_undecided": 0, "refused": 0, "error": 0, "cache_hit": 0}

_MP = mpmath.MPContext()
_MP.prec = 200
_EQUAL_REL = _MP.mpf(10) ** -45  # agree to 45 significant digits: equal
_UNSURE_REL = _MP.mpf(10) ** -25  # between the two: the numbers cannot tell (cancellation): ask sympy


class Inconclusive(ArithmeticError):
    """The fast path cannot decide this comparison (not a bound: sympy may)."""


class _Ctx:
    """One decision: its deadline, whether sympy may be asked, and per-node memos."""

    def __init__(self, deadline: float, use_sympy: bool):
        self.deadline = deadline
        self.use_sympy = use_sympy
        self.memo: dict = {}

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise Refused("out of time")


# ----------------------------------------------------------------------------------------------------------
# exact rational values


def _check_size(q: Fraction) -> Fraction:
    if q.numerator.bit_length() > MAX_BITS or q.denominator.bit_length() > MAX_BITS:
        raise Refused("number too large")
    return q


def _int_root(n: int, k: int) -> int | None:
    if n < 0 or n.bit_length() > 4000:
        return None
    r = round(n ** (1.0 / k)) if n.bit_length() < 1000 else int(_MP.nint(_MP.root(n, k)))
    for c in (r - 1, r, r + 1):
        if c >= 0 and c**k == n:
            return c
    return None


def _rational_pow(base: Fraction, e: Fraction) -> Fraction | None:
    if e.denominator == 1:
        k = int(e)
        if base == 0:
            if k < 0:
                raise Inconclusive("0 to a negative power")
            return Fraction(1) if k == 0 else Fraction(0)
        if abs(base) == 1:
            return base ** (k % 2) if base < 0 else Fraction(1)
        bits = max(base.numerator.bit_length(), base.denominator.bit_length())
        if abs(k) > MAX_BITS or (bits - 1) * abs(k) > MAX_BITS:
            raise Refused("power too large")
        return _check_size(base**k)
    if e.denominator > 64:
        return None
    p, q = e.numerator, e.denominator
    sign = 1
    if base < 0:
        if q % 2 == 0:
            return None
        sign, base = -1, -base  # a real odd root of a negative number
    num, den = _int_root(base.numerator, q), _int_root(base.denominator, q)
    if num is None or den is None:
        return None  # irrational
    return _rational_pow(Fraction(sign * num, den), Fraction(p))


def exact(node, ctx: _Ctx) -> Fraction | None:
    """The rational value of a variable-free tree, or None when it is irrational, symbolic or unknown here."""
    key = ("x", id(node))
    if key in ctx.memo:
        return ctx.memo[key]
    v = _exact(node, ctx)
    ctx.memo[key] = v
    return v


def _exact(node, ctx):
    op = node[0]
    if op == "num":
        return _check_size(node[1])
    if op == "neg":
        v = exact(node[1], ctx)
        return None if v is None else -v
    if op in ("add", "mul", "div"):
        a = exact(node[1], ctx)
        b = exact(node[2], ctx)
        if a is None or b is None:
            return None
        if op == "add":
            return _check_size(a + b)
        if op == "mul":
            return _check_size(a * b)
        if b == 0:
            raise Inconclusive("division by zero")
        return _check_size(a / b)
    if op == "pow":
        base, e = exact(node[1], ctx), exact(node[2], ctx)
        return None if base is None or e is None else _rational_pow(base, e)
    if op == "root":
        n, x = exact(node[1], ctx), exact(node[2], ctx)
        if n is None or x is None or n.denominator != 1 or n <= 0 or n > 64:
            return None
        return _rational_pow(x, 1 / n)
    if op == "fact":
        n = exact(node[1], ctx)
        if n is None or n.denominator != 1 or n < 0:
            return None
        if n > 2000:
            raise Refused("factorial too large")
        return Fraction(math.factorial(int(n)))
    if op == "binom":
        n, k = exact(node[1], ctx), exact(node[2], ctx)
        if n is None or k is None or n.denominator != 1 or k.denominator != 1:
            return None
        if n > 5000:
            raise Refused("binomial too large")
        return Fraction(math.comb(int(n), int(k))) if n >= 0 and k >= 0 else None
    if op == "log":
        base, x = exact(node[1], ctx), exact(node[2], ctx)
        if base is None or x is None or base <= 0 or base == 1 or x <= 0:
            return None
        k = round(math.log(float(x)) / math.log(float(base))) if abs(math.log(float(x))) < 1e4 else None
        if k is not None and abs(k) <= 64 and _rational_pow(base, Fraction(k)) == x:
            return Fraction(k)  # log_2 8 = 3
        return None
    if op == "fn" and node[1] in ("abs", "floor", "ceil"):
        v = exact(node[2], ctx)
        if v is None:
            return None
        return abs(v) if node[1] == "abs" else Fraction(math.floor(v) if node[1] == "floor" else math.ceil(v))
    return None


# ----------------------------------------------------------------------------------------------------------
# numeric values (mpmath, complex where needed)

_FN_NAMES = {
    "sin": "sin", "cos": "cos", "tan": "tan", "cot": "cot", "sec": "sec", "csc": "csc", "arcsin": "asin",
    "arccos": "acos", "arctan": "atan", "ln": "ln", "log": "ln", "exp": "exp", "sinh": "sinh", "cosh": "cosh",
    "tanh": "tanh",
}
_FINE = mpmath.MPContext()  # the re-check of values that agree at _MP's precision
_FINE.prec = 1100  # about 330 digits
_FINE_EQUAL_REL = _FINE.mpf(10) ** -300


def _is_complex(z) -> bool:
    return hasattr(z, "imag") and not hasattr(z, "man")


def _real(z):
    if _is_complex(z):
        if z.imag != 0:
            raise Inconclusive("not real")
        return z.real
    return z


def approx(node, env: dict, ctx: _Ctx, mp=_MP):
    """Value of a tree at a point in the mpmath context `mp`; Inconclusive on a domain error, Refused beyond
    the bounds."""
    try:
        return _approx(node, env, mp)
    except (ZeroDivisionError, ValueError, TypeError, OverflowError) as e:
        raise Inconclusive(str(e)) from None


def _approx(node, env, mp):
    op = node[0]
    if op == "num":
        return mp.mpf(node[1].numerator) / node[1].denominator
    if op == "var":
        return env[node[1]]
    if op == "const":
        return {"pi": mp.pi, "e": mp.e, "i": mp.mpc(0, 1), "inf": mp.inf}[node[1]]
    if op == "neg":
        return -_approx(node[1], env, mp)
    if op == "add":
        return _approx(node[1], env, mp) + _approx(node[2], env, mp)
    if op == "mul":
        return _approx(node[1], env, mp) * _approx(node[2], env, mp)
    if op == "div":
        b = _approx(node[2], env, mp)
        if b == 0:
            raise Inconclusive("division by zero")
        return _approx(node[1], env, mp) / b
    if op == "pow":
        b, e = _approx(node[1], env, mp), _approx(node[2], env, mp)
        if b == 0 and mp.re(e) <= 0:
            raise Inconclusive("0 to a non-positive power")
        if abs(e) > MAX_POWER:  # mpmath would turn a huge integral exponent into a Python int (gigabytes)
            if b == 0 or b == 1:
                return b
            raise Refused("power too large")
        return mp.power(b, e)
    if op == "root":
        n, x = _approx(node[1], env, mp), _approx(node[2], env, mp)
        if n == 0:
            raise Inconclusive("0th root")
        if abs(n) > MAX_ROOT_INDEX:  # checked before any integer test of it
            raise Refused("root index too large")
        if not _is_complex(x) and not _is_complex(n) and x < 0 and mp.isint(n) and int(n) % 2:
            return -mp.root(-x, int(n))  # a real odd root of a negative number
        return mp.power(x, 1 / n)
    if op == "fact":
        v = _real(_approx(node[1], env, mp))
        if abs(v) > 2000:  # before the integer test: int() of (10^400 pi)^2000 alone takes seconds
            raise Refused("factorial")
        if v < 0 and mp.isint(v):
            raise Inconclusive("factorial of a negative integer")
        return mp.gamma(v + 1)
    if op == "binom":
        n, k = _real(_approx(node[1], env, mp)), _real(_approx(node[2], env, mp))
        if abs(n) > 5000 or abs(k) > 5000:
            raise Refused("binomial")
        return mp.binomial(n, k)
    if op == "log":
        base, x = _approx(node[1], env, mp), _approx(node[2], env, mp)
        lb = mp.ln(base)
        if lb == 0:
            raise Inconclusive("log base 1")
        return mp.ln(x) / lb
    if op == "fn":
        name, arg = node[1], _approx(node[2], env, mp)
        if name == "abs":
            return abs(arg)
        if name in ("floor", "ceil"):
            v = _real(arg)
            return mp.floor(v) if name == "floor" else mp.ceil(v)
        if abs(arg) > MAX_FN_ARG and name not in ("ln", "log", "arctan"):
            raise Refused("function argument too large")
        return getattr(mp, _FN_NAMES[name])(arg)
    raise Inconclusive(f"unknown node {op}")


def _free_vars(node, out: set) -> set:
    if node[0] == "var":
        out.add(node[1])
    elif node[0] not in ("num", "const"):
        for child in node[1:]:
            if isinstance(child, tuple):
                _free_vars(child, out)
    return out


def _has_inf(node) -> bool:
    if node[0] == "const":
        return node[1] == "inf"
    return node[0] not in ("num", "var") and any(isinstance(c, tuple) and _has_inf(c) for c in node[1:])


def _close(a, b) -> bool | None:
    """True: equal to 45 significant digits; False: clearly different; None: the numbers cannot tell."""
    if _MP.isnan(a) or _MP.isnan(b):
        raise Inconclusive("nan")
    if _MP.isinf(a) or _MP.isinf(b):
        if not (_MP.isinf(a) and _MP.isinf(b)):
            return False
        return _MP.sign(_MP.re(a)) == _MP.sign(_MP.re(b)) and _MP.sign(_MP.im(a)) == _MP.sign(_MP.im(b))
    diff, scale = abs(a - b), max(abs(a), abs(b))
    if diff <= _EQUAL_REL * scale + _EQUAL_REL:
        return True
    if diff > _UNSURE_REL * scale + _UNSURE_REL:
        return False
    return None


_POINTS = random.SystemRandom()  # the operating system's randomness: nothing a policy sees or can predict


def _points(names: list[str], n: int = 3) -> list[dict]:
    """Random points at which expressions in `names` are compared, drawn afresh for every comparison: an answer
    built to vanish at fixed points (`5 + (x-p1)(x-p2)(x-p3)` against 5) cannot know where it is evaluated."""
    return [{v: _MP.mpf(_POINTS.uniform(0.3, 2.7)) for v in names} for _ in range(n)]


def _fine_close(a, b, env: dict, ctx: _Ctx) -> bool | None:
    """Values that agree to 45 digits, re-checked to 300 (`\\sqrt2 + 10^{-60}` is not `\\sqrt2`)."""
    fine_env = {k: _FINE.mpf(v) for k, v in env.items()}
    u, v = approx(a, fine_env, ctx, _FINE), approx(b, fine_env, ctx, _FINE)
    if _FINE.isinf(u) or _FINE.isinf(v):
        return True  # _close compared the signs
    diff, scale = abs(u - v), max(abs(u), abs(v))
    if diff <= _FINE_EQUAL_REL * (scale + 1):
        return True
    return False if diff > _FINE_EQUAL_REL * 10**50 * (scale + 1) else None  # clearly apart at 1100 bits


def same_expr(a, b, ctx: _Ctx) -> bool | None:
    """Equivalence of two scalar trees; None when only sympy can tell."""
    try:
        x, y = exact(a, ctx), exact(b, ctx)
        if x is not None and y is not None:
            return x == y
        names = sorted(_free_vars(a, set()) | _free_vars(b, set()))
        if not names:
            if _has_inf(a) != _has_inf(b):
                return False
            close = _close(approx(a, {}, ctx), approx(b, {}, ctx))
            if close is False:
                return False
            if close is None:
                return None
            r = x if x is not None else y
            if r is not None and max(abs(r.numerator), r.denominator) > MAX_PLAIN_RATIONAL:
                # a long decimal against a closed form that agrees to 45 digits: a 50-digit decimal for pi is
                # not pi. Only an exact check decides.
                return None
            # closed forms, or a closed form and a short rational (sin(pi/6) = 0.5, e^{i pi} = -1), that
            # agree to 45 digits: equal if they still agree to 300
            return _fine_close(a, b, {}, ctx)
        votes = []
        for env in _points(names):
            try:
                votes.append(_close(approx(a, env, ctx), approx(b, env, ctx)))
            except Inconclusive:
                continue
            if votes[-1] is False:
                return False
        if len(votes) < 2 or None in votes:
            return None
        return _fine_close(a, b, _points(names, 1)[0], ctx)
    except Inconclusive:
        return None


def _proportional(a, b, ctx: _Ctx) -> bool | None:
    """Equations lhs1 = rhs1 and lhs2 = rhs2: is (lhs1 - rhs1) a constant non-zero multiple of (lhs2 - rhs2)?"""
    d1, d2 = ("add", a[1], ("neg", a[2])), ("add", b[1], ("neg", b[2]))
    names = sorted(_free_vars(d1, set()) | _free_vars(d2, set()))
    if not names:
        return None
    ratios = []
    try:
        for env in _points(names, 4):
            u, v = approx(d1, env, ctx), approx(d2, env, ctx)
            if abs(v) < _EQUAL_REL:
                if abs(u) < _EQUAL_REL:
                    continue
                return False
            ratios.append(u / v)
    except Inconclusive:
        return None
    if not ratios or abs(ratios[0]) < _EQUAL_REL:
        return None
    return all(_close(r, ratios[0]) for r in ratios)


# ----------------------------------------------------------------------------------------------------------
# structures


def _scalar_verdict(a, b, ctx: _Ctx) -> bool:
    got = same_expr(a, b, ctx)
    if got is None:
        got = _ask_sympy(a, b, ctx)
    return got


def compare(a, b, ctx: _Ctx) -> bool:
    """Equivalence of two values from `parse_answer`."""
    ctx.check_time()
    ka, kb = a[0], b[0]
    if ka in ("expr", "pct") and kb in ("expr", "pct"):
        if ka == kb:
            return _scalar_verdict(a[1], b[1], ctx)
        # 50% == 50 == 0.5: a percentage matches its number or its fraction
        pct, other = (a[1], b[1]) if ka == "pct" else (b[1], a[1])
        return _scalar_verdict(pct, other, ctx) or _scalar_verdict(("div", pct, ("num", Fraction(100))), other, ctx)
    if ka == "set" and len(a[1]) == 1 and kb != "set":
        return compare(a[1][0], b, ctx)
    if kb == "set" and len(b[1]) == 1 and ka != "set":
        return compare(a, b[1][0], ctx)
    if ka != kb:
        return False
    if ka == "text":
        return a[1] == b[1]
    if ka == "seq":
        return a[1] == b[1] and a[2] == b[2] and len(a[3]) == len(b[3]) and _all_pairs(a[3], b[3], ctx)
    if ka == "matrix":
        if len(a[1]) != len(b[1]) or any(len(r1) != len(r2) for r1, r2 in zip(a[1], b[1])):
            return False
        return _all_pairs([c for r in a[1] for c in r], [c for r in b[1] for c in r], ctx)
    if ka == "set":
        return _same_multiset(a[1], b[1], ctx)
    if ka == "eq":
        sides = _all_pairs([("expr", a[1]), ("expr", a[2])], [("expr", b[1]), ("expr", b[2])], ctx)
        return sides or bool(_proportional(a, b, ctx))
    return False


def _all_pairs(xs, ys, ctx) -> bool:
    return all(compare(x, y, ctx) for x, y in zip(xs, ys))


def _same_multiset(xs, ys, ctx) -> bool:
    if len(xs) != len(ys):
        return False
    if len(xs) > MAX_SET_ITEMS:
        raise Refused("set too large")
    unused = list(range(len(ys)))
    for x in xs:
        for j in unused:
            if compare(x, ys[j], ctx):
                unused.remove(j)
                break
        else:
            return False
    return True


# ----------------------------------------------------------------------------------------------------------
# sympy, for what the fast path cannot decide exactly


def tree_to_json(node):
    """A tree as JSON-ready lists: what the sympy worker receives (numbers as integer pairs, never text)."""
    if node[0] == "num":
        return ["num", node[1].numerator, node[1].denominator]
    return [node[0]] + [tree_to_json(c) if isinstance(c, tuple) else c for c in node[1:]]


def _ask_sympy(a, b, ctx: _Ctx) -> bool:
    if not ctx.use_sympy:
        return False
    from backends.rewards.sympy_pool import sympy_equivalent

    STATS["sympy"] += 1
    got = sympy_equivalent(tree_to_json(a), tree_to_json(b), ctx.deadline - time.monotonic())
    if got is None:
        STATS["sympy_undecided"] += 1
    return bool(got)


# ----------------------------------------------------------------------------------------------------------
# the entry point


def equivalent(
    gold: str, pred: str, timeout_s: float = 1.0, max_answer_chars: int = MAX_ANSWER_CHARS, use_sympy: bool = True
) -> bool:
    """Is `pred` the same answer as `gold`? Returns within about `timeout_s`, whatever the input."""
    if len(gold) > max_answer_chars or len(pred) > max_answer_chars:
        return False
    key = (gold, pred, use_sympy)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            STATS["cache_hit"] += 1
            return hit
    try:
        result = decide(gold, pred, _Ctx(time.monotonic() + timeout_s, use_sympy))
    except Exception as e:  # noqa: BLE001  (a bug here must cost one reward, not the training run)
        STATS["error"] += 1
        if STATS["error"] <= 3:
            logging.getLogger(__name__).warning("math verifier error on %r vs %r: %r (scored 0)", gold[:80], pred[:80], e)
        result = False
    with _cache_lock:
        _cache[key] = result
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def decide(gold: str, pred: str, ctx: _Ctx) -> bool:
    if gold.strip() == pred.strip():
        return bool(gold.strip())
    try:
        g = normalize(gold)
        p = normalize(pred, thousands=not is_list(g))  # `1,100` is a list when the gold is one
        if not g or not p:
            return False
        if render(g) == render(p):
            STATS["same_tokens"] += 1
            return True
        tg, tp = as_text(g), as_text(p)
        if tg is not None and tp is not None and (len(tg) == len(tp) == 1 or not (is_letter_product(g) and is_letter_product(p))):
            # words, and single letters (choices: `(B)`, `b`), compare as text; `xy` against `yx` is a product
            STATS["text"] += 1
            return tg == tp
        words = (tg is None) == (tp is None)  # `ab` against `b \cdot a`: letters are variables
        a, b = parse_answer(g, words=words), parse_answer(p, words=words)
        if (a[0] == "eq") != (b[0] == "eq"):  # y = 3 - x against x + y = 3: keep the variable of the other side
            a, b = (a, parse_answer(p, True, words)) if a[0] == "eq" else (parse_answer(g, True, words), b)
        verdict = compare(a, b, ctx)
    except ParseError:
        return False
    except (Refused, Inconclusive, RecursionError):
        STATS["refused"] += 1
        return False
    STATS["fast"] += 1
    return verdict
