"""Rerunning a pipeline: unchanged stages are skipped, changed ones and everything downstream rerun,
old outputs are archived (never deleted), and the manifest says why."""

from __future__ import annotations

import json
from pathlib import Path

from r1dsl.compiler import compile_recipe, write_run_folder
from r1dsl.frontend import load_recipe
from r1dsl.local import KEY_FILE, decide, run

RECIPE = '''
model tiny { tiny { hidden_size = 32  num_layers = 1  num_heads = 2  intermediate_size = 64  vocab_size = 320 } }
dataset corpus { generator = "corpus"  size = 64 }
dataset arith  { generator = "arithmetic"  size = 8  seed = 3 }
reward accuracy { rule = "math_accuracy" }
stage base: pretrain { from = tiny  data = corpus  train { steps = 2  batch_size = 4  max_seq_len = 64 } }
stage a: sft { from = base  data = arith_sft  train { steps = 1  batch_size = 4  max_seq_len = 64 } }
stage check: eval { from = base  data = arith  rewards = [accuracy]  sampling { samples_per_prompt = 1  max_completion_tokens = 4 } }
dataset arith_sft { generator = "chat"  size = 8 }
'''


def pipeline(tmp_path: Path, *overrides: str):
    recipe_file = tmp_path / "r.r1"
    recipe_file.write_text(RECIPE)
    p = compile_recipe(load_recipe(str(recipe_file), list(overrides)), tmp_path / "run")
    write_run_folder(p)
    return p


def finish(p, *names):
    """The state a finished run leaves: DONE and the key of the config it ran with."""
    for job in p.jobs:
        if job.stage.name in names:
            (Path(job.dir) / "DONE").write_text("{}")
            (Path(job.dir) / KEY_FILE).write_text(job.config_hash)


def plan(p, **kw):
    return {d.job.stage.name: (d.run, d.reason) for d in decide(p, **kw)}


def test_finished_unchanged_stages_are_skipped(tmp_path):
    p = pipeline(tmp_path)
    finish(p, "base", "a", "check")
    assert all(not run_ for run_, _ in plan(p).values())


def test_a_change_upstream_reruns_everything_downstream_only(tmp_path):
    finish(pipeline(tmp_path), "base", "a", "check")
    changed = pipeline(tmp_path, "a.train.steps=2")
    decisions = plan(changed)
    assert decisions["base"][0] is False
    assert decisions["a"] == (True, decisions["a"][1]) and decisions["a"][1].startswith("changed: key")
    assert decisions["check"][0] is False  # reads base, not a

    changed = pipeline(tmp_path, "base.optim.lr=1e-3")
    assert {n for n, (r, _) in plan(changed).items() if r} == {"base", "a", "check"}


def test_from_and_only_select_explicitly(tmp_path):
    p = pipeline(tmp_path)
    finish(p, "base", "a", "check")
    assert {n for n, (r, _) in plan(p, from_stage="base").items() if r} == {"base", "a", "check"}
    assert {n for n, (r, _) in plan(p, from_stage="a").items() if r} == {"a"}
    assert {n for n, (r, _) in plan(p, only="check").items() if r} == {"check"}


def test_an_interrupted_stage_with_the_same_key_resumes(tmp_path):
    p = pipeline(tmp_path)
    finish(p, "base")
    a = next(j for j in p.jobs if j.stage.name == "a")
    (Path(a.dir) / KEY_FILE).write_text(a.config_hash)  # started, never finished
    assert plan(p)["a"] == (True, "resumed from its last checkpoint")


def test_real_reruns_skip_archive_and_record_why(tmp_path, capsys):
    p = pipeline(tmp_path)
    assert run(p) == 0
    run_dir = Path(p.run_dir)
    assert all((run_dir / n / "DONE").exists() for n in ("base", "a", "check"))
    first_model = (run_dir / "a" / "model" / "model.safetensors").read_bytes()
    assert "| check |" in (run_dir / "results.md").read_text()  # the run's table, as Markdown
    assert (run_dir / "check" / "eval.md").read_text().startswith("| set | ")

    assert run(pipeline(tmp_path)) == 0  # nothing changed: nothing runs
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert {s["name"]: s["last_run"]["action"] for s in manifest["stages"]} == {"base": "skipped", "a": "skipped", "check": "skipped"}

    changed = pipeline(tmp_path, "a.optim.lr=1e-2")
    assert run(changed) == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    why = {s["name"]: s["last_run"] for s in manifest["stages"]}
    assert why["a"]["action"] == "ran" and why["a"]["reason"].startswith("changed")
    assert why["base"]["action"] == why["check"]["action"] == "skipped"
    archived = list((run_dir / ".previous").glob("a-*"))
    assert len(archived) == 1 and (archived[0] / "model" / "model.safetensors").read_bytes() == first_model
    assert (run_dir / "a" / "DONE").exists()
