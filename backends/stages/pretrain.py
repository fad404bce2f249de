"""`pretrain`: next-token prediction on the `text` rows of the stage's datasets (the tiny base).

Documents are tokenized, each followed by EOS, and packed whole into sequences of at most
`max_seq_len` tokens (a document is never split, so a conversation keeps its prompt in context;
longer documents are cut). The loss covers every real token.
"""

from __future__ import annotations

from backends.data.loading import DataError, load_rows
from backends.models import load_policy
from backends.stages.lm import Example, train_save_evaluate
from backends.trainer import StageRun


def pack_documents(token_lists: list[list[int]], max_seq_len: int) -> list[list[int]]:
    """Greedy first-fit in order: consecutive whole documents per sequence, each sequence <= max_seq_len."""
    sequences: list[list[int]] = []
    current: list[int] = []
    for doc in token_lists:
        doc = doc[:max_seq_len]
        if current and len(current) + len(doc) > max_seq_len:
            sequences.append(current)
            current = []
        current = current + doc
    if current:
        sequences.append(current)
    return sequences


def build_examples(texts: list[str], tokenizer, max_seq_len: int) -> list[Example]:
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    docs = [ids + [tokenizer.eos_token_id] for ids in encoded]
    return [(seq, seq) for seq in pack_documents(docs, max_seq_len)]


def run(cfg) -> dict[str, float]:
    run = StageRun(cfg)
    rows = [row for dataset in cfg.model.data.train for row in load_rows(dataset)]
    texts = [row["text"] for row in rows if "text" in row]
    if not texts:
        raise DataError(f"{cfg.name}: pretrain needs rows with a `text` field")
    model, tokenizer = load_policy(cfg.model.init, "cpu", run.precision)
    examples = build_examples(texts, tokenizer, int(cfg.model.train.max_seq_len))
    n_params = sum(p.numel() for p in model.parameters())
    run.print(f"[{cfg.name}] {n_params / 1e6:.2f}M parameters, {len(texts)} documents packed into {len(examples)} sequences")

    return train_save_evaluate(run, model, tokenizer, examples)
