"""`--set KEY=VALUE`: applied to the syntax tree before checking, so the checker validates the result."""

from r1dsl.frontend import check_file


def test_section_shorthand_and_const_overrides(tiny_recipe):
    recipe = check_file(str(tiny_recipe), [
        "zero.grpo.kl_penalty=0.01",
        "zero.group_size=8",
        "zero.lr=5e-4",
        "base.steps=3",
        "seed=11",
        "zero.resources.cpu_processes=2",
    ]).recipe
    zero = recipe.stage("zero")
    assert zero.grpo.kl_penalty == 0.01
    assert zero.grpo.num_generations_per_prompt == 8  # replaced the stage's own `group_size = 4`
    assert zero.optim.lr == 5e-4
    assert zero.grpo.seed == 11
    assert zero.resources.cpu_processes == 2
    assert recipe.stage("base").train.steps == 3


def test_section_path_replaces_a_shorthand(tiny_recipe):
    recipe = check_file(str(tiny_recipe), ["zero.grpo.num_generations_per_prompt=6"]).recipe
    assert recipe.stage("zero").grpo.num_generations_per_prompt == 6


def test_unparseable_value_is_a_string(tiny_recipe):
    recipe = check_file(str(tiny_recipe), ["zero.optim.lr_schedule=constant"]).recipe
    assert recipe.stage("zero").optim.lr_schedule == "constant"


def test_bad_overrides_are_diagnostics_pointing_at_the_override(tiny_recipe):
    result = check_file(str(tiny_recipe), ["zreo.lr=1", "zero.group_size=1", "novalue", "zero.grpo.kl_pnalty=0"])
    by_code = sorted((d.code, d.span.file, d.span.line) for d in result.diagnostics)
    assert by_code == [("E002", "--set", 1), ("E002", "--set", 4), ("E005", "--set", 2), ("E014", "--set", 3)]
    assert "did you mean `zero`?" in next(d.help for d in result.diagnostics if d.span.line == 1)
    assert "kl_penalty" in next(d.help for d in result.diagnostics if d.span.line == 4)
