"""`resources { precision  sharding  gradient_checkpointing }` reach the compiled stage config and NeMo-RL."""

from __future__ import annotations

import pytest

from r1dsl.compiler import compile_recipe
from r1dsl.frontend import check_file

RECIPE = """
model tiny {{ tiny {{ hidden_size = 32  num_layers = 2  num_heads = 2 }} }}
dataset arith {{ generator = "arithmetic"  size = 64 }}
reward accuracy {{ rule = "math_accuracy" }}
stage zero: grpo {{
  from = tiny  data = arith  rewards = [accuracy]
  grpo {{ num_generations_per_prompt = 4  num_prompts_per_step = 8 }}
  resources {{ {resources} }}
}}
"""


def compiled(tmp_path, resources: str) -> dict:
    path = tmp_path / "r.r1"
    path.write_text(RECIPE.format(resources=resources))
    result = check_file(str(path))
    assert result.ok, [d.message for d in result.diagnostics]
    return dict(compile_recipe(result.recipe, tmp_path / "run").jobs[0].config)


@pytest.mark.parametrize(
    "resources, strategy, precision",
    [
        ("nodes = 1", "auto", "32-true"),  # CPU default
        ("gpus_per_node = 8", "ddp", "bf16-mixed"),  # GPU default
        ("gpus_per_node = 8  sharding = \"fsdp\"  precision = \"bf16-true\"", "fsdp", "bf16-true"),
        ("cpu_processes = 2  sharding = \"fsdp\"", "fsdp", "32-true"),
        ("gpus_per_node = 1  precision = \"32-true\"", "auto", "32-true"),
    ],
)
def test_precision_and_sharding_choose_the_fabric_strategy_and_precision(tmp_path, resources, strategy, precision):
    cfg = compiled(tmp_path, resources)
    assert (cfg["trainer"]["strategy"], cfg["trainer"]["precision"]) == (strategy, precision)


def test_gradient_checkpointing_reaches_the_stage_config(tmp_path):
    cfg = compiled(tmp_path, "gradient_checkpointing = true")
    assert cfg["resources"]["gradient_checkpointing"] is True
    assert compiled(tmp_path, "nodes = 1")["resources"]["gradient_checkpointing"] is False


def test_an_unknown_precision_is_a_recipe_error(tmp_path):
    path = tmp_path / "r.r1"
    path.write_text(RECIPE.format(resources='precision = "fp8"'))
    result = check_file(str(path))
    assert not result.ok
    assert any("precision" in d.message and "bf16-true" in (d.message + (d.help or "")) for d in result.diagnostics)


def test_nemo_rl_gets_the_precision_and_activation_checkpointing(tmp_path):
    from backends.launchers import nemo_rl

    path = tmp_path / "r.r1"
    path.write_text(RECIPE.format(resources='gpus_per_node = 8  precision = "32-true"  gradient_checkpointing = true'))
    pipeline = compile_recipe(check_file(str(path)).recipe, tmp_path / "run", target="nemo-rl")
    cfg = nemo_rl.translate(pipeline.jobs[0], pipeline).config
    assert cfg["policy"]["precision"] == "float32"
    assert cfg["policy"]["dtensor_cfg"]["activation_checkpointing"] is True


@pytest.mark.parametrize("key", ["tensor_parallel", "pipeline_parallel"])
def test_model_parallel_is_refused_off_nemo_rl_and_the_error_names_that_target(tmp_path, capsys, key):
    from r1dsl.cli import PREFLIGHT_FAILED, main

    path = tmp_path / "r.r1"
    path.write_text(RECIPE.format(resources=f"gpus_per_node = 8  {key} = 2"))
    # slurm: its sbatch would run the data-parallel trainer, so compile refuses
    assert main(["compile", str(path), "-o", str(tmp_path / "slurm"), "--target", "slurm"]) == 1
    err = capsys.readouterr().err
    assert f"error[E010]: stage `zero`: resources.{key} = 2 cannot run on the slurm target" in err
    assert "--target nemo-rl" in err and f"{path}:5:1" in err
    assert not (tmp_path / "slurm" / "zero" / "config.yaml").exists()
    # local: compiling warns, running refuses before anything starts
    assert main(["compile", str(path), "-o", str(tmp_path / "local")]) == 0
    assert f"resources.{key} = 2: the local target trains data-parallel only" in capsys.readouterr().err
    assert main(["compile", str(path), "-o", str(tmp_path / "run"), "--run"]) == PREFLIGHT_FAILED
    err = capsys.readouterr().err
    assert f"{key} = 2 (model parallel)" in err and "--target nemo-rl" in err
    assert not (tmp_path / "run" / "zero" / "DONE").exists()
