"""The NeMo-RL target: every emitted key is NeMo-RL v0.7.0's, with its type; the chain holds together."""

from __future__ import annotations

import re
import subprocess
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from backends.launchers import nemo_rl
from handmade import ACCURACY, grpo_stage, make_pipeline, make_recipe, r1_like
from r1dsl.ir import GRPO, Resources, Template
from test_slurm import shellcheck

REFERENCE = Path("/work/shared/reference/nemo-rl-v0.7.0")


def _resolver() -> None:
    if not OmegaConf.has_resolver("mul"):  # NeMo-RL registers `mul` at start-up
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            OmegaConf.register_new_resolver("mul", lambda a, b: a * b)


def resolved(source) -> dict:
    _resolver()
    cfg = OmegaConf.load(source) if isinstance(source, (str, Path)) else OmegaConf.create(source)
    return OmegaConf.to_container(cfg, resolve=True)


def reference(algorithm: str) -> dict:
    """The reference key tree: the shared copy when present, else the one shipped in templates/."""
    name = nemo_rl.REFERENCE_CONFIGS[algorithm]
    return resolved(REFERENCE / name if (REFERENCE / name).exists() else nemo_rl.REFERENCE_DIR / name)


def reference_tree(algorithm: str) -> dict:
    """What an emitted config is checked against: the algorithm's reference config, where `policy` may
    also use keys of the other references' `policy` blocks (NeMo-RL has one PolicyConfig for every
    algorithm; sft.yaml just leaves `policy.scheduler` out, while the R1 recipes decay the lr)."""
    tree = reference(algorithm)
    for other in nemo_rl.REFERENCE_CONFIGS:
        for key, value in reference(other)["policy"].items():
            tree["policy"].setdefault(key, value)
    return tree


def nullable_paths() -> set[str]:
    """Key paths that hold null in any of the reference configs (null is a value NeMo-RL accepts there)."""
    out: set[str] = set()

    def walk(node, path):
        if node is None:
            out.add(path)
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else k)

    for algorithm in nemo_rl.REFERENCE_CONFIGS:
        walk(reference(algorithm), "")
    return out


def key_tree_errors(emitted, ref, path: str = "", nullable: frozenset = frozenset()) -> list[str]:
    """Every emitted key must exist in the reference (or NeMo-RL's documented data keys) with the same type."""
    errors = []
    documented = nemo_rl.DOCUMENTED_DATA_KEYS.get(path.removeprefix("data."), {}) if path.startswith("data.") else {}
    for key, value in emitted.items():
        here = f"{path}.{key}" if path else key
        if isinstance(ref, dict) and key in ref:
            expected = ref[key]
        elif key in documented:
            expected = documented[key]
            if value is None or isinstance(value, expected):
                continue
            errors.append(f"{here}: {type(value).__name__}, documented as {expected.__name__}")
            continue
        else:
            errors.append(f"{here}: not a NeMo-RL {nemo_rl.NEMO_RL_VERSION} key")
            continue
        if value is None:
            if expected is not None and here not in nullable:
                errors.append(f"{here}: null where NeMo-RL has {type(expected).__name__}")
        elif expected is None:
            if isinstance(value, dict):  # e.g. data.validation: null in the reference, a dataset here
                errors += key_tree_errors(value, {}, here, nullable)
        elif isinstance(value, list) and here == "data.train" and isinstance(expected, dict):
            # several training sets: a list of dataset entries, as the reference's comment documents
            for i, entry in enumerate(value):
                errors += [e.replace(here, f"{here}[{i}]", 1) for e in key_tree_errors(entry, expected, here, nullable)]
        elif isinstance(value, dict):
            if not isinstance(expected, dict):
                errors.append(f"{here}: mapping where NeMo-RL has {type(expected).__name__}")
            else:
                errors += key_tree_errors(value, expected, here, nullable)
        elif type(value) is not type(expected):
            errors.append(f"{here}: {type(value).__name__} where NeMo-RL has {type(expected).__name__}")
    return errors


@pytest.fixture
def emitted(tmp_path):
    pipeline = r1_like(tmp_path)
    return pipeline, nemo_rl.emit(pipeline)


def test_every_emitted_key_is_a_nemo_rl_key_with_its_type(emitted):
    pipeline, written = emitted
    configs = [p for p in written if p.name == "nemo_rl.yaml"]
    assert {p.parent.name for p in configs} == {"zero", "students_qwen_1_5b", "students_llama_8b"}
    nullable = frozenset(nullable_paths())
    for path in configs:
        algorithm = "grpo" if path.parent.name == "zero" else "sft"
        errors = key_tree_errors(resolved(path), reference_tree(algorithm), nullable=nullable)
        assert not errors, f"{path}:\n" + "\n".join(errors)


