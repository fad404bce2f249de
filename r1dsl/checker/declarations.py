"""Declarations: models, datasets, templates and rewards -> their IR, each checked on its own.

May import: r1dsl.ast, r1dsl.ir, r1dsl.schema, r1dsl.diagnostics, .scope, .constants, .values.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from r1dsl import ast, ir
from r1dsl.checker.constants import resolve
from r1dsl.checker.scope import BAD, Context
from r1dsl.checker.values import build, control, convert, flat, int_setting, limits, local_path, show, string, unknown_setting
from r1dsl.diagnostics import did_you_mean
from r1dsl.ir import Span
from r1dsl.schema import DATASET_SOURCES, MODEL_SOURCES
from r1dsl.settings import GENERATED_ROWS_MAX, HUB_ID, REWARD_WEIGHT, one_line


def declarations(cx: Context) -> None:
    """Models first (rewards may name them), then datasets, templates and rewards."""
    for decl, module in list(cx.decls.values()):
        if isinstance(decl, ast.BlockDecl) and decl.keyword == "model":
            model(cx, decl, module)
    for decl, module in list(cx.decls.values()):
        if isinstance(decl, ast.BlockDecl) and decl.keyword == "dataset":
            dataset(cx, decl, module)
        elif isinstance(decl, ast.TemplateDecl):
            template(cx, decl)
        elif isinstance(decl, ast.BlockDecl) and decl.keyword == "reward":
            reward(cx, decl)


def model(cx: Context, decl: ast.BlockDecl, module: ast.Module) -> None:
    where = f"model {decl.name}"
    settings, sections = flat(cx, decl.body, where, sections_ok=("tiny",))
    given = [k for k in MODEL_SOURCES if k in settings or k in sections]
    for key, entry in settings.items():
        if key not in MODEL_SOURCES:
            unknown_setting(cx, key, entry.key_span, where, list(MODEL_SOURCES))
    if "tiny" in settings:
        cx.d.error("E004", "`tiny` is a section", settings["tiny"].key_span, help="write `tiny { arch = \"qwen2\" ... }`")
        return
    if not given:
        cx.d.error("E011", f"model `{decl.name}` says nowhere to find it", decl.name_span,
                   help='give one of: hf = "org/name", path = "/dir/with/config.json", tiny { ... }')
        return
    if len(given) > 1:
        cx.d.error("E012", f"model `{decl.name}` has several sources ({', '.join(given)})", decl.name_span,
                   help="keep exactly one of hf, path, tiny")
        return
    source = given[0]
    if source == "tiny":
        tiny_settings, _ = flat(cx, sections["tiny"].body, f"{where}.tiny")
        cfg, _ = build(cx, ir.TinyModelConfig, tiny_settings, "tiny")
        cx.models[decl.name] = ir.Model(decl.name, "tiny", None, cfg, decl.span)
        return
    value = string(cx, settings[source], f"{where}.{source}")
    if value is None or not well_formed(cx, value, source, f"{where}.{source}", settings[source].value.span):
        return
    if source == "hf":
        cx.models[decl.name] = ir.Model(decl.name, "hf", value, None, decl.span)
    else:
        cx.models[decl.name] = ir.Model(decl.name, "local", local_path(value, module), None, decl.span)


def dataset(cx: Context, decl: ast.BlockDecl, module: ast.Module) -> None:
    where = f"dataset {decl.name}"
    settings, sections = flat(cx, decl.body, where, sections_ok=("fields", "params"))
    valid = list(DATASET_SOURCES) + ["split", "size", "seed", "eval_samples_per_prompt"]
    for key, entry in settings.items():
        if key not in valid:
            unknown_setting(cx, key, entry.key_span, where, valid + ["fields { }", "params { }"])
    given = [k for k in DATASET_SOURCES if k in settings]
    cx.provides[decl.name] = None
    if not given:
        cx.d.error("E011", f"dataset `{decl.name}` has no source", decl.name_span,
                   help='give one of: generator = "arithmetic", jsonl = "file.jsonl", parquet = "file.parquet", hf = "org/name"')
        return
    if len(given) > 1:
        cx.d.error("E012", f"dataset `{decl.name}` has several sources ({', '.join(given)})", settings[given[1]].key_span,
                   help="keep exactly one of generator, jsonl, parquet, hf")
        return
    source = given[0]
    location = string(cx, settings[source], f"{where}.{source}")
    if location is not None and not well_formed(cx, location, source, f"{where}.{source}", settings[source].value.span):
        location = None
    split = string(cx, settings["split"], f"{where}.split") if "split" in settings else "train"
    if "split" in settings and split is not None and not well_formed(cx, split, "split", f"{where}.split", settings["split"].value.span):
        split = None
    size = int_setting(cx, settings.get("size"), f"{where}.size", minimum=1)
    seed = int_setting(cx, settings.get("seed"), f"{where}.seed", minimum=0, maximum=ir.SEED_MAX)
    eval_k = knob_setting(cx, ir.Dataset, "eval_samples_per_prompt", settings, where)
    fields_map: dict[str, str] = {}
    if "fields" in sections:
        raw, _ = flat(cx, sections["fields"].body, f"{where}.fields")
        for canon, entry in raw.items():
            column = string(cx, entry, f"{where}.fields.{canon}")
            if column is not None:
                fields_map[canon] = column
    raw_params: dict[str, ast.Assign] = {}
    if "params" in sections:
        raw_params, _ = flat(cx, sections["params"].body, f"{where}.params")
    if location is None:
        return
    params: dict[str, Any] = {}
    provides: tuple[str, ...] | None
    generator = path = None
    if source == "generator":
        generator = location
        registry = cx.catalogue.generators
        gen = registry.get(location)
        if gen is None:
            hint = did_you_mean(location, registry)
            cx.d.warn("W102", f"unknown generator `{location}`; the fields its rows provide are not checked",
                      settings["generator"].value.span,
                      help=hint or ("registered generators: " + ", ".join(sorted(registry)) if registry else
                                    "no generators in the catalogue (from Python: r1dsl.catalogue.install(backends.catalogue.build()))"))
            provides = None
            for key, entry in raw_params.items():  # passed on unchecked: nothing here knows the generator
                v = convert(cx, entry.value, Any, f"{where}.params.{key}")
                if v is not BAD:
                    params[key] = v
        else:
            provides = tuple(gen.provides)
            params = generator_params(cx, gen, raw_params, where, decl.name_span)
        if size is not None:  # the shared range check, with the generator's own ceiling
            limits(cx, size, {"max": GENERATED_ROWS_MAX, "doc": "generated rows are built in memory (some when "
                              'compiling); for more, write them to a jsonl file once and use jsonl = "rows.jsonl"'},
                   f"{where}.size", settings["size"].value.span)
        if fields_map:
            cx.d.warn("W104", f"`fields` maps file columns and is ignored for generator `{location}`",
                      sections["fields"].key_span, help="remove the fields section")
    else:
        if "params" in sections:
            cx.d.warn("W104", f"`params` sets a generator's parameters and is ignored for a {source} dataset",
                      sections["params"].key_span, help="remove the params section")
        path = local_path(location, module) if source in ("jsonl", "parquet") else location
        provides = tuple(dict.fromkeys(["prompt", *fields_map]))
    kind = source if source != "generator" else "generator"
    cx.provides[decl.name] = provides
    cx.datasets[decl.name] = ir.Dataset(
        decl.name, kind, generator, path, split or "train", size, seed or 0, fields_map, params, provides or (), decl.span,
        eval_k,
    )


def knob_setting(cx: Context, cls: type, name: str, settings: dict, where: str) -> Any:
    """One declared `knob` of `cls` set in a block of loose settings: typed and range-checked from its declaration."""
    entry = settings.get(name)
    if entry is None:
        return None
    decl = next(f for f in dataclasses.fields(cls) if f.name == name)
    value = convert(cx, entry.value, typing.get_type_hints(cls)[name], f"{where}.{name}")
    if value is BAD or not limits(cx, value, dict(decl.metadata), f"{where}.{name}", entry.value.span):
        return None
    return value


def well_formed(cx: Context, text: str, source: str, what: str, span: Span) -> bool:
    """A hub id has Hugging Face's form (org/name); any other name or path is one line of text."""
    if not one_line(text):
        control(cx, text, what, span)
        return False
    if source == "hf" and not HUB_ID.fullmatch(text):
        cx.d.error("E005", f"`{what}` is not a Hugging Face repo id (got {show(text[:60])})", span,
                   help='write "org/name": letters, digits, - _ . (a local folder: path = "...", a file: jsonl = "...")')
        return False
    return True


