"""Pull the final answer out of a completion (or a gold solution): answer tag, last \\boxed{}, last number."""

from __future__ import annotations

import re

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (or \\fbox{...}) with balanced braces; None if absent or unbalanced."""
    idx = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    while idx >= 0:
        j = idx + (6 if text.startswith("\\boxed", idx) else 5)
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            depth = 0
            for k in range(j, len(text)):
                ch = text[k]
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        return text[j + 1 : k]
            return None  # unbalanced \boxed{
        if j < len(text) and text.startswith("\\boxed ", idx):  # "\boxed 5"
            m = re.match(r"\S+", text[j:])
            return m.group(0) if m else None
        idx = max(text.rfind("\\boxed", 0, idx), text.rfind("\\fbox", 0, idx))
    return None


def answer_tag_content(text: str, tag: str = "answer") -> str | None:
    """Content of the last <tag>...</tag>; a trailing unclosed <tag> is not an answer."""
    close = text.rfind(f"</{tag}>")
    if close < 0:
        return None
    start = text.rfind(f"<{tag}>", 0, close)
    if start < 0:
        return None
    return text[start + len(tag) + 2 : close]


def last_number(text: str) -> str | None:
    found = None
    for found in _NUMBER.finditer(text):
        pass
    return found.group(0).rstrip(",") if found else None


def extract_answer(completion: str, how: str = "answer_tag", tag: str = "answer") -> str | None:
    """The answer a completion commits to, or None. Inside an answer tag a \\boxed{} wins over the surrounding text."""
    if how == "answer_tag":
        got = answer_tag_content(completion, tag)
        if got is not None and ("\\boxed" in got or "\\fbox" in got):
            return last_boxed(got) or got
        return got
    if how == "boxed":
        return last_boxed(completion)
    if how == "last_number":
        return last_number(completion)
    raise ValueError(f"unknown extraction {how!r}")


def gold_answer(answer) -> str:
    """A dataset's gold answer: plain values pass through; GSM8K '#### 42' and \\boxed{} solutions are reduced."""
    text = str(answer)
    if "####" in text:
        return text.rsplit("####", 1)[1].strip()
    if "\\boxed" in text or "\\fbox" in text:
        got = last_boxed(text)
        if got is not None:
            return got
    return text.strip()
