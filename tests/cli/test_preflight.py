"""`--run` checks each stage against this machine before anything starts (r1dsl/preflight.py)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from r1dsl import preflight
from r1dsl.cli import PREFLIGHT_FAILED, main
from r1dsl.compiler import compile_recipe
from r1dsl.frontend import load_recipe

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path) -> dict:
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@pytest.mark.parametrize("flag", ["--run", "--dry-run"])
def test_paper_recipe_on_this_machine_stops_before_anything_starts(tmp_path, flag):
    run = tmp_path / "run"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "r1dsl", "compile", "recipes/deepseek_r1.r1", "-o", str(run), flag],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=_env(tmp_path))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert proc.returncode == PREFLIGHT_FAILED == 4, proc.stderr
    err = proc.stderr
    assert "Traceback" not in err and "torch.distributed" not in err
    for stage in ("cold_sft", "reasoning_rl", "r1_eval", "distill_llama_70b"):
        assert f"stage `{stage}`" in err
    assert "64 nodes x 8 GPUs" in err and "1 node with 0 GPUs" in err
    for way in ("--target slurm", "--target nemo-rl", "--smoke", "--set reasoning_rl.resources.nodes=1"):
        assert way in err
    assert "deepseek-ai/DeepSeek-V3-Base" in err and "not in the local Hugging Face cache" in err
    assert cpu < 2.0, f"the preflight took {cpu:.2f} s of CPU ({wall:.2f} s wall on a shared machine)"
    if flag == "--run":  # nothing written, so nothing started: no stage folder, no DONE, no log
        assert not run.exists()
    else:
        assert "--run would stop here" in err
        assert not any(run.glob("*/DONE")) and not any(run.glob("*/*.log"))


def test_no_process_is_started(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))

    def refuse(*a, **k):
        raise AssertionError(f"a process was started: {a}")

    monkeypatch.setattr(subprocess, "call", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    assert main(["compile", str(ROOT / "recipes" / "deepseek_r1.r1"), "-o", str(tmp_path / "run"), "--run"]) == 4
    assert "preflight" in capsys.readouterr().err


GPU_RECIPE = '''
model tiny { tiny { hidden_size = 32  num_layers = 1  num_heads = 2  intermediate_size = 64 } }
model qwen { hf = "Qwen/Qwen2.5-7B" }
dataset arith { generator = "arithmetic"  size = 16 }
dataset rows { jsonl = "rows.jsonl"  fields { response = "response" } }
reward acc { rule = "math_accuracy" }
stage small: grpo {
  from = tiny  data = arith  rewards = [acc]  template = "Q: {prompt} A:"
  grpo { steps = 1  num_prompts_per_step = 2  num_generations_per_prompt = 2  micro_batch_size = 2 }
  resources { gpus_per_node = 2 }
}
stage big: sft {
  from = qwen  data = rows
  train { steps = 1  batch_size = 8  micro_batch_size = 1 }
  resources { gpus_per_node = 8 }
}
'''


def _pipeline(tmp_path):
    path = tmp_path / "g.r1"
    path.write_text(GPU_RECIPE)
    return compile_recipe(load_recipe(str(path)), tmp_path / "run")


def _machine(tmp_path, gpus, memory=None, cached=False):
    hub = tmp_path / "hub"
    if cached:
        snap = hub / "models--Qwen--Qwen2.5-7B" / "snapshots" / "abc"
        snap.mkdir(parents=True, exist_ok=True)
        (snap / "config.json").write_text("{}")
    return preflight.Machine(gpus=gpus, gpu_memory_gb=memory, cpus=2, how="test", hub_cache=hub,
                             datasets_cache=tmp_path / "datasets")


def test_each_need_is_set_against_the_machine(tmp_path):
    pipeline = _pipeline(tmp_path)
    problems = preflight.check(pipeline, ["small", "big"], _machine(tmp_path, gpus=1))
    needs = {(p.stage, p.need.split(" (")[0]) for p in problems}
    assert ("small", "1 node x 2 GPUs") in needs  # 2 GPUs asked, 1 here
    assert ("big", "1 node x 8 GPUs") in needs
    assert ("big", "model `qwen` = hub `Qwen/Qwen2.5-7B`") in needs  # not in the (empty) cache
    assert any(p.stage == "big" and "rows.jsonl" in p.need and p.here == "no such file" for p in problems)
    small = next(p for p in problems if p.stage == "small")
    assert "--set small.resources.gpus_per_node=0   run this stage on the CPU (slow)" in small.ways  # a tiny model
    assert not any("gpus_per_node=0" in w for p in problems if p.stage == "big" for w in p.ways)  # a 7B model is not


def test_a_machine_that_fits_has_no_problems(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"prompt": "1+1", "response": "2"}\n')
    pipeline = _pipeline(tmp_path)
    assert preflight.check(pipeline, ["small", "big"], _machine(tmp_path, gpus=8, memory=141.0, cached=True)) == []
    # the same stages on GPUs too small for a 7B model with Adam: the plan's memory estimate says so
    problems = preflight.check(pipeline, ["big"], _machine(tmp_path, gpus=8, memory=4.0, cached=True))
    assert len(problems) == 1 and "GiB per GPU" in problems[0].need and problems[0].here == "4.0 GiB per GPU"


def test_only_the_stages_that_would_run_are_checked(tmp_path):
    pipeline = _pipeline(tmp_path)
    problems = preflight.check(pipeline, ["small"], _machine(tmp_path, gpus=2))
    assert problems == []


def test_cuda_visible_devices_hides_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert preflight.this_machine().gpus == 0


def test_hub_cache_follows_hf_home(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert preflight.hub_cache() == tmp_path / "hf" / "hub"


def test_tiny_recipe_passes_the_preflight(tmp_path, capsys):
    assert main(["compile", str(ROOT / "recipes" / "tiny_r1_zero.r1"), "-o", str(tmp_path / "run"), "--dry-run"]) == 0
    assert "preflight" not in capsys.readouterr().err
