"""Syntax trees -> the frozen IR (`r1dsl.ir.Recipe`), or diagnostics. Nothing here touches a GPU.

The order of the checks follows the recipe: names (duplicates, constants), declarations (models,
datasets, templates, rewards), stages (references, sections from IR metadata), the stage graph
(cycles, run order), then the cross-checks that need everything (fields a reward needs, batch
arithmetic, parallel layout, suspicious settings). Every finding is a diagnostic with a code from
r1dsl/codes.py; checking goes on after an error so that one run reports as much as it can.
"""

from __future__ import annotations

import math
import os
import types
import typing
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from r1dsl import ast, ir
from r1dsl.diagnostics import Diagnostics, did_you_mean
from r1dsl.ir import Span
from r1dsl.schema import (
    DATASET_SOURCES,
    KIND_NEEDS,
    KIND_SECTIONS,
    MODEL_PRODUCERS,
    MODEL_SOURCES,
    SECTIONS,
    SHORTHAND_NAMES,
    STAGE_DATA_PROVIDES,
    STAGE_KEYS,
    STAGE_KINDS,
    knobs,
    section_of,
    shorthand,
)

_BAD = object()  # a value that already produced a diagnostic


# ---------------------------------------------------------------- registries (torch-free)


@lru_cache(maxsize=1)
def reward_rules() -> dict:
    """`backends.rewards.registry.REWARDS` after the built-in rules registered themselves ({} if unavailable)."""
    try:
        import backends.rewards  # noqa: F401  (registers the built-in rules)
        from backends.rewards.registry import REWARDS
    except Exception:  # a broken or absent backend must not break `r1dsl check`: rules become unknown
        try:
            from backends.rewards.registry import REWARDS
        except Exception:
            return {}
    return dict(REWARDS)


@lru_cache(maxsize=1)
def generators() -> dict:
    """`backends.data.generators.GENERATORS` after `backends.data.synthetic` registered them ({} if unavailable)."""
    try:
        import backends.data.synthetic  # noqa: F401
    except Exception:
        pass
    try:
        from backends.data.generators import GENERATORS
    except Exception:
        return {}
    return dict(GENERATORS)


CORRECTNESS_RULES = ("math_accuracy", "code_accuracy")
SCORES_TRAIN_DATA = ("grpo", "rejection_sample")  # other kinds score only their eval sets

# declarations that may not share a name: a bare name must say what it is where it is used
_CLASHES = {("const", k) for k in ("template", "model", "dataset", "reward", "stage")} | {("model", "stage"), ("dataset", "stage")}


# ---------------------------------------------------------------- entry point


def check(modules: list[ast.Module], diags: Diagnostics) -> ir.Recipe | None:
    """The IR of the recipe whose main file is `modules[-1]`, or None when `diags` holds an error."""
    if not modules:
        return None
    recipe = _Checker(modules, diags).run()
    return None if diags.has_errors else recipe


@dataclass
class _StageInfo:
    """A stage while it is being checked: its declaration and what its body said."""

    decl: ast.StageDecl
    refs: dict[str, ast.Assign] = field(default_factory=dict)  # from, data, template, rewards, eval, students(list)
    sections: dict[str, ast.Section] = field(default_factory=dict)  # route, students
    knobs: dict[tuple[str, str], ast.Assign] = field(default_factory=dict)  # (section, key) -> setting
    deps: dict[str, Span] = field(default_factory=dict)  # stages it reads from -> where it says so