def generator_params(cx: Context, gen, raw: dict[str, ast.Assign], where: str, span: Span) -> dict[str, Any]:
    """A generator's `params { }`: typed and range-checked by its `Param`s, like a reward rule's parameters."""
    declared = getattr(gen, "params", {})
    params: dict[str, Any] = {}
    bad: set[str] = set()
    for key, entry in raw.items():
        spec = declared.get(key)
        if spec is None:
            unknown_setting(cx, key, entry.key_span, f"{where}.params (generator {gen.name})", list(declared))
            continue
        v = param_value(cx, entry.value, spec, f"{where}.params.{key}")
        if v is BAD:
            bad.add(key)
        else:
            params[key] = v
    relations(cx, getattr(gen, "checks", ()), declared, raw, params, bad, f"{where} (generator {gen.name})",
              span)
    return params


def template(cx: Context, decl: ast.TemplateDecl) -> None:
    text = convert(cx, decl.value, str, f"template {decl.name}")
    if text is BAD:
        return
    cx.templates[decl.name] = ir.Template(decl.name, text, decl.span)
    template_warning(cx, text, decl.value.span, decl.name)


def template_warning(cx: Context, text: str, span: Span, name: str) -> None:
    if "{prompt}" not in text:
        cx.d.warn("W103", f"template `{name}` has no `{{prompt}}`: every prompt would read the same", span,
                  help="write {prompt} where the question goes")


