"""Every diagnostic code, documented once: `r1dsl explain CODE` prints these, and a test checks the table is complete."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    title: str
    explanation: str
    example: str  # a recipe fragment that triggers it
    fix: str


CODES: dict[str, Code] = {
    "E001": Code(
        "syntax error",
        "The file does not follow the recipe grammar (r1dsl/grammar.lark): a missing `}` or `=`, an unterminated "
        "string, a misspelt declaration keyword, a value that is neither a number, a string, a name nor a list, a name "
        "longer than 64 characters. Every syntax error of a file is reported in one run: the parser skips to the next "
        "setting or declaration (or reads a slip such as `key: value` as meant) and the rest is still checked. A `{` left "
        "open is shown where it opened; an unterminated string at its opening quote. Messages come from a table of "
        "labelled bad snippets (r1dsl/syntax_errors.py, EXAMPLES).",
        'stage zero: grpo {\n  from: base\n}',
        "Settings are `key = value`; bodies are `{ ... }`; strings use double quotes; text spanning lines uses \"\"\" quotes.",
    ),
    "E002": Code(
        "unknown name",
        "A name refers to nothing that is declared or registered: a dataset, reward, template, setting, section, "
        "stage kind, reward rule (backends.rewards registry) or rule parameter. The help line suggests the closest name.",
        'reward accuracy { rule = "math_acuracy" }',
        "Correct the spelling, or declare the missing thing.",
    ),
    "E003": Code(
        "duplicate name",
        "Two declarations or two settings share a name. Constants clash with every other name; a stage clashes with a "
        "model or dataset of the same name (from/data could not tell them apart). A shorthand (lr, steps, group_size) "
        "and its section setting name the same knob.",
        "dataset arith { generator = \"arithmetic\" }\ndataset arith { generator = \"countdown\" }",
        "Rename one of them, or delete the repeated setting.",
    ),
    "E004": Code(
        "wrong type",
        "A value has the wrong type for its setting (a string where a number is expected), a name refers to the wrong "
        "kind of thing (from = a dataset), or a setting is written as a section (or the reverse).",
        "stage zero: grpo { grpo { steps = \"sixty\" } }",
        "Write a value of the expected type; the message names it.",
    ),
    "E005": Code(
        "value out of range",
        "A number is outside the limits declared by its setting (an IR field's knob() in r1dsl/ir.py, or a reward "
        "rule's Param: min, max, min_exclusive), is not finite, a string is not one of the allowed choices, or a "
        "condition between a reward rule's parameters fails (overlong: buffer <= max_tokens).",
        "stage zero: grpo { grpo { num_generations_per_prompt = 1 } }",
        "Use a value within the limits; `help:` shows the setting's documentation.",
    ),
    "E006": Code(
        "cycle",
        "Stages read from each other in a loop (each `from` or stage-sourced `data` must name a stage that finishes "
        "earlier), or constants are defined in terms of each other.",
        "stage a: sft { from = b ... }\nstage b: sft { from = a ... }",
        "Break the loop: one of the stages must start from a model.",
    ),
    "E007": Code(
        "dangling from",
        "`from` (or a distill student) names neither a declared model nor a stage.",
        "stage zero: grpo { from = bsae ... }",
        "Name a model declaration or an earlier stage; declare the model if it is missing.",
    ),
    "E008": Code(
        "missing dataset field",
        "A reward rule, or the stage kind itself, reads a field that a dataset's rows do not carry: math_accuracy "
        "needs `answer`, code_accuracy needs `tests`, sft needs `response`, pretrain needs `text`. Generators declare "
        "their fields in backends.data.generators; file datasets provide `prompt` and what `fields { }` maps; a "
        "rejection_sample stage provides prompt, response and answer.",
        "dataset chat { generator = \"chat\" }\nstage z: grpo { data = chat  rewards = [accuracy] ... }",
        "Map the column with fields { answer = \"COLUMN\" }, pick another dataset, or route the reward with route { }.",
    ),
    "E009": Code(
        "batch arithmetic",
        "The sequences of one step do not split evenly: for GRPO num_prompts_per_step x num_generations_per_prompt, "
        "for pretrain/sft/distill train.batch_size, must be a multiple of micro_batch_size x data-parallel size "
        "(training GPUs / (tensor_parallel x pipeline_parallel); CPU processes on CPU). GRPO ranks roll out whole "
        "groups, so num_prompts_per_step itself must be a multiple of the data-parallel size.",
        "grpo { num_prompts_per_step = 4  num_generations_per_prompt = 6  micro_batch_size = 16 }",
        "Pick a micro_batch_size that divides the per-rank batch (help lists some), or leave it unset to get one.",
    ),
    "E010": Code(
        "parallel layout does not fit",
        "The stage's GPUs (gpus_per_node x nodes, minus rollout_gpus) are not a multiple of tensor_parallel x "
        "pipeline_parallel, rollout GPUs take every GPU, a parallel size above 1 is asked for on CPU, or the colocated vLLM rollout engine "
        "(rollout.engine = \"vllm\") is asked for with more than one process.",
        "resources { nodes = 1  gpus_per_node = 8  tensor_parallel = 3 }",
        "Choose parallel sizes whose product divides the training GPUs.",
    ),
    "E011": Code(
        "missing setting",
        "Something required is absent: a stage without `from` or `data`, a grpo or rejection_sample stage without "
        "rewards, a model or dataset with no source, a reward with no rule, a distill stage with no students, a "
        "reward rule's required parameter (the `model` of judge and preference_model).",
        "stage zero: grpo { data = arith  rewards = [accuracy] }",
        "Add the setting named in the message.",
    ),
    "E012": Code(
        "conflicting settings",
        "A model or dataset names several sources at once (hf and path, jsonl and generator).",
        'model m { hf = "Qwen/Qwen2.5-0.5B"  path = "/ckpt" }',
        "Keep exactly one source.",
    ),
    "E013": Code(
        "import not found",
        "An `import`/`include` names a file that cannot be read. The path is relative to the importing file.",
        'import "commn.r1"',
        "Correct the path (relative to the file that imports it).",
    ),
    "E014": Code(
        "bad --set override",
        "A command-line override is malformed (no `=`, a path that is not dotted names) or addresses something that "
        "cannot take a value (a whole stage, a setting used as a section).",
        "r1dsl check recipe.r1 --set zero=8",
        "Write --set STAGE.SECTION.KEY=VALUE, --set STAGE.lr=VALUE (also group_size, steps) or --set CONST=VALUE.",
    ),
    "W101": Code(
        "reference refresh without KL",
        "grpo.reference_refresh_steps replaces the KL reference model periodically, but kl_penalty is 0, so the "
        "reference is never used.",
        "grpo { kl_penalty = 0  reference_refresh_steps = 400 }",
        "Drop reference_refresh_steps, or use a kl_penalty > 0.",
    ),
    "W102": Code(
        "unknown generator",
        "A dataset names a synthetic generator that is not registered in backends.data.generators, so the fields "
        "its rows provide cannot be checked (and the run will fail when it loads the data).",
        'dataset d { generator = "arithmatic" }',
        "Use a registered generator (arithmetic, countdown, code, chat, corpus).",
    ),
    "W103": Code(
        "template without {prompt}",
        "A prompt template does not contain `{prompt}`, so every prompt would be the same text.",
        'template t = "Solve it."',
        "Write {prompt} where the question goes.",
    ),
    "W104": Code(
        "setting unused by this stage kind",
        "A section or setting is valid elsewhere but this stage kind does not read it: a `grpo { }` section in an "
        "sft stage, `filters` outside rejection_sample, `students` outside distill, `fields` on a generator, `params` on a file or hub dataset.",
        "stage s: sft { grpo { steps = 10 } ... }",
        "Remove it, or change the stage kind.",
    ),
    "W105": Code(
        "eval stage without data",
        "An eval stage names no datasets, so it measures nothing.",
        "stage e: eval { from = zero  rewards = [accuracy] }",
        "Add data = DATASET.",
    ),
    "W106": Code(
        "unused declaration",
        "A model, dataset, template, reward or constant of the recipe's main file is never used.",
        'dataset spare { generator = "countdown" }',
        "Remove it, or use it in a stage. A judge or reward model can be named as a reward parameter: model = NAME.",
    ),
    "W107": Code(
        "greedy sampling with several samples",
        "sampling.temperature is 0 (greedy) but samples_per_prompt > 1: the samples are identical.",
        "sampling { temperature = 0  samples_per_prompt = 4 }",
        "Use a temperature > 0, or one sample per prompt.",
    ),
    "W108": Code(
        "eval stage without rewards",
        "An eval stage has datasets but no rewards, so nothing scores its samples.",
        "stage e: eval { from = zero  data = test }",
        "Add rewards = [accuracy].",
    ),
    "W109": Code(
        "rejection filter without its reward",
        "A rejection filter (correct, format, language) is on, but no reward of the stage computes what it filters on.",
        "filters { correct = true }   # with rewards = [format] only",
        "Add the matching reward (math_accuracy/code_accuracy, format, language_consistency) or turn the filter off.",
    ),
    "W110": Code(
        "reward routed nowhere",
        "A stage lists a reward, but `route { }` gives it to none of the stage's datasets.",
        "rewards = [accuracy, format]  route { arith = [format] }",
        "Route it to a dataset, or drop it from rewards.",
    ),
    "W111": Code(
        "import cycle",
        "Files import each other in a loop. Each file is loaded once, so the repeated import is skipped.",
        'import "b.r1"   # in a.r1, while b.r1 imports "a.r1"',
        "Remove one of the imports.",
    ),
}


def explain(code: str) -> str | None:
    entry = CODES.get(code.upper())
    if entry is None:
        return None
    severity = "warning" if code.upper().startswith("W") else "error"
    example = "\n".join("    " + line for line in entry.example.split("\n"))
    return f"{code.upper()} ({severity}): {entry.title}\n\n{entry.explanation}\n\nExample:\n{example}\n\nFix: {entry.fix}\n"
