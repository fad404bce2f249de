"""The checked IR of a small valid recipe: what each construct turns into."""

import dataclasses

from r1dsl.frontend import check_file


def test_tiny_recipe_checks_clean(tiny_recipe):
    result = check_file(str(tiny_recipe))
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.diagnostics == []


def test_stages_in_run_order_with_distill_expanded_per_student(tiny_recipe):
    recipe = check_file(str(tiny_recipe)).recipe
    assert [s.name for s in recipe.stages] == ["base", "zero", "rs", "students_tiny", "students_base", "final"]
    tiny, base = recipe.stage("students_tiny"), recipe.stage("students_base")
    assert (tiny.kind, tiny.student_of, tiny.init, tiny.init_is_stage) == ("sft", "students", "tiny", False)
    assert (base.init, base.init_is_stage) == ("base", True)
    assert tiny.optim.lr == 1e-3 and base.optim.lr == 1e-4  # each student's own lr, else the IR default
    assert tiny.train.steps == 5 and base.train.steps == 7
    assert set(tiny.after) == {"rs"} and set(base.after) == {"base", "rs"}


def test_shorthands_constants_and_micro_batch_default(tiny_recipe):
    recipe = check_file(str(tiny_recipe)).recipe
    zero = recipe.stage("zero")
    assert zero.grpo.num_generations_per_prompt == 4  # group_size
    assert zero.grpo.seed == 3  # const seed
    assert zero.grpo.micro_batch_size == 16  # gcd(4 x 4, default 16)
    assert recipe.stage("base").train.micro_batch_size == 8  # gcd(batch 8, default 16)
    assert recipe.datasets["corpus"].seed == 3


def test_routing_and_stage_sourced_data(tiny_recipe):
    recipe = check_file(str(tiny_recipe)).recipe
    zero = recipe.stage("zero")
    routes = {r.name: r.datasets for r in zero.rewards}
    assert routes == {"accuracy": ("arith", "arith_test"), "format": ()}
    rs = recipe.datasets["rs"]
    assert (rs.source, rs.path) == ("stage", "rs")
    assert {"prompt", "response", "answer"} <= set(rs.provides)
    assert recipe.stage("students_tiny").data == ("rs",)


def test_template_text_verbatim_after_the_first_newline(tiny_recipe):
    recipe = check_file(str(tiny_recipe)).recipe
    assert recipe.templates["r1"].text == "A conversation. User: {prompt}. Assistant:"


def test_ir_is_frozen(tiny_recipe):
    recipe = check_file(str(tiny_recipe)).recipe
    stage = recipe.stages[0]
    try:
        stage.name = "x"
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("IR must be frozen")


def test_several_errors_in_one_run(write):
    path = write("bad.r1", '''
model m { hf = "x/y" }
dataset d { generator = "arithmetic" }
reward r { rule = "format"  weight = "heavy" }
stage s: grpo { from = m  data = dd  rewards = [r]  grpo { num_generations_per_prompt = 1 } }
stage t: sft { from = nope  data = d }
''')
    codes = sorted(d.code for d in check_file(str(path)).diagnostics)
    assert codes.count("E002") >= 1 and "E004" in codes and "E005" in codes and "E007" in codes


def test_import_and_include(write):
    write("common.r1", 'model tiny { tiny {} }\ndataset arith { generator = "arithmetic" }\nreward f { rule = "format" }\n')
    write("more.r1", 'include "common.r1"\ntemplate t = "{prompt}"\n')
    main = write("main.r1", 'import "common.r1"\nimport "more.r1"\n'
                 'stage z: grpo { from = tiny  data = arith  template = t  rewards = [f] }\n')
    result = check_file(str(main))
    assert result.ok, [d.message for d in result.diagnostics]
    assert set(result.recipe.models) == {"tiny"}


def test_a_template_and_a_stage_may_share_a_name(write):
    path = write("x.r1", 'model m { tiny {} }\ndataset d { generator = "arithmetic" }\nreward f { rule = "format" }\n'
                 'template z = "{prompt}"\nstage z: grpo { from = m  data = d  template = z  rewards = [f] }\n')
    assert check_file(str(path)).ok


def test_relative_paths_resolve_against_the_declaring_file(write, tmp_path):
    path = write("x.r1", 'model m { path = "ckpt" }\ndataset d { jsonl = "data/x.jsonl"  fields { response = "out" } }\n'
                 'stage s: sft { from = m  data = d }\n')
    recipe = check_file(str(path)).recipe
    assert recipe.models["m"].path == str(tmp_path / "ckpt")
    assert recipe.datasets["d"].path == str(tmp_path / "data" / "x.jsonl")
    assert recipe.datasets["d"].provides == ("prompt", "response")




def test_rollout_engine_section_is_typed_defaulted_and_refused_with_several_processes(write):
    head = ('model m { tiny {} }\ndataset d { generator = "arithmetic" }\nreward r { rule = "math_accuracy" }\n')
    ok = write("ok.r1", head + 'stage z: grpo { from = m  data = d  rewards = [r]  rollout { engine = "vllm"  cpu_kv_cache_gb = 1 } }\n'
               'stage e: eval { from = z  data = d  rewards = [r] }\n')
    result = check_file(str(ok))
    assert result.ok, [d.message for d in result.diagnostics]
    zero, ev = result.recipe.stage("z"), result.recipe.stage("e")
    assert (zero.rollout.engine, zero.rollout.cpu_kv_cache_gb, zero.rollout.gpu_memory_utilization) == ("vllm", 1, 0.5)
    assert ev.rollout.engine == "hf"  # the default: our sampler on the policy itself
    bad = write("bad.r1", head + 'stage z: grpo { from = m  data = d  rewards = [r]  resources { cpu_processes = 2 }\n'
                '  rollout { engine = "vllm"  gpu_memory_utilization = 0 } }\n'
                'stage e: eval { from = z  data = d  rewards = [r]  rollout { engine = "sglang" } }\n')
    found = [(d.code, d.span.line) for d in check_file(str(bad)).diagnostics]
    assert ("E010", 5) in found  # one colocated engine, one trainer process
    assert ("E005", 5) in found and ("E005", 6) in found  # gpu_memory_utilization > 0; engine is hf or vllm


def test_vllm_engine_refuses_tiny_models_whose_heads_its_kernels_cannot_run(write):
    # vLLM's CPU attention takes head sizes from 32 up: 64 / 4 = 16 would pass check and crash at run time
    head = ('model m { tiny { hidden_size = 64  num_heads = 4 } }\ndataset d { generator = "arithmetic" }\n'
            'reward r { rule = "math_accuracy" }\n')
    bad = write("heads.r1", head + 'stage z: grpo { from = m  data = d  rewards = [r] }\n'
                'stage e: eval { from = z  data = d  rewards = [r]  rollout { engine = "vllm" } }\n')
    found = [(d.code, d.span.line, d.help) for d in check_file(str(bad)).diagnostics]
    assert [(c, line) for c, line, _ in found] == [("E010", 5)]  # found through the chain e -> z -> m
    assert "num_heads <= 2" in found[0][2]
    ok = write("heads_ok.r1", head.replace("num_heads = 4", "num_heads = 2") +
               'stage z: grpo { from = m  data = d  rewards = [r]  rollout { engine = "vllm" } }\n')
    assert check_file(str(ok)).ok
