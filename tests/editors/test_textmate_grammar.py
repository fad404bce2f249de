"""The TextMate grammar for `.r1`: every regex compiles, and scopes land on the right tokens of shipped recipes.

A small tokenizer below follows TextMate's rules (at each position the earliest match wins, ties go to
the pattern listed first, a begin/end rule's end is tried before its inner patterns), enough to check
where scopes land without a Node.js toolchain.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GRAMMAR_PATH = ROOT / "editors" / "textmate" / "r1.tmLanguage.json"
RECIPES = sorted((ROOT / "recipes").glob("*.r1"))


def oniguruma_to_python(regex: str) -> str:
    """Translate the Oniguruma-only escapes a TextMate grammar may use; fail on ones Python cannot express."""
    assert "\\p{" not in regex and "\\P{" not in regex, f"Unicode properties are not portable: {regex}"
    regex = regex.replace("\\h", "[0-9A-Fa-f]").replace("\\H", "[^0-9A-Fa-f]")
    return regex.replace("\\G", "").replace("\\A", "^").replace("\\Z", "$")


def load_grammar() -> dict:
    return json.loads(GRAMMAR_PATH.read_text())


def all_rules(grammar: dict):
    """Every rule object of the grammar, nested ones included."""
    todo = list(grammar["patterns"]) + list(grammar["repository"].values())
    while todo:
        rule = todo.pop()
        yield rule
        todo.extend(rule.get("patterns", []))


class Tokenizer:
    def __init__(self, grammar: dict) -> None:
        self.grammar = grammar
        self.root = {"name": grammar["scopeName"], "patterns": grammar["patterns"]}

    def _expand(self, patterns: list[dict]) -> list[dict]:
        out = []
        for rule in patterns:
            if "include" in rule:
                ref = rule["include"]
                target = self.root if ref == "$self" else self.grammar["repository"][ref.removeprefix("#")]
                out += self._expand([target])
            elif "match" in rule or "begin" in rule:
                out.append(rule)
            else:
                out += self._expand(rule["patterns"])
        return out

    @staticmethod
    def _paint(scopes: list[tuple[str, ...]], m: re.Match, base: tuple[str, ...], name: str | None, captures: dict) -> None:
        whole = base + ((name,) if name else ())
        for i in range(m.start(), m.end()):
            scopes[i] = whole
        for group, capture in captures.items():
            if m.start(int(group)) >= 0:
                for i in range(m.start(int(group)), m.end(int(group))):
                    scopes[i] = scopes[i] + (capture["name"],)

    def tokenize(self, text: str) -> list[tuple[str, tuple[str, ...]]]:
        """Lines of text -> per-character scope stacks, flattened to (char, scopes) for the whole text."""
        stack: list[tuple[dict, tuple[str, ...], re.Pattern | None]] = [(self.root, (self.root["name"],), None)]
        result = []
        for line in text.split("\n"):
            scopes: list[tuple[str, ...]] = [()] * len(line)
            pos = steps = 0
            while True:
                rule, base, end = stack[-1]
                best = None  # (start, order, kind, rule, match)
                if end is not None and (m := end.search(line, pos)):
                    best = (m.start(), -1, "end", rule, m)
                for order, candidate in enumerate(self._expand(rule.get("patterns", []))):
                    regex = re.compile(oniguruma_to_python(candidate.get("match") or candidate["begin"]))
                    if (m := regex.search(line, pos)) and (best is None or m.start() < best[0]):
                        best = (m.start(), order, "begin" if "begin" in candidate else "match", candidate, m)
                if best is None:
                    for i in range(pos, len(line)):
                        scopes[i] = base
                    break
                start, _, kind, hit, m = best
                for i in range(pos, start):
                    scopes[i] = base
                if kind == "end":
                    self._paint(scopes, m, base, None, rule.get("endCaptures", {}))
                    stack.pop()
                elif kind == "match":
                    self._paint(scopes, m, base, hit.get("name"), hit.get("captures", {}))
                else:
                    self._paint(scopes, m, base, hit.get("name"), hit.get("beginCaptures", {}))
                    inner = base + ((hit["name"],) if hit.get("name") else ())
                    stack.append((hit, inner, re.compile(oniguruma_to_python(hit["end"]))))
                if m.end() > pos:
                    pos = m.end()
                elif kind == "match":  # an empty match moves nothing: step over one character
                    pos += 1
                steps += 1
                assert steps < 10 * (len(line) + 10), f"tokenizer stuck on {line!r}"
                if pos > len(line):
                    break
            result += list(zip(line, scopes)) + [("\n", stack[-1][1])]
        return result[:-1]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(load_grammar())


def scopes_of(tokens: list[tuple[str, tuple[str, ...]]], text: str, needle: str, nth: int = 0) -> set[str]:
    """The scopes every character of the nth occurrence of needle (as a whole word) lies in."""
    before = r"(?<![\w.])" if re.match(r"[\w.]", needle) else ""
    after = r"(?![\w.])" if re.match(r"[\w.]", needle[-1]) else ""
    starts = [m.start() for m in re.finditer(before + re.escape(needle) + after, text)]
    assert len(starts) > nth, f"{needle!r} not found in {text!r}"
    stacks = [set(tokens[i][1]) for i in range(starts[nth], starts[nth] + len(needle))]
    return set.intersection(*stacks)


def shipped_line(prefix: str, recipe: str) -> str:
    """A line of a shipped recipe (so the test follows the recipes, not a copy of them)."""
    lines = [line for line in (ROOT / "recipes" / recipe).read_text().splitlines() if line.startswith(prefix)]
    assert lines, f"no line starting {prefix!r} in {recipe}"
    return lines[0]


def test_grammar_is_json_with_a_scope_name_and_every_regex_compiles_in_python() -> None:
    grammar = load_grammar()
    assert grammar["scopeName"] == "source.r1" and "r1" in grammar["fileTypes"]
    regexes = [rule[key] for rule in all_rules(grammar) for key in ("match", "begin", "end") if key in rule]
    assert len(regexes) > 20
    for regex in regexes:
        re.compile(oniguruma_to_python(regex))
    includes = [rule["include"] for rule in all_rules(grammar) if "include" in rule]
    for ref in includes:
        assert ref == "$self" or ref.removeprefix("#") in grammar["repository"], ref


@pytest.mark.parametrize(
    ("recipe", "prefix", "expected"),
    [
        ("tiny_r1_zero.r1", "recipe ", {"recipe": "keyword.other.recipe.r1", "tiny_r1_zero": "entity.name.namespace.r1"}),
        ("tiny_r1_zero.r1", "const seed", {"const": "keyword.other.const.r1", "seed": "variable.other.constant.r1", "=": "keyword.operator.assignment.r1", "7": "constant.numeric.r1"}),
        ("tiny_r1_zero.r1", "stage zero", {"stage": "keyword.other.stage.r1", "zero": "entity.name.function.stage.r1", ":": "punctuation.separator.colon.r1", "grpo": "support.type.stage-kind.r1", "{": "punctuation.section.block.begin.r1"}),
        ("tiny_r1.r1", "stage cold_samples", {"cold_samples": "entity.name.function.stage.r1", "rejection_sample": "support.type.stage-kind.r1"}),
        ("tiny_r1.r1", "stage final_eval", {"final_eval": "entity.name.function.stage.r1", "eval": "support.type.stage-kind.r1"}),
        ("tiny_r1.r1", "  from = all_rl", {"from": "variable.other.property.r1", "all_rl": "variable.other.r1", "arith_test": "variable.other.r1"}),
        ("tiny_r1.r1", "  sampling { samples_per_prompt = 4  temperature = 0.6", {"sampling": "entity.name.section.r1", "0.95": "constant.numeric.r1", "48": "constant.numeric.r1"}),
        ("tiny_r1_zero.r1", "reward accuracy", {"reward": "keyword.other.declaration.r1", "accuracy": "entity.name.type.r1", "rule": "variable.other.property.r1", '"math_accuracy"': "string.quoted.double.r1", "1.0": "constant.numeric.r1"}),
        ("tiny_r1_zero.r1", "dataset corpus", {"dataset": "keyword.other.declaration.r1", "corpus": "entity.name.type.r1", "20000": "constant.numeric.r1", "seed": "variable.other.property.r1"}),
        ("tiny_r1_zero.r1", "  optim { lr = 2e-4", {"optim": "entity.name.section.r1", "lr": "variable.other.property.r1", "2e-4": "constant.numeric.r1", '"constant"': "string.quoted.double.r1"}),
        ("tiny_r1.r1", "  filters", {"filters": "entity.name.section.r1", "true": "constant.language.boolean.r1", "0.9": "constant.numeric.r1"}),
        ("tiny_r1.r1", "  route", {"route": "entity.name.section.r1", "arith": "variable.other.property.r1", "[": "punctuation.section.brackets.begin.r1", ",": "punctuation.separator.comma.r1"}),
        ("deepseek_r1.r1", "  optim { lr = 3e-6", {"3e-6": "constant.numeric.r1", "# as R1-Zero [NAT Methods]": "comment.line.number-sign.r1"}),
        ("deepseek_r1.r1", "  students", {"students": "entity.name.section.r1", "# initial lr per student [V2 B.4.3]": "comment.line.number-sign.r1"}),
        ("deepseek_r1.r1", "    qwen_math_1_5b", {"qwen_math_1_5b": "variable.other.r1", "1e-4": "constant.numeric.r1"}),
        ("deepseek_r1.r1", "  template =", {"template": "variable.other.property.r1", "r1": "variable.other.r1"}),
        ("deepseek_r1.r1", "reward helpful", {"model": "variable.other.property.r1", '"preference_model"': "string.quoted.double.r1"}),
        ("tiny_r1_zero.r1", "# R1-Zero on", {"# R1-Zero on the embedded default": "comment.line.number-sign.r1"}),
    ],
)
def test_scopes_land_on_tokens_of_a_shipped_recipe_line(tokenizer: Tokenizer, recipe: str, prefix: str, expected: dict) -> None:
    line = shipped_line(prefix, recipe)
    tokens = tokenizer.tokenize(line)
    for needle, scope in expected.items():
        assert scope in scopes_of(tokens, line, needle), (needle, scopes_of(tokens, line, needle))


def test_triple_quoted_template_spans_lines_with_its_placeholder(tokenizer: Tokenizer) -> None:
    text = (ROOT / "recipes" / "deepseek_r1.r1").read_text()
    start = text.index('template r1 = """')
    snippet = text[start : text.index('"""', start + 20) + 3] + "\n\nreward x { weight = 2 }"
    tokens = tokenizer.tokenize(snippet)
    assert "keyword.other.declaration.r1" in scopes_of(tokens, snippet, "template")
    assert "constant.other.placeholder.r1" in scopes_of(tokens, snippet, "{prompt}")
    # The second line is still inside the string; \boxed{} is text, not an escape or a placeholder.
    assert "string.quoted.triple.r1" in scopes_of(tokens, snippet, "Please reason step by step")
    assert "string.quoted.triple.r1" in scopes_of(tokens, snippet, "\\boxed{}")
    assert "punctuation.definition.string.end.r1" in scopes_of(tokens, snippet, '"""', nth=1)
    # After the string closes, highlighting is back to declarations.
    assert "keyword.other.declaration.r1" in scopes_of(tokens, snippet, "reward")
    assert "constant.numeric.r1" in scopes_of(tokens, snippet, "2")


