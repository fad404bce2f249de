"""`sft`: supervised fine-tuning on (prompt, response) rows; the loss covers the response tokens only.

The prompt is rendered with the stage's template (or, without one, the tokenizer's chat template when
it has one, else used as is); the target is the response followed by EOS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from backends.data.loading import DataError
from backends.data.table import Concat, open_rows
from backends.models import load_policy
from backends.generation import render_prompt
from backends.stages.lm import Example, train_save_evaluate
from backends.trainer import StageRun


def build_examples(rows: list[dict], tokenizer, template: str | None, max_seq_len: int) -> list[Example]:
    """(input_ids, labels) with labels -100 on the prompt; sequences longer than max_seq_len lose their end."""
    prompts = [render_prompt(template, row["prompt"], tokenizer) for row in rows]
    responses = [_join(p, str(row["response"])) for p, row in zip(prompts, rows)]
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(responses, add_special_tokens=False)["input_ids"]
    examples = []
    for p, r in zip(prompt_ids, response_ids):
        ids = (p + r + [tokenizer.eos_token_id])[:max_seq_len]
        labels = ([-100] * len(p) + r + [tokenizer.eos_token_id])[:max_seq_len]
        examples.append((ids, labels))
    return examples


class Examples(Sequence):
    """`build_examples` of each row, done when a batch asks for it: the rows stay memory-mapped on disk (an
    800K-sample set is not copied into every rank), the last few thousand encodings are kept."""

    def __init__(self, rows: Sequence, tokenizer, template: str | None, max_seq_len: int, cached: int = 4096):
        self.rows = rows
        self._encode = lru_cache(maxsize=cached)(
            lambda i: build_examples([rows[i]], tokenizer, template, max_seq_len)[0])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Example:  # type: ignore[override]
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._encode(i)


def _join(prompt: str, response: str) -> str:
    """The response as it continues the prompt: one space between "Assistant:" and the answer."""
    if prompt and not prompt[-1].isspace() and response and not response[0].isspace():
        return " " + response
    return response


def run(cfg) -> dict[str, float]:
    run = StageRun(cfg)
    needed = ("prompt", "response")
    rows = Concat([open_rows(replace(d, provides=needed), run.exp_dir / "rows") for d in cfg.model.data.train])
    if not len(rows):
        raise DataError(f"{cfg.name}: sft needs rows with `prompt` and `response` fields")
    model, tokenizer = load_policy(cfg.model.init, "cpu", run.precision)
    examples = Examples(rows, tokenizer, cfg.model.template, cfg.model.train.max_seq_len)
    run.print(f"[{cfg.name}] {len(examples)} examples")

    return train_save_evaluate(run, model, tokenizer, examples)
