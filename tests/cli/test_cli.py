"""The `r1dsl` command: exit codes, output formats, compile output, and a torch-free `check`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from r1dsl.cli import main
from r1dsl.codes import CODES

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*.r1"))
GOOD = '''model m { tiny { hidden_size = 32 } }
dataset arith { generator = "arithmetic"  size = 20 }
dataset arith_test { generator = "arithmetic"  size = 5  seed = 1 }
reward accuracy { rule = "math_accuracy" }
reward format { rule = "format" }
template t = "Q: {prompt} A:"
stage zero: grpo {  # the only stage
  from = m  data = arith  template = t  rewards = [accuracy, format]
  grpo { num_prompts_per_step = 2  num_generations_per_prompt = 4  steps = 2 }
  eval = arith_test
}
stage rs: rejection_sample { from = zero  data = arith  template = t  rewards = [accuracy, format] }
stage tuned: sft { from = zero  data = rs  template = t  train { steps = 2  batch_size = 4 } }
'''


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.r1"
    path.write_text(GOOD)
    return path


def test_check_ok_exits_0(good, capsys):
    assert main(["check", str(good)]) == 0
    assert "0 errors, 0 warnings" in capsys.readouterr().out


def test_check_recipe_error_exits_1_with_caret(tmp_path, capsys):
    bad = tmp_path / "bad.r1"
    bad.write_text(GOOD.replace("rewards = [accuracy, format]\n  grpo", "rewards = [acuracy, format]\n  grpo"))
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:8:52: error[E002]: unknown reward `acuracy`" in out
    assert "^^^^^^^" in out and "help: did you mean `accuracy`?" in out


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.r1")]) == 2
    with pytest.raises(SystemExit) as e:
        main(["check"])
    assert e.value.code == 2
    assert main(["explain", "E999"]) == 2


def test_json_and_github_formats(tmp_path, capsys):
    bad = tmp_path / "bad.r1"
    bad.write_text(GOOD.replace("steps = 2 }", "steps = 0 }", 1))
    assert main(["check", "--format", "json", str(bad)]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["code"] == "E005" and rows[0]["line"] == 9 and rows[0]["severity"] == "error"
    assert main(["check", "--format", "github", str(bad)]) == 1
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"::error file={bad},line=9,col=") and "title=E005::" in line


@pytest.mark.parametrize("code", sorted(CODES))
def test_explain_every_code(code, capsys):
    assert main(["explain", code]) == 0
    assert code in capsys.readouterr().out


def test_every_code_used_in_the_source_is_documented():
    import re

    used = set()
    for path in (ROOT / "r1dsl").rglob("*.py"):
        if path.name != "codes.py":
            used |= set(re.findall(r'"([EW]\d{3})"', path.read_text()))
    assert used == set(CODES)


def test_fmt_check_and_write(tmp_path, capsys):
    path = tmp_path / "x.r1"
    path.write_text("model m{tiny{}}\n")
    assert main(["fmt", "--check", str(path)]) == 1
    assert main(["fmt", str(path)]) == 0
    assert path.read_text() == "model m { tiny {} }\n"
    assert main(["fmt", "--check", str(path)]) == 0


def test_graph_mermaid_and_dot(good, capsys):
    assert main(["graph", str(good)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart LR") and "m --> zero" in out and "rs -. data .-> tuned" in out
    assert main(["graph", "--format", "dot", str(good)]) == 0
    assert '"zero" -> "rs";' in capsys.readouterr().out


def test_compile_writes_the_run_folder(good, tmp_path, capsys):
    from omegaconf import OmegaConf

    run = tmp_path / "run"
    assert main(["compile", str(good), "-o", str(run), "--set", "zero.grpo.kl_penalty=0.01"]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["order"] == ["zero", "rs", "tuned"]
    tuned = manifest["stages"][2]
    assert tuned["after"] == ["zero", "rs"] and len(tuned["config_hash"]) == 64
    assert str(run / "rs" / "data.jsonl") in tuned["inputs"]
    cfg = OmegaConf.load(run / "zero" / "config.yaml")
    assert cfg.kind == "grpo" and cfg.model.grpo.kl_penalty == 0.01
    assert cfg.trainer.accelerator == "cpu" and cfg.trainer.max_steps == 2
    assert cfg.model.data.train[0].rewards == ["accuracy", "format"]
    assert cfg.exp_manager.exp_dir == str(run / "zero")
    sft = OmegaConf.load(run / "tuned" / "config.yaml")
    assert sft.model.init.source == "stage" and sft.model.init.path == str(run / "zero" / "model")
    assert sft.model.data.train[0].path == str(run / "rs" / "data.jsonl")
    launch = (run / "zero" / "launch.sh").read_text()
    assert "-m backends.run_stage" in launch and str(run / "zero" / "config.yaml") in launch
    assert "bash " in (run / "run_pipeline.sh").read_text()


def test_compile_dry_run_prints_commands(good, tmp_path, capsys):
    assert main(["compile", str(good), "-o", str(tmp_path / "run"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("-m backends.run_stage") == 3


def test_config_hash_changes_with_the_config_and_its_inputs(good, tmp_path, capsys):
    def hashes(*sets):
        run = tmp_path / "h"
        main(["compile", str(good), "-o", str(run), *[a for s in sets for a in ("--set", s)]])
        return {s["name"]: s["config_hash"] for s in json.loads((run / "manifest.json").read_text())["stages"]}

    a, b = hashes(), hashes("rs.sampling.temperature=0.9")
    assert a["zero"] == b["zero"] and a["rs"] != b["rs"] and a["tuned"] != b["tuned"]  # downstream re-keyed


def test_unavailable_target_is_a_clear_usage_error(good, tmp_path, capsys, monkeypatch):
    import r1dsl.cli as cli

    monkeypatch.setattr(cli, "_target", lambda name: f"target `{name}` is not available: test")
    assert main(["compile", str(good), "-o", str(tmp_path / "r"), "--target", "slurm"]) == 2
    assert "not available" in capsys.readouterr().err


def test_internal_errors_exit_3_without_traceback(good, capsys, monkeypatch):
    import r1dsl.cli as cli

    def boom(args):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli, "cmd_check", boom)
    assert main(["check", str(good)]) == 3
    err = capsys.readouterr().err
    assert "internal error" in err and "Traceback" not in err


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_shipped_recipe_compiles_to_yaml_omegaconf_loads(path, tmp_path):
    from omegaconf import OmegaConf

    from r1dsl.compiler import compile_recipe, write_run_folder
    from r1dsl.frontend import check_file

    result = check_file(str(path))
    if not result.ok:
        pytest.fail("\n".join(d.message for d in result.diagnostics if d.is_error))
    pipeline = compile_recipe(result.recipe, tmp_path / "run")
    write_run_folder(pipeline)
    for job in pipeline.jobs:
        cfg = OmegaConf.load(Path(job.dir) / "config.yaml")
        assert cfg.name == job.stage.name and cfg.exp_manager.run_dir == str(tmp_path / "run")
        assert OmegaConf.to_container(cfg, resolve=True)


def test_check_imports_no_torch():
    code = (
        "import sys\n"
        "from r1dsl.cli import main\n"
        f"main(['check', {str(RECIPES[0]) if RECIPES else ''!r}])\n"
        "heavy = [m for m in ('torch', 'transformers', 'lightning') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "r1dsl", "explain", "E009"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "batch arithmetic" in proc.stdout


def test_local_run_streams_stages_in_order_then_prints_results(good, tmp_path, capsys, monkeypatch):
    """--run with a stand-in for backends.run_stage: each stage writes DONE and its metrics."""
    import r1dsl.local as local

    script = (
        "import json, pathlib, sys; cfg = pathlib.Path(sys.argv[1]); d = cfg.parent; (d / 'DONE').write_text('');"
        "r = d.parent / 'results.json'; old = json.loads(r.read_text()) if r.exists() else {};"
        "old[d.name] = {'pass@1': 0.5, 'pass@1_se': 0.25}; r.write_text(json.dumps(old)); print('ran', d.name)"
    )
    monkeypatch.setattr(local, "command", lambda job: [sys.executable, "-c", script, str(Path(job.dir) / "config.yaml")])
    run = tmp_path / "run"
    assert main(["compile", str(good), "-o", str(run), "--run"]) == 0
    out = capsys.readouterr().out
    assert out.index("== stage zero") < out.index("== stage rs") < out.index("== stage tuned")
    assert "pass@1" in out and "0.5 ±0.25" in out
    assert main(["compile", str(good), "-o", str(run), "--run"]) == 0  # second time: everything skipped
    assert out.count("skipped") == 0 and capsys.readouterr().out.count("skipped") == 3


def test_a_distill_job_named_before_its_stage_runs_after_it(tmp_path):
    from r1dsl.frontend import check_file

    path = tmp_path / "o.r1"
    path.write_text('model a { tiny {} }\ndataset chat { generator = "chat" }\ndataset arith { generator = "arithmetic" }\n'
                    'reward f { rule = "format" }\n'
                    'stage e: eval { from = distill_a  data = arith  template = "Q: {prompt}"  rewards = [f] }\n'
                    'stage distill: distill { data = chat  students { a { lr = 1e-3 } } }\n')
    recipe = check_file(str(path)).recipe
    assert [s.name for s in recipe.stages] == ["distill_a", "e"]
    assert recipe.stage("e").after == ("distill_a",)


def test_plan_exits_1_when_a_stage_cannot_fit(capsys):
    recipe = str(Path(__file__).resolve().parents[2] / "recipes" / "deepseek_r1_zero.r1")
    assert main(["plan", recipe]) == 0
    assert main(["plan", recipe, "--set", "r1_zero.grpo.micro_batch_size=32"]) == 1
    assert "GiB per GPU, more than 80" in capsys.readouterr().out