def test_a_key_that_nemo_rl_lacks_or_a_wrong_type_is_caught():
    ref = reference("grpo")
    assert key_tree_errors({"grpo": {"group_size": 8}}, ref) == ["grpo.group_size: not a NeMo-RL v0.7.0 key"]
    assert key_tree_errors({"grpo": {"num_prompts_per_step": 8.0}}, ref) == [
        "grpo.num_prompts_per_step: float where NeMo-RL has int"]


def test_grpo_keys_carry_the_recipe_values_and_batch_arithmetic(emitted):
    pipeline, _ = emitted
    cfg = resolved(Path(pipeline.run_dir) / "zero" / "nemo_rl.yaml")
    g = pipeline.recipe.stage("zero").grpo
    assert cfg["grpo"]["num_prompts_per_step"] == g.num_prompts_per_step == 32
    assert cfg["grpo"]["num_generations_per_prompt"] == g.num_generations_per_prompt == 16
    assert cfg["policy"]["train_global_batch_size"] == 32 * 16 and nemo_rl.batch_arithmetic(cfg)
    assert cfg["grpo"]["max_num_steps"] == g.steps
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
    assert policy["dtensor_cfg"]["tensor_parallel_size"] == 2
    assert policy["dtensor_cfg"]["enabled"] != policy["megatron_cfg"]["enabled"]
    assert (cfg["cluster"]["num_nodes"], cfg["cluster"]["gpus_per_node"]) == (2, 8)
    run_dir = Path(pipeline.run_dir)
    assert cfg["checkpointing"]["checkpoint_dir"] == str(run_dir / "zero" / "checkpoints")
    assert cfg["logger"]["log_dir"] == str(run_dir / "zero" / "logs")
    assert cfg["data"]["default"]["env_name"] == "math"
    train = cfg["data"]["train"]
    assert train["data_path"] == str(run_dir / "zero" / "train_arith.jsonl")
    rows = (run_dir / "zero" / "train_arith.jsonl").read_text().splitlines()
    assert len(rows) == 400 and set(yaml.safe_load(rows[0])) >= {"prompt", "answer"}


def test_sft_and_distill_students_chain_from_the_rejection_sampling_output(emitted):
    pipeline, _ = emitted
    run_dir = Path(pipeline.run_dir)
    for student, model, lr in (("qwen_1_5b", "Qwen/Qwen2.5-Math-1.5B", 1e-4), ("llama_8b", "meta-llama/Llama-3.1-8B", 5e-5)):
        cfg = resolved(run_dir / f"students_{student}" / "nemo_rl.yaml")
        assert cfg["policy"]["model_name"] == model
        assert cfg["policy"]["optimizer"]["kwargs"]["lr"] == lr
        assert cfg["policy"]["train_global_batch_size"] == 64 and cfg["policy"]["train_micro_batch_size"] == 1
        assert cfg["policy"]["max_total_sequence_length"] == 4096
        assert cfg["sft"]["max_num_epochs"] == 2
        assert cfg["data"]["train"]["data_path"] == str(run_dir / "rs" / "data.jsonl")
        assert cfg["data"]["train"]["output_key"] == "response"


def test_a_stage_after_a_nemo_rl_stage_reads_its_converted_model(tmp_path):
    sft_first = replace(grpo_stage("zero", "qwen_1_5b"))
    second = grpo_stage("again", "zero", True)
    pipeline = make_pipeline(make_recipe([sft_first, second]), tmp_path, "nemo-rl")
    nemo_rl.emit(pipeline)
    cfg = resolved(tmp_path / "again" / "nemo_rl.yaml")
    assert cfg["policy"]["model_name"] == str(tmp_path / "zero" / "model")
    run = (tmp_path / "zero" / "nemo_rl_run.sh").read_text()
    assert "examples/converters/convert_dcp_to_hf.py" in run and '--hf-ckpt-path "$stage_dir/model"' in run
    assert "uv run python examples/run_grpo_math.py" in run


def test_launch_goes_through_ray_sub_with_nodes_equal_to_cluster_num_nodes(emitted, capfd):
    pipeline, written = emitted
    assert nemo_rl.run(pipeline, dry_run=True) == 0
    lines = [l for l in capfd.readouterr().out.splitlines() if "sbatch" in l]
    assert len(lines) == len(pipeline.jobs)
    for job, line in zip(pipeline.jobs, lines):
        nodes = int(re.search(r"--nodes=(\d+)", line).group(1))
        if nemo_rl.runs_on_nemo_rl(job):
            cfg = resolved(Path(job.dir) / "nemo_rl.yaml")
            assert line.split(" # ")[0].endswith("/ray.sub") and nodes == cfg["cluster"]["num_nodes"]
            assert "COMMAND=bash\\ " in line and "nemo_rl_run.sh" in line
        else:  # rejection sampling and eval: our own backend in the same chain
            assert line.split(" # ")[0].endswith(f"{job.stage.name}/job.sbatch")
    assert "--dependency=afterok:JOB1 " in lines[1]  # rs after zero
    assert "--dependency=afterok:JOB2 " in lines[2] and "--dependency=afterok:JOB2 " in lines[3]  # students after rs
    shellcheck(written)


