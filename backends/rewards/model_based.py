"""Model-based rewards (DeepSeek-R1 phases 3 and 4): a generative judge and a preference model.

`judge`: a causal LM is prompted with the rubric (the question, the reference answer and the response
filled in) and its verdict is parsed from what it writes: 1.0 for a pass, 0.0 otherwise.
`preference_model`: a sequence-classification head scores prompt + response; the reward is
sigmoid(score) (or the raw score).

Both load their model once per process from a local Hugging Face directory (a stage's `model/` folder in
the embedded default) and run in batches. torch and transformers are imported on first use, so the
registry stays light for `r1dsl check`.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from backends.rewards.registry import Param, register

DEFAULT_RUBRIC = (
    "You are a strict grader. Question: {prompt}\nReference answer: {answer}\nResponse: {response}\n"
    "Is the response's final answer equivalent to the reference? Answer yes or no.\nVerdict:"
)
_VERDICT = re.compile(r"\b(yes|no|correct|incorrect|pass|fail|true|false)\b", re.IGNORECASE)
_PASS = {"yes", "correct", "pass", "true"}
MAX_RESPONSE_CHARS = 8000  # a response is untrusted text; bound what reaches the judge's context


def parse_verdict(text: str) -> float:
    """1.0 when the first verdict word the judge wrote is a pass (yes/correct/pass/true), else 0.0."""
    match = _VERDICT.search(text)
    return 1.0 if match and match.group(1).lower() in _PASS else 0.0


def fill_rubric(rubric: str, row: Mapping[str, Any], response: str) -> str:
    """The judge's prompt; str.replace, not str.format, so braces in untrusted text cannot inject fields."""
    filled = rubric.replace("{prompt}", str(row.get("prompt", "")))
    filled = filled.replace("{answer}", str(row.get("answer", "")))
    return filled.replace("{response}", response[:MAX_RESPONSE_CHARS])


def _model_dir(model: str | Mapping[str, Any]) -> str:
    """A local directory for `model`: a path as given, or a tiny model (smoke runs) built and saved once."""
    if isinstance(model, str):
        return model
    import hashlib
    import json
    import tempfile
    from pathlib import Path

    from backends.models import load_policy, save_policy
    from r1dsl.config import InitConfig, from_plain

    spec = json.dumps(dict(model), sort_keys=True, default=str)
    folder = Path(tempfile.gettempdir()) / f"r1dsl-reward-model-{hashlib.sha256(spec.encode()).hexdigest()[:12]}"
    if not (folder / "config.json").exists():
        lm, tokenizer = load_policy(from_plain(InitConfig, model, "reward model"), "cpu")
        save_policy(lm, tokenizer, folder)
    return str(folder)


def _key(model: str | Mapping[str, Any]) -> str:
    return model if isinstance(model, str) else repr(sorted(dict(model).items()))


_LOADED: dict[tuple[str, str], Any] = {}


def _load(model: str | Mapping[str, Any], head: str):
    """(model, tokenizer), loaded once per process; head is "lm" (a judge) or "score" (a preference model)."""
    if (head, _key(model)) not in _LOADED:
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

        path = _model_dir(model)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if head == "lm":
            loaded = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        else:
            loaded = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, local_files_only=True)
            if loaded.config.pad_token_id is None:
                loaded.config.pad_token_id = tokenizer.pad_token_id
        _LOADED[head, _key(model)] = (loaded.eval(), tokenizer)
    return _LOADED[head, _key(model)]


@register(
    "judge",
    needs=("prompt",),
    params={
        "model": Param(None, str, "a local Hugging Face directory (or an earlier stage) of the judge model", required=True),
        "rubric": Param(DEFAULT_RUBRIC, str, "the judge's prompt; {prompt}, {answer} and {response} are filled in"),
        "max_new_tokens": Param(8, int, "tokens the judge may write before its verdict is parsed", min=1,
                                max=1 << 16),
        "batch_size": Param(16, int, "prompts per generate call", min=1, max=1 << 16),
    },
    doc="A generative judge: 1.0 when the judge model's verdict passes the response, else 0.0.",
)
def judge(
    completions: Sequence[str], rows: Sequence[Mapping[str, Any]], *, model: str, rubric: str, max_new_tokens: int, batch_size: int
) -> list[float]:
    import torch

    lm, tokenizer = _load(model, "lm")
    prompts = [fill_rubric(rubric, row, text) for row, text in zip(rows, completions)]
    verdicts: list[float] = []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True, padding_side="left", truncation=True,
                        max_length=getattr(lm.config, "max_position_embeddings", 2048) - max_new_tokens)
        with torch.no_grad():
            out = lm.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        verdicts += [parse_verdict(t) for t in texts]
    return verdicts


@register(
    "preference_model",
    needs=("prompt",),
    params={
        "model": Param(None, str, "a local Hugging Face directory (or an earlier reward_model stage) with a sequence-classification head",
                       required=True),
        "scale": Param("sigmoid", str, "sigmoid: reward in (0, 1); raw: the head's score", choices=("sigmoid", "raw")),
        "max_tokens": Param(512, int, "prompt + response tokens scored (the end is kept)", min=1,
                            max=1 << 20),
        "batch_size": Param(32, int, "sequences per forward pass", min=1, max=1 << 16),
    },
    doc="A preference (reward) model's score of prompt + response.",
)
def preference_model(
    completions: Sequence[str], rows: Sequence[Mapping[str, Any]], *, model: str, scale: str, max_tokens: int, batch_size: int
) -> list[float]:
    import torch

    rm, tokenizer = _load(model, "score")
    texts = [preference_text(str(row.get("prompt", "")), completion) for row, completion in zip(rows, completions)]
    scores: list[float] = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i : i + batch_size], return_tensors="pt", padding=True, truncation=True, max_length=max_tokens)
        with torch.no_grad():
            logits = rm(**enc).logits[:, 0]
        scores += (torch.sigmoid(logits) if scale == "sigmoid" else logits).tolist()
    return scores


def preference_text(prompt: str, response: str) -> str:
    """How a preference model sees a pair (the reward_model stage trains on the same layout)."""
    return f"User: {prompt}\nAssistant: {response[:MAX_RESPONSE_CHARS]}"
