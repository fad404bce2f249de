"""Model-based rewards (DeepSeek-R1 phases 3 and 4): a generative judge and a preference model.

`judge`: a causal LM is prompted with the rubric (the question, the reference answer and the response
filled in) and its verdict is parsed from what it writes: 1.0 for a pass, 0.0 otherwise.
`preference_model`: a sequence-classification head scores prompt + response; the reward is
sigmoid(score) (or the raw score).

Each rule scores one `part` of the response [NAT; V2 3.2.2]: `summary` (what follows the closing reasoning
tag, `</think>`: helpfulness is judged on it), `whole` (harmlessness), or `reasoning` (what precedes it).
Long text is cut by tokens, never by characters, and always keeps the END of the response: a 32K-token
chain of thought is scored on its summary, not on its first paragraph.

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
PARTS = ("summary", "whole", "reasoning")


def part_param(default: str) -> Param:
    """The `part` parameter every model-based rule declares (one declaration, each rule's own default)."""
    return Param(default, str, "the part of the response scored: summary (after the closing reasoning tag), whole, "
                 "or reasoning (before it)", choices=PARTS)


THINK_TAG = Param("think", str, "name of the reasoning tag whose closing tag </think> ends the reasoning")


def response_part(response: str, part: str, think_tag: str = "think") -> str:
    """The `part` of `response` a rule scores; one linear scan for the first closing tag.

    No closing tag: the response has no separate summary, so `summary` and `whole` are the response and
    `reasoning` is the response too (an unfinished chain of thought is all reasoning).
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, not {part!r}")
    if part == "whole":
        return response
    close = f"</{think_tag}>"
    cut = response.find(close)
    if cut < 0:
        return response
    if part == "summary":
        return response[cut + len(close) :].strip()
    opening = f"<{think_tag}>"
    reasoning = response[:cut]
    start = reasoning.find(opening)
    return (reasoning[start + len(opening) :] if start >= 0 else reasoning).strip()


def keep_end(tokenizer, text: str, max_tokens: int) -> str:
    """`text` cut to its last `max_tokens` tokens (marked by a leading "[...] " when cut)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text
    return "[...] " + tokenizer.decode(ids[len(ids) - max_tokens :], skip_special_tokens=True)


def parse_verdict(text: str) -> float:
    """1.0 when the first verdict word the judge wrote is a pass (yes/correct/pass/true), else 0.0."""
    match = _VERDICT.search(text)
    return 1.0 if match and match.group(1).lower() in _PASS else 0.0


def fill_rubric(rubric: str, row: Mapping[str, Any], response: str) -> str:
    """The judge's prompt; str.replace, not str.format, so braces in untrusted text cannot inject fields.

    `response` is already bounded (`keep_end`) by the caller, in tokens of the judge's tokenizer.
    """
    filled = rubric.replace("{prompt}", str(row.get("prompt", "")))
    filled = filled.replace("{answer}", str(row.get("answer", "")))
    return filled.replace("{response}", response)


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
        "part": part_param("summary"),
        "think_tag": THINK_TAG,
        "max_response_tokens": Param(4096, int, "the scored part's last N tokens reach the judge (the final answer is "
                                     "at the end); the rubric's prompt and reference are not cut", min=1, max=1 << 20),
    },
    doc="A generative judge: 1.0 when the judge model's verdict passes the response, else 0.0.",
)
def judge(
    completions: Sequence[str], rows: Sequence[Mapping[str, Any]], *, model: str, rubric: str, max_new_tokens: int, batch_size: int,
    part: str, think_tag: str, max_response_tokens: int,
) -> list[float]:
    import torch

    lm, tokenizer = _load(model, "lm")
    prompts = [fill_rubric(rubric, row, keep_end(tokenizer, response_part(text, part, think_tag), max_response_tokens))
               for row, text in zip(rows, completions)]
    verdicts: list[float] = []
    context = getattr(lm.config, "max_position_embeddings", 2048) - max_new_tokens
    for i in range(0, len(prompts), batch_size):
        # a rubric longer than the model's context loses its start, never the "Verdict:" the judge continues
        enc = tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True, padding_side="left", truncation=True,
                        truncation_side="left", max_length=context)
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
        "max_tokens": Param(512, int, "tokens scored: the prompt's start + the scored part's end (at least half the budget when both are long)",
                            min=2, max=1 << 20),
        "batch_size": Param(32, int, "sequences per forward pass", min=1, max=1 << 16),
        "part": part_param("whole"),
        "think_tag": THINK_TAG,
    },
    doc="A preference (reward) model's score of prompt + the response's scored part.",
)
def preference_model(
    completions: Sequence[str], rows: Sequence[Mapping[str, Any]], *, model: str, scale: str, max_tokens: int, batch_size: int,
    part: str, think_tag: str,
) -> list[float]:
    import torch

    rm, tokenizer = _load(model, "score")
    prompts = [str(row.get("prompt", "")) for row in rows]
    responses = [response_part(c, part, think_tag) for c in completions]
    scores: list[float] = []
    for i in range(0, len(prompts), batch_size):
        enc = preference_batch(tokenizer, prompts[i : i + batch_size], responses[i : i + batch_size], max_tokens)
        with torch.no_grad():
            logits = rm(**enc).logits[:, 0]
        scores += (torch.sigmoid(logits) if scale == "sigmoid" else logits).tolist()
    return scores


def preference_ids(tokenizer, prompt: str, response: str, max_tokens: int) -> list[int]:
    """How a preference model sees a pair, as token ids: `User: {prompt}\nAssistant: {response}`.

    The one layout of both the reward_model stage (training) and the `preference_model` reward (scoring).
    Bound: at most `max_tokens` ids: the tokenizer's leading special tokens, the head (prompt) cut to keep
    its START, the response cut to keep its END; when both are long the response gets at least half of
    the budget, so the summary at the end of a long chain of thought is always seen.
    """
    specials = tokenizer("", add_special_tokens=True)["input_ids"]  # BOS for Llama-style tokenizers, none for Qwen
    head = tokenizer(f"User: {prompt}\nAssistant: ", add_special_tokens=False)["input_ids"]
    body = tokenizer(response, add_special_tokens=False)["input_ids"]
    room = max(2, max_tokens - len(specials))
    head = head[: max(room - len(body), room // 2)]
    body = body[len(body) - (room - len(head)) :] if len(body) > room - len(head) else body
    return (list(specials) + head + body)[:max_tokens]


def preference_batch(tokenizer, prompts: Sequence[str], responses: Sequence[str], max_tokens: int, device=None):
    """Right-padded `input_ids` + `attention_mask` of `preference_ids` for each pair."""
    import torch

    ids = [preference_ids(tokenizer, p, r, max_tokens) for p, r in zip(prompts, responses)]
    width = max(1, max(len(x) for x in ids))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids], dtype=torch.long)
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids], dtype=torch.long)
    if device is not None:
        input_ids, mask = input_ids.to(device), mask.to(device)
    return {"input_ids": input_ids, "attention_mask": mask}
