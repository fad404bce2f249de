"""Are two math answers equivalent? (first cut: normalised strings and exact rationals)"""

from __future__ import annotations

import re
from fractions import Fraction

MAX_ANSWER_CHARS = 1000


def normalize(s: str) -> str:
    s = s.strip().strip("$").strip()
    for a, b in (("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\left", ""), ("\\right", ""), ("\\!", ""), ("\\,", ""), (" ", "")):
        s = s.replace(a, b)
    s = re.sub(r"\\text\{(.*?)\}", r"\1", s)
    s = re.sub(r"^[a-zA-Z]=", "", s)
    s = re.sub(r"(\d),(\d{3})", r"\1\2", s)
    return s.rstrip(".")


def _rational(s: str) -> Fraction | None:
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}", s) or re.fullmatch(r"(-?)(-?\d+)/(-?\d+)", s)
    try:
        if m:
            v = Fraction(int(m.group(2)), int(m.group(3)))
            return -v if m.group(1) else v
        if re.fullmatch(r"-?\d*\.?\d+", s):
            return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None
    return None


def equivalent(gold: str, pred: str) -> bool:
    if len(gold) > MAX_ANSWER_CHARS or len(pred) > MAX_ANSWER_CHARS:
        return False
    g, p = normalize(gold), normalize(pred)
    if g == p:
        return True
    a, b = _rational(g), _rational(p)
    return a is not None and a == b
