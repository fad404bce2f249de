"""Are two math answers equivalent?

Layers, cheapest first, each deciding what it can:
1. exact string after `normalize` (unicode, TeX decoration, units, `x =` stripped);
2. the fast path of `mathparse`: both answers parse into value trees (numbers, expressions, intervals,
   tuples, sets, matrices, equations) and are compared exactly over the rationals, else numerically at a
   few fixed random points (complex arithmetic, so roots of negatives and `i` work);
3. sympy, only for what the fast path cannot decide, in a persistent worker process with a per-task
   timeout; a task that runs over is killed with its worker (see `sympy_pool`).
Results are cached per (gold, predicted) pair. Inputs longer than `max_answer_chars` are not equivalent.
"""

from __future__ import annotations

import cmath
import math
import random
from collections import OrderedDict
from fractions import Fraction
from threading import Lock

from backends.rewards.mathparse import MAX_BITS, Inconclusive, ParseError, compact, normalize, parse_answer

MAX_ANSWER_CHARS = 1000
MAX_SET_ITEMS = 64
_CACHE_SIZE = 200_000
_cache: OrderedDict = OrderedDict()
_cache_lock = Lock()
STATS = {"exact_string": 0, "fast": 0, "sympy": 0, "sympy_timeout": 0, "cache_hit": 0}


# ----------------------------------------------------------------------------------------------------------
# evaluation of expression trees


def _check_size(q: Fraction) -> Fraction:
    if q.numerator.bit_length() > MAX_BITS or q.denominator.bit_length() > MAX_BITS:
        raise Inconclusive("too large")
    return q


def _int_root(n: int, k: int) -> int | None:
    if n < 0:
        return None
    r = round(n ** (1.0 / k)) if n.bit_length() < 1000 else None
    if r is None:
        return None
    for c in (r - 1, r, r + 1):
        if c >= 0 and c**k == n:
            return c
    return None


def exact(node) -> Fraction | None:
    """The rational value of a variable-free tree, or None when it is irrational or symbolic."""
    op = node[0]
    if op == "num":
        return _check_size(node[1])
    if op == "neg":
        v = exact(node[1])
        return None if v is None else -v
    if op in ("add", "mul", "div"):
        a = exact(node[1])
        if a is None:
            return None
        b = exact(node[2])
        if b is None:
            return None
        if op == "add":
            return _check_size(a + b)
        if op == "mul":
            return _check_size(a * b)
        if b == 0:
            raise Inconclusive("division by zero")
        return _check_size(a / b)
    if op == "pow":
        base = exact(node[1])
        if base is None:
            return None
        e = exact(node[2])
        if e is None:
            return None
        return _rational_pow(base, e)
    if op == "root":
        n = exact(node[1])
        x = exact(node[2])
        if n is None or x is None or n.denominator != 1 or n <= 0:
            return None
        return _rational_pow(x, 1 / n)
    if op == "fact":
        n = exact(node[1])
        if n is None or n.denominator != 1 or n < 0:
            return None
        if n > 2000:
            raise Inconclusive("factorial too large")
        return Fraction(math.factorial(int(n)))
    if op == "binom":
        n, k = exact(node[1]), exact(node[2])
        if n is None or k is None or n.denominator != 1 or k.denominator != 1 or n > 5000:
            return None
        return Fraction(math.comb(int(n), int(k))) if n >= 0 and k >= 0 else None
    if op == "fn" and node[1] in ("abs", "floor", "ceil"):
        v = exact(node[2])
        if v is None:
            return None
        return abs(v) if node[1] == "abs" else Fraction(math.floor(v) if node[1] == "floor" else math.ceil(v))
    return None


def _rational_pow(base: Fraction, e: Fraction) -> Fraction | None:
    if e.denominator == 1:
        k = int(e)
        if base == 0:
            if k < 0:
                raise Inconclusive("0 to a negative power")
            return Fraction(1) if k == 0 else Fraction(0)
        if abs(base) == 1:
            return base ** k
        bits = max(base.numerator.bit_length(), base.denominator.bit_length())
        if abs(k) > MAX_BITS or bits * abs(k) > MAX_BITS:
            raise Inconclusive("power too large")
        return base**k
    if e.denominator > 64 or base < 0:
        return None
    p, q = e.numerator, e.denominator
    num, den = _int_root(base.numerator, q), _int_root(base.denominator, q)
    if num is None or den is None:
        return None  # irrational: decided numerically
    return _rational_pow(Fraction(num, den), Fraction(p))


