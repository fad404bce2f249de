"""Whatever `r1dsl check` accepts, `r1dsl compile --dry-run` compiles, for every target.

Recipes are generated with unusual but legal names, strings (interpolation-like `${...}`, quotes,
backslashes, shell metacharacters, non-ASCII), numbers and resources; each one `check` accepts must
compile without an internal error (exit status 3) and without a recipe error.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omegaconf import OmegaConf

from r1dsl.cli import INTERNAL_ERROR, OK, PREFLIGHT_FAILED, RECIPE_ERROR, main
from r1dsl.frontend import check_file

NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True) | st.from_regex(r"[a-z][a-z0-9_]{60,300}", fullmatch=True)
NASTY = ["${x}", "${oc.env:HOME}", "$HOME", "$(id)", "`id`", "'", '\\"', "\\\\", "%", "{", "}", "{{x}}", "#", ";", "&&",
         "\\n", "\\t", "é", "∑", "\u00a0", "---", ": ", "- ", "*", "!", "null", "~", "@"]
TEXT = st.lists(st.sampled_from(NASTY) | st.text(alphabet="abc xyz", max_size=4), max_size=6).map("".join)


def quoted(raw: str) -> str:
    return f'"{raw}"'


@st.composite
def recipes(draw) -> str:
    names = draw(st.lists(NAMES, min_size=6, max_size=6, unique=True).filter(
        lambda ns: not any(n in ("true", "false", "null") for n in ns)))
    model, data, chat, template, reward, stage = names
    second = stage[:40] + "_eval"
    prompt = draw(TEXT) + "{prompt}" + draw(TEXT)
    gpus = draw(st.sampled_from([0, 0, 1, 8]))
    nodes = draw(st.sampled_from([1, 1, 2]))
    resources = f"resources {{ gpus_per_node = {gpus}  nodes = {nodes}"
    for key in ("partition", "account", "container_image"):
        if draw(st.booleans()):
            resources += f"  {key} = {quoted(draw(TEXT))}"
    resources += " }"
    kind = draw(st.sampled_from(["grpo", "sft"]))
    if kind == "grpo":
        body = (f"from = {model}  data = {data}  template = {template}  rewards = [{reward}]\n"
                f"  grpo {{ steps = {draw(st.integers(1, 10**6))}  num_prompts_per_step = 4  num_generations_per_prompt = 2 }}")
    else:
        body = (f"from = {model}  data = {chat}  template = {template}\n"
                f"  train {{ steps = {draw(st.integers(1, 10**6))}  batch_size = 8 }}")
    weight = draw(st.floats(0.001, 1e6, allow_nan=False, allow_infinity=False))
    long = '"""' + prompt.replace('\\"', '"') + '"""'  # verbatim: the escapes stay as written
    template_text = quoted(prompt) if draw(st.booleans()) else long
    chat_decl = (f'dataset {chat} {{ generator = "chat"  size = 10 }}' if draw(st.booleans()) else
                 f'dataset {chat} {{ jsonl = {quoted(draw(TEXT) + ".jsonl")}  fields {{ response = {quoted(draw(TEXT) or "r")} }} }}')
    return f'''recipe {names[0]}
model {model} {{ tiny {{ hidden_size = 64  num_layers = 2 }} }}
dataset {data} {{ generator = "arithmetic"  size = {draw(st.integers(1, 10**7))}  seed = {draw(st.integers(0, 2**31))} }}
{chat_decl}
template {template} = {template_text}
reward {reward} {{ rule = "math_accuracy"  weight = {weight!r} }}
stage {stage}: {kind} {{
  {body}
  {resources}
}}
stage {second}: eval {{ from = {stage}  data = {data}  template = {template}  rewards = [{reward}] }}
'''


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(recipes())
def test_what_check_accepts_compiles_for_every_target(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "r.r1"
    path.write_text(text)
    result = check_file(str(path))
    if not result.ok:  # a limit the checker states (a name too long, ...): fine, as long as it is a diagnostic
        assert all(d.span is not None for d in result.diagnostics)
        return
    for target in ("local", "slurm", "nemo-rl"):
        out = folder / f"run-{target}"
        status = main(["compile", str(path), "-o", str(out), "--target", target, "--dry-run"])
        assert status != INTERNAL_ERROR, (target, text)
        allowed = {"local": (OK, PREFLIGHT_FAILED), "slurm": (OK,), "nemo-rl": (OK, RECIPE_ERROR)}[target]
        assert status in allowed, (target, status, text)  # nemo-rl refuses, with a message, what it cannot run
        if status != OK:
            continue
        manifest = json.loads((out / "manifest.json").read_text())
        assert [s["name"] for s in manifest["stages"]]
        for config in out.glob("*/config.yaml"):  # what the stage runner does first: load and resolve
            OmegaConf.to_container(OmegaConf.load(config), resolve=True)


@pytest.mark.parametrize("text", ["Q: ${x} {prompt}", "Q: ${ {prompt}", "\\${oc.env:HOME} {prompt}", "{prompt} $ ${"])
def test_interpolation_like_text_stays_text(tmp_path, text):
    recipe = tmp_path / "t.r1"
    recipe.write_text('model tiny { tiny { hidden_size = 64  num_layers = 2 } }\n'
                      'dataset arith { generator = "arithmetic"  size = 10 }\n'
                      'reward accuracy { rule = "math_accuracy" }\n'
                      f'template t = """{text}"""\n'
                      'stage zero: grpo { from = tiny  data = arith  template = t  rewards = [accuracy] }\n')
    for target in ("local", "slurm"):  # (nemo-rl refuses a tiny config-built model)
        assert main(["compile", str(recipe), "-o", str(tmp_path / target), "--target", target]) == OK
        config = OmegaConf.to_container(OmegaConf.load(tmp_path / target / "zero" / "config.yaml"), resolve=True)
        assert _contains(config, text)


def _contains(value, text: str) -> bool:
    if isinstance(value, str):
        return value == text or text in value
    if isinstance(value, dict):
        return any(_contains(v, text) for v in value.values())
    if isinstance(value, list):
        return any(_contains(v, text) for v in value)
    return False
