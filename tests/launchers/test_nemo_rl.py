"""The NeMo-RL target against NeMo-RL v0.7.0 itself: its config types, its setup asserts, its scripts.

The reference files live in third_party/nemo_rl_v0_7_0 (copied unchanged, Apache-2.0). Every
emitted config is validated as `examples/run_grpo.py` validates it (`MasterConfig(**config)` after
resolving), checked for keys neither NeMo-RL's types nor its example config know, and passed through
the setup asserts of grpo.py and lm_policy.py (`nemo_rl_types.setup_errors`).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import warnings
from dataclasses import replace
from pathlib import Path

import jinja2
import pytest
import yaml
from omegaconf import OmegaConf

import nemo_rl_types
from backends.launchers import nemo_rl, slurm
from handmade import ACCURACY, grpo_stage, make_pipeline, make_recipe, r1_like
from r1dsl.ir import GRPO, Dataset, Model, Optim, Resources, Rollout, Stage, Template, Train
from test_slurm import shellcheck

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = nemo_rl_types.FIXTURE
REFERENCE = Path("/work/shared/reference/nemo-rl-v0.7.0/src")  # the full release, where this machine has it
ON = {"account": "acct", "partition": "gpu"}


@pytest.fixture(autouse=True)
def compile_env(monkeypatch):
    """No compile-machine settings leak in from the environment; the run script's step counts are set."""
    for name in ("NEMO_RL_CONTAINER", "NEMO_RL_DIR", "NEMO_RL_BF16_DIR", "R1DSL_WANDB_PROJECT", "SBATCH_ACCOUNT",
                 "SBATCH_PARTITION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("R1DSL_TOTAL_STEPS", "40")  # what nemo_rl_run.sh exports for epoch-based SFT
    monkeypatch.setenv("R1DSL_DECAY_STEPS", "39")


def bf16_dir(folder: Path) -> str:
    """A NEMO_RL_BF16_DIR holding (a stand-in of) the BF16 conversions the DeepSeek recipes read."""
    for name in ("DeepSeek-V3-Base-BF16", "DeepSeek-V3-BF16"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / "config.json").write_text("{}")
    return str(folder)


def _resolvers() -> None:
    with warnings.catch_warnings():  # NeMo-RL registers these at start-up (nemo_rl/utils/config.py)
        warnings.simplefilter("ignore")
        for name, fn in (("mul", lambda a, b: a * b), ("div", lambda a, b: a / b), ("max", lambda a, b: max(a, b))):
            if not OmegaConf.has_resolver(name):
                OmegaConf.register_new_resolver(name, fn)


def resolved(source) -> dict:
    _resolvers()
    cfg = OmegaConf.load(source) if isinstance(source, (str, Path)) else OmegaConf.create(source)
    return OmegaConf.to_container(cfg, resolve=True)


def example(algorithm: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(FIXTURE / "examples/configs" / nemo_rl.REFERENCE_CONFIGS[algorithm]))


def validate(path: Path, algorithm: str) -> dict:
    """Load an emitted config as NeMo-RL does and fail on anything NeMo-RL would reject."""
    cfg = resolved(path)
    nemo_rl_types.master_config(algorithm, cfg)  # pydantic: required keys and types
    assert nemo_rl_types.undeclared_keys(algorithm, cfg, example(algorithm)) == [], path
    assert nemo_rl_types.setup_errors(algorithm, cfg) == [], path
    return cfg


def on_cluster(pipeline_or_recipe):
    """Every stage with an account and a partition (ray.sub needs both)."""
    recipe = pipeline_or_recipe
    stages = tuple(replace(s, resources=replace(s.resources, **ON)) for s in recipe.stages)
    return replace(recipe, stages=stages)


def pipeline_of(stages, tmp_path, **recipe_changes):
    recipe = replace(make_recipe([replace(s, resources=replace(s.resources, **ON)) for s in stages]), **recipe_changes)
    return make_pipeline(recipe, tmp_path, "nemo-rl")


def nemo_configs(pipeline):
    for job in pipeline.jobs:
        if nemo_rl.runs_on_nemo_rl(job):
            yield job, Path(job.dir) / "nemo_rl.yaml", nemo_rl.NEMO_KINDS[job.stage.kind]


# ---------------------------------------------------------------- the reference itself


def test_shipped_copies_are_the_v0_7_0_files():
    pairs = [(nemo_rl.RAY_SUB, FIXTURE / "ray.sub")]
    pairs += [(nemo_rl.REFERENCE_DIR / n, FIXTURE / "examples/configs" / n) for n in ("grpo_math_1B.yaml", "sft.yaml")]
    for ours, theirs in pairs:
        assert ours.read_text().endswith(theirs.read_text()), ours  # our copies add a leading comment only
    if REFERENCE.exists():
        for path in FIXTURE.rglob("*"):
            if path.is_file() and path.name != "NOTICE.md":
                assert path.read_bytes() == (REFERENCE / path.relative_to(FIXTURE)).read_bytes(), path


def test_the_validator_accepts_nemo_rls_own_examples_and_rejects_what_it_would():
    for algorithm in ("grpo", "sft"):
        cfg = resolved(FIXTURE / "examples/configs" / nemo_rl.REFERENCE_CONFIGS[algorithm])
        nemo_rl_types.master_config(algorithm, cfg)
        assert nemo_rl_types.setup_errors(algorithm, cfg) == []
    cfg = resolved(FIXTURE / "examples/configs/grpo_math_1B.yaml")
    from pydantic import ValidationError

    broken = {**cfg, "grpo": {k: v for k, v in cfg["grpo"].items() if k != "max_num_epochs"}}
    with pytest.raises(ValidationError, match="max_num_epochs"):
        nemo_rl_types.master_config("grpo", broken)
    typo = {**cfg, "grpo": {**cfg["grpo"], "group_size": 8}}
    assert nemo_rl_types.undeclared_keys("grpo", typo, example("grpo")) == ["grpo.group_size"]
    across = resolved(cfg)
    across["cluster"].update(num_nodes=2)
    across["policy"]["generation"]["colocated"].update(enabled=False, resources={"gpus_per_node": None, "num_nodes": 1})
    assert any("equal to cluster.gpus_per_node" in e for e in nemo_rl_types.setup_errors("grpo", across))


def argparse_options(script: Path) -> set[str]:
    """The option strings a NeMo-RL script's argparse accepts (read from its source)."""
    found = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            found |= {a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("-")}
    return found


def invoked_scripts(run_script: Path) -> list[tuple[str, list[str]]]:
    """(script, its options) for every `uv run ... python SCRIPT ...` of a run script."""
    text = run_script.read_text().replace("\\\n", " ")
    calls = []
    for line in text.splitlines():
        words = shlex.split(line.strip(), comments=True) if line.strip().startswith("uv run") else []
        if "python" in words and len(words) > words.index("python") + 1 and words[words.index("python") + 1] != "-c":
            rest = words[words.index("python") + 1:]
            calls.append((rest[0], [w for w in rest[1:] if w.startswith("--")]))
    return calls


# ---------------------------------------------------------------- the proof: shipped recipes


@pytest.mark.parametrize("name", ["deepseek_r1", "deepseek_r1_zero", "tiny_r1"])
def test_compiled_recipes_load_into_nemo_rls_master_config_and_pass_its_setup_asserts(name, tmp_path, monkeypatch):
    from r1dsl.compiler import compile_recipe
    from r1dsl.frontend import load_recipe

    monkeypatch.setenv("NEMO_RL_BF16_DIR", bf16_dir(tmp_path / "bf16"))
    recipe = on_cluster(load_recipe(str(ROOT / "recipes" / f"{name}.r1")))
    pipeline = compile_recipe(recipe, str(tmp_path / "run"), "nemo-rl")
    assert nemo_rl.refusals(pipeline) == []
    written = nemo_rl.emit(pipeline)
    checked = 0
    for job, path, algorithm in nemo_configs(pipeline):
        cfg = validate(path, algorithm)
        if algorithm == "grpo":
            assert nemo_rl.batch_arithmetic(cfg)
            assert cfg["grpo"]["max_num_epochs"] * 1 >= cfg["grpo"]["max_num_steps"]
        backend = "megatron" if cfg["policy"]["megatron_cfg"]["enabled"] else "dtensor"
        for script, options in invoked_scripts(Path(job.dir) / "nemo_rl_run.sh"):
            assert (FIXTURE / script).exists(), script  # the entry point or converter exists in v0.7.0
            assert set(options) <= argparse_options(FIXTURE / script), (script, options)
            if "converters" in script:
                assert script == nemo_rl.CONVERTERS[backend]
        checked += 1
    assert checked == {"deepseek_r1": 10, "deepseek_r1_zero": 1, "tiny_r1": 7}[name]
    shellcheck(written)


def test_the_papers_rollout_split_reaches_nemo_rl_which_counts_rollouts(tmp_path, monkeypatch):
    """R1-Zero [NAT Methods]: 512 questions x 16 per rollout, 16 optimizer steps of 512 outputs, 10,400 optimizer
    steps; NeMo-RL v0.7.0 splits its rollout by train_global_batch_size and counts steps, checkpoints and its lr
    scheduler (dtensor and megatron: once per train() call) in rollouts."""
    from r1dsl.compiler import compile_recipe
    from r1dsl.frontend import load_recipe

    monkeypatch.setenv("NEMO_RL_BF16_DIR", bf16_dir(tmp_path / "bf16"))
    recipe = on_cluster(load_recipe(str(ROOT / "recipes" / "deepseek_r1_zero.r1")))
    pipeline = compile_recipe(recipe, str(tmp_path), "nemo-rl")
    nemo_rl.emit(pipeline)
    cfg = validate(tmp_path / "r1_zero" / "nemo_rl.yaml", "grpo")
    assert (cfg["grpo"]["num_prompts_per_step"], cfg["grpo"]["num_generations_per_prompt"]) == (512, 16)
    assert cfg["policy"]["train_global_batch_size"] == 512  # 8,192 / 512 = 16 optimizer steps per rollout
    assert cfg["grpo"]["max_num_steps"] == 650  # 10,400 optimizer steps / 16
    assert cfg["checkpointing"]["save_period"] == 25  # checkpoint_every = 400 optimizer steps
    assert cfg["policy"]["megatron_cfg"]["scheduler"]["lr_decay_iters"] == 650


def test_deepseek_v3_follows_nemo_rls_own_recipe(tmp_path, monkeypatch):
    from r1dsl.compiler import compile_recipe
    from r1dsl.frontend import load_recipe

    bf16 = bf16_dir(tmp_path / "ckpt" / "bf16")
    monkeypatch.setenv("NEMO_RL_BF16_DIR", bf16)
    recipe = on_cluster(load_recipe(str(ROOT / "recipes" / "deepseek_r1_zero.r1")))
    pipeline = compile_recipe(recipe, str(tmp_path / "run"), "nemo-rl")
    nemo_rl.emit(pipeline)
    cfg = validate(tmp_path / "run" / "r1_zero" / "nemo_rl.yaml", "grpo")
    theirs = yaml.safe_load((FIXTURE / "examples/configs/recipes/llm/grpo-dapomath17k-dsv3-megatron.yaml").read_text())
    ours_m, theirs_m = cfg["policy"]["megatron_cfg"], theirs["policy"]["megatron_cfg"]
    assert cfg["policy"]["model_name"] == f"{bf16}/DeepSeek-V3-Base-BF16"  # docs/guides/deepseek.md's conversion
    assert ours_m["enabled"] and not cfg["policy"]["dtensor_cfg"]["enabled"]
    # 61 layers over 8 pipeline stages, as NeMo-RL splits them
    assert (ours_m["num_layers_in_first_pipeline_stage"], ours_m["num_layers_in_last_pipeline_stage"]) == (
        theirs_m["num_layers_in_first_pipeline_stage"], theirs_m["num_layers_in_last_pipeline_stage"]) == (7, 6)
    assert 256 % ours_m["expert_model_parallel_size"] == 0 and ours_m["expert_model_parallel_size"] >= 32
    for key in ("activation_checkpointing", "sequence_parallel", "apply_rope_fusion", "moe_enable_deepep",
                "moe_token_dispatcher_type"):
        assert ours_m[key] == theirs_m[key], key
    vllm = cfg["policy"]["generation"]["vllm_cfg"]
    assert vllm["tensor_parallel_size"] == theirs["policy"]["generation"]["vllm_cfg"]["tensor_parallel_size"] == 32
    assert vllm["async_engine"] is True
    assert cfg["policy"]["generation"]["vllm_kwargs"] == theirs["policy"]["generation"]["vllm_kwargs"]
    run = (tmp_path / "run" / "r1_zero" / "nemo_rl_run.sh").read_text()
    assert "uv run --extra mcore python examples/converters/convert_megatron_to_hf.py" in run
    mounts = re.search(r"MOUNTS=(\S+)", (tmp_path / "run" / "submit.sh").read_text()).group(1)
    assert f"{bf16}:{bf16}" in mounts.split(",")


def test_fp8_deepseek_weights_are_refused_without_the_bf16_conversion(tmp_path):
    from r1dsl.compiler import compile_recipe
    from r1dsl.frontend import load_recipe

    recipe = on_cluster(load_recipe(str(ROOT / "recipes" / "deepseek_r1_zero.r1")))
    pipeline = compile_recipe(recipe, str(tmp_path), "nemo-rl")
    found = [str(r) for r in nemo_rl.refusals(pipeline)]
    assert len(found) == 1 and "FP8" in found[0] and "docs/guides/deepseek.md" in found[0]
    assert found[0].startswith(f"{recipe.file}:")  # points at the stage in the recipe
    with pytest.raises(nemo_rl.TargetError):
        nemo_rl.emit(pipeline)


def test_a_missing_bf16_conversion_is_refused_at_compile_time(tmp_path, monkeypatch):
    from r1dsl.compiler import compile_recipe
    from r1dsl.frontend import load_recipe

    monkeypatch.setenv("NEMO_RL_BF16_DIR", str(tmp_path / "nowhere"))
    recipe = on_cluster(load_recipe(str(ROOT / "recipes" / "deepseek_r1_zero.r1")))
    pipeline = compile_recipe(recipe, str(tmp_path / "run"), "nemo-rl")
    found = [str(r) for r in nemo_rl.refusals(pipeline)]
    assert len(found) == 1 and str(tmp_path / "nowhere" / "DeepSeek-V3-Base-BF16") in found[0], found
    assert "config.json" in found[0] and "NEMO_RL_BF16_DIR" in found[0]
    bf16_dir(tmp_path / "nowhere")
    assert nemo_rl.refusals(compile_recipe(recipe, str(tmp_path / "run"), "nemo-rl")) == []


def test_a_missing_hf_cache_folder_is_not_mounted(tmp_path, monkeypatch):
    pipeline = make_pipeline(on_cluster(r1_like(tmp_path).recipe), tmp_path / "run", "nemo-rl")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "no-hf-cache"))
    assert str(tmp_path / "no-hf-cache") not in nemo_rl.mounts(pipeline, list(nemo_rl.translations(pipeline).values()))
    (tmp_path / "no-hf-cache").mkdir()
    assert str(tmp_path / "no-hf-cache") in nemo_rl.mounts(pipeline, list(nemo_rl.translations(pipeline).values()))