_FN = {
    "sin": cmath.sin, "cos": cmath.cos, "tan": cmath.tan, "cot": lambda z: 1 / cmath.tan(z),
    "sec": lambda z: 1 / cmath.cos(z), "csc": lambda z: 1 / cmath.sin(z), "arcsin": cmath.asin,
    "arccos": cmath.acos, "arctan": cmath.atan, "ln": cmath.log, "log": cmath.log, "exp": cmath.exp,
    "sqrt": cmath.sqrt, "abs": abs,
    "floor": lambda z: complex(math.floor(z.real)) if z.imag == 0 else _nan(),
    "ceil": lambda z: complex(math.ceil(z.real)) if z.imag == 0 else _nan(),
}
_CONST = {"pi": complex(math.pi), "e": complex(math.e), "i": 1j, "inf": complex(math.inf)}


def _nan():
    raise Inconclusive("not real")


def approx(node, env: dict[str, complex]) -> complex:
    """Numeric value of a tree at a point (complex arithmetic); raises Inconclusive on overflow or domain errors."""
    try:
        return _approx(node, env)
    except (OverflowError, ZeroDivisionError, ValueError, TypeError) as e:
        raise Inconclusive(str(e)) from None


def _approx(node, env):
    op = node[0]
    if op == "num":
        return complex(float(node[1]))
    if op == "var":
        return env[node[1]]
    if op == "const":
        return _CONST[node[1]]
    if op == "neg":
        return -_approx(node[1], env)
    if op == "add":
        return _approx(node[1], env) + _approx(node[2], env)
    if op == "mul":
        return _approx(node[1], env) * _approx(node[2], env)
    if op == "div":
        return _approx(node[1], env) / _approx(node[2], env)
    if op == "pow":
        b, e = _approx(node[1], env), _approx(node[2], env)
        if abs(e) > 1e6 and abs(b) != 1:
            raise Inconclusive("huge power")
        if b.imag == 0 and e.imag == 0 and b.real > 0:
            return complex(b.real**e.real)
        if b.imag == 0 and e.imag == 0 and e.real == int(e.real):
            return complex(b.real ** int(e.real))
        if b.imag == 0:
            b = complex(b.real, 0.0)
        return b**e
    if op == "root":
        n, x = _approx(node[1], env), _approx(node[2], env)
        if x.imag == 0 and n.imag == 0 and x.real < 0 and n.real == int(n.real) and int(n.real) % 2 == 1:
            return complex(-((-x.real) ** (1 / n.real)))  # real odd root of a negative number
        if x.imag == 0 and x.real >= 0 and n.imag == 0:
            return complex(x.real ** (1 / n.real))
        if x.imag == 0:
            x = complex(x.real, 0.0)  # -0.0j would pick the other side of the branch cut
        return x ** (1 / n)
    if op == "fact":
        v = _approx(node[1], env)
        if v.imag != 0 or v.real > 170:
            raise Inconclusive("factorial")
        return complex(math.gamma(v.real + 1))
    if op == "binom":
        n, k = _approx(node[1], env), _approx(node[2], env)
        if n.imag or k.imag or n.real > 1000:
            raise Inconclusive("binom")
        return complex(math.gamma(n.real + 1) / (math.gamma(k.real + 1) * math.gamma(n.real - k.real + 1)))
    if op == "log":
        return cmath.log(_approx(node[2], env)) / cmath.log(_approx(node[1], env))
    if op == "fn":
        return complex(_FN[node[1]](_approx(node[2], env)))
    raise Inconclusive(f"unknown node {op}")


def _free_vars(node, out: set) -> set:
    if node[0] == "var":
        out.add(node[1])
    else:
        for child in node[1:]:
            if isinstance(child, tuple):
                _free_vars(child, out)
    return out


def _close(a: complex, b: complex) -> bool | None:
    """True: equal to ~1e-9 relative; False: clearly different; None: in between, or not finite."""
    if cmath.isinf(a) or cmath.isinf(b):
        if cmath.isinf(a) and cmath.isinf(b):
            return (a.real > 0) == (b.real > 0) and (a.imag > 0) == (b.imag > 0)
        return False
    if cmath.isnan(a) or cmath.isnan(b):
        return None
    diff, scale = abs(a - b), max(abs(a), abs(b))
    if diff <= 1e-9 * scale + 1e-12:
        return True
    if diff > 1e-6 * scale + 1e-9:
        return False
    return None


def _points(names: list[str], n: int = 4) -> list[dict[str, complex]]:
    rng = random.Random(",".join(names))
    return [{v: complex(rng.uniform(0.3, 2.7)) for v in names} for _ in range(n)]


def same_expr(a, b) -> bool | None:
    """Equivalence of two scalar trees: exactly when both are rational, else numerically."""
    try:
        x, y = exact(a), exact(b)
        if x is not None and y is not None:
            return x == y
        names = sorted(_free_vars(a, set()) | _free_vars(b, set()))
        if not names:
            return _close(approx(a, {}), approx(b, {}))
        votes = []
        for env in _points(names):
            try:
                votes.append(_close(approx(a, env), approx(b, env)))
            except Inconclusive:
                continue
        if not votes or None in votes:
            return None
        return all(votes)
    except Inconclusive:
        return None