def test_prompt_file_is_the_recipe_template_in_nemo_rl_format(tmp_path):
    text = "Solve {prompt}; answer in \\boxed{} or {x}."
    stage = grpo_stage()
    recipe = make_recipe([stage])
    recipe = replace(recipe, templates={"r1_zero": Template("r1_zero", text)})
    nemo_rl.emit(make_pipeline(recipe, tmp_path, "nemo-rl"))
    prompt_file = (tmp_path / "zero" / "prompt.txt").read_text()
    assert prompt_file.format("2+2") == "Solve 2+2; answer in \\boxed{} or {x}."


def test_pipeline_parallel_switches_to_megatron_and_rollout_gpus_to_dedicated_generation(tmp_path):
    stage = grpo_stage("zero", nodes=4, gpus_per_node=8, tensor_parallel=4, pipeline_parallel=2, rollout_gpus=16)
    nemo_rl.emit(make_pipeline(make_recipe([stage]), tmp_path, "nemo-rl"))
    cfg = resolved(tmp_path / "zero" / "nemo_rl.yaml")
    policy = cfg["policy"]
    assert policy["megatron_cfg"]["enabled"] and not policy["dtensor_cfg"]["enabled"]
    assert (policy["megatron_cfg"]["tensor_model_parallel_size"], policy["megatron_cfg"]["pipeline_model_parallel_size"]) == (4, 2)
    colocated = policy["generation"]["colocated"]
    assert colocated["enabled"] is False and colocated["resources"]["num_nodes"] == 2
    assert not key_tree_errors(cfg, reference_tree("grpo"), nullable=frozenset(nullable_paths()))


def test_unsupported_features_are_reported(tmp_path):
    g = GRPO(reference_refresh_steps=400, inner_epochs=2, loss_aggregation="constant", truncated="penalize")
    stage = replace(grpo_stage("zero", "tiny"), grpo=g, resources=Resources(gpus_per_node=0))
    pipeline = make_pipeline(make_recipe([stage]), tmp_path, "nemo-rl")
    found = "\n".join(nemo_rl.unsupported(pipeline))
    for needle in ("reference_refresh_steps = 400", "inner_epochs = 2", "Dr. GRPO", "truncated = \"penalize\"",
                   "reward `format`", "built from a config", "NeMo-RL needs GPUs"):
        assert needle in found, needle
    r1 = "\n".join(nemo_rl.unsupported(r1_like(tmp_path / "r1")))
    assert "NeMo-RL has no rejection_sample stage" in r1 and "NeMo-RL has no eval stage" in r1


def test_a_math_only_grpo_stage_with_a_container_has_nothing_to_report(tmp_path):
    stage = replace(grpo_stage("zero", container_image="nvcr.io/nvidia/nemo-rl:v0.7.0"), rewards=(ACCURACY,))
    pipeline = make_pipeline(make_recipe([stage]), tmp_path, "nemo-rl")
    assert nemo_rl.unsupported(pipeline) == []
    nemo_rl.emit(pipeline)
    submit = (tmp_path / "submit.sh").read_text()
    assert "CONTAINER=nvcr.io/nvidia/nemo-rl:v0.7.0" in submit
    subprocess.run(["bash", "-n", str(tmp_path / "submit.sh")], check=True)


def test_the_compiled_deepseek_r1_recipe_is_all_nemo_rl_keys(tmp_path):
    """The shipped R1 recipe through the front end's compiler (several datasets per stage, megatron layouts)."""
    from r1dsl.compiler import compile_recipe
    from r1dsl.frontend import load_recipe

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "deepseek_r1.r1"
    pipeline = compile_recipe(load_recipe(str(recipe)), str(tmp_path), "nemo-rl")
    written = nemo_rl.emit(pipeline)
    nullable = frozenset(nullable_paths())
    checked = 0
    for job in pipeline.jobs:
        if nemo_rl.runs_on_nemo_rl(job):
            cfg = resolved(Path(job.dir) / "nemo_rl.yaml")
            algorithm = nemo_rl.NEMO_KINDS[job.stage.kind]
            assert not key_tree_errors(cfg, reference_tree(algorithm), nullable=nullable), job.stage.name
            if algorithm == "grpo":
                assert nemo_rl.batch_arithmetic(cfg)
            checked += 1
    assert checked == 10  # cold_sft, two RL phases, r1_sft, six students
    shellcheck(written)
    found = "\n".join(nemo_rl.unsupported(pipeline))
    assert "reference_refresh_steps = 400" in found and "reward `language`" in found
