"""`sft`: supervised fine-tuning on (prompt, response) rows; the loss covers the response tokens only.

The prompt is rendered with the stage's template (or, without one, the tokenizer's chat template when
it has one, else used as is); the target is the response followed by EOS.
"""

from __future__ import annotations

from backends.data.loading import DataError, load_rows
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


def _join(prompt: str, response: str) -> str:
    """The response as it continues the prompt: one space between "Assistant:" and the answer."""
    if prompt and not prompt[-1].isspace() and response and not response[0].isspace():
        return " " + response
    return response


def run(cfg) -> dict[str, float]:
    run = StageRun(cfg)
    rows = [row for dataset in cfg.model.data.train for row in load_rows(dataset)]
    rows = [row for row in rows if "prompt" in row and "response" in row]
    if not rows:
        raise DataError(f"{cfg.name}: sft needs rows with `prompt` and `response` fields")
    model, tokenizer = load_policy(cfg.model.init, "cpu", run.precision)
    examples = build_examples(rows, tokenizer, cfg.model.template, cfg.model.train.max_seq_len)
    run.print(f"[{cfg.name}] {len(examples)} examples")

    return train_save_evaluate(run, model, tokenizer, examples)