def _proportional(a, b) -> bool | None:
    """Equations lhs1 = rhs1 and lhs2 = rhs2: is (lhs1 - rhs1) a constant non-zero multiple of (lhs2 - rhs2)?"""
    d1, d2 = ("add", a[1], ("neg", a[2])), ("add", b[1], ("neg", b[2]))
    names = sorted(_free_vars(d1, set()) | _free_vars(d2, set()))
    if not names:
        return None
    ratios = []
    try:
        for env in _points(names, 5):
            u, v = approx(d1, env), approx(d2, env)
            if abs(v) < 1e-12:
                if abs(u) < 1e-12:
                    continue
                return False
            ratios.append(u / v)
    except Inconclusive:
        return None
    if not ratios or abs(ratios[0]) < 1e-12:
        return None
    return all(_close(r, ratios[0]) for r in ratios)


def compare(a, b) -> bool | None:
    """Equivalence of two value trees from `parse_answer`; None when the fast path cannot tell."""
    ka, kb = a[0], b[0]
    if ka in ("expr", "pct") and kb in ("expr", "pct"):
        if ka == kb:
            return same_expr(a[1], b[1])
        # 50% == 50 == 0.5: a percentage matches its number or its fraction
        pct, other = (a[1], b[1]) if ka == "pct" else (b[1], a[1])
        first = same_expr(pct, other)
        if first:
            return True
        second = same_expr(("div", pct, ("num", Fraction(100))), other)
        if second:
            return True
        return None if (first is None or second is None) else False
    if ka == "set" and len(a[1]) == 1 and kb != "set":
        return compare(a[1][0], b)
    if kb == "set" and len(b[1]) == 1 and ka != "set":
        return compare(a, b[1][0])
    if ka != kb:
        return False
    if ka == "seq":
        if a[1] != b[1] or a[2] != b[2] or len(a[3]) != len(b[3]):
            return False
        return _all_pairs(a[3], b[3])
    if ka == "matrix":
        if len(a[1]) != len(b[1]) or any(len(r1) != len(r2) for r1, r2 in zip(a[1], b[1])):
            return False
        return _all_pairs([c for r in a[1] for c in r], [c for r in b[1] for c in r])
    if ka == "set":
        return _same_multiset(a[1], b[1])
    if ka == "eq":
        same = _all_pairs([("expr", a[1]), ("expr", a[2])], [("expr", b[1]), ("expr", b[2])])
        if same:
            return True
        return _proportional(a, b)
    return None


def _all_pairs(xs, ys) -> bool | None:
    unknown = False
    for x, y in zip(xs, ys):
        r = compare(x, y)
        if r is False:
            return False
        unknown |= r is None
    return None if unknown else True


def _same_multiset(xs, ys) -> bool | None:
    if len(xs) != len(ys):
        return False
    if len(xs) > MAX_SET_ITEMS:
        return None
    unused = list(range(len(ys)))
    for x in xs:
        for j in unused:
            if compare(x, ys[j]):
                unused.remove(j)
                break
        else:
            return False
    return True


# ----------------------------------------------------------------------------------------------------------
# the entry point


def equivalent(gold: str, pred: str, timeout_s: float = 1.0, max_answer_chars: int = MAX_ANSWER_CHARS, use_sympy: bool = True) -> bool:
    """Is `pred` the same answer as `gold`? Bounded: long inputs are rejected, sympy runs under a timeout."""
    if len(gold) > max_answer_chars or len(pred) > max_answer_chars:
        return False
    key = (gold, pred, use_sympy)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            STATS["cache_hit"] += 1
            return hit
    result = _decide(gold, pred, timeout_s, use_sympy)
    with _cache_lock:
        _cache[key] = result
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _decide(gold: str, pred: str, timeout_s: float, use_sympy: bool) -> bool:
    g, p = normalize(gold), normalize(pred)
    if not g or not p:
        return False
    if compact(g) == compact(p):
        STATS["exact_string"] += 1
        return True
    if g.isalpha() and p.isalpha() and len(g) > 1 and g.lower() == p.lower():
        return True  # words: Monday, yes, odd
    try:
        a, b = parse_answer(g), parse_answer(p)
        if (a[0] == "eq") != (b[0] == "eq"):  # y = 3 - x against x + y = 3: keep the variable of the other side
            a, b = (a, parse_answer(p, keep_eq=True)) if a[0] == "eq" else (parse_answer(g, keep_eq=True), b)
        verdict = compare(a, b)
    except (ParseError, Inconclusive, RecursionError):
        verdict = None
    if verdict is not None:
        STATS["fast"] += 1
        return verdict
    if not use_sympy:
        return False
    from backends.rewards.sympy_pool import sympy_equivalent

    STATS["sympy"] += 1
    got = sympy_equivalent(g, p, timeout_s)
    if got is None:
        STATS["sympy_timeout"] += 1
    return bool(got)
