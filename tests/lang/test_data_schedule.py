"""`from_step { DATASET = N }`: a grpo stage draws a dataset's prompts from step N on [NAT: R1's last RL phase adds
general data and preference rewards only in its last 400 of 1,700 steps]. Checked, compiled, shown, honoured."""

from __future__ import annotations

import pytest

from backends.data.schedule import PromptSchedule
from r1dsl.frontend import check_file
from r1dsl.graph import mermaid
from r1dsl.plan import plan

RECIPE = '''
recipe w
model m { tiny { hidden_size = 32  num_layers = 1  num_heads = 2  intermediate_size = 64 } }
dataset a { generator = "arithmetic"  size = 8 }
dataset b { generator = "chat"  size = 8 }
reward acc { rule = "math_accuracy" }
reward fmt { rule = "format" }
stage s: grpo {
  from = m  data = [a, b]  rewards = [acc, fmt]
  route { a = [acc, fmt]  b = [fmt] }
  from_step { WINDOW }
  grpo { steps = 8 }
}
'''


def _check(tmp_path, window):
    path = tmp_path / "w.r1"
    path.write_text(RECIPE.replace("WINDOW", window))
    return check_file(str(path))


def test_a_window_reaches_the_ir_the_compiled_config_the_graph_and_the_plan(tmp_path):
    from r1dsl.compiler import compile_recipe

    result = _check(tmp_path, "b = 6")
    assert result.ok, result.diagnostics
    stage = result.recipe.stage("s")
    assert dict(stage.data_from_step) == {"b": 6}
    assert "b from step 6 of 8 (the last 2)" in mermaid(result.recipe)
    assert any("data schedule: b from step 6" in n for p in plan(result.recipe) for n in p.notes)
    pipeline = compile_recipe(result.recipe, str(tmp_path / "run"), "local")
    train = {d["name"]: d["from_step"] for d in pipeline.jobs[0].config["model"]["data"]["train"]}
    assert train == {"a": 0, "b": 6}


@pytest.mark.parametrize("window, code", [
    ("b = 8", "E005"),  # never sampled
    ("b = -1", "E005"),
    ("a = 1  b = 2", "E005"),  # the first step would have no prompts
    ("c = 2", "E002"),  # not a dataset of the stage
    ('b = "late"', "E004"),
    ("b = 1.5", "E004"),
])
def test_a_window_the_run_could_not_honour_is_an_error(tmp_path, window, code):
    result = _check(tmp_path, window)
    assert not result.ok
    assert code in {d.code for d in result.diagnostics}


def test_the_sampler_draws_a_late_dataset_only_from_its_step():
    starts = [0, 0, 0, 5, 5]  # rows 3 and 4 belong to a dataset with from_step = 5
    schedule = PromptSchedule(starts)
    assert schedule.pool(0) == [0, 1, 2] and schedule.pool(4) == [0, 1, 2]
    assert schedule.pool(5) == [0, 1, 2, 3, 4] and schedule.pool(10**6) == [0, 1, 2, 3, 4]
    assert PromptSchedule([0, 0]).pool(3) == [0, 1]  # no window: every row from the first step
    with pytest.raises(ValueError, match="step 0"):
        PromptSchedule([2, 3])
