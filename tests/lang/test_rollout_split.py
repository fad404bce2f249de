"""The rollout/update split in the language: train_global_batch_size cuts a rollout into whole-group mini-batches
that split over the data-parallel ranks; steps, checkpoint_every and reference_refresh_steps count optimizer steps
in whole rollouts; a GRPO stage with `rewards = []` is an error."""

import pytest

from r1dsl.frontend import check_file

HEAD = '''
model m { tiny { hidden_size = 64 } }
dataset d { generator = "arithmetic"  size = 100 }
template t = "Q: {prompt} A:"
reward accuracy { rule = "math_accuracy" }
reward format { rule = "format" }
'''


def check(write, grpo: str, resources: str = "", rewards: str = "[accuracy, format]"):
    path = write("r.r1", HEAD + f"stage s: grpo {{ from = m  data = d  template = t  rewards = {rewards}\n"
                                f"  grpo {{ {grpo} }}\n  resources {{ {resources} }}\n}}\n")
    return check_file(str(path))


def errors(result):
    return [(d.code, d.message) for d in result.diagnostics if d.severity == "error"]


def test_the_papers_split_checks_and_is_carried_into_the_ir(write):
    # R1-Zero: 512 questions x G = 16 per rollout, mini-batches of 512 outputs: 16 optimizer steps per rollout
    result = check(write, "num_generations_per_prompt = 16  num_prompts_per_step = 512  train_global_batch_size = 512  "
                          "micro_batch_size = 1  steps = 10400  reference_refresh_steps = 400  checkpoint_every = 400")
    assert result.ok, errors(result)
    g = result.recipe.stage("s").grpo
    assert (g.rollout_size, g.mini_batches, g.updates_per_rollout, g.steps // g.updates_per_rollout) == (8192, 16, 16, 650)


def test_unset_split_is_one_optimizer_step_per_rollout_and_keeps_the_defaults(write):
    result = check(write, "num_prompts_per_step = 4")
    assert result.ok, errors(result)
    g = result.recipe.stage("s").grpo
    assert g.train_global_batch_size is None and g.updates_per_rollout == 1 and g.checkpoint_every == 25


def test_an_unset_checkpoint_every_is_rounded_up_to_whole_rollouts(write):
    result = check(write, "num_prompts_per_step = 4  num_generations_per_prompt = 4  train_global_batch_size = 4  steps = 40")
    assert result.ok, errors(result)
    assert result.recipe.stage("s").grpo.checkpoint_every == 28  # 25 rounded up to a multiple of 4


@pytest.mark.parametrize("grpo, resources, needle", [
    ("num_generations_per_prompt = 4  num_prompts_per_step = 4  train_global_batch_size = 6", "",
     "not a whole number of groups"),
    ("num_generations_per_prompt = 4  num_prompts_per_step = 6  train_global_batch_size = 16  steps = 30", "",
     "does not split into mini-batches"),
    ("num_generations_per_prompt = 4  num_prompts_per_step = 8  train_global_batch_size = 4", "cpu_processes = 2",
     "do not split over 2 data-parallel ranks"),
    ("num_generations_per_prompt = 4  num_prompts_per_step = 4  train_global_batch_size = 8  steps = 5", "",
     "steps = 5 optimizer steps is not a whole number of rollouts"),
    ("num_generations_per_prompt = 4  num_prompts_per_step = 4  inner_epochs = 2  steps = 8  checkpoint_every = 3", "",
     "checkpoint_every = 3"),
    ("num_generations_per_prompt = 4  num_prompts_per_step = 4  train_global_batch_size = 4  steps = 8  "
     "reference_refresh_steps = 6", "", "reference_refresh_steps = 6"),
    ("num_generations_per_prompt = 4  num_prompts_per_step = 4  train_global_batch_size = 8  micro_batch_size = 16", "",
     "not a multiple of micro_batch_size 16"),
])
def test_split_errors_say_what_does_not_divide(write, grpo, resources, needle):
    found = errors(check(write, grpo, resources))
    assert found and all(code == "E009" for code, _ in found), found
    assert any(needle in message for _, message in found), found


def test_an_empty_rewards_list_in_a_grpo_stage_is_an_error(write):
    found = errors(check(write, "num_prompts_per_step = 4", rewards="[]"))
    assert [code for code, _ in found] == ["E011"] and "empty rewards list" in found[0][1]


def test_an_empty_rewards_list_through_a_constant_is_an_error_too(write):
    path = write("r.r1", HEAD + 'const none = []\nstage s: grpo { from = m  data = d  template = t  rewards = none }\n')
    found = errors(check_file(str(path)))
    assert "E011" in [code for code, _ in found], found
