"""Standalone worker: reads JSON lines {"a", "b"} on stdin, answers {"eq": true|false|null} on stdout.

Run by `sympy_pool` as `python sympy_worker.py`; it imports nothing from this project. Its parent kills it
when a task runs over the timeout, so nothing here needs to be interruptible.
"""

import json
import re
import resource
import sys


def _limit_memory(mb: int) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))
    except (ValueError, OSError):
        pass


def _to_sympy(s, sympy, latex2sympy):
    if latex2sympy is not None:
        try:
            return latex2sympy(s)
        except Exception:  # noqa: BLE001  (any parser failure: try the plain parser)
            pass
    from sympy.parsing.sympy_parser import (implicit_multiplication_application, parse_expr,
                                            standard_transformations, convert_xor)

    t = s.replace("\\pi", "pi").replace("\\cdot", "*").replace("\\times", "*").replace("{", "(").replace("}", ")")
    t = re.sub(r"\\sqrt", "sqrt", t)
    t = t.replace("\\", "")
    return parse_expr(t, transformations=standard_transformations + (implicit_multiplication_application, convert_xor),
                      evaluate=True)


def _equal(a, b, sympy):
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        if not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))) or len(a) != len(b):
            return False
        return all(_equal(x, y, sympy) for x, y in zip(a, b))
    if a == b:
        return True
    if isinstance(a, sympy.Basic) and isinstance(b, sympy.Basic):
        if isinstance(a, sympy.Set) or isinstance(b, sympy.Set):
            return bool(a == b)
        if isinstance(a, sympy.Eq) and isinstance(b, sympy.Eq):
            return _equal(a.lhs - a.rhs, b.lhs - b.rhs, sympy) or _equal(a.lhs, b.lhs, sympy) and _equal(a.rhs, b.rhs, sympy)
        if isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr):
            if sympy.simplify(a - b) == 0:
                return True
            eq = a.equals(b)
            return bool(eq)
    return False


def main() -> None:
    _limit_memory(int(sys.argv[1]) if len(sys.argv) > 1 else 2048)
    import sympy

    try:
        from latex2sympy2_extended import latex2sympy
    except ImportError:  # optional: the plain parser handles the rest
        latex2sympy = None
    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            req = json.loads(line)
            a, b = _to_sympy(req["a"], sympy, latex2sympy), _to_sympy(req["b"], sympy, latex2sympy)
            eq = bool(_equal(a, b, sympy))
        except Exception:  # noqa: BLE001  (unparseable or unsupported: not decided)
            eq = None
        out.write(json.dumps({"eq": eq}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