def reward(cx: Context, decl: ast.BlockDecl) -> None:
    where = f"reward {decl.name}"
    settings, _ = flat(cx, decl.body, where)
    rules = cx.catalogue.rules
    if "rule" not in settings:
        cx.d.error("E011", f"reward `{decl.name}` has no rule", decl.name_span,
                   help='add rule = "NAME"' + (f"; rules: {', '.join(sorted(rules))}" if rules else ""))
        return
    cx.failed.add(decl.name)  # until it is built
    rule_name = string(cx, settings["rule"], f"{where}.rule")
    if rule_name is None:
        return
    rule = rules.get(rule_name)
    if rule is None:
        hint = did_you_mean(rule_name, rules)
        cx.d.error("E002", f"unknown reward rule `{rule_name}`", settings["rule"].value.span,
                   help=hint or ("registered rules: " + ", ".join(sorted(rules)) if rules else
                                 "no reward rules in the catalogue (from Python: r1dsl.catalogue.install(backends.catalogue.build()))"))
        return
    weight = float(REWARD_WEIGHT.default)
    if "weight" in settings:
        w = param_value(cx, settings["weight"].value, REWARD_WEIGHT, f"{where}.weight")
        if w is not BAD:
            weight = float(w)
    params: dict[str, Any] = {}
    bad: set[str] = set()
    for key, entry in settings.items():
        if key in ("rule", "weight"):
            continue
        spec = rule.params.get(key)
        if spec is None:
            cx.d.error("E002", f"rule `{rule_name}` has no parameter `{key}`", entry.key_span,
                       help=did_you_mean(key, rule.params) or
                       ("its parameters: " + ", ".join(rule.params) if rule.params else "it takes no parameters"))
            continue
        v = reward_param(cx, entry.value, spec, f"{where}.{key}", takes_model=key in MODEL_PARAMS)
        if v is not BAD:
            params[key] = v
        else:
            bad.add(key)
    if not rule_requirements(cx, decl, rule, settings, params, bad):
        return
    cx.rewards[decl.name] = ir.Reward(decl.name, rule_name, weight, params, (), decl.span)
    cx.failed.discard(decl.name)


