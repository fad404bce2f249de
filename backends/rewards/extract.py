"""Pull the final answer out of a completion (or a gold solution): answer tag, last \\boxed{}, last number.

Every function here is linear in the input and looks at each character a bounded number of times (`rfind`
from the end, then one bounded forward scan): no regex, no search restarted at every candidate. Texts
longer than MAX_TEXT_CHARS are not scanned at all (no answer), and an answer longer than `max_chars` is not
returned (it would not be compared anyway). Conventions follow the MATH grader's `last_boxed_only_string`:
only the last `\\boxed` counts; if its braces do not close, there is no answer.
"""

from __future__ import annotations

MAX_TEXT_CHARS = 4_000_000  # a completion longer than this has no answer
MAX_ANSWER_CHARS = 1000  # the longest answer returned and compared (math_accuracy's `max_answer_chars` default)
_BOX = ("\\boxed", "\\fbox")


def last_boxed(text: str, max_chars: int = MAX_ANSWER_CHARS) -> str | None:
    """Content of the last \\boxed{...} (or \\fbox{...}) with balanced braces; None if absent, unbalanced or
    longer than `max_chars`. `\\boxed 5` (a space, no brace) is the next word."""
    if len(text) > MAX_TEXT_CHARS:
        return None
    idx = max(text.rfind(_BOX[0]), text.rfind(_BOX[1]))
    if idx < 0:
        return None
    j = idx + (len(_BOX[0]) if text.startswith(_BOX[0], idx) else len(_BOX[1]))
    if j < len(text) and text[j] == " ":
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] != "{":  # "\boxed 5": up to the next space or '$'
            end = j
            while end < len(text) and end - j <= max_chars and text[end] not in " \n\t$":
                end += 1
            return text[j:end] if end - j <= max_chars else None
    if j >= len(text) or text[j] != "{":
        return None
    depth = 0
    stop = min(len(text), j + max_chars + 2)
    for k in range(j, stop):
        ch = text[k]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[j + 1 : k]
    return None  # unbalanced, or longer than max_chars


def answer_tag_content(text: str, tag: str = "answer") -> str | None:
    """Content of the last <tag>...</tag>; a trailing unclosed <tag> is not an answer."""
    if len(text) > MAX_TEXT_CHARS:
        return None
    close = text.rfind(f"</{tag}>")
    if close < 0:
        return None
    start = text.rfind(f"<{tag}>", 0, close)
    if start < 0:
        return None
    return text[start + len(tag) + 2 : close]


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _scan_back(text: str, end: int, max_chars: int) -> int:
    start = end
    while start > 0 and end - start <= max_chars and (_is_digit(text[start - 1]) or text[start - 1] in ",."):
        start -= 1
    return start


def last_number(text: str, max_chars: int = 100) -> str | None:
    """The last number in the text (`-1,250.5`, `3e5`), scanning back from the end."""
    if len(text) > MAX_TEXT_CHARS:
        return None
    end = len(text)
    while end > 0 and not _is_digit(text[end - 1]):
        end -= 1
    if end == 0:
        return None
    start = _scan_back(text, end, max_chars)
    if start >= 2 and text[start - 1] in "eE" and _is_digit(text[start - 2]):  # 3e5
        start = _scan_back(text, start - 1, max_chars)
    elif start >= 3 and text[start - 1] in "+-" and text[start - 2] in "eE" and _is_digit(text[start - 3]):  # 3e-5
        start = _scan_back(text, start - 2, max_chars)
    if end - start > max_chars:
        return None
    got = text[start:end].strip(",.")
    if start > 0 and text[start - 1] == "-" and got and _is_digit(got[0]):
        got = "-" + got
    return got or None


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
        got = last_boxed(text, max_chars=len(text))
        if got is not None:
            return got
    return text.strip()