class _Checker:
    def __init__(self, modules: list[ast.Module], diags: Diagnostics):
        self.modules = modules
        self.main = modules[-1]
        self.d = diags
        self.decls: dict[str, tuple[Any, ast.Module]] = {}  # "kind name" -> declaration (see collect)
        self.names: dict[str, list[str]] = {}  # name -> the kinds declaring it
        self.failed: set[str] = set()  # names whose declaration had an error (no cascades of follow-up errors)
        self.used: set[str] = set()
        self.consts: dict[str, ast.Value] = {}
        self._resolving: list[str] = []
        self.models: dict[str, ir.Model] = {}
        self.datasets: dict[str, ir.Dataset] = {}
        self.templates: dict[str, ir.Template] = {}
        self.rewards: dict[str, ir.Reward] = {}
        self.provides: dict[str, tuple[str, ...] | None] = {}  # None: unknown (unregistered generator)
        self.stages: dict[str, _StageInfo] = {}
        self.jobs: dict[str, list[ir.Stage]] = {}  # stage name -> its IR stages (several for distill)
        self.job_names: dict[str, str] = {}  # expanded distill job -> its declaration

    # ------------------------------------------------------------ the pipeline of checks
    def run(self) -> ir.Recipe:
        name = self.collect()
        for decl, module in list(self.decls.values()):
            if isinstance(decl, ast.BlockDecl) and decl.keyword == "model":
                self.model(decl, module)
        for decl, module in list(self.decls.values()):
            if isinstance(decl, ast.BlockDecl) and decl.keyword == "dataset":
                self.dataset(decl, module)
            elif isinstance(decl, ast.TemplateDecl):
                self.template(decl)
            elif isinstance(decl, ast.BlockDecl) and decl.keyword == "reward":
                self.reward(decl)
        for decl, _ in list(self.decls.values()):
            if isinstance(decl, ast.StageDecl):
                self.stage_outline(decl)
        order = self.order()
        for stage_name in order:
            self.stage(self.stages[stage_name])
        if not self.d.has_errors:  # after an error, uses may hide behind it
            self.unused()
        stages = tuple(job for n in order for job in self.jobs.get(n, ()))
        return ir.Recipe(name, self.main.path, self.models, self.datasets, self.templates, self.rewards, stages)

    # ------------------------------------------------------------ names
    def collect(self) -> str:
        """One namespace for every declaration of every file; returns the recipe's name."""
        recipe_name = None
        for module in self.modules:
            for item in module.items:
                if isinstance(item, ast.RecipeDecl):
                    if module is not self.main:
                        continue  # an imported file's own name does not rename this recipe
                    if recipe_name is not None:
                        self.d.error("E003", "the recipe is named twice", item.name_span, help="keep one `recipe NAME` line")
                    recipe_name = recipe_name or item.name
                    continue
                if isinstance(item, ast.ImportDecl):
                    continue
                kind = ast.decl_keyword(item)
                clash = [k for k in self.names.get(item.name, ()) if (k, kind) in _CLASHES or (kind, k) in _CLASHES or k == kind]
                if clash:
                    prev, _ = self.decls[f"{clash[0]} {item.name}"]
                    if clash[0] == kind:
                        message, help = f"{kind} `{item.name}` is declared twice", "rename or remove one of them"
                    else:
                        message = f"`{item.name}` names both a {clash[0]} and a {kind}"
                        help = ("a constant's name must be unique" if "const" in (kind, clash[0]) else
                                "`from` and `data` could not tell them apart") + "; rename one"
                    self.d.error("E003", message, item.name_span, help=help, notes=[("first declared here", prev.name_span)])
                    continue
                self.decls[f"{kind} {item.name}"] = (item, module)
                self.names.setdefault(item.name, []).append(kind)
        for decl, _ in self.decls.values():
            if isinstance(decl, ast.ConstDecl):
                self.consts[decl.name] = decl.value
        return recipe_name or Path(self.main.path).stem

    def kind_of(self, name: str, prefer: tuple[str, ...] = ()) -> str | None:
        """What `name` declares, preferring the kinds a context expects (a template and a stage may share a name)."""
        kinds = self.names.get(name, [])
        return next((k for k in prefer if k in kinds), kinds[0] if kinds else None)

    def named(self, kinds: tuple[str, ...]) -> list[str]:
        return [n for n, ks in self.names.items() if any(k in kinds for k in ks)]

    def resolve(self, value: ast.Value) -> ast.Value | object:
        """Substitute constants (recursively, inside lists too); _BAD after a cycle."""
        if isinstance(value, ast.Ref) and value.name in self.consts:
            self.used.add(value.name)
            if value.name in self._resolving:
                cycle = " -> ".join(self._resolving[self._resolving.index(value.name):] + [value.name])
                self.d.error("E006", f"constants refer to each other in a cycle: {cycle}", value.span,
                             help="give one of them a literal value")
                return _BAD
            self._resolving.append(value.name)
            try:
                return self.resolve(self.consts[value.name])
            finally:
                self._resolving.pop()
        if isinstance(value, ast.List):
            items = [self.resolve(v) for v in value.items]
            if any(i is _BAD for i in items):
                return _BAD
            return ast.List(items, value.span)
        return value

    # ------------------------------------------------------------ typed values
    def convert(self, value: ast.Value, typ: Any, what: str) -> Any:
        """The Python value of `value` if it fits the annotation `typ`, else a diagnostic and _BAD."""
        value = self.resolve(value)
        if value is _BAD:
            return _BAD
        optional = False
        if typing.get_origin(typ) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(typ) if a is not type(None)]
            optional = len(args) < len(typing.get_args(typ))
            typ = args[0] if len(args) == 1 else tuple(args)
        if isinstance(value, ast.Null):
            if optional:
                return None
            return self.type_error(value, what, typ)
        accept = typ if isinstance(typ, tuple) else (typ,)
        if isinstance(value, ast.Bool):
            return value.value if bool in accept else self.type_error(value, what, typ)
        if isinstance(value, ast.Num):
            v = value.value
            if float in accept and not isinstance(v, bool):
                if not math.isfinite(float(v)):
                    self.d.error("E005", f"`{what}` must be finite (got {value.raw})", value.span)
                    return _BAD
                return float(v) if int not in accept or isinstance(v, float) else v
            if int in accept:
                if isinstance(v, int):
                    return v
                if math.isfinite(v) and v == int(v) and "." not in value.raw:
                    return int(v)  # 1e4 is an integer written short
                return self.type_error(value, what, typ)
            return self.type_error(value, what, typ)
        if isinstance(value, ast.Str):
            return value.value if str in accept else self.type_error(value, what, typ)
        if isinstance(value, ast.Ref):
            if value.name in self.names:
                return self.type_error(value, what, typ)
            self.unknown(value.name, value.span, "name", self.consts, help_extra=_literal_hint(typ))
            return _BAD
        if isinstance(value, ast.List):
            if list in accept or tuple in accept:
                return [self.convert(v, Any, what) if not isinstance(v, ast.Ref) else v.name for v in value.items]
            return self.type_error(value, what, typ)
        return self.type_error(value, what, typ)

    def type_error(self, value, what: str, typ: Any) -> object:
        got = _describe(value, self)
        self.d.error("E004", f"`{what}` expects {_type_name(typ)}, got {got}", value.span, help=_literal_hint(typ))
        return _BAD

    def unknown(self, name: str, span: Span, what: str, candidates, help_extra: str | None = None, code: str = "E002") -> None:
        hint = did_you_mean(name, candidates)
        self.d.error(code, f"unknown {what} `{name}`", span, help=hint or help_extra)

    def limits(self, value: Any, meta: dict, what: str, span: Span) -> bool:
        """The generic range check from an IR field's metadata; False (with an E005) when out of range."""
        if value is None or value is _BAD or isinstance(value, (bool, list)):
            return value is not _BAD
        doc = meta.get("doc")
        problem = None
        if "choices" in meta and value not in meta["choices"]:
            options = ", ".join(f'"{c}"' for c in meta["choices"])
            hint = did_you_mean(str(value), meta["choices"]) if isinstance(value, str) else None
            self.d.error("E005", f"`{what}` must be one of {options} (got {_show(value)})", span,
                         help=hint or (f"{what}: {doc}" if doc else None))
            return False
        if "min" in meta and value < meta["min"]:
            problem = f"at least {_show(meta['min'])}"
        elif "min_exclusive" in meta and value <= meta["min_exclusive"]:
            problem = f"greater than {_show(meta['min_exclusive'])}"
        elif "max" in meta and value > meta["max"]:
            problem = f"at most {_show(meta['max'])}"
        if problem:
            self.d.error("E005", f"`{what}` must be {problem} (got {_show(value)})", span,
                         help=f"{what}: {doc}" if doc else None)
            return False
        return True

    def build(self, cls: type, settings: dict[str, ast.Assign], where: str) -> tuple[Any, set[str]]:
        """An IR section from its settings: types and limits from the dataclass fields, one loop for all.

        Returns the instance (defaults where a setting was bad or absent) and the names set explicitly.
        """
        schema = knobs(cls)
        values: dict[str, Any] = {}
        for key, entry in settings.items():
            if key not in schema:
                self.unknown_setting(key, entry.key_span, where, list(schema))
                continue
            fld, typ = schema[key]
            v = self.convert(entry.value, typ, f"{where}.{key}")
            if v is not _BAD and self.limits(v, fld.metadata, f"{where}.{key}", entry.value.span):
                values[key] = v
        return cls(**values), set(values)

    def unknown_setting(self, key: str, span: Span, where: str, valid: list[str]) -> None:
        hint = did_you_mean(key, valid)
        if hint is None:
            homes = section_of(key)
            if homes:
                hint = f"`{key}` belongs in `{homes[0]} {{ ... }}`"
            else:
                hint = "valid settings: " + ", ".join(valid)
        self.d.error("E002", f"unknown setting `{key}` in {where}", span, help=hint)

    def flat(self, body: ast.Body, where: str, sections_ok: tuple[str, ...] = ()) -> tuple[dict[str, ast.Assign], dict[str, ast.Section]]:
        """The settings and sections of a body; duplicates are E003, unexpected sections E004."""
        settings: dict[str, ast.Assign] = {}
        sections: dict[str, ast.Section] = {}
        seen: dict[str, Span] = {}
        for entry in body.entries:
            if entry.key in seen:
                self.d.error("E003", f"`{entry.key}` is set twice in {where}", entry.key_span,
                             help="keep one of them", notes=[("first set here", seen[entry.key])])
                continue
            seen[entry.key] = entry.key_span
            if isinstance(entry, ast.Section):
                if entry.key in sections_ok:
                    sections[entry.key] = entry
                else:
                    self.d.error("E004", f"`{entry.key}` in {where} is a setting, not a section", entry.key_span,
                                 help=f"write `{entry.key} = value`" if not sections_ok else
                                 f"sections here: {', '.join(sections_ok)}")
            else:
                settings[entry.key] = entry
        return settings, sections

    def local_path(self, raw: str, module: ast.Module) -> str:
        """A file path as written, made absolute against the declaring file's folder."""
        path = os.path.expanduser(raw)
        if not os.path.isabs(path):
            path = os.path.join(os.path.dirname(os.path.abspath(module.path)), path)
        return os.path.normpath(path)

    def string(self, entry: ast.Assign, what: str) -> str | None:
        v = self.convert(entry.value, str, what)
        return None if v is _BAD else v

    # ------------------------------------------------------------ models
    def model(self, decl: ast.BlockDecl, module: ast.Module) -> None:
        where = f"model {decl.name}"
        settings, sections = self.flat(decl.body, where, sections_ok=("tiny",))
        given = [k for k in MODEL_SOURCES if k in settings or k in sections]
        for key, entry in settings.items():
            if key not in MODEL_SOURCES:
                self.unknown_setting(key, entry.key_span, where, list(MODEL_SOURCES))
        if "tiny" in settings:
            self.d.error("E004", "`tiny` is a section", settings["tiny"].key_span, help="write `tiny { arch = \"qwen2\" ... }`")
        if not given:
            self.d.error("E011", f"model `{decl.name}` says nowhere to find it", decl.name_span,
                         help='give one of: hf = "org/name", path = "/dir/with/config.json", tiny { ... }')
            return
        if len(given) > 1:
            self.d.error("E012", f"model `{decl.name}` has several sources ({', '.join(given)})", decl.name_span,
                         help="keep exactly one of hf, path, tiny")
            return
        source = given[0]
        if source == "tiny":
            tiny_settings, _ = self.flat(sections["tiny"].body, f"{where}.tiny")
            cfg, _ = self.build(ir.TinyModelConfig, tiny_settings, "tiny")
            self.models[decl.name] = ir.Model(decl.name, "tiny", None, cfg, decl.span)
            return
        value = self.string(settings[source], f"{where}.{source}")
        if value is None:
            return
        if source == "hf":
            self.models[decl.name] = ir.Model(decl.name, "hf", value, None, decl.span)
        else:
            self.models[decl.name] = ir.Model(decl.name, "local", self.local_path(value, module), None, decl.span)

    # ------------------------------------------------------------ datasets
    def dataset(self, decl: ast.BlockDecl, module: ast.Module) -> None:
        where = f"dataset {decl.name}"
        settings, sections = self.flat(decl.body, where, sections_ok=("fields", "params"))
        valid = list(DATASET_SOURCES) + ["split", "size", "seed"]
        for key, entry in settings.items():
            if key not in valid:
                self.unknown_setting(key, entry.key_span, where, valid + ["fields { }", "params { }"])
        given = [k for k in DATASET_SOURCES if k in settings]
        self.provides[decl.name] = None
        if not given:
            self.d.error("E011", f"dataset `{decl.name}` has no source", decl.name_span,
                         help='give one of: generator = "arithmetic", jsonl = "file.jsonl", parquet = "file.parquet", hf = "org/name"')
            return
        if len(given) > 1:
            self.d.error("E012", f"dataset `{decl.name}` has several sources ({', '.join(given)})", settings[given[1]].key_span,
                         help="keep exactly one of generator, jsonl, parquet, hf")
            return
        source = given[0]
        location = self.string(settings[source], f"{where}.{source}")
        split = self.string(settings["split"], f"{where}.split") if "split" in settings else "train"
        size = self.int_setting(settings.get("size"), f"{where}.size", minimum=1)
        seed = self.int_setting(settings.get("seed"), f"{where}.seed")
        fields_map: dict[str, str] = {}
        if "fields" in sections:
            raw, _ = self.flat(sections["fields"].body, f"{where}.fields")
            for canon, entry in raw.items():
                column = self.string(entry, f"{where}.fields.{canon}")
                if column is not None:
                    fields_map[canon] = column
        params: dict[str, Any] = {}
        if "params" in sections:
            raw, _ = self.flat(sections["params"].body, f"{where}.params")
            for key, entry in raw.items():
                v = self.convert(entry.value, Any, f"{where}.params.{key}")
                if v is not _BAD:
                    params[key] = v
        if location is None:
            return
        provides: tuple[str, ...] | None
        generator = path = None
        if source == "generator":
            generator = location
            registry = generators()
            gen = registry.get(location)
            if gen is None:
                hint = did_you_mean(location, registry)
                self.d.warn("W102", f"unknown generator `{location}`; the fields its rows provide are not checked",
                            settings["generator"].value.span,
                            help=hint or ("registered generators: " + ", ".join(sorted(registry)) if registry else
                                          "no generators are registered (backends.data.synthetic is missing)"))
                provides = None
            else:
                provides = tuple(gen.provides)
                self.generator_params(gen, params, sections.get("params"), where)
            if fields_map:
                self.d.warn("W104", f"`fields` maps file columns and is ignored for generator `{location}`",
                            sections["fields"].key_span, help="remove the fields section")
        else:
            path = self.local_path(location, module) if source in ("jsonl", "parquet") else location
            provides = tuple(dict.fromkeys(["prompt", *fields_map]))
        kind = source if source != "generator" else "generator"
        self.provides[decl.name] = provides
        self.datasets[decl.name] = ir.Dataset(
            decl.name, kind, generator, path, split or "train", size, seed or 0, fields_map, params, provides or (), decl.span
        )

    def int_setting(self, entry: ast.Assign | None, what: str, minimum: int | None = None) -> int | None:
        if entry is None:
            return None
        v = self.convert(entry.value, int, what)
        if v is _BAD:
            return None
        if minimum is not None and not self.limits(v, {"min": minimum}, what, entry.value.span):
            return None
        return v

    def generator_params(self, gen, params: dict, section: ast.Section | None, where: str) -> None:
        import inspect

        try:
            sig = inspect.signature(gen.fn)
        except (TypeError, ValueError):
            return
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
            return
        valid = [n for n in sig.parameters if n not in ("size", "seed")]
        for entry in section.body.entries if section else ():
            if entry.key not in valid:
                self.unknown_setting(entry.key, entry.key_span, f"{where}.params (generator {gen.name})", valid)

    # ------------------------------------------------------------ templates
    def template(self, decl: ast.TemplateDecl) -> None:
        text = self.convert(decl.value, str, f"template {decl.name}")
        if text is _BAD:
            return
        self.templates[decl.name] = ir.Template(decl.name, text, decl.span)
        self.template_warning(text, decl.value.span, decl.name)

    def template_warning(self, text: str, span: Span, name: str) -> None:
        if "{prompt}" not in text:
            self.d.warn("W103", f"template `{name}` has no `{{prompt}}`: every prompt would read the same", span,
                        help="write {prompt} where the question goes")

    # ------------------------------------------------------------ rewards
    def reward(self, decl: ast.BlockDecl) -> None:
        where = f"reward {decl.name}"
        settings, _ = self.flat(decl.body, where)
        rules = reward_rules()
        if "rule" not in settings:
            self.d.error("E011", f"reward `{decl.name}` has no rule", decl.name_span,
                         help='add rule = "NAME"' + (f"; rules: {', '.join(sorted(rules))}" if rules else ""))
            return
        self.failed.add(decl.name)  # until it is built
        rule_name = self.string(settings["rule"], f"{where}.rule")
        if rule_name is None:
            return
        rule = rules.get(rule_name)
        if rule is None:
            hint = did_you_mean(rule_name, rules)
            self.d.error("E002", f"unknown reward rule `{rule_name}`", settings["rule"].value.span,
                         help=hint or ("registered rules: " + ", ".join(sorted(rules)) if rules else
                                       "no reward rules are registered (is backends.rewards importable?)"))
            return
        weight = 1.0
        if "weight" in settings:
            w = self.convert(settings["weight"].value, float, f"{where}.weight")
            if w is not _BAD:
                weight = w
        params: dict[str, Any] = {}
        for key, entry in settings.items():
            if key in ("rule", "weight"):
                continue
            spec = rule.params.get(key)
            if spec is None:
                self.d.error("E002", f"rule `{rule_name}` has no parameter `{key}`", entry.key_span,
                             help=did_you_mean(key, rule.params) or
                             ("its parameters: " + ", ".join(rule.params) if rule.params else "it takes no parameters"))
                continue
            v = self.reward_param(entry.value, spec, f"{where}.{key}")
            if v is not _BAD:
                params[key] = v
        self.rewards[decl.name] = ir.Reward(decl.name, rule_name, weight, params, (), decl.span)
        self.failed.discard(decl.name)

    def reward_param(self, value: ast.Value, spec, what: str) -> Any:
        resolved = self.resolve(value)
        if isinstance(resolved, ast.Ref) and resolved.name in self.models:  # a judge or reward model by name
            self.used.add(resolved.name)
            return ir.ModelRef(resolved.name)
        if isinstance(resolved, ast.Ref) and self.kind_of(resolved.name, ("model", "stage")) == "stage":
            self.used.add(resolved.name)  # a judge or reward model trained by an earlier stage
            return ir.StageModel(resolved.name)
        accept = spec.type if isinstance(spec.type, tuple) else (spec.type,)
        typ = accept[0] if len(accept) == 1 else typing.Union[accept]  # type: ignore[valid-type]
        if float in accept and int not in accept:
            typ = float
        v = self.convert(value, typ, what)
        if v is not _BAD and spec.choices and v not in spec.choices:
            return self.limits(v, {"choices": spec.choices, "doc": spec.doc}, what, value.span) and v or _BAD
        return v

    # ------------------------------------------------------------ stages: outline, graph, order
    def stage_outline(self, decl: ast.StageDecl) -> None:
        """Sort a stage's body into references, sections and knobs; find the stages it depends on."""
        info = _StageInfo(decl)
        self.stages[decl.name] = info
        if decl.kind not in STAGE_KINDS:
            self.unknown(decl.kind, decl.kind_span, "stage kind", STAGE_KINDS, help_extra="kinds: " + ", ".join(STAGE_KINDS))
        where = f"stage {decl.name}"
        seen: dict[str, Span] = {}
        for entry in decl.body.entries:
            if entry.key in seen:
                self.d.error("E003", f"`{entry.key}` is set twice in {where}", entry.key_span,
                             help="keep one of them", notes=[("first set here", seen[entry.key])])
                continue
            seen[entry.key] = entry.key_span
            if isinstance(entry, ast.Assign):
                canon = shorthand(decl.kind, entry.key)
                if entry.key in STAGE_KEYS and entry.key != "route":
                    info.refs[entry.key] = entry
                elif canon:
                    self.add_knob(info, canon, entry)
                elif entry.key in SECTIONS or entry.key == "route":
                    self.d.error("E004", f"`{entry.key}` is a section", entry.key_span,
                                 help=f"write `{entry.key} {{ key = value }}`")
                elif entry.key in SHORTHAND_NAMES:
                    self.d.warn("W104", f"`{entry.key}` is not used by {_a(decl.kind)} {decl.kind} stage", entry.key_span,
                                help="remove it")
                else:
                    self.unknown_setting(entry.key, entry.key_span, where,
                                         [k for k in STAGE_KEYS if k != "route"] + list(SHORTHAND_NAMES))
            else:
                if entry.key in SECTIONS:
                    if decl.kind in KIND_SECTIONS and entry.key not in KIND_SECTIONS[decl.kind]:
                        self.d.warn("W104", f"{_a(decl.kind)} {decl.kind} stage does not use `{entry.key} {{ ... }}`", entry.key_span,
                                    help=f"its sections: {', '.join(KIND_SECTIONS[decl.kind])}; remove this one")
                    settings, _ = self.flat(entry.body, f"{where}.{entry.key}")
                    for key, setting in settings.items():
                        self.add_knob(info, (entry.key, key), setting)
                elif entry.key in ("route", "students"):
                    info.sections[entry.key] = entry
                elif entry.key in STAGE_KEYS:
                    self.d.error("E004", f"`{entry.key}` is a setting, not a section", entry.key_span,
                                 help=f"write `{entry.key} = ...`")
                else:
                    self.unknown(entry.key, entry.key_span, f"section in {where}", list(SECTIONS) + ["route", "students"],
                                 help_extra="sections: " + ", ".join(list(SECTIONS) + ["route", "students"]))
        if "students" in info.sections or "students" in info.refs:
            if decl.kind != "distill":
                span = (info.sections.get("students") or info.refs["students"]).key_span
                self.d.warn("W104", f"`students` is only read by distill stages, not {decl.kind}", span, help="remove it")
            else:
                for name, span in self.student_entries(info):
                    self.job_names[f"{decl.name}_{name}"] = decl.name
        # dependencies on other stages
        for key in ("from", "data", "eval"):
            entry = info.refs.get(key)
            if entry is None:
                continue
            value = self.resolve(entry.value)
            if value is _BAD:
                continue
            for item in value.items if isinstance(value, ast.List) else [value]:
                prefer = ("model", "stage") if key == "from" else ("dataset", "stage")
                if isinstance(item, ast.Ref) and self.kind_of(item.name, prefer) in ("stage", None):
                    info.deps.setdefault(item.name, item.span)  # unknown names: maybe a distill job (see order)
        if decl.kind == "distill":
            for name, span in self.student_entries(info):
                if self.kind_of(name, ("model", "stage")) == "stage":
                    info.deps.setdefault(name, span)
        for reward in self.reward_names(info):  # a reward whose model an earlier stage trains
            for value in getattr(self.rewards.get(reward), "params", {}).values():
                if isinstance(value, ir.StageModel):
                    info.deps.setdefault(value.stage, info.refs["rewards"].value.span)

    def reward_names(self, info: _StageInfo) -> list[str]:
        entry = info.refs.get("rewards")
        value = self.resolve(entry.value) if entry else None
        if value is None or value is _BAD:
            return []
        return [v.name for v in (value.items if isinstance(value, ast.List) else [value]) if isinstance(v, ast.Ref)]

    def add_knob(self, info: _StageInfo, key: tuple[str, str], entry: ast.Assign) -> None:
        first = info.knobs.get(key)
        if first is not None:
            self.d.error("E003", f"`{key[0]}.{key[1]}` is set twice in stage {info.decl.name}", entry.key_span,
                         help="a shorthand (lr, steps, group_size) and its section setting name the same knob; keep one",
                         notes=[("first set here", first.key_span)])
            return
        info.knobs[key] = entry

    def student_entries(self, info: _StageInfo) -> list[tuple[str, Span]]:
        if "students" in info.sections:
            return [(e.key, e.key_span) for e in info.sections["students"].body.entries]
        if "students" in info.refs:
            value = self.resolve(info.refs["students"].value)
            items = value.items if isinstance(value, ast.List) else [value]
            return [(v.name, v.span) for v in items if isinstance(v, ast.Ref)]
        return []

    def order(self) -> list[str]:
        """Stages in a valid run order (declaration order where free); a cycle is E006."""
        index = {name: i for i, name in enumerate(self.stages)}
        for info in self.stages.values():  # keep only stages and distill jobs
            info.deps = {d: span for d, span in info.deps.items() if d in self.stages or d in self.job_names}
        deps = {
            name: list(dict.fromkeys(self.job_names.get(d, d) for d in info.deps))
            for name, info in self.stages.items()
        }
        # a cycle, reported once, at the reference that closes it
        state: dict[str, int] = {}
        reported: set[frozenset] = set()

        def visit(name: str, path: list[str]) -> None:
            state[name] = 1
            for dep in deps[name]:
                if state.get(dep) == 1:
                    cycle = path[path.index(dep):] + [dep] if dep in path else [name, dep]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        chain = " -> ".join(reversed(cycle))
                        where = next((s for d, s in self.stages[name].deps.items() if self.job_names.get(d, d) == dep), None)
                        self.d.error("E006", f"the stage graph has a cycle: {chain}", where,
                                     help="a stage can only start from, or read, stages that finish before it")
                elif state.get(dep) is None:
                    visit(dep, path + [dep])
            state[name] = 2

        for name in self.stages:
            if name not in state:
                visit(name, [name])
        done: list[str] = []
        placed: set[str] = set()
        remaining = sorted(self.stages, key=index.get)
        while remaining:
            ready = [n for n in remaining if all(d in placed or d == n for d in deps[n])]
            if not ready:  # a cycle (already reported): keep declaration order
                ready = remaining[:1]
            done.append(ready[0])
            placed.add(ready[0])
            remaining.remove(ready[0])
        return done

    # ------------------------------------------------------------ stages: the body
    def stage(self, info: _StageInfo) -> None:
        decl = info.decl
        kind = decl.kind
        if kind not in STAGE_KINDS:
            return
        refs = info.refs
        # from
        init, init_is_stage = None, False
        if "from" in refs:
            if kind == "distill":
                self.d.warn("W104", "a distill stage starts each student from its own model; `from` is not used",
                            refs["from"].key_span, help="name the students in `students { ... }`")
            else:
                init, init_is_stage = self.start_point(refs["from"].value, "from")
        elif kind != "distill":
            self.d.error("E011", f"stage `{decl.name}` has no `from`", decl.name_span,
                         help="say where it starts: from = MODEL or from = EARLIER_STAGE")
        # data and eval sets
        data = self.data_refs(refs.get("data"), "data") if "data" in refs else []
        eval_data = self.data_refs(refs.get("eval"), "eval") if "eval" in refs else []
        if "data" not in refs:
            if kind == "eval":
                if not eval_data:
                    self.d.warn("W105", f"eval stage `{decl.name}` has no data: it measures nothing", decl.name_span,
                                help="add data = DATASET (or a list of them)")
            else:
                self.d.error("E011", f"stage `{decl.name}` has no `data`", decl.name_span,
                             help="add data = DATASET, a list of them, or an earlier rejection_sample stage")
        if kind == "eval":
            eval_data = list(dict.fromkeys(data + eval_data))
        # template
        template = None
        if "template" in refs:
            template = self.template_ref(refs["template"], decl.name)
        # rewards and routing
        rewards = self.reward_refs(refs.get("rewards"))
        if not rewards and kind in ("grpo", "rejection_sample"):
            self.d.error("E011", f"{kind} stage `{decl.name}` has no rewards", decl.name_span,
                         help="add rewards = [accuracy, format] (reward declarations)")
        if not rewards and kind == "eval" and eval_data:
            self.d.warn("W108", f"eval stage `{decl.name}` has no rewards: nothing scores its samples", decl.name_span,
                        help="add rewards = [accuracy]")
        routed = self.route(info, rewards, data, eval_data)
        # sections
        built: dict[str, Any] = {}
        explicit: dict[str, set[str]] = {}
        for section, cls in SECTIONS.items():
            settings = {k: e for (s, k), e in info.knobs.items() if s == section}
            built[section], explicit[section] = self.build(cls, settings, section)
        if self.check_resources(built["resources"], info):
            self.check_rollout(built["rollout"], built["resources"], info)
        self.field_needs(info, kind, data, eval_data, routed)
        common = dict(
            data=tuple(data),
            template=template,
            rewards=routed,
            resources=built["resources"],
            eval_data=tuple(eval_data),
            span=decl.span,
        )
        if kind == "distill":
            self.jobs[decl.name] = self.distill_jobs(info, built, explicit, common)
            return
        stage = ir.Stage(
            name=decl.name,
            kind=kind,
            init=init or "",
            init_is_stage=init_is_stage,
            optim=built["optim"],
            train=built["train"],
            grpo=built["grpo"] if kind == "grpo" else None,
            sampling=built["sampling"] if kind in ("rejection_sample", "eval") or explicit["sampling"] else None,
            filters=built["filters"] if kind == "rejection_sample" else None,
            rollout=built["rollout"],
            after=tuple(info.deps),
            **common,
        )
        stage = self.batch_arithmetic(stage, explicit, info)
        self.stage_warnings(stage, info, explicit)
        self.jobs[decl.name] = [stage]

    def start_point(self, value: ast.Value, key: str) -> tuple[str | None, bool]:
        value = self.resolve(value)
        if value is _BAD:
            return None, False
        if not isinstance(value, ast.Ref):
            self.d.error("E004", f"`{key}` names a model or an earlier stage, got {_describe(value, self)}", value.span,
                         help='declare the checkpoint as a model: model NAME { hf = "org/name" }, then from = NAME')
            return None, False
        name = value.name
        self.used.add(name)
        kind = self.kind_of(name, ("model", "stage"))
        if kind == "model":
            return name, False
        if kind == "stage":
            stage_kind = self.stages[name].decl.kind
            if stage_kind in MODEL_PRODUCERS:
                return name, True
            if stage_kind == "distill":
                jobs = [j for j, d in self.job_names.items() if d == name]
                self.d.error("E004", f"`{name}` is a distill stage with {len(jobs)} students; name one of its jobs", value.span,
                             help="e.g. " + ", ".join(jobs[:3]) if jobs else None)
                return None, False
            self.d.error("E004", f"`{name}` is a {stage_kind} stage and produces no model", value.span,
                         help="start from a model or a pretrain, sft or grpo stage")
            return None, False
        if name in self.job_names:
            return name, True
        if kind is not None:
            self.d.error("E004", f"`{key}` names a model or an earlier stage, but `{name}` is a {kind}", value.span)
            return None, False
        candidates = self.named(("model", "stage")) + list(self.job_names)
        self.unknown(name, value.span, "model or stage", candidates,
                     help_extra="declare it: model NAME { hf = \"org/name\" }", code="E007")
        return None, False

    def data_refs(self, entry: ast.Assign, key: str) -> list[str]:
        value = self.resolve(entry.value)
        if value is _BAD:
            return []
        items = value.items if isinstance(value, ast.List) else [value]
        names: list[str] = []
        for item in items:
            if not isinstance(item, ast.Ref):
                self.d.error("E004", f"`{key}` names datasets, got {_describe(item, self)}", item.span,
                             help='declare it: dataset NAME { jsonl = "file.jsonl" }, then use NAME')
                continue
            name = item.name
            self.used.add(name)
            kind = self.kind_of(name, ("dataset", "stage"))
            if kind == "dataset":
                if name in self.datasets or name in self.provides:
                    names.append(name)
            elif kind == "stage":
                stage_kind = self.stages[name].decl.kind
                if stage_kind != "rejection_sample":
                    self.d.error("E004", f"`{name}` is a {stage_kind} stage; only rejection_sample stages produce data",
                                 item.span, help="read its model with `from`, or its samples through a rejection_sample stage")
                    continue
                if name not in self.datasets:
                    provides = self.sampled_fields(name)
                    self.datasets[name] = ir.Dataset(name, "stage", None, name, provides=provides,
                                                     span=self.stages[name].decl.span)
                    self.provides[name] = provides
                names.append(name)
            elif kind is not None:
                self.d.error("E004", f"`{key}` names datasets, but `{name}` is a {kind}", item.span)
            else:
                candidates = self.named(("dataset", "stage"))
                self.unknown(name, item.span, "dataset", candidates, help_extra='declare it: dataset NAME { ... }')
        return list(dict.fromkeys(names))

    def sampled_fields(self, stage: str) -> tuple[str, ...]:
        """Fields of a rejection_sample stage's rows: prompt and response, plus the ground truth (answer,
        tests) that every dataset it samples from carries along."""
        sources = [ds for job in self.jobs.get(stage, ()) for ds in job.data]
        carried = [f for f in STAGE_DATA_PROVIDES[2:] + ("tests",)
                   if sources and all(f in (self.provides.get(ds) or ()) for ds in sources)]
        return ("prompt", "response", *carried)

    def template_ref(self, entry: ast.Assign, stage: str) -> str | None:
        value = self.resolve(entry.value)
        if value is _BAD:
            return None
        if isinstance(value, ast.Str):  # written inline in the stage
            name = f"{stage}.template"
            self.templates[name] = ir.Template(name, value.value, value.span)
            self.template_warning(value.value, value.span, name)
            return name
        if isinstance(value, ast.Ref):
            self.used.add(value.name)
            kind = self.kind_of(value.name, ("template",))
            if kind == "template":
                return value.name if value.name in self.templates else None
            if kind is not None:
                self.d.error("E004", f"`template` names a template, but `{value.name}` is a {kind}", value.span)
                return None
            self.unknown(value.name, value.span, "template", self.named(("template",)))
            return None
        self.d.error("E004", f"`template` expects a template name or a string, got {_describe(value, self)}", value.span)
        return None

    def reward_refs(self, entry: ast.Assign | None) -> list[str]:
        if entry is None:
            return []
        value = self.resolve(entry.value)
        if value is _BAD:
            return []
        names = []
        for item in value.items if isinstance(value, ast.List) else [value]:
            if not isinstance(item, ast.Ref):
                self.d.error("E004", f"`rewards` names reward declarations, got {_describe(item, self)}", item.span,
                             help='declare it: reward NAME { rule = "format" }, then use NAME')
                continue
            self.used.add(item.name)
            kind = self.kind_of(item.name, ("reward",))
            if kind == "reward":
                if item.name in self.rewards:
                    names.append(item.name)
            elif kind is not None:
                self.d.error("E004", f"`rewards` names rewards, but `{item.name}` is a {kind}", item.span)
            else:
                self.unknown(item.name, item.span, "reward", self.named(("reward",)),
                             help_extra='declare it: reward NAME { rule = "math_accuracy" }')
        return list(dict.fromkeys(names))

    def route(self, info: _StageInfo, rewards: list[str], data: list[str], eval_data: list[str]) -> tuple[ir.Reward, ...]:
        """Each reward with the datasets it scores: a routed dataset gets exactly its list, others get all."""
        sets = list(dict.fromkeys((data if info.decl.kind in SCORES_TRAIN_DATA else []) + eval_data))
        per_set: dict[str, list[str]] = {}
        section = info.sections.get("route")
        if section is not None:
            settings, _ = self.flat(section.body, f"stage {info.decl.name}.route")
            for ds, entry in settings.items():
                if ds not in sets:
                    self.d.error("E002", f"`{ds}` is not a dataset of stage {info.decl.name}", entry.key_span,
                                 help=did_you_mean(ds, sets) or f"its datasets: {', '.join(sets) or 'none'}")
                    continue
                value = self.resolve(entry.value)
                if value is _BAD:
                    continue
                chosen = []
                for item in value.items if isinstance(value, ast.List) else [value]:
                    if not isinstance(item, ast.Ref):
                        self.d.error("E004", f"`route.{ds}` lists reward names, got {_describe(item, self)}", item.span)
                    elif item.name not in rewards:
                        if item.name in self.failed:
                            continue
                        if item.name in self.rewards:
                            self.d.error("E002", f"reward `{item.name}` is not in this stage's rewards", item.span,
                                         help=f"add it to rewards = [...] of stage {info.decl.name}")
                        else:
                            self.unknown(item.name, item.span, "reward", rewards)
                    else:
                        chosen.append(item.name)
                per_set[ds] = chosen
        out = []
        for name in rewards:
            scored = tuple(ds for ds in sets if name in per_set.get(ds, rewards))
            if not scored and sets:
                self.d.warn("W110", f"reward `{name}` is routed to none of the stage's datasets", section.key_span if section else info.decl.name_span,
                            help=f"list it under a dataset in route {{ ... }}, or drop it from rewards")
            out.append(replace(self.rewards[name], datasets=() if len(scored) == len(sets) else scored))
        return tuple(out)

    # ------------------------------------------------------------ stages: distill
    def distill_jobs(self, info: _StageInfo, built: dict, explicit: dict, common: dict) -> list[ir.Stage]:
        decl = info.decl
        students = self.student_entries(info)
        if not students:
            self.d.error("E011", f"distill stage `{decl.name}` names no students", decl.name_span,
                         help="add students { qwen_1_5b { lr = 1e-4 }  llama_8b { lr = 5e-5 } } (each a model)")
            return []
        bodies = {}
        if "students" in info.sections:
            for entry in info.sections["students"].body.entries:
                bodies[entry.key] = entry
        jobs = []
        seen: set[str] = set()
        for name, span in students:
            if name in seen:
                self.d.error("E003", f"student `{name}` is listed twice", span, help="keep one")
                continue
            seen.add(name)
            init, init_is_stage = self.start_point(ast.Ref(name, span), "students")
            sections = {"optim": built["optim"], "train": built["train"], "resources": built["resources"]}
            entry = bodies.get(name)
            student_explicit = {k: set(v) for k, v in explicit.items()}
            if isinstance(entry, ast.Section):
                settings, subsections = self.flat(entry.body, f"student {name}", sections_ok=("optim", "train", "resources"))
                knobs_: dict[tuple[str, str], ast.Assign] = {}
                for key, setting in settings.items():
                    canon = shorthand("distill", key)
                    if canon is None:
                        self.unknown_setting(key, setting.key_span, f"student {name}", ["lr", "steps", "optim { }", "train { }", "resources { }"])
                        continue
                    knobs_[canon] = setting
                for sec_name, sec in subsections.items():
                    inner, _ = self.flat(sec.body, f"student {name}.{sec_name}")
                    for key, setting in inner.items():
                        knobs_[(sec_name, key)] = setting
                for sec_name in ("optim", "train", "resources"):
                    overrides = {k: e for (s, k), e in knobs_.items() if s == sec_name}
                    if overrides:
                        base = {k: e for (s, k), e in info.knobs.items() if s == sec_name and k not in overrides}
                        sections[sec_name], student_explicit[sec_name] = self.build(SECTIONS[sec_name], {**base, **overrides}, sec_name)
            elif isinstance(entry, ast.Assign):
                self.d.error("E004", f"student `{name}` takes a section", entry.key_span, help=f"write `{name} {{ lr = 1e-4 }}`")
            if init is None:
                continue
            after = tuple(dict.fromkeys(([name] if init_is_stage else []) + [d for d in info.deps if d not in bodies and d != name]))
            common_job = dict(common, resources=sections["resources"])
            job = ir.Stage(
                name=f"{decl.name}_{name}",
                kind="sft",
                init=init,
                init_is_stage=init_is_stage,
                optim=sections["optim"],
                train=sections["train"],
                sampling=built["sampling"] if explicit["sampling"] else None,
                after=after,
                student_of=decl.name,
                **common_job,
            )
            clash = self.kind_of(job.name, ("stage", "model", "dataset", "const"))
            if clash in ("stage", "model", "dataset", "const"):
                self.d.error("E003", f"distill job `{job.name}` has the name of a {clash}", span,
                             help="rename the stage or that declaration",
                             notes=[("declared here", self.decls[f"{clash} {job.name}"][0].name_span)])
            self.check_resources(job.resources, info)
            job = self.batch_arithmetic(job, student_explicit, info)
            jobs.append(job)
        return jobs

    # ------------------------------------------------------------ cross-checks
    def field_needs(self, info: _StageInfo, kind: str, data: list[str], eval_data: list[str], rewards: tuple[ir.Reward, ...]) -> None:
        """E008: every field a stage kind or a routed reward reads must be provided by the dataset."""
        spans = self.ref_spans(info)
        for ds in dict.fromkeys(data + eval_data):
            provides = self.provides.get(ds)
            if provides is None:
                continue
            span = spans.get(ds, info.decl.name_span)
            needs: list[tuple[str, str]] = []
            if ds in data:
                needs += [(f, f"{_a(kind)} {kind} stage") for f in KIND_NEEDS[kind]]
            elif kind != "eval" or ds in eval_data:
                needs += [("prompt", "evaluation")]
            for reward in rewards:
                if ds not in eval_data and kind not in SCORES_TRAIN_DATA:
                    continue
                if not reward.datasets or ds in reward.datasets:
                    rule = reward_rules().get(reward.rule)
                    needs += [(f, f"reward `{reward.name}` ({reward.rule})") for f in (rule.needs if rule else ())]
            for fld, who in dict.fromkeys(needs):
                if fld in provides:
                    continue
                source = self.datasets.get(ds)
                if source is not None and source.source in ("jsonl", "parquet", "hf"):
                    help = f"map a column of the file to it: fields {{ {fld} = \"COLUMN\" }} in dataset {ds}"
                elif source is not None and source.source == "generator":
                    help = f"generator `{source.generator}` provides {', '.join(provides)}"
                else:
                    help = f"`{ds}` provides {', '.join(provides)}"
                if who.startswith("reward"):
                    help += "; or route the reward elsewhere: route { " + ds + " = [...] }"
                self.d.error("E008", f"{who} needs field `{fld}`, which dataset `{ds}` does not provide", span, help=help)

    def ref_spans(self, info: _StageInfo) -> dict[str, Span]:
        spans: dict[str, Span] = {}
        for key in ("data", "eval"):
            entry = info.refs.get(key)
            if entry is None:
                continue
            value = self.resolve(entry.value)
            if value is _BAD:
                continue
            for item in value.items if isinstance(value, ast.List) else [value]:
                if isinstance(item, ast.Ref):
                    spans.setdefault(item.name, item.span)
        return spans

    def knob_span(self, info: _StageInfo, section: str, key: str) -> Span:
        entry = info.knobs.get((section, key))
        return entry.value.span if entry else info.decl.name_span

    def check_resources(self, res: ir.Resources, info: _StageInfo) -> bool:
        """E010: the GPUs (or CPU processes) must hold the tensor x pipeline parallel layout."""
        layout = res.tensor_parallel * res.pipeline_parallel
        if res.gpus_per_node == 0:
            for key in ("tensor_parallel", "pipeline_parallel", "rollout_gpus"):
                if getattr(res, key) > (0 if key == "rollout_gpus" else 1):
                    self.d.error("E010", f"`resources.{key}` = {getattr(res, key)} needs GPUs, but gpus_per_node is 0",
                                 self.knob_span(info, "resources", key), help="set resources.gpus_per_node, or leave this at its default")
                    return False
            return True
        total = res.gpus_per_node * res.nodes
        if res.rollout_gpus >= total:
            self.d.error("E010", f"`resources.rollout_gpus` = {res.rollout_gpus} leaves no GPU for training ({total} in all)",
                         self.knob_span(info, "resources", "rollout_gpus"),
                         help=f"use fewer than {total} rollout GPUs, or add nodes")
            return False
        train = total - res.rollout_gpus
        if train % layout:
            which = "tensor_parallel" if ("resources", "tensor_parallel") in info.knobs else "pipeline_parallel"
            extra = f" ({total} minus {res.rollout_gpus} for rollouts)" if res.rollout_gpus else f" ({res.nodes} node(s) x {res.gpus_per_node})"
            self.d.error("E010", f"{train} training GPUs{extra} cannot hold tensor_parallel {res.tensor_parallel} x "
                         f"pipeline_parallel {res.pipeline_parallel} = {layout}: {train} is not a multiple of {layout}",
                         self.knob_span(info, "resources", which),
                         help=f"choose parallel sizes whose product divides {train}")
            return False
        return True

    def check_rollout(self, rollout: ir.Rollout, res: ir.Resources, info: _StageInfo) -> None:
        """E010: the colocated vLLM engine shares one process with the trainer, so the stage runs one process."""
        if rollout.engine != "vllm":
            return
        processes = res.nodes * (res.gpus_per_node if res.gpus_per_node else res.cpu_processes)
        if processes > 1:
            self.d.error("E010", f"`rollout.engine` = \"vllm\" runs one engine colocated with one trainer process, but "
                         f"the stage runs {processes} processes", self.knob_span(info, "rollout", "engine"),
                         help="use one process (nodes = 1 and one GPU, or cpu_processes = 1), or engine = \"hf\"")

    def batch_arithmetic(self, stage: ir.Stage, explicit: dict[str, set[str]], info: _StageInfo) -> ir.Stage:
        """E009: a step's sequences must split evenly over data-parallel ranks and micro-batches.

        An unset micro_batch_size defaults to the largest divisor of the per-rank batch not above the IR default.
        """
        res = stage.resources
        layout = res.tensor_parallel * res.pipeline_parallel
        world = (res.gpus_per_node * res.nodes - res.rollout_gpus) if res.gpus_per_node else res.cpu_processes * res.nodes
        if world <= 0 or world % layout:
            return stage  # E010 already said why
        dp = world // layout
        if stage.kind == "grpo" and stage.grpo is not None:
            g = stage.grpo
            total = g.num_prompts_per_step * g.num_generations_per_prompt
            what = f"num_prompts_per_step x num_generations_per_prompt = {g.num_prompts_per_step} x {g.num_generations_per_prompt} = {total}"
            section, mbs, is_explicit = "grpo", g.micro_batch_size, "micro_batch_size" in explicit["grpo"]
        elif stage.kind in ("pretrain", "sft", "reward_model"):
            total = stage.train.batch_size
            what = f"train.batch_size = {total}"
            section, mbs, is_explicit = "train", stage.train.micro_batch_size, "micro_batch_size" in explicit["train"]
        else:
            return stage
        if total % dp:
            self.d.error("E009", f"{what} sequences per step do not split over {dp} data-parallel ranks", self.knob_span(info, section, "micro_batch_size" if section == "train" and False else ("batch_size" if section == "train" else "num_prompts_per_step")),
                         help=f"make it a multiple of {dp} (data-parallel size = training GPUs / (tensor_parallel x pipeline_parallel))")
            return stage
        per_rank = total // dp
        if not is_explicit:
            mbs = math.gcd(per_rank, mbs)
            if section == "grpo":
                return replace(stage, grpo=replace(stage.grpo, micro_batch_size=mbs))
            return replace(stage, train=replace(stage.train, micro_batch_size=mbs))
        if per_rank % mbs:
            divisors = [d for d in range(1, per_rank + 1) if per_rank % d == 0 and d <= max(mbs, 1) * 2][-3:]
            self.d.error("E009", f"{what} sequences per step is not a multiple of micro_batch_size {mbs} x data-parallel size {dp}",
                         self.knob_span(info, section, "micro_batch_size"),
                         help=f"each of the {dp} rank(s) gets {per_rank} sequences; choose a micro_batch_size dividing it, e.g. {', '.join(map(str, divisors))}")
        return stage

    def stage_warnings(self, stage: ir.Stage, info: _StageInfo, explicit: dict[str, set[str]]) -> None:
        if stage.grpo is not None and stage.grpo.reference_refresh_steps and stage.grpo.kl_penalty == 0:
            self.d.warn("W101", "a reference refresh has no effect when kl_penalty is 0",
                        self.knob_span(info, "grpo", "reference_refresh_steps"),
                        help="drop reference_refresh_steps, or set a kl_penalty > 0")
        if stage.sampling is not None and stage.sampling.temperature == 0 and stage.sampling.samples_per_prompt > 1:
            self.d.warn("W107", f"greedy sampling (temperature 0) gives {stage.sampling.samples_per_prompt} identical samples per prompt",
                        self.knob_span(info, "sampling", "temperature"), help="use a temperature > 0, or samples_per_prompt = 1")
        if stage.filters is not None:
            rules = {r.rule for r in stage.rewards}
            f = stage.filters
            checks = [
                ("correct", f.correct, set(CORRECTNESS_RULES), "an accuracy reward (math_accuracy or code_accuracy)"),
                ("format", f.format, {"format"}, "a format reward"),
                ("language", f.language is not None, {"language_consistency"}, "a language_consistency reward"),
            ]
            for key, on, needed, what in checks:
                if on and not (rules & needed) and not (self.failed & set(self.reward_names(info))):
                    self.d.warn("W109", f"filters.{key} is on, but no reward of this stage is {what}",
                                self.knob_span(info, "filters", key), help=f"add {what} to rewards, or turn the filter off")
            if f.judge is not None:
                names = {r.name: r for r in stage.rewards}
                if f.judge not in names and f.judge not in self.failed:
                    self.d.error("E002", f"filters.judge names `{f.judge}`, which is not a reward of this stage",
                                 self.knob_span(info, "filters", "judge"),
                                 help=did_you_mean(f.judge, names) or "name a reward (rule = \"judge\") listed in rewards")

    def unused(self) -> None:
        """W106: a declaration of the main file that nothing reads."""
        for decl, module in self.decls.values():
            name = decl.name
            if module is not self.main or isinstance(decl, ast.StageDecl) or name in self.used:
                continue
            self.d.warn("W106", f"{ast.decl_keyword(decl)} `{name}` is declared but never used", decl.name_span,
                        help="remove it, or use it in a stage")