def test_our_backends_stages_get_the_sbatch_account_and_partition_of_the_compile_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SBATCH_ACCOUNT", "proj7")
    monkeypatch.setenv("SBATCH_PARTITION", "batch")
    pipeline = make_pipeline(r1_like(tmp_path).recipe, tmp_path / "run", "nemo-rl")
    nemo_rl.emit(pipeline)
    ours = [job for job in pipeline.jobs if not nemo_rl.runs_on_nemo_rl(job)]
    assert ours
    for job in ours:
        text = (Path(job.dir) / "job.sbatch").read_text()
        assert "#SBATCH --account=proj7" in text and "#SBATCH --partition=batch" in text, job.stage.name


@pytest.mark.parametrize("odd", ["a,b", "a:b"])
def test_a_run_folder_a_container_mount_list_cannot_name_is_refused(tmp_path, odd):
    base = on_cluster(r1_like(tmp_path).recipe)
    rs = next(s for s in base.stages if s.kind == "rejection_sample")  # runs on our backend under either target
    recipe = replace(base, stages=tuple(replace(s, resources=replace(s.resources, container_image="img.sqsh"))
                                        if s is rs else s for s in base.stages))
    for target in (nemo_rl, slurm):
        pipeline = make_pipeline(recipe, tmp_path / odd, target.__name__.rsplit(".", 1)[-1].replace("_", "-"))
        found = [str(r) for r in target.refusals(pipeline)]
        assert any("--container-mounts" in f and str(tmp_path / odd) in f for f in found), (target, found)


