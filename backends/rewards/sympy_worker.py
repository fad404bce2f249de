"""Standalone worker: reads JSON lines {"a": tree, "b": tree} on stdin, answers {"eq": true|false|null}.

The trees are `mathparse` trees as JSON lists (`equivalence.tree_to_json`): ["num", p, q], ["var", name],
["const", "pi"], ["add", a, b], ... The worker builds sympy objects from them node by node (`Integer`,
`Rational`, `Symbol`, `Add`, `Mul`, `Pow`, ...); it never parses text, so nothing it receives can run as
code. Sizes are checked again here (the parent checks them first). Run by `sympy_pool` as `python
sympy_worker.py MEMORY_MB`; it imports nothing from this project. Its parent kills it when a task runs over
its time, so nothing here needs to be interruptible; RLIMIT_AS bounds its memory.
"""

import json
import resource
import sys

MAX_NODES = 600
MAX_INT_DIGITS = 4000
MAX_POWER = 10_000
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-")


class Bad(ValueError):
    pass


def _limit_memory(mb: int) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))
    except (ValueError, OSError):
        pass


def build(tree, sp, budget):
    """A sympy object from a JSON tree; Bad on anything unexpected or too large."""
    budget[0] -= 1
    if budget[0] < 0 or not isinstance(tree, list) or not tree or not isinstance(tree[0], str):
        raise Bad("tree")
    op, args = tree[0], tree[1:]
    if op == "num":
        p, q = args
        if not (isinstance(p, int) and isinstance(q, int)) or q <= 0 or max(len(str(abs(p))), len(str(q))) > MAX_INT_DIGITS:
            raise Bad("num")
        return sp.Rational(p, q)
    if op == "var":
        name = args[0]
        if not isinstance(name, str) or not 0 < len(name) <= 24 or not set(name) <= NAME_CHARS:
            raise Bad("name")
        return sp.Symbol(name)
    if op == "const":
        return {"pi": sp.pi, "e": sp.E, "i": sp.I, "inf": sp.oo}[args[0]]
    if op == "fn":
        name, arg = args[0], build(args[1], sp, budget)
        fn = {
            "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "cot": sp.cot, "sec": sp.sec, "csc": sp.csc, "arcsin": sp.asin,
            "arccos": sp.acos, "arctan": sp.atan, "ln": sp.log, "log": sp.log, "exp": sp.exp, "abs": sp.Abs,
            "floor": sp.floor, "ceil": sp.ceiling, "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh,
        }[name]
        return fn(arg)
    kids = [build(a, sp, budget) for a in args]
    if op == "neg":
        return -kids[0]
    if op == "add":
        return sp.Add(*kids)
    if op == "mul":
        return sp.Mul(*kids)
    if op == "div":
        return sp.Mul(kids[0], sp.Pow(kids[1], -1))
    if op == "pow":
        base, e = kids
        if e.is_number and not (base.is_number and base in (0, 1, -1)):
            mag = abs(sp.N(e, 15))
            if not mag.is_finite or mag > MAX_POWER:
                raise Bad("power")
        return sp.Pow(base, e)
    if op == "root":
        n, x = kids
        if n.is_Integer and n > 0 and n % 2 == 1 and x.is_number and x.is_negative:
            return sp.real_root(x, n)
        return sp.Pow(x, 1 / n)
    if op == "fact":
        if kids[0].is_number and (not kids[0].is_finite or abs(sp.N(kids[0], 15)) > 2000):
            raise Bad("factorial")
        return sp.factorial(kids[0])
    if op == "binom":
        if kids[0].is_number and (not kids[0].is_finite or abs(sp.N(kids[0], 15)) > 5000):
            raise Bad("binomial")
        return sp.binomial(*kids)
    if op == "log":
        return sp.log(kids[1], kids[0])
    raise Bad(op)


def equal(a, b, sp):
    """True/False when sympy can prove it, None otherwise. Cheapest test first."""
    if a == b:
        return True
    d = a - b
    z = d.is_zero  # assumptions and a numeric check: fast, and decides a rational against a closed form
    if z is not None:
        return bool(z)
    d = sp.simplify(d)
    if d == 0:
        return True
    if d.is_zero is False:
        return False
    got = a.equals(b)
    return None if got is None else bool(got)


def main() -> None:
    _limit_memory(int(sys.argv[1]) if len(sys.argv) > 1 else 2048)
    sys.setrecursionlimit(10_000)
    import sympy

    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            req = json.loads(line)
            budget = [2 * MAX_NODES]
            a, b = build(req["a"], sympy, budget), build(req["b"], sympy, budget)
            eq = equal(a, b, sympy)
        except Exception:  # noqa: BLE001  (malformed, too large or unsupported: not decided)
            eq = None
        out.write(json.dumps({"eq": eq}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
