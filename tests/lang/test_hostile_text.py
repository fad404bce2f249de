"""Text that reaches job scripts and command lines (hub ids, file paths, splits, SLURM settings) is one line of
printable text, and a hub id has Hugging Face's form: E005 at check time, not a failure at submit or load time."""

from __future__ import annotations

import pytest

from r1dsl.frontend import check_file

RECIPE = '''recipe r
model m {{ {model} }}
dataset d {{ {dataset} }}
stage s: sft {{ from = m  data = d  train {{ steps = 1 }}  resources {{ {resources} }} }}
'''
OK = dict(model='hf = "Qwen/Qwen2.5-0.5B"', dataset='hf = "HuggingFaceH4/ultrafeedback_binarized"  fields { response = "r" }',
          resources="")


@pytest.mark.parametrize("slot, text, message", [
    ("model", r'hf = "a\nb"', "`model m.hf` must be one line of printable text (it holds '\\n')"),
    ("model", 'hf = "Qwen/Qwen2.5 0.5B"', "`model m.hf` is not a Hugging Face repo id"),
    ("model", r'path = "/models/x\ty"', "`model m.path` must be one line of printable text (it holds '\\t')"),
    ("dataset", 'hf = "$(touch pwned)"  fields { response = "r" }', "`dataset d.hf` is not a Hugging Face repo id"),
    ("dataset", r'hf = "org/name"  split = "tr\nain"  fields { response = "r" }', "`dataset d.split` must be one line"),
    ("dataset", '''jsonl = "a\x00b.jsonl"  fields { response = "r" }''', "`dataset d.jsonl` must be one line of printable text (it holds '\\x00')"),
    ("resources", r'partition = "p\n#SBATCH --x"', "`resources.partition` must be one line"),
    ("resources", 'account = "a\x1bb"', "`resources.account` must be one line"),
    ("resources", r'container_image = "img\nx"', "`resources.container_image` must be one line"),
])
def test_text_with_control_characters_or_a_malformed_hub_id_is_refused(write, slot, text, message):
    ok = check_file(str(write("r.r1", RECIPE.format(**OK))))
    assert ok.ok, ok.diagnostics
    result = check_file(str(write("r.r1", RECIPE.format(**{**OK, slot: text}))))
    errors = [d for d in result.diagnostics if d.is_error]
    assert [d.code for d in errors] == ["E005"] and errors[0].message.startswith(message), errors