def test_import_escapes_numbers_and_unknown_kinds(tokenizer: Tokenizer) -> None:
    line = 'import "common.r1"  include "x\\"y.r1"  const n = 20_000  const m = -.5  stage s: grpo_v2 {'
    tokens = tokenizer.tokenize(line)
    assert "keyword.control.import.r1" in scopes_of(tokens, line, "import")
    assert "keyword.control.import.r1" in scopes_of(tokens, line, "include")
    assert "constant.character.escape.r1" in scopes_of(tokens, line, '\\"')
    assert "constant.numeric.r1" in scopes_of(tokens, line, "20_000")
    assert "constant.numeric.r1" in scopes_of(tokens, line, "-.5")
    assert "invalid.illegal.stage-kind.r1" in scopes_of(tokens, line, "grpo_v2")
    # A digit inside a name is part of the name, never a number.
    assert "variable.other.r1" in scopes_of(tokenizer.tokenize("from = r1_sft"), "from = r1_sft", "r1_sft")


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_character_of_a_shipped_recipe_is_scoped_and_none_is_invalid(tokenizer: Tokenizer, recipe: Path) -> None:
    text = recipe.read_text()
    tokens = tokenizer.tokenize(text)
    assert len(tokens) == len(text)
    for offset, (char, scopes) in enumerate(tokens):
        line = text.count("\n", 0, offset) + 1
        assert not any(s.startswith("invalid") for s in scopes), f"{recipe.name}:{line}: {scopes}"
        if not char.isspace():
            assert len(scopes) > 1, f"{recipe.name}:{line}: {char!r} has no scope"
    # Every '#' outside a string starts a comment.
    for offset, (char, scopes) in enumerate(tokens):
        if char == "#" and not any(s.startswith("string") for s in scopes):
            assert scopes[-1] == "punctuation.definition.comment.r1"


def test_vscode_extension_registers_the_grammar_for_r1_files() -> None:
    package = json.loads((ROOT / "editors" / "vscode" / "package.json").read_text())
    (language,) = package["contributes"]["languages"]
    (grammar,) = package["contributes"]["grammars"]
    assert language["extensions"] == [".r1"] and grammar["language"] == language["id"]
    assert grammar["scopeName"] == load_grammar()["scopeName"]
    shipped = ROOT / "editors" / "vscode" / grammar["path"]
    assert shipped.read_text() == GRAMMAR_PATH.read_text()
    config = json.loads((ROOT / "editors" / "vscode" / language["configuration"].removeprefix("./")).read_text())
    assert config["comments"]["lineComment"] == "#"
