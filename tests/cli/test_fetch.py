"""`r1dsl fetch RECIPE` on a login node fills the hub cache the offline stages read (r1dsl/hub.py).

Against a local stand-in of the hub's HTTP API (tests/cli/hub_standin.py, HF_ENDPOINT pointing at it on
127.0.0.1): the real huggingface_hub downloads, the real loaders read the result offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_standin import Hub, Repo

ROOT = Path(__file__).resolve().parents[2]

RECIPE = '''
model qwen { hf = "stand-in/tiny-qwen" }
model judge { hf = "stand-in/judge" }
dataset math { hf = "stand-in/math"  fields { prompt = "problem"  response = "answer" } }
dataset extra { hf = "stand-in/math"  fields { prompt = "problem"  answer = "answer" } }
reward acc { rule = "math_accuracy" }
stage sft_it: sft {
  from = qwen  data = math
  train { steps = 1  batch_size = 2  micro_batch_size = 1 }
}
stage eval_it: eval {
  from = sft_it  data = extra  rewards = [acc]
}
'''


def _rows(n: int) -> bytes:
    return b"".join(json.dumps({"problem": f"{i}+1", "answer": str(i + 1)}).encode() + b"\n" for i in range(n))


def _tiny_model_files(tmp_path: Path) -> dict[str, bytes]:
    """A real tiny Qwen2 checkpoint and tokenizer, as save_pretrained writes them."""
    from backends.models import build_tiny_model, build_tiny_tokenizer
    from r1dsl.ir import TinyModelConfig

    tiny = TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, vocab_size=128)
    tokenizer = build_tiny_tokenizer(tiny.vocab_size)
    model = build_tiny_model(tiny, tokenizer)
    folder = tmp_path / "saved"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _hub(tmp_path, extra: dict[str, bytes] | None = None, **kw) -> Hub:
    return Hub([Repo("model", "stand-in/tiny-qwen", {**_tiny_model_files(tmp_path), **(extra or {})}),
                Repo("dataset", "stand-in/math", {"data/train.jsonl": _rows(6), "README.md": b"# math\n"}),
                Repo("model", "stand-in/judge", {"config.json": b"{}"})], **kw)


def _fetch(tmp_path, *args, endpoint: str | None = None, offline: bool = False):
    recipe = tmp_path / "r.r1"
    recipe.write_text(RECIPE)
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HOME=str(tmp_path / "hf"),
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="5")
    env.pop("HF_HUB_OFFLINE", None)
    env["HF_ENDPOINT"] = endpoint or "http://127.0.0.1:9"  # port 9 (discard): nothing listens, no network
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-m", "r1dsl", "fetch", str(recipe), *args], capture_output=True,
                          text=True, timeout=240, cwd=ROOT, env=env), env


def test_fetch_downloads_what_the_stages_read_and_they_load_it_offline(tmp_path):
    with _hub(tmp_path) as hub:
        proc, env = _fetch(tmp_path, endpoint=hub.url)
        assert proc.returncode == 0, proc.stderr
        served = [r for r in hub.requests if r.startswith("GET /api/")]
    # the judge is declared but no stage reads it; the dataset named twice is fetched once
    assert {line.split()[1] for line in proc.stdout.splitlines()} == {"stand-in/tiny-qwen", "stand-in/math"}
    assert not any("judge" in r for r in served)
    cache = tmp_path / "hub"
    tiny = next(r for r in hub.repos if r.repo_id == "stand-in/tiny-qwen")
    assert "stand-in/tiny-qwen" in proc.stdout and tiny.sha in proc.stdout  # the resolved commit is reported
    assert (cache / "models--stand-in--tiny-qwen" / "refs" / "main").read_text() == tiny.sha
    # the stages' own loaders, offline, read what fetch wrote
    probe = ("from backends.models import load_policy; from backends.data.loading import load_rows;"
             "from r1dsl.config import InitConfig, DatasetConfig;"
             "m, t = load_policy(InitConfig(source='hf', path='stand-in/tiny-qwen'));"
             "rows = load_rows(DatasetConfig(name='math', source='hf', path='stand-in/math', split='train',"
             " fields={'prompt': 'problem'}, provides=('prompt', 'answer')));"
             "print(type(m).__name__, len(rows), rows[0]['prompt'])")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=240, cwd=ROOT,
                            env=dict(env, HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9"))
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.split() == ["Qwen2ForCausalLM", "6", "0+1"]


def test_compile_records_the_cached_revisions_in_the_manifest(tmp_path):
    with _hub(tmp_path) as hub:
        proc, env = _fetch(tmp_path, endpoint=hub.url)
        assert proc.returncode == 0, proc.stderr
        shas = {r.repo_id: r.sha for r in hub.repos}
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "r1dsl", "compile", str(tmp_path / "r.r1"), "-o", str(run)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    pins = json.loads((run / "manifest.json").read_text())["hub"]
    assert {(p["kind"], p["repo_id"], p["revision"]) for p in pins} == {
        ("model", "stand-in/tiny-qwen", shas["stand-in/tiny-qwen"]), ("dataset", "stand-in/math", shas["stand-in/math"])}


def test_an_interrupted_download_resumes(tmp_path):
    # huggingface_hub writes in 10 MiB chunks: a 12 MiB file cut off after 11 MiB has 10 MiB on disk to resume from
    big = os.urandom(12 << 20)
    with _hub(tmp_path, extra={"shard-2.bin": big}, fail_after=11 << 20) as hub:
        first, _ = _fetch(tmp_path, endpoint=hub.url)
        second, _ = _fetch(tmp_path, endpoint=hub.url)
        resumed = [r for r in hub.requests if "shard-2.bin Range: bytes=" in r and not r.endswith("bytes=0-")]
    assert first.returncode in (0, 1) and "Traceback" not in first.stderr
    assert second.returncode == 0, second.stderr
    assert resumed, "the rest of the cut-off file was asked for, not all of it again"
    snap = next((tmp_path / "hub" / "models--stand-in--tiny-qwen" / "snapshots").iterdir())
    assert (snap / "shard-2.bin").read_bytes() == big


@pytest.mark.parametrize("how", ["no network", "offline flag"])
def test_without_network_it_lists_what_is_missing(tmp_path, how):
    if how == "no network":
        proc, _ = _fetch(tmp_path)
    else:
        proc, _ = _fetch(tmp_path, "--offline")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    err = proc.stderr
    assert "2 of the recipe's hub repositories are not in the cache" in err
    assert "model stand-in/tiny-qwen" in err and "dataset stand-in/math" in err
    assert "r1dsl fetch" in err and "login node" in err


def test_what_was_fetched_is_reported_cached_offline(tmp_path):
    with _hub(tmp_path) as hub:
        assert _fetch(tmp_path, endpoint=hub.url)[0].returncode == 0
    proc, _ = _fetch(tmp_path, offline=True)
    assert proc.returncode == 0, proc.stderr
    assert "missing" not in proc.stdout and proc.stdout.count("\n") == 2


def test_a_recipe_with_nothing_on_the_hub(tmp_path):
    recipe = tmp_path / "t.r1"
    recipe.write_text((ROOT / "recipes" / "tiny_r1_zero.r1").read_text())
    proc = subprocess.run([sys.executable, "-m", "r1dsl", "fetch", str(recipe)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0 and "read nothing from the hub" in proc.stdout


def test_the_paper_recipe_lists_its_models_and_datasets(tmp_path):
    from r1dsl.frontend import load_recipe
    from r1dsl.hub import hub_refs

    refs = {(r.kind, r.repo_id) for r in hub_refs(load_recipe(str(ROOT / "recipes" / "deepseek_r1.r1")))}
    assert ("model", "deepseek-ai/DeepSeek-V3-Base") in refs and ("dataset", "open-r1/OpenR1-Math-220k") in refs
    assert ("dataset", "HuggingFaceH4/MATH-500") in refs
