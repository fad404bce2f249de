"""A reward parameter may name an earlier stage: the stage's model folder, and a run-order dependency."""

from __future__ import annotations

import json

from r1dsl import ir
from r1dsl.cli import main
from r1dsl.frontend import check_file

RECIPE = '''
model tiny { tiny { hidden_size = 32  num_layers = 1  num_heads = 2  intermediate_size = 64 } }
dataset arith { generator = "arithmetic"  size = 32 }
dataset pairs { generator = "preference_pairs"  size = 32 }
dataset chat  { generator = "chat"  size = 32 }
reward accuracy { rule = "math_accuracy" }
reward helpful  { rule = "preference_model"  model = rm }
stage rl: grpo {
  from = tiny  data = [arith, chat]  rewards = [accuracy, helpful]
  route { arith = [accuracy]  chat = [helpful] }
}
stage rm: reward_model { from = tiny  data = pairs }
'''


def test_a_reward_model_stage_runs_before_the_stage_whose_reward_it_is(tmp_path):
    path = tmp_path / "r.r1"
    path.write_text(RECIPE)
    result = check_file(str(path))
    assert result.ok, result.diagnostics
    assert [s.name for s in result.recipe.stages] == ["rm", "rl"]  # declared after, runs before
    assert result.recipe.rewards["helpful"].params["model"] == ir.StageModel("rm")
    assert "rm" in result.recipe.stage("rl").after

    out = tmp_path / "run"
    assert main(["compile", str(path), "-o", str(out)]) == 0
    config = (out / "rl" / "config.yaml").read_text()
    assert f"model: {out / 'rm' / 'model'}" in config
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["order"] == ["rm", "rl"]
