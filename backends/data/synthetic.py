"""Synthetic datasets: every recipe runs with no download.

Each generator is `fn(size, seed, **params) -> list[dict]`, deterministic in `seed`, and registered in
`backends.data.generators.GENERATORS` with the canonical fields its rows provide. Torch-free.

The `corpus` generator is what the embedded default pretrains on. It is built so that a tiny model
trained on it for a couple of minutes is a useful R1-Zero starting point:
  * it knows arithmetic partially (worked solutions of small sums and products, so it is right on
    some problems and wrong on others),
  * it has seen the <think>/<answer> format often, but as the majority style only for one "source"
    (the question phrasing "Calculate ..."): elsewhere fewer than half the answers open with <think>,
    so a greedy decoder uses the tags on about a quarter of the prompts while sampling produces them
    regularly. GRPO then has something to reinforce: the format, and the correct answers within it.
  * most arithmetic is in short "User: ... Assistant: ..." turns and worksheets: the long preamble costs
    ~90 tokens a document, so it appears in a few documents only (enough to recognise it).
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from backends.data.generators import register
from r1dsl.settings import Check, Param

# The DeepSeek-R1-Zero prompt (paper, table 1). Recipes that want the pretrained base to "recognise"
# the conversation should use exactly this text as their template.
R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user "
    "with the answer. The reasoning process and answer are enclosed within <think> </think> and "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> "
    "<answer> answer here </answer>. User: {prompt}. Assistant:"
)

# Question phrasings of the arithmetic generator; the corpus ties answer styles to them (see module doc).
PHRASINGS = ("What is {e}?", "Compute {e}", "Calculate {e}", "Find the value of {e}")  # the template adds a "."
TAGGED_PHRASINGS = ("Calculate {e}",)  # the "source" whose answers mostly use <think>/<answer>


# ---------------------------------------------------------------- arithmetic


def _num_ops(rng: random.Random, num_ops: int | Sequence[int]) -> int:
    if isinstance(num_ops, int):
        return num_ops
    lo, hi = num_ops
    return rng.randint(lo, hi)


def random_expression(rng: random.Random, max_operand: int, num_ops: int | Sequence[int], ops: str) -> list:
    """A flat expression [a, op, b, op, c, ...] of non-negative operands."""
    n = _num_ops(rng, num_ops)
    expr: list = [rng.randint(0, max_operand)]
    for _ in range(n):
        expr += [rng.choice(ops), rng.randint(0, max_operand)]
    return expr


def render_expression(expr: list, terse: bool = False) -> str:
    sep = "" if terse else " "
    return sep.join(str(t) for t in expr)


def solve_steps(expr: list) -> tuple[list[str], int]:
    """Evaluate with the usual precedence; returns the worked steps ("25 * 3 = 75") and the value."""
    steps: list[str] = []
    # products first, left to right
    terms: list = [expr[0]]
    for op, b in zip(expr[1::2], expr[2::2]):
        if op == "*":
            a = terms[-1]
            terms[-1] = a * b
            steps.append(f"{a} * {b} = {a * b}")
        else:
            terms += [op, b]
    # then sums and differences
    value = terms[0]
    for op, b in zip(terms[1::2], terms[2::2]):
        new = value + b if op == "+" else value - b
        steps.append(f"{value} {op} {b} = {new}")
        value = new
    return steps, value


MAX_OPERAND = 10**6  # operands and counts stay small enough that an answer is a short string
MAX_OPS = 16


def arithmetic_params(max_operand: int, num_ops: int | tuple[int, int], ops: str) -> dict[str, Param]:
    """The parameters of every generator built on `random_expression` (with that generator's defaults)."""
    return {
        "max_operand": Param(max_operand, int, f"operands are 0 .. max_operand (at most {MAX_OPERAND})",
                             min=0, max=MAX_OPERAND),
        "num_ops": Param(num_ops, (int, list), f"operators per expression: a count or a range [low, high] "
                         f"(0 .. {MAX_OPS})", min=0, max=MAX_OPS),
        "ops": Param(ops, str, "the operators drawn from: some of + - *"),
    }


ARITHMETIC_CHECKS = (
    Check(("num_ops",), lambda n: isinstance(n, int) or (len(n) == 2 and n[0] <= n[1]),
          "num_ops is a count or a range [low, high] with low <= high"),
    Check(("ops",), lambda ops: bool(ops) and set(ops) <= set("+-*"), 'ops is some of "+-*"'),
)


@register(
    "arithmetic", provides=("prompt", "answer"), checks=ARITHMETIC_CHECKS,
    params={**arithmetic_params(9, (1, 2), "+-"),
            "style": Param("question", str, 'question ("What is 17 + 5 * 3?"), terse ("17+5*3") or mixed',
                           choices=("question", "terse", "mixed"))},
)
def arithmetic(size: int, seed: int, *, max_operand: int, num_ops: int | Sequence[int], ops: str,
               style: str) -> list[dict[str, Any]]:
    """Arithmetic questions ("What is 17 + 5 * 3?", or terse "17+5*3" with style="terse"); answer is the value."""
    if style not in ("question", "terse", "mixed"):
        raise ValueError(f"arithmetic: style must be question, terse or mixed, not {style!r}")
    rng = random.Random(f"arithmetic:{seed}")
    rows = []
    for _ in range(size):
        expr = random_expression(rng, max_operand, num_ops, ops)
        _, value = solve_steps(expr)
        terse = style == "terse" or (style == "mixed" and rng.random() < 0.5)
        prompt = render_expression(expr, terse=True) if terse else rng.choice(PHRASINGS).format(e=render_expression(expr))
        rows.append({"prompt": prompt, "answer": str(value)})
    return rows


# ---------------------------------------------------------------- countdown


def _countdown_solution(rng: random.Random, numbers: list[int]) -> tuple[str, int]:
    """Combine the numbers left to right with random + - * (kept non-negative): an expression and its value."""
    order = numbers[:]
    rng.shuffle(order)
    text, value = str(order[0]), order[0]
    for n in order[1:]:
        op = rng.choice("+*-" if value >= n else "+*")
        value = value + n if op == "+" else value * n if op == "*" else value - n
        text = f"({text} {op} {n})"
    return text[1:-1] if text.startswith("(") else text, value


@register(
    "countdown", provides=("prompt", "answer", "numbers", "solution"),
    params={"num_numbers": Param(3, int, f"numbers to combine (at most {MAX_OPS})", min=1, max=MAX_OPS),
            "max_number": Param(20, int, f"numbers are 1 .. max_number (at most {MAX_OPERAND})", min=1, max=MAX_OPERAND)},
)
def countdown(size: int, seed: int, *, num_numbers: int, max_number: int) -> list[dict[str, Any]]:
    """Countdown: reach the target with each number once and + - *; answer is the target."""
    rng = random.Random(f"countdown:{seed}")
    rows = []
    for _ in range(size):
        numbers = [rng.randint(1, max_number) for _ in range(num_numbers)]
        solution, target = _countdown_solution(rng, numbers)
        listed = ", ".join(map(str, numbers))
        prompt = f"Using the numbers [{listed}], create an equation that equals {target}. Use each number once and + - *."
        rows.append({"prompt": prompt, "answer": str(target), "numbers": numbers, "solution": solution})
    return rows


# ---------------------------------------------------------------- code


_CODE_TASKS = [
    # (description, name, reference body, inputs -> expected computed from the reference)
    ("returns the sum of a and b", "add", "def add(a, b):\n    return a + b", lambda r: (r.randint(-9, 20), r.randint(-9, 20))),
    ("returns a times b", "mul", "def mul(a, b):\n    return a * b", lambda r: (r.randint(-9, 12), r.randint(-9, 12))),
    ("returns the larger of a and b", "larger", "def larger(a, b):\n    return max(a, b)", lambda r: (r.randint(0, 30), r.randint(0, 30))),
    ("returns a squared", "square", "def square(a):\n    return a * a", lambda r: (r.randint(-12, 12),)),
    ("returns True when n is even", "is_even", "def is_even(n):\n    return n % 2 == 0", lambda r: (r.randint(0, 50),)),
    ("returns the string s reversed", "reverse", "def reverse(s):\n    return s[::-1]", lambda r: ("".join(r.choice("abcxyz") for _ in range(r.randint(1, 5))),)),
    ("returns the sum of the list xs", "total", "def total(xs):\n    return sum(xs)", lambda r: ([r.randint(0, 9) for _ in range(r.randint(0, 4))],)),
    ("returns n factorial", "fact", "def fact(n):\n    out = 1\n    for i in range(2, n + 1):\n        out *= i\n    return out", lambda r: (r.randint(0, 6),)),
]


@register("code", provides=("prompt", "tests", "response"),
          params={"num_tests": Param(3, int, "assert lines per task (at most 100)", min=1, max=100)})
def code(size: int, seed: int, *, num_tests: int) -> list[dict[str, Any]]:
    """Short Python function tasks; `tests` are assert lines, `response` a reference solution."""
    rng = random.Random(f"code:{seed}")
    rows = []
    for _ in range(size):
        desc, name, body, make_args = rng.choice(_CODE_TASKS)
        namespace: dict[str, Any] = {}
        exec(body, namespace)  # our own reference solutions, to compute the expected values
        tests = []
        for _ in range(num_tests):
            args = make_args(rng)
            tests.append(f"assert {name}({', '.join(map(repr, args))}) == {namespace[name](*args)!r}")
        rows.append({"prompt": f"Write a Python function `{name}` that {desc}.", "tests": tests, "response": body})
    return rows


# ---------------------------------------------------------------- chat


_CHAT = [
    ("Say hello to {name}.", "Hello, {name}! Nice to meet you."),
    ("What colour is the {thing}?", "The {thing} is usually {colour}."),
    ("Give me a word that rhymes with {word}.", "A word that rhymes with {word} is {rhyme}."),
    ("Translate '{en}' into French.", "In French, '{en}' is '{fr}'."),
    ("Name an animal that starts with {letter}.", "{animal} starts with {letter}."),
]
_NAMES = ["Ada", "Alan", "Grace", "Linus", "Barbara", "Edsger"]
_THINGS = [("sky", "blue"), ("grass", "green"), ("snow", "white"), ("sun", "yellow"), ("coal", "black")]
_RHYMES = [("cat", "hat"), ("tree", "bee"), ("cake", "lake"), ("moon", "spoon"), ("rain", "train")]
_FRENCH = [("hello", "bonjour"), ("thank you", "merci"), ("cat", "chat"), ("water", "eau"), ("good night", "bonne nuit")]
_ANIMALS = ["Ant", "Bear", "Cat", "Dog", "Eagle", "Fox", "Goat", "Horse"]


@register("chat", provides=("prompt", "response"))
def chat(size: int, seed: int) -> list[dict[str, Any]]:
    """General one-turn prompts with a reference response."""
    rng = random.Random(f"chat:{seed}")
    rows = []
    for _ in range(size):
        prompt, response = rng.choice(_CHAT)
        thing, colour = rng.choice(_THINGS)
        word, rhyme = rng.choice(_RHYMES)
        en, fr = rng.choice(_FRENCH)
        animal = rng.choice(_ANIMALS)
        values = dict(name=rng.choice(_NAMES), thing=thing, colour=colour, word=word, rhyme=rhyme, en=en, fr=fr, animal=animal, letter=animal[0])
        rows.append({"prompt": prompt.format(**values), "response": response.format(**values)})
    return rows


# ---------------------------------------------------------------- corpus


def tagged_answer(steps: list[str], value: int) -> str:
    return f"<think> {'. '.join(steps)}. </think> <answer> {value} </answer>"


def _answer_in_style(rng: random.Random, style: str, expr: list, steps: list[str], value: int) -> str:
    if style == "tagged":
        return tagged_answer(steps, value)
    if style == "worked":
        return f"{'. '.join(steps)}. The answer is {value}."
    if style == "equation":
        return f"{render_expression(expr)} = {value}."
    return f"{value}"  # terse


def _conversation(rng: random.Random, expr: list, tag_rate: float, tag_rate_tagged_source: float, long: bool) -> str:
    """A question and its answer: under the full R1-Zero preamble (long) or as a bare "User: ... Assistant: ..." turn."""
    phrasing = rng.choice(PHRASINGS)
    steps, value = solve_steps(expr)
    p_tag = tag_rate_tagged_source if phrasing in TAGGED_PHRASINGS else tag_rate
    style = "tagged" if rng.random() < p_tag else rng.choice(("worked", "equation", "terse"))
    prompt = phrasing.format(e=render_expression(expr))
    question = R1_ZERO_TEMPLATE.format(prompt=prompt) if long else f"User: {prompt}. Assistant:"
    return question + " " + _answer_in_style(rng, style, expr, steps, value)


def _worksheet(rng: random.Random, max_operand: int, num_ops, ops: str) -> str:
    """Several worked exercises in a row: dense arithmetic practice."""
    lines = []
    for _ in range(rng.randint(2, 4)):
        expr = random_expression(rng, max_operand, num_ops, ops)
        steps, value = solve_steps(expr)
        lines.append(f"{render_expression(expr)} = {value}" if len(steps) == 1 else f"{render_expression(expr)}: {', '.join(steps)}.")
    return "\n".join(lines)


def _rate(default: float, doc: str) -> Param:
    return Param(default, float, doc, min=0.0, max=1.0)


@register(
    "corpus", provides=("text",), checks=ARITHMETIC_CHECKS,
    params={**arithmetic_params(9, (1, 2), "+-"),
            "conversation_rate": _rate(0.08, "share of documents that are a question under the R1-Zero preamble"),
            "short_conversation_rate": _rate(0.55, "share of documents that are a bare User/Assistant turn"),
            "tag_rate": _rate(0.3, "share of answers with <think>/<answer> tags"),
            "tag_rate_tagged_source": _rate(0.8, "share of tagged answers for the \"Calculate\" phrasing"),
            "chat_rate": _rate(0.05, "share of documents that are a chat turn")},
)
def corpus(size: int, seed: int, *, max_operand: int, num_ops: int | Sequence[int], ops: str, conversation_rate: float,
           short_conversation_rate: float, tag_rate: float, tag_rate_tagged_source: float,
           chat_rate: float) -> list[dict[str, Any]]:
    """Pretraining documents: arithmetic questions answered in several styles (a minority with <think>/<answer>
    tags), under the R1-Zero preamble or as bare turns, arithmetic worksheets, and a little chat."""
    rng = random.Random(f"corpus:{seed}")
    chats = chat(max(1, size), seed=seed)
    rows = []
    for i in range(size):
        u = rng.random()
        if u < chat_rate:
            text = f"User: {chats[i]['prompt']} Assistant: {chats[i]['response']}"
        elif u < chat_rate + conversation_rate + short_conversation_rate:
            expr = random_expression(rng, max_operand, num_ops, ops)
            long = u < chat_rate + conversation_rate
            text = _conversation(rng, expr, tag_rate, tag_rate_tagged_source, long)
        else:
            text = _worksheet(rng, max_operand, num_ops, ops)
        rows.append({"text": text})
    return rows