MODEL_PARAMS = ("model",)  # reward-rule parameters that name a model (a declared one, an earlier stage, or a path)


def reward_param(cx: Context, value: ast.Value, spec, what: str, takes_model: bool = False) -> Any:
    resolved = resolve(cx, value)
    if isinstance(resolved, ast.Ref) and resolved.name in cx.models:  # a judge or reward model by name
        cx.used.add(resolved.name)
        return ir.ModelRef(resolved.name)
    if isinstance(resolved, ast.Ref) and cx.kind_of(resolved.name, ("model", "stage")) == "stage":
        cx.used.add(resolved.name)  # a judge or reward model trained by an earlier stage
        return ir.StageModel(resolved.name)
    if takes_model and isinstance(resolved, ast.Ref) and resolved.name not in cx.names:  # a model's name, mistyped
        models = cx.named(("model", "stage"))
        hint = did_you_mean(resolved.name, models + list(cx.consts))
        cx.d.error("E002", f"unknown name `{resolved.name}` for `{what}`", resolved.span,
                   help=hint or (f"name a declared model ({', '.join(f'`{m}`' for m in models[:4])}) or write text in quotes"
                                 if models else 'declare the model: model NAME { hf = "org/name" }, or write text in quotes'))
        return BAD
    if takes_model and isinstance(resolved, ast.Ref) and cx.kind_of(resolved.name) in ("dataset", "template", "reward"):
        kind = cx.kind_of(resolved.name)
        models = cx.named(("model",))
        cx.d.error("E004", f"`{resolved.name}` is a {kind}; `{what}` expects a model (or text)", resolved.span,
                   help=(f"name a model: {', '.join(f'`{m}`' for m in models[:4])}" if models else
                         'declare the model: model NAME { hf = "org/name" }, then name it here'))
        return BAD
    return param_value(cx, value, spec, what)


def param_value(cx: Context, value: ast.Value, spec, what: str) -> Any:
    """A `Param`'s value: typed and range-checked with the same code as a section setting, else BAD."""
    accept = spec.type if isinstance(spec.type, tuple) else (spec.type,)
    typ = accept[0] if len(accept) == 1 else typing.Union[accept]  # type: ignore[valid-type]
    if float in accept and int not in accept:
        typ = float
    v = convert(cx, value, typ, what)
    if v is BAD or not limits(cx, v, spec.metadata, what, value.span):  # the same range check as a section setting
        return BAD
    return v


def rule_requirements(cx: Context, decl: ast.BlockDecl, rule, settings: dict[str, ast.Assign], params: dict[str, Any],
                      bad: set[str]) -> bool:
    """E011 for a required parameter left out; E005 for a condition between parameters that fails."""
    ok = True
    where = f"reward {decl.name}"
    for key, spec in rule.params.items():
        if spec.required and key not in settings:
            cx.d.error("E011", f"reward `{decl.name}` (rule {rule.name}) needs `{key}`", decl.name_span,
                       help=f"add {key} = ...: {spec.doc}")
            ok = False
    return relations(cx, getattr(rule, "checks", ()), rule.params, settings, params, bad, where, decl.name_span) and ok


def relations(cx: Context, checks, declared, settings: dict[str, ast.Assign], params: dict[str, Any], bad: set[str],
              where: str, fallback: Span) -> bool:
    """E005 for each `Check` between parameters that fails, the declared defaults filled in."""
    ok = True
    for check in checks:
        if set(check.params) & bad or any(declared[k].required and k not in params for k in check.params):
            continue
        values = [params.get(k, declared[k].default) for k in check.params]
        if not check.ok(*values):
            given = [k for k in check.params if k in settings]
            span = settings[given[0]].value.span if given else fallback
            shown = ", ".join(f"{k} = {show(v)}" for k, v in zip(check.params, values))
            cx.d.error("E005", f"{where}: {check.message} (got {shown})", span,
                       help="; ".join(f"{k}: {declared[k].doc}" for k in check.params))
            ok = False
    return ok