# ---------------------------------------------------------------- keys and values


@pytest.fixture
def emitted(tmp_path):
    pipeline = make_pipeline(on_cluster(r1_like(tmp_path).recipe), tmp_path, "nemo-rl")
    return pipeline, nemo_rl.emit(pipeline)


def test_every_emitted_config_is_valid_for_nemo_rl(emitted):
    pipeline, _ = emitted
    configs = list(nemo_configs(pipeline))
    assert {p.parent.name for _, p, _ in configs} == {"zero", "students_qwen_1_5b", "students_llama_8b"}
    for _, path, algorithm in configs:
        validate(path, algorithm)


def test_grpo_keys_carry_the_recipe_values(emitted):
    pipeline, _ = emitted
    cfg = resolved(Path(pipeline.run_dir) / "zero" / "nemo_rl.yaml")
    g = pipeline.recipe.stage("zero").grpo
    assert cfg["grpo"]["num_prompts_per_step"] == g.num_prompts_per_step == 32
    assert cfg["grpo"]["num_generations_per_prompt"] == g.num_generations_per_prompt == 16
    assert cfg["policy"]["train_global_batch_size"] == 32 * 16 and nemo_rl.batch_arithmetic(cfg)
    assert cfg["grpo"]["max_num_steps"] == g.steps
    assert cfg["grpo"]["max_num_epochs"] >= g.steps  # R1-Zero's 10,400 steps are 1.6 epochs: never stop early
    assert cfg["grpo"]["use_leave_one_out_baseline"] is False and cfg["grpo"]["normalize_rewards"] is True
    loss = cfg["loss_fn"]
    assert (loss["reference_policy_kl_penalty"], loss["reference_policy_kl_type"]) == (0.001, "k3")
    assert (loss["ratio_clip_min"], loss["ratio_clip_max"], loss["token_level_loss"]) == (0.2, 0.2, False)
    policy = cfg["policy"]
    assert policy["model_name"] == "Qwen/Qwen2.5-Math-7B"
    assert policy["train_micro_batch_size"] == 4
    assert policy["max_total_sequence_length"] == 256 + 1024
    assert policy["optimizer"]["kwargs"]["lr"] == 3e-6
    gen = policy["generation"]
    assert (gen["temperature"], gen["top_p"], gen["max_new_tokens"]) == (1.0, 1.0, 1024)
    assert policy["dtensor_cfg"]["tensor_parallel_size"] == 2 and policy["dtensor_cfg"]["enabled"]
    assert (cfg["cluster"]["num_nodes"], cfg["cluster"]["gpus_per_node"]) == (2, 8)
    run_dir = Path(pipeline.run_dir)
    assert cfg["checkpointing"]["checkpoint_dir"] == str(run_dir / "zero" / "checkpoints")
    assert cfg["logger"]["log_dir"] == str(run_dir / "zero" / "logs") and cfg["logger"]["wandb_enabled"] is False
    assert cfg["data"]["default"]["env_name"] == "math"
    train = cfg["data"]["train"]
    assert train["data_path"] == str(run_dir / "zero" / "train_arith.jsonl") and train["output_key"] == "answer"
    rows = (run_dir / "zero" / "train_arith.jsonl").read_text().splitlines()
    assert len(rows) == 400 and set(yaml.safe_load(rows[0])) >= {"prompt", "answer"}


def test_sft_students_chain_from_rejection_sampling_with_a_schedule_sized_by_epochs(emitted):
    pipeline, _ = emitted
    run_dir = Path(pipeline.run_dir)
    for student, model, lr in (("qwen_1_5b", "Qwen/Qwen2.5-Math-1.5B", 1e-4), ("llama_8b", "meta-llama/Llama-3.1-8B", 5e-5)):
        cfg = resolved(run_dir / f"students_{student}" / "nemo_rl.yaml")  # R1DSL_TOTAL_STEPS=40, DECAY=39
        assert cfg["policy"]["model_name"] == model
        assert cfg["policy"]["optimizer"]["kwargs"]["lr"] == lr
        assert cfg["policy"]["train_global_batch_size"] == 64 and cfg["policy"]["train_micro_batch_size"] == 1
        assert cfg["sft"]["max_num_epochs"] == 2 and cfg["sft"]["max_num_steps"] == 40
        assert cfg["policy"]["megatron_cfg"]["scheduler"]["lr_decay_iters"] == 40
        assert cfg["policy"]["scheduler"][1]["kwargs"]["T_max"] == 39
        assert cfg["data"]["train"]["data_path"] == str(run_dir / "rs" / "data.jsonl")
        assert cfg["data"]["train"]["output_key"] == "response"


def run_stub_env(tmp_path: Path, monkeypatch, fail_convert_once: bool = False) -> Path:
    """`uv` stand-in: records each call, fakes training (a checkpoint in the backend's layout) and conversion."""
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    log = tmp_path / "uv.log"
    (stubs / "uv").write_text(f"""#!/bin/bash
echo "$* R1DSL_TOTAL_STEPS=${{R1DSL_TOTAL_STEPS:-}} R1DSL_DECAY_STEPS=${{R1DSL_DECAY_STEPS:-}}" >> {shlex.quote(str(log))}
shift  # run
while [ "$1" != python ]; do shift; done
shift
if [ "$1" = -c ]; then exec python3 "$@"; fi
script=$1; shift
case "$script" in
  examples/run_*.py)
    ckpt=$(sed -n 's/^  checkpoint_dir: //p' "$2" | head -n1)
    steps=$(sed -n 's/^  max_num_steps: //p' "$2" | head -n1)
    case $steps in *[!0-9]*) steps=$R1DSL_TOTAL_STEPS;; esac  # epochs: what the run script counted
    steps=${{R1DSL_STUB_STOP_AT:-$steps}}  # a run NeMo-RL stopped before the time limit
    mkdir -p "$ckpt/step_3/policy/weights/iter_0000003" "$ckpt/step_$steps/policy/weights/iter_$steps"
    touch "$ckpt/step_$steps/config.yaml";;
  examples/converters/*)
    while [ "$#" -gt 0 ]; do
      if [ "$1" = --hf-ckpt-path ]; then
        mkdir -p "$2"
        if [ -e {shlex.quote(str(tmp_path / 'fail_once'))} ]; then rm {shlex.quote(str(tmp_path / 'fail_once'))}; touch "$2/partial"; exit 1; fi
        printf '{{}}' > "$2/config.json"
      fi
      shift
    done;;
esac
""")
    (stubs / "uv").chmod(0o755)
    if fail_convert_once:
        (tmp_path / "fail_once").touch()
    monkeypatch.setenv("PATH", f"{stubs}:{os.environ['PATH']}")
    nemo = tmp_path / "nemo-rl"
    nemo.mkdir(exist_ok=True)
    monkeypatch.setenv("NEMO_RL_DIR", str(nemo))
    return log


def test_the_converter_matches_the_checkpoint_format_and_survives_a_requeue(tmp_path, monkeypatch):
    log = run_stub_env(tmp_path, monkeypatch, fail_convert_once=True)
    dense = grpo_stage("dense", "qwen_7b")
    piped = grpo_stage("piped", "qwen_7b", nodes=2, tensor_parallel=4, pipeline_parallel=2)
    pipeline = pipeline_of([dense, piped], tmp_path / "run")
    nemo_rl.emit(pipeline)
    dense_cfg, piped_cfg = (resolved(tmp_path / "run" / s / "nemo_rl.yaml") for s in ("dense", "piped"))
    assert dense_cfg["policy"]["dtensor_cfg"]["enabled"] and piped_cfg["policy"]["megatron_cfg"]["enabled"]
    piped_run = tmp_path / "run" / "piped" / "nemo_rl_run.sh"
    first = subprocess.run(["bash", str(piped_run)], capture_output=True, text=True)
    assert first.returncode != 0 and (tmp_path / "run" / "piped" / "model.tmp" / "partial").exists()
    assert not (tmp_path / "run" / "piped" / "model").exists()  # a half-written model is never in place
    subprocess.run(["bash", str(piped_run)], check=True, capture_output=True)  # the requeued job
    assert (tmp_path / "run" / "piped" / "model" / "config.json").exists()
    assert not (tmp_path / "run" / "piped" / "model.tmp").exists() and (tmp_path / "run" / "piped" / "DONE").exists()
    calls = log.read_text().splitlines()
    assert sum("examples/run_grpo.py" in c for c in calls) == 1  # training is not redone after it finished
    megatron_calls = [c for c in calls if "convert_megatron_to_hf.py" in c]
    assert len(megatron_calls) == 2 and "--extra mcore" in megatron_calls[0]
    assert "step_100/policy/weights/iter_100" in megatron_calls[-1]  # the newest checkpoint
    subprocess.run(["bash", str(tmp_path / "run" / "dense" / "nemo_rl_run.sh")], check=True, capture_output=True)
    dense_calls = [c for c in log.read_text().splitlines() if "converters" in c]
    assert "convert_dcp_to_hf.py" in dense_calls[-1] and "--dcp-ckpt-path" in dense_calls[-1]
    assert dense_calls[-1].split("--dcp-ckpt-path ")[1].split()[0].endswith("step_100/policy/weights")