# ---------------------------------------------------------------- wording helpers


def _a(kind: str) -> str:
    return "an" if kind in ("sft", "eval") else "a"


def _type_name(typ: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}
    if isinstance(typ, tuple):
        return " or ".join(names.get(t, getattr(t, "__name__", str(t))) for t in typ)
    return names.get(typ, "a value" if typ is Any else getattr(typ, "__name__", str(typ)))


def _literal_hint(typ: Any) -> str | None:
    if typ is str:
        return 'quote text: "like this"'
    if typ is bool:
        return "write true or false"
    return None


def _describe(value: Any, checker: _Checker) -> str:
    if isinstance(value, ast.Str):
        text = value.value if len(value.value) <= 30 else value.value[:27] + "..."
        return f'the string "{text}"'
    if isinstance(value, ast.Num):
        return f"the number {value.raw}"
    if isinstance(value, ast.Bool):
        return "true" if value.value else "false"
    if isinstance(value, ast.Null):
        return "null"
    if isinstance(value, ast.List):
        return "a list"
    if isinstance(value, ast.Ref):
        kind = checker.kind_of(value.name)
        return f"the {kind} `{value.name}`" if kind else f"the name `{value.name}`"
    return "a value"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float) and value == int(value) and abs(value) < 1e16:
        return str(value)
    return str(value)
