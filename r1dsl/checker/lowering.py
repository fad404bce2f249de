"""Lowering: a distill stage becomes one sft job per student (`<stage>_<student>`, `student_of` set).

May import: r1dsl.ast, r1dsl.ir, r1dsl.schema, r1dsl.kinds, .scope, .values, .references, .rules.
"""

from __future__ import annotations

from r1dsl import ast, ir
from r1dsl.checker.references import start_point
from r1dsl.checker.rules import batch_arithmetic, check_resources
from r1dsl.checker.scope import Context, StageInfo
from r1dsl.checker.outline import student_entries
from r1dsl.checker.values import build, flat, unknown_setting
from r1dsl.schema import SECTIONS, shorthand


def distill_jobs(cx: Context, info: StageInfo, built: dict, explicit: dict, common: dict) -> list[ir.Stage]:
    decl = info.decl
    students = student_entries(cx, info)
    if not students:
        cx.d.error("E011", f"distill stage `{decl.name}` names no students", decl.name_span,
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
            cx.d.error("E003", f"student `{name}` is listed twice", span, help="keep one")
            continue
        seen.add(name)
        init, init_is_stage = start_point(cx, ast.Ref(name, span), "students")
        sections = {"optim": built["optim"], "train": built["train"], "resources": built["resources"]}
        entry = bodies.get(name)
        student_explicit = {k: set(v) for k, v in explicit.items()}
        if isinstance(entry, ast.Section):
            settings, subsections = flat(cx, entry.body, f"student {name}", sections_ok=("optim", "train", "resources"))
            knobs_: dict[tuple[str, str], ast.Assign] = {}
            for key, setting in settings.items():
                canon = shorthand(decl.kind, key)
                if canon is None:
                    unknown_setting(cx, key, setting.key_span, f"student {name}", ["lr", "steps", "optim { }", "train { }", "resources { }"])
                    continue
                knobs_[canon] = setting
            for sec_name, sec in subsections.items():
                inner, _ = flat(cx, sec.body, f"student {name}.{sec_name}")
                for key, setting in inner.items():
                    knobs_[(sec_name, key)] = setting
            for sec_name in ("optim", "train", "resources"):
                overrides = {k: e for (s, k), e in knobs_.items() if s == sec_name}
                if overrides:
                    base = {k: e for (s, k), e in info.knobs.items() if s == sec_name and k not in overrides}
                    sections[sec_name], student_explicit[sec_name] = build(cx, SECTIONS[sec_name], {**base, **overrides}, sec_name)
        elif isinstance(entry, ast.Assign):
            cx.d.error("E004", f"student `{name}` takes a section", entry.key_span, help=f"write `{name} {{ lr = 1e-4 }}`")
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
        clash = cx.kind_of(job.name, ("stage", "model", "dataset", "const"))
        if clash in ("stage", "model", "dataset", "const"):
            cx.d.error("E003", f"distill job `{job.name}` has the name of a {clash}", span,
                       help="rename the stage or that declaration",
                       notes=[("declared here", cx.decls[f"{clash} {job.name}"][0].name_span)])
        check_resources(cx, job.resources, info)
        job = batch_arithmetic(cx, job, student_explicit, info)
        jobs.append(job)
    return jobs