def test_a_run_stopped_before_the_time_limit_fails_its_job_and_resumes(tmp_path, monkeypatch):
    log = run_stub_env(tmp_path, monkeypatch)
    stage = grpo_stage("zero", "qwen_7b", time_limit_min=600)
    pipeline = pipeline_of([stage], tmp_path / "run")
    nemo_rl.emit(pipeline)
    cfg = validate(tmp_path / "run" / "zero" / "nemo_rl.yaml", "grpo")
    assert cfg["checkpointing"]["checkpoint_must_save_by"] == "00:09:00:00"  # 10 h less an hour (a tenth)
    run = tmp_path / "run" / "zero" / "nemo_rl_run.sh"
    monkeypatch.setenv("R1DSL_STUB_STOP_AT", "40")
    stopped = subprocess.run(["bash", str(run)], capture_output=True, text=True)
    assert stopped.returncode == 75 and "stopped at step 40 of 100" in stopped.stderr
    assert not (tmp_path / "run" / "zero" / "TRAINED").exists() and not (tmp_path / "run" / "zero" / "model").exists()
    monkeypatch.delenv("R1DSL_STUB_STOP_AT")
    subprocess.run(["bash", str(run)], check=True, capture_output=True)  # submit.sh again: it resumes
    assert (tmp_path / "run" / "zero" / "DONE").exists()
    assert sum("run_grpo.py" in c for c in log.read_text().splitlines()) == 2
    short = replace(stage, resources=replace(stage.resources, time_limit_min=15))
    assert nemo_rl.save_before_limit(pipeline_of([short], tmp_path / "s").jobs[0]) is None


def test_epoch_based_sft_counts_rows_at_run_time_for_its_schedule(tmp_path, monkeypatch):
    log = run_stub_env(tmp_path, monkeypatch)
    data = tmp_path / "data"
    data.mkdir()
    (data / "sft.jsonl").write_text("".join(f'{{"prompt": "q{i}", "response": "a{i}"}}\n' for i in range(203)) + "\n")
    sft = Stage("sft", "sft", "qwen_7b", False, ("chat",), template="r1_zero", optim=Optim(lr=1e-5, warmup_steps=3),
                train=Train(epochs=3, batch_size=16, micro_batch_size=2), resources=Resources(gpus_per_node=8))
    chat = Dataset("chat", "jsonl", path=str(data / "sft.jsonl"), provides=("prompt", "response"))
    pipeline = pipeline_of([sft], tmp_path / "run", datasets={**make_recipe([]).datasets, "chat": chat})
    nemo_rl.emit(pipeline)
    subprocess.run(["bash", str(tmp_path / "run" / "sft" / "nemo_rl_run.sh")], check=True, capture_output=True)
    train_call = next(c for c in log.read_text().splitlines() if "run_sft.py" in c)
    steps = 3 * (203 // 16)  # NeMo-RL drops the last partial batch of each epoch
    assert f"R1DSL_TOTAL_STEPS={steps} R1DSL_DECAY_STEPS={steps - 3}" in train_call
    monkeypatch.setenv("R1DSL_TOTAL_STEPS", str(steps))
    monkeypatch.setenv("R1DSL_DECAY_STEPS", str(steps - 3))
    cfg = validate(tmp_path / "run" / "sft" / "nemo_rl.yaml", "sft")
    assert cfg["sft"]["max_num_steps"] == steps and cfg["sft"]["max_num_epochs"] == 3
    assert cfg["policy"]["scheduler"][1]["kwargs"]["T_max"] == steps - 3
    assert cfg["policy"]["scheduler"][2]["milestones"] == [3]
    assert cfg["policy"]["megatron_cfg"]["scheduler"]["lr_decay_iters"] == steps


def test_sft_with_steps_sizes_its_schedule_at_compile_time(tmp_path):
    sft = Stage("sft", "sft", "qwen_7b", False, ("rs",), optim=Optim(lr=1e-5, lr_schedule="linear"),
                train=Train(steps=120, batch_size=16, micro_batch_size=2), resources=Resources(gpus_per_node=8))
    pipeline = pipeline_of([sft], tmp_path)
    nemo_rl.emit(pipeline)
    text = (tmp_path / "sft" / "nemo_rl.yaml").read_text()
    assert "R1DSL_TOTAL_STEPS" not in text
    cfg = validate(tmp_path / "sft" / "nemo_rl.yaml", "sft")
    assert cfg["sft"]["max_num_steps"] == 120 and cfg["policy"]["scheduler"][1]["kwargs"]["total_iters"] == 119


def test_epochs_over_a_hub_dataset_are_refused(tmp_path):
    hub = Dataset("hub", "hf", path="org/sft-data", provides=("prompt", "response"))
    sft = Stage("sft", "sft", "qwen_7b", False, ("hub",), train=Train(epochs=2), resources=Resources(gpus_per_node=8))
    pipeline = pipeline_of([sft], tmp_path, datasets={"hub": hub})
    assert any("train.epochs = 2 over hub dataset" in str(r) for r in nemo_rl.refusals(pipeline))


def test_grpo_prompts_are_templated_once_without_chat_tokens(tmp_path):
    """math_hf_data_processor formats the prompt file, then applies the tokenizer's chat template once."""
    text = "Solve {prompt}; answer in \\boxed{} or {x}. Assistant:"
    pipeline = pipeline_of([grpo_stage()], tmp_path, templates={"r1_zero": Template("r1_zero", text)})
    nemo_rl.emit(pipeline)
    prompt_file = (tmp_path / "zero" / "prompt.txt").read_text()
    cfg = validate(tmp_path / "zero" / "nemo_rl.yaml", "grpo")
    chat_template = jinja2.Environment().from_string(cfg["policy"]["tokenizer"]["chat_template"])
    formatted = prompt_file.format("2+2")
    message = chat_template.render(messages=[{"role": "user", "content": formatted}], add_generation_prompt=True)
    assert message == "Solve 2+2; answer in \\boxed{} or {x}. Assistant:"
    # NeMo-RL's own passthrough template (nemo_rl/data/chat_templates.py)
    assert cfg["policy"]["tokenizer"]["chat_template"] == nemo_rl.PASSTHROUGH_CHAT_TEMPLATE


def test_recipe_strings_with_interpolation_syntax_reach_nemo_rl_literally(tmp_path):
    weird = tmp_path / "data ${oc.env:HOME} \\${x}"
    weird.mkdir()
    path = str(weird / "d.jsonl")
    ds = Dataset("gsm", "jsonl", path=path, fields={"prompt": "q${a}", "answer": "ans"}, provides=("prompt", "answer"))
    pipeline = pipeline_of([grpo_stage("zero", "qwen_7b")], tmp_path / "run", datasets={"arith": ds,
                                                                                         "arith_test": ds})
    # a mounted folder with `$` is refused for ray.sub; the YAML escaping is checked on the translation
    tr = nemo_rl.translate(pipeline.jobs[0], pipeline)
    cfg = resolved(OmegaConf.to_yaml(OmegaConf.create(tr.config)) and yaml.safe_load(nemo_rl.to_yaml(tr.config, "")))
    assert cfg["data"]["train"]["data_path"] == path
    assert cfg["data"]["train"]["input_key"] == "q${a}"
    assert any("holds characters ray.sub would split" in str(r) for r in tr.refusals)
    for text in ("${a}", "\\${a}", "\\\\${a}", "x$y", "a\\b", "${a.b}${c}"):
        assert resolved({"k": nemo_rl.literal(text)})["k"] == text


def test_tensor_parallel_must_divide_the_heads(tmp_path):
    bad = grpo_stage("zero", "qwen_1_5b", tensor_parallel=8)  # 12 heads
    found = "\n".join(str(r) for r in nemo_rl.refusals(pipeline_of([bad], tmp_path)))
    assert "tensor_parallel = 8 does not divide the 12 attention heads" in found
    kv = grpo_stage("zero", "qwen_1_5b", tensor_parallel=4)  # 12 heads, 2 key-value heads
    found = "\n".join(str(r) for r in nemo_rl.refusals(pipeline_of([kv], tmp_path)))
    assert "tensor_parallel = 4 does not divide the 2 key-value heads" in found
    tiny = Model("tiny3", "tiny", tiny=replace(make_recipe([]).models["tiny"].tiny, num_heads=6))
    base = Stage("base", "pretrain", "tiny3", False, ("corpus",), train=Train(steps=2),
                 resources=Resources(gpus_per_node=8, tensor_parallel=4))
    rl = grpo_stage("zero", "base", True, tensor_parallel=4)
    recipe = make_recipe([base, rl], extra_models=[tiny])
    found = "\n".join(str(r) for r in nemo_rl.refusals(make_pipeline(on_cluster(recipe), tmp_path, "nemo-rl")))
    assert "does not divide the 6 attention heads" in found  # followed through the pretrain stage


def test_uneven_pipeline_stages_get_first_and_last_layer_counts():
    assert nemo_rl.pipeline_stage_layers(61, 8) == (7, 6)
    assert nemo_rl.pipeline_stage_layers(61, 16) == (3, 2)
    for layers in range(8, 130):
        for pp in range(3, 17):
            split = nemo_rl.pipeline_stage_layers(layers, pp)
            if split is not None:
                first, last = split
                assert first >= 1 and last >= 1 and (layers - first - last) % (pp - 2) == 0


def test_rollout_gpus_on_one_node_and_across_nodes_pass_grpos_placement_asserts(tmp_path):
    one = grpo_stage("one", "qwen_7b", gpus_per_node=8, rollout_gpus=4, tensor_parallel=2)
    across = grpo_stage("across", "qwen_7b", nodes=4, gpus_per_node=8, tensor_parallel=4, pipeline_parallel=2,
                        rollout_gpus=16)
    pipeline = pipeline_of([one, across], tmp_path)
    nemo_rl.emit(pipeline)
    cfg = validate(tmp_path / "one" / "nemo_rl.yaml", "grpo")
    assert cfg["policy"]["generation"]["colocated"]["resources"] == {"gpus_per_node": 4, "num_nodes": None}
    cfg = validate(tmp_path / "across" / "nemo_rl.yaml", "grpo")
    assert cfg["policy"]["generation"]["colocated"]["resources"] == {"gpus_per_node": 8, "num_nodes": 2}
    assert cfg["policy"]["megatron_cfg"]["enabled"]


def test_the_rollout_sections_vllm_settings_reach_nemo_rls_vllm_cfg(tmp_path):
    default = grpo_stage("default", "qwen_7b")
    tuned = replace(grpo_stage("tuned", "qwen_7b"), rollout=Rollout(engine="vllm", gpu_memory_utilization=0.35,
                                                                     max_model_len=1100))
    nemo_rl.emit(pipeline_of([default, tuned], tmp_path))
    vllm = validate(tmp_path / "default" / "nemo_rl.yaml", "grpo")["policy"]["generation"]["vllm_cfg"]
    assert vllm["gpu_memory_utilization"] == Rollout().gpu_memory_utilization
    assert vllm["max_model_len"] == 256 + 1024  # NeMo-RL's own default: the policy's max_total_sequence_length
    vllm = validate(tmp_path / "tuned" / "nemo_rl.yaml", "grpo")["policy"]["generation"]["vllm_cfg"]
    assert (vllm["gpu_memory_utilization"], vllm["max_model_len"]) == (0.35, 1100)


def test_datasets_without_an_answer_are_left_out_or_refused(tmp_path):
    code = Dataset("code", "hf", path="open-r1/verifiable-coding-problems-python", fields={"tests": "verification_info"},
                   provides=("prompt", "tests"))
    general = Dataset("general", "hf", path="HuggingFaceH4/ultrafeedback_binarized", provides=("prompt",))
    datasets = {**make_recipe([]).datasets, "code": code, "general": general}
    mixed = replace(grpo_stage("zero", "qwen_7b"), data=("arith", "code", "general"))
    pipeline = pipeline_of([mixed], tmp_path, datasets=datasets)
    nemo_rl.emit(pipeline)
    cfg = validate(tmp_path / "zero" / "nemo_rl.yaml", "grpo")
    assert cfg["data"]["train"]["output_key"] == "answer" and "arith" in cfg["data"]["train"]["data_path"]
    found = "\n".join(nemo_rl.unsupported(pipeline))
    assert "dataset `code` is left out" in found and "tests, not an answer" in found
    assert "dataset `general` is left out" in found
    only_code = replace(grpo_stage("zero", "qwen_7b"), data=("code",), eval_data=())
    refused = "\n".join(str(r) for r in nemo_rl.refusals(pipeline_of([only_code], tmp_path, datasets=datasets)))
    assert "none of its datasets (code) has an answer" in refused


def test_parquet_files_are_read_as_they_are(tmp_path):
    pq = Dataset("pq", "parquet", path=str(tmp_path / "d" / "math.parquet"), provides=("prompt", "answer"))
    stage = replace(grpo_stage("zero", "qwen_7b"), data=("pq",))
    pipeline = pipeline_of([stage], tmp_path / "run", datasets={**make_recipe([]).datasets, "pq": pq})
    assert not any("parquet" in w for w in nemo_rl.unsupported(pipeline))
    nemo_rl.emit(pipeline)
    cfg = validate(tmp_path / "run" / "zero" / "nemo_rl.yaml", "grpo")
    assert cfg["data"]["train"]["data_path"] == str(tmp_path / "d" / "math.parquet")
    mounts = re.search(r"MOUNTS=(\S+)", (tmp_path / "run" / "submit.sh").read_text()).group(1).split(",")
    assert f"{tmp_path / 'd'}:{tmp_path / 'd'}" in mounts  # the data folder outside the run folder


def test_wandb_is_configurable(tmp_path, monkeypatch):
    monkeypatch.setenv("R1DSL_WANDB_PROJECT", "r1-runs")
    pipeline = pipeline_of([grpo_stage("zero", "qwen_7b")], tmp_path)
    nemo_rl.emit(pipeline)
    cfg = validate(tmp_path / "zero" / "nemo_rl.yaml", "grpo")
    assert cfg["logger"]["wandb_enabled"] is True and cfg["logger"]["wandb"]["project"] == "r1-runs"
    assert cfg["logger"]["wandb"]["name"] == "tiny_r1_zero.zero"


def test_a_stage_after_a_nemo_rl_stage_reads_its_converted_model(tmp_path):
    pipeline = pipeline_of([grpo_stage("zero", "qwen_7b"), grpo_stage("again", "zero", True)], tmp_path)
    nemo_rl.emit(pipeline)
    cfg = validate(tmp_path / "again" / "nemo_rl.yaml", "grpo")
    assert cfg["policy"]["model_name"] == str(tmp_path / "zero" / "model")
    run = (tmp_path / "zero" / "nemo_rl_run.sh").read_text()
    assert "uv run python examples/run_grpo.py" in run and "run_grpo_math" not in run
    assert "examples/converters/convert_dcp_to_hf.py" in run and '--hf-ckpt-path "$stage_dir/model.tmp"' in run


# ---------------------------------------------------------------- launch through ray.sub


def test_launch_goes_through_the_run_folders_ray_sub_with_the_recipes_nodes(emitted, capfd):
    pipeline, written = emitted
    run_dir = Path(pipeline.run_dir)
    assert (run_dir / "ray.sub").read_text() == nemo_rl.RAY_SUB.read_text()  # a host path sbatch can read
    assert nemo_rl.run(pipeline, dry_run=True) == 0
    lines = [line for line in capfd.readouterr().out.splitlines() if "sbatch" in line]
    assert len(lines) == len(pipeline.jobs)
    for job, line in zip(pipeline.jobs, lines):
        words = shlex.split(line.split(" # ")[0])
        nodes = int(next(w for w in words if w.startswith("--nodes=")).split("=")[1])
        if nemo_rl.runs_on_nemo_rl(job):
            cfg = resolved(Path(job.dir) / "nemo_rl.yaml")
            assert words[-1] == str(run_dir / "ray.sub") and nodes == cfg["cluster"]["num_nodes"]
            assert "--account=acct" in words and "--partition=gpu" in words and "--exclusive" in words
            env = dict(w.split("=", 1) for w in words[1:words.index("sbatch")])
            assert env["COMMAND"] == f"bash {Path(job.dir) / 'nemo_rl_run.sh'}"
            assert env["CONTAINER"] == nemo_rl.DEFAULT_CONTAINER and env["GPUS_PER_NODE"] == "8"
            assert f"{run_dir}:{run_dir}" in env["MOUNTS"].split(",")
            assert f"{nemo_rl.hf_home()}:{nemo_rl.hf_home()}" in env["MOUNTS"].split(",")
        else:  # rejection sampling and eval: our own backend in the same chain
            assert words[-1] == f"{job.dir}/job.sbatch"
    assert "--dependency=afterok:JOB1" in lines[1]
    assert "--dependency=afterok:JOB2" in lines[2] and "--dependency=afterok:JOB2" in lines[3]
    assert f"cd {shlex.quote(str(run_dir))}" in (run_dir / "submit.sh").read_text()  # $SLURM_SUBMIT_DIR
    shellcheck(written)


def test_account_and_partition_are_required_or_taken_from_sbatchs_environment(tmp_path, monkeypatch):
    stage = replace(grpo_stage("zero", "qwen_7b"), resources=Resources(gpus_per_node=8))
    pipeline = make_pipeline(make_recipe([stage]), tmp_path, "nemo-rl")
    found = "\n".join(str(r) for r in nemo_rl.refusals(pipeline))
    assert "ray.sub needs a SLURM account and partition" in found and "--account=ACCOUNT" in found
    monkeypatch.setenv("SBATCH_ACCOUNT", "proj")
    monkeypatch.setenv("SBATCH_PARTITION", "batch")
    assert nemo_rl.refusals(pipeline) == []
    nemo_rl.emit(pipeline)
    submit = (tmp_path / "submit.sh").read_text()
    assert "--account=proj" in submit and "--partition=batch" in submit


HOSTILE = ["a b", "a'b", 'a"b', "a$(touch x)b", "a`x`b", "a\nb", "a;b", "a*b", "a?b", "a[b]", "a${IFS}b", "a|b",
           "a&b", "a<b", "a\\b", "a\tb"]


@pytest.mark.parametrize("value", HOSTILE)
def test_values_ray_sub_would_split_are_refused(value, tmp_path):
    for field in ("container_image", "partition", "account"):
        stage = replace(grpo_stage("zero", "qwen_7b"), resources=Resources(gpus_per_node=8, **{**ON, field: value}))
        found = "\n".join(str(r) for r in nemo_rl.refusals(make_pipeline(make_recipe([stage]), tmp_path, "nemo-rl")))
        assert "ray.sub would split or expand" in found, field
    run = tmp_path / f"run{value}x"
    found = "\n".join(str(r) for r in nemo_rl.refusals(pipeline_of([grpo_stage("zero", "qwen_7b")], run)))
    assert "the run folder" in found
    data = Dataset("gsm", "jsonl", path=str(tmp_path / f"d{value}" / "x.jsonl"), provides=("prompt", "answer"))
    stage = replace(grpo_stage("zero", "qwen_7b"), data=("gsm",), eval_data=())
    found = "\n".join(str(r) for r in nemo_rl.refusals(pipeline_of([stage], tmp_path / "run",
                                                                    datasets={"gsm": data})))
    assert "mounted folder" in found


def test_a_hugging_face_cache_ray_sub_would_split_is_refused(tmp_path, monkeypatch):
    (tmp_path / "hf cache").mkdir()  # mounted only when it exists
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf cache"))
    found = "\n".join(str(r) for r in nemo_rl.refusals(pipeline_of([grpo_stage("zero", "qwen_7b")], tmp_path / "r")))
    assert "hf cache" in found and "mounted folder" in found


SRUN_STUB = r"""#!/bin/bash
# srun stand-in: record argv (NUL-separated, one file per call); the head reports its GCS up, then exits
n=$(ls "$R1DSL_ARGV_DIR" | wc -l)
printf '%s\0' "$@" > "$R1DSL_ARGV_DIR/srun.$n"
out=""
while [ "$#" -gt 0 ]; do
  if [ "$1" = -o ]; then out=$2; fi
  shift
done
touch "${out%/*}/STARTED_RAY_HEAD"
sleep 4
"""


def run_ray_sub(pipeline, tmp_path: Path) -> list[list[str]]:
    """submit.sh with sbatch running ray.sub as SLURM would (env, submit dir); srun, sinfo, scontrol stubbed."""
    stubs = tmp_path / "slurm-stubs"
    argv_dir = tmp_path / "argv"
    stubs.mkdir()
    argv_dir.mkdir()
    stub_text = {
        "srun": SRUN_STUB,
        "sinfo": "#!/bin/bash\necho 'gpu:8'\n",
        "scontrol": "#!/bin/bash\nif [ \"$2\" = hostnames ]; then echo node1; else echo 'NodeName=node1 CPUTot=16 x=y'; fi\n",
        # sbatch: the job is ray.sub started in the submit folder with SLURM's variables, options from the command line
        "sbatch": "#!/bin/bash\n"
                  "for a in \"$@\"; do case $a in --partition=*) p=${a#*=};; --account=*) A=${a#*=};; esac; done\n"
                  "script=${!#}\n"
                  "SLURM_SUBMIT_DIR=$PWD SLURM_JOB_ID=77 SLURM_JOB_NUM_NODES=1 SLURM_JOB_NODELIST=node1 "
                  "SLURM_JOB_PARTITION=$p SLURM_JOB_ACCOUNT=$A bash \"$script\" > \"$R1DSL_ARGV_DIR/ray.sub.log\" 2>&1 "
                  "|| { cat \"$R1DSL_ARGV_DIR/ray.sub.log\" >&2; exit 1; }\necho 77\n",
    }
    for name, text in stub_text.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "R1DSL_ARGV_DIR": str(argv_dir)}
    done = subprocess.run(["bash", str(Path(pipeline.run_dir) / "submit.sh")], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return [p.read_text().split("\0")[:-1] for p in sorted(argv_dir.glob("srun.*"))]


def test_the_real_ray_sub_passes_every_value_to_srun_as_one_word(tmp_path, monkeypatch):
    """ray.sub v0.7.0 word-splits CONTAINER, MOUNTS, the submit folder, partition and account into srun:
    the values compile accepts (here with every character it allows) arrive as exactly the words expected."""
    run = tmp_path / "run.@+=-_x"
    data = tmp_path / "data_@+=-.d"
    data.mkdir()
    image = "nvcr.io#nvidia/nemo-rl:v0.7.0_@+=-"
    (tmp_path / "hf-cache").mkdir()
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-cache"))
    ds = Dataset("gsm", "jsonl", path=str(data / "x.jsonl"), provides=("prompt", "answer"))
    stage = replace(grpo_stage("zero", "qwen_7b"), data=("gsm",), eval_data=(),
                    resources=Resources(gpus_per_node=8, container_image=image, account="my_acct-1.x",
                                        partition="gpu.part-2_a"))
    pipeline = make_pipeline(replace(make_recipe([stage]), datasets={"gsm": ds}), run, "nemo-rl")
    nemo_rl.emit(pipeline)
    calls = run_ray_sub(pipeline, tmp_path)
    assert len(calls) == 1  # one node: the head only
    head = calls[0]
    mounts = ",".join(f"{m}:{m}" for m in sorted([str(run.resolve()), str(data), str(tmp_path / "hf-cache")]))
    log_dir = f"{run.resolve()}/77-logs"
    assert head == ["--gres=gpu:8", "--no-container-mount-home", "--mpi=pmix", f"--container-mounts={mounts}",
                    f"--container-image={image}", f"--container-workdir={run.resolve()}", "-p", "gpu.part-2_a",
                    "-A", "my_acct-1.x", "--container-name=ray-head", "--nodes=1", "--ntasks=1",
                    "--cpus-per-task=16", "-w", "node1", "-o", f"{log_dir}/ray-head.log", "bash", "-x", "-c",
                    head[-1]]
    driver = Path(log_dir) / "driver_command.sh"  # what the head container runs: our COMMAND, quoted
    assert shlex.split(driver.read_text()) == ["bash", str(run.resolve() / "zero" / "nemo_rl_run.sh")]
    assert (Path(log_dir) / ".shared_fs_canary").exists()  # ray.sub's logs land in the run folder


def test_compile_refuses_on_the_command_line_and_writes_nothing(tmp_path, capsys):
    from r1dsl.cli import main

    out = tmp_path / "run"
    assert main(["compile", str(ROOT / "recipes" / "tiny_r1.r1"), "-o", str(out), "--target", "nemo-rl"]) == 1
    err = capsys.readouterr().err
    assert "tiny_r1.r1:" in err and "ray.sub needs a SLURM account and partition" in err and "help:" in err
    assert not out.exists()
    sets = [a for s in ("zero", "cold_sft", "reasoning_rl", "r1_sft", "all_rl", "distill")
            for a in ("--set", f"{s}.resources.account=acct", "--set", f"{s}.resources.partition=gpu")]
    assert main(["compile", str(ROOT / "recipes" / "tiny_r1.r1"), "-o", str(out), "--target", "nemo-rl", *sets]) == 0
    assert (out / "ray.sub").exists() and (out / "zero" / "nemo_rl.yaml").exists()


def test_unsupported_features_are_reported_per_stage(tmp_path):
    g = GRPO(reference_refresh_steps=400, inner_epochs=2, loss_aggregation="constant", truncated="penalize")
    stage = replace(grpo_stage("zero", "qwen_7b"), grpo=g, resources=Resources(gpus_per_node=0, **ON))
    pipeline = make_pipeline(make_recipe([stage]), tmp_path, "nemo-rl")
    found = "\n".join(nemo_rl.unsupported(pipeline))
    for needle in ("reference_refresh_steps = 400", "inner_epochs = 2", "Dr. GRPO", "truncated = \"penalize\"",
                   "reward `format`", "NeMo-RL needs GPUs"):
        assert needle in found, needle
    tiny = replace(grpo_stage("zero", "tiny"), resources=Resources(gpus_per_node=8, **ON))
    found = "\n".join(str(r) for r in nemo_rl.refusals(make_pipeline(make_recipe([tiny]), tmp_path, "nemo-rl")))
    assert "built from a config" in found
    r1 = "\n".join(nemo_rl.unsupported(make_pipeline(on_cluster(r1_like(tmp_path / "r1").recipe), tmp_path / "r1")))
    assert "NeMo-RL has no rejection_sample stage" in r1 and "NeMo-RL has no eval stage" in r1


def test_a_math_only_grpo_stage_has_nothing_to_report(tmp_path):
    stage = replace(grpo_stage("zero", "qwen_7b", container_image="nvcr.io/nvidia/nemo-rl:v0.7.0", **ON),
                    rewards=(ACCURACY,))
    pipeline = make_pipeline(make_recipe([stage]), tmp_path, "nemo-rl")
    assert nemo_rl.unsupported(pipeline) == [] and nemo_rl.refusals(pipeline) == []
    nemo_rl.emit(pipeline)
    subprocess.run(["bash", "-n", str(tmp_path / "submit.sh")], check=True)


def test_hostile_stage_and_file_names_reach_srun_and_the_driver_intact(tmp_path, monkeypatch):
    """Names inside the run folder are not mounts: a hostile stage name or data file name is allowed, and the
    real ray.sub still gives srun exactly its words and the head runs exactly our command."""
    sentinel = tmp_path / "SENTINEL"
    monkeypatch.setenv("R1DSL_SENTINEL", str(sentinel))
    name = "st $(touch $R1DSL_SENTINEL) `touch $R1DSL_SENTINEL` ';\"\nx*"
    data = tmp_path / "data"
    data.mkdir()
    ds = Dataset("gsm", "jsonl", path=str(data / "d $(touch $R1DSL_SENTINEL).jsonl"), provides=("prompt", "answer"))
    stage = replace(grpo_stage(name, "qwen_7b"), data=("gsm",), eval_data=(), resources=Resources(gpus_per_node=8, **ON))
    run = tmp_path / "run"
    pipeline = make_pipeline(replace(make_recipe([stage]), datasets={"gsm": ds}), run, "nemo-rl")
    nemo_rl.emit(pipeline)
    (head,) = run_ray_sub(pipeline, tmp_path)
    assert len(head) == 22 and head[5] == f"--container-workdir={run.resolve()}" and head[16:18] == ["-o", f"{run.resolve()}/77-logs/ray-head.log"]
    driver = run.resolve() / "77-logs" / "driver_command.sh"
    assert shlex.split(driver.read_text()) == ["bash", str(run.resolve() / name / "nemo_rl_run.sh")]
    cfg = resolved(run / name / "nemo_rl.yaml")
    assert cfg["data"]["train"]["data_path"] == ds.path
    assert not sentinel.exists()


def test_every_word_compile_accepts_stays_one_word_in_bash(tmp_path):
    """What ray.sub does to CONTAINER, MOUNTS, the submit folder, partition and account (unquoted expansion:
    word splitting and globbing, here in a folder of files a glob would match) keeps an accepted value whole."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    for junk in ("a", "ab", "a b", "x.jsonl"):
        (tmp_path / junk).touch()
    alphabet = st.characters(codec="ascii")
    patterns = (nemo_rl._PATH_WORD, nemo_rl._IMAGE_WORD, nemo_rl._SLURM_NAME)
    accepted = []

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=alphabet, min_size=1, max_size=12).map(lambda s: "/" + s))
    def collect(value):
        if any(p.fullmatch(value) for p in patterns) or any(p.fullmatch(value[1:]) for p in patterns if value[1:]):
            accepted.append(value)

    collect()
    values = accepted + ["/run.@+=-_x", "nvcr.io#nvidia/nemo-rl:v0.7.0", "gpu.part-2_a", "a-b"]
    script = 'for v in "$@"; do set -- $v; printf "%s\\0" "$#" "$1"; done'
    out = subprocess.run(["bash", "-c", script, "_", *values], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout.split("\0")[:-1]
    assert out == [w for v in values for w in ("1", v)]
    for value in HOSTILE:
        assert not any(p.fullmatch(value) for p in patterns), value


def test_without_the_refusal_ray_sub_would_hand_srun_an_injected_word(tmp_path):
    """Why compile refuses: the same launch with a container value compile would refuse, put into submit.sh by
    hand, reaches the real ray.sub, which splits it into srun's words."""
    pipeline = pipeline_of([replace(grpo_stage("zero", "qwen_7b"), eval_data=())], tmp_path / "run")
    nemo_rl.emit(pipeline)
    submit = tmp_path / "run" / "submit.sh"
    word = f"CONTAINER={nemo_rl.DEFAULT_CONTAINER}"
    assert word in submit.read_text()
    submit.write_text(submit.read_text().replace(word, "'CONTAINER=img --container-mounts=/:/host'"))
    (head,) = run_ray_sub(pipeline, tmp_path)
    assert "--container-image=img" in head and "--container-mounts=/:/host" in head  # an extra word, a root mount


# ---------------------------------------------------------------- vLLM's memory (issue 23 item 2)


def _zero_config(tmp_path, monkeypatch):
    from r1dsl.compiler import compile_recipe
    from r1dsl.frontend import load_recipe

    monkeypatch.setenv("NEMO_RL_BF16_DIR", bf16_dir(tmp_path / "bf16"))
    recipe = on_cluster(load_recipe(str(ROOT / "recipes" / "deepseek_r1_zero.r1")))
    return compile_recipe(recipe, str(tmp_path / "run"), "nemo-rl")


def test_vllm_gets_room_for_its_weights_and_a_kv_cache_next_to_the_colocated_trainer(tmp_path, monkeypatch):
    from r1dsl.plan import GPU_MEMORY_GB, GiB, VLLM_OVERHEAD_GIB, known_arch

    pipeline = _zero_config(tmp_path, monkeypatch)
    assert nemo_rl.refusals(pipeline) == []
    nemo_rl.emit(pipeline)
    cfg = validate(tmp_path / "run" / "r1_zero" / "nemo_rl.yaml", "grpo")
    vllm = cfg["policy"]["generation"]["vllm_cfg"]
    arch = known_arch("deepseek-ai/DeepSeek-V3-Base")
    weights = 2 * arch.params / vllm["tensor_parallel_size"] / GiB  # ~39 GiB at TP 32
    kv = arch.kv_bytes_per_token * cfg["policy"]["max_total_sequence_length"] / GiB
    budget = vllm["gpu_memory_utilization"] * GPU_MEMORY_GB
    assert weights + VLLM_OVERHEAD_GIB + kv <= budget  # 0.5 (39.8-40 GiB) does not hold them
    trainer = 2 * arch.params / (cfg["policy"]["megatron_cfg"]["tensor_model_parallel_size"]
                                 * cfg["policy"]["megatron_cfg"]["pipeline_model_parallel_size"]) / GiB
    assert trainer <= GPU_MEMORY_GB - budget
    assert any("gpu_memory_utilization = 0.5 leaves vLLM no room" in w for w in nemo_rl.unsupported(pipeline))


def test_a_vllm_engine_that_cannot_start_at_any_utilization_is_refused_with_the_arithmetic(tmp_path, monkeypatch):
    from r1dsl import plan

    monkeypatch.setattr(plan, "GPU_MEMORY_GB", 40.0)  # 40 GiB cards: 39 GiB of weights leave no KV cache
    found = [str(r) for r in nemo_rl.refusals(_zero_config(tmp_path, monkeypatch))]
    assert len(found) == 1 and "no gpu_memory_utilization lets vLLM start" in found[0], found
    assert "GiB of bf16 weights" in found[0] and "KV cache" in found[0]


def test_long_deepseek_sequences_are_split_by_context_parallelism_as_nemo_rls_recipe_does(tmp_path, monkeypatch):
    pipeline = _zero_config(tmp_path, monkeypatch)
    nemo_rl.emit(pipeline)
    cfg = validate(tmp_path / "run" / "r1_zero" / "nemo_rl.yaml", "grpo")
    m, policy = cfg["policy"]["megatron_cfg"], cfg["policy"]
    seq, cp = policy["max_total_sequence_length"], m["context_parallel_size"]
    assert seq > 16384 and cp >= 4  # the reference: CP 4 at 16,384
    gpus = cfg["cluster"]["num_nodes"] * cfg["cluster"]["gpus_per_node"]
    assert gpus % (m["tensor_model_parallel_size"] * m["pipeline_model_parallel_size"] * cp) == 0
    assert seq / cp <= 2 * nemo_rl.REFERENCE_TOKENS_PER_CP_RANK
    assert policy["make_sequence_length_divisible_by"] == m["tensor_model_parallel_size"] * 2 * cp


@pytest.mark.parametrize("clock", ["end", "start"])
def test_the_last_save_is_timed_from_the_jobs_clock_not_from_nemo_rls_training_loop(tmp_path, monkeypatch, clock):
    import time

    log = run_stub_env(tmp_path, monkeypatch)
    pipeline = pipeline_of([grpo_stage("zero", "qwen_7b", time_limit_min=600)], tmp_path / "run")
    nemo_rl.emit(pipeline)
    assert resolved(tmp_path / "run" / "zero" / "nemo_rl.yaml")["checkpointing"]["checkpoint_must_save_by"] == \
        "00:09:00:00"  # the fallback, from the job's start: 10 h less the save lead (1 h)
    started = int(time.time()) - 2 * 3600  # two hours of queueing for Ray, the model import, vLLM ... (or a requeue)
    env = dict(os.environ, SLURM_JOB_START_TIME=str(started))
    if clock == "end":
        env = dict(os.environ, SLURM_JOB_END_TIME=str(started + 600 * 60))
    subprocess.run(["bash", str(tmp_path / "run" / "zero" / "nemo_rl_run.sh")], check=True, capture_output=True,
                   env=env)
    call = next(c for c in log.read_text().splitlines() if "examples/run_grpo.py" in c)
    save_by = re.search(r"checkpointing\.checkpoint_must_save_by=(\d\d):(\d\d):(\d\d):(\d\d)", call)
    assert save_by, call
    d, h, m, s = map(int, save_by.groups())
    left = ((d * 24 + h) * 60 + m) * 60 + s
    assert 7 * 3600 - 120 <= left <= 7 * 3600  # 10 h - 2 h gone - 1 h to save


def test_a_job_with_too_little_time_left_does_not_start_training(tmp_path, monkeypatch):
    import time

    log = run_stub_env(tmp_path, monkeypatch)
    pipeline = pipeline_of([grpo_stage("zero", "qwen_7b", time_limit_min=600)], tmp_path / "run")
    nemo_rl.emit(pipeline)
    env = dict(os.environ, SLURM_JOB_END_TIME=str(int(time.time()) + 3600 + 300))
    done = subprocess.run(["bash", str(tmp_path / "run" / "zero" / "nemo_rl_run.sh")], capture_output=True,
                          text=True, env=env)
    assert done.returncode == 75 and "too little to start training" in done.stderr
    assert not log.exists() or "run_grpo" not in log.read_text()


def test_a_hub_dataset_with_a_messages_column_trains_on_the_columns_the_recipe_names(tmp_path, monkeypatch):
    """OpenR1-Math-220k has `messages` (R1's whole solution): ResponseDataset would take it over input/output_key."""
    log = run_stub_env(tmp_path, monkeypatch)
    hub = tmp_path / "openr1"  # a local stand-in: datasets.load_dataset reads a folder as it reads a hub id
    hub.mkdir()
    (hub / "train.jsonl").write_text("".join(json.dumps(
        {"problem": f"What is {i}+{i}?", "answer": str(2 * i), "solution": f"long solution {i}",
         "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": f"long solution {i}"}]}) + "\n"
        for i in range(3)))
    ds = Dataset("openr1", "hf", path=str(hub), split="train", fields={"prompt": "problem", "answer": "answer"},
                 provides=("prompt", "answer"))
    stage = replace(grpo_stage("zero", "qwen_7b"), data=("openr1",), eval_data=())
    pipeline = pipeline_of([stage], tmp_path / "run", datasets={"openr1": ds})
    nemo_rl.emit(pipeline)
    cfg = validate(tmp_path / "run" / "zero" / "nemo_rl.yaml", "grpo")
    train = cfg["data"]["train"]
    assert (train["input_key"], train["output_key"]) == ("prompt", "answer")
    subprocess.run(["bash", str(tmp_path / "run" / "zero" / "nemo_rl_run.sh")], check=True, capture_output=True)
    rows = [json.loads(line) for line in Path(train["data_path"]).read_text().splitlines()]
    assert rows == [{"prompt": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(3)]
    assert "messages" not in Path(train["data_path"]).read_text()


def test_a_megatron_stage_starts_from_the_previous_stages_megatron_checkpoint_without_an_hf_export(tmp_path, monkeypatch):
    log = run_stub_env(tmp_path, monkeypatch)
    first = grpo_stage("first", "qwen_7b", nodes=2, tensor_parallel=4, pipeline_parallel=2)
    second = replace(grpo_stage("second", "first", True, nodes=2, tensor_parallel=4, pipeline_parallel=2),
                     after=("first",))
    pipeline = pipeline_of([first, second], tmp_path / "run")
    nemo_rl.emit(pipeline)
    cfg = validate(tmp_path / "run" / "second" / "nemo_rl.yaml", "grpo")
    link = tmp_path / "run" / "first" / nemo_rl.MEGATRON_WEIGHTS
    assert cfg["policy"]["pretrained_checkpoint"] == {"path": str(link), "format": "megatron_bridge"}
    assert cfg["policy"]["model_name"] == "Qwen/Qwen2.5-Math-7B"  # tokenizer and architecture of the root model
    subprocess.run(["bash", str(tmp_path / "run" / "first" / "nemo_rl_run.sh")], check=True, capture_output=True)
    assert link.resolve() == (tmp_path / "run" / "first" / "checkpoints" / "step_100" / "policy" / "weights").resolve()
    assert not (tmp_path / "run" / "first" / "model").exists()  # no 1.3 TB single-process export in between
    assert "converters" not in log.read_text()
    subprocess.run(["bash", str(tmp_path / "run" / "second" / "nemo_rl_run.sh")], check=True, capture_output=True)
    assert (tmp_path / "run" / "second" / "model" / "config.json").exists()  # the last stage keeps its export
