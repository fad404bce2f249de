"""The `r1dsl` command: check, compile, fmt, graph, explain, fetch, plan, report, run-stage.

Exit status: 0 ok, 1 recipe errors (or a failed run), 2 usage errors, 3 an internal error (a bug in
r1dsl: reported in one line, never as a traceback), 4 `--run`/`--dry-run` preflight: a stage does not fit this
machine (GPUs, GPU memory, data files, hub models not cached) and nothing was started. Imports stay lazy so `r1dsl check` starts fast
and never loads torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from r1dsl import catalogue

try:  # the edge: the one place where the front end meets the backends (r1dsl/catalogue.py)
    from backends import catalogue as _backends
except ImportError:  # the front end alone: rules and generators are unknown, only the local target
    _backends = None

OK, RECIPE_ERROR, USAGE_ERROR, INTERNAL_ERROR, PREFLIGHT_FAILED = 0, 1, 2, 3, 4

EXIT_STATUS = """exit status: 0 ok; 1 recipe errors or a failed stage; 2 usage error; 3 internal error (a bug in r1dsl);
4 preflight: with --run or --dry-run, a stage needs what this machine lacks (GPUs, GPU memory, data files,
hub models in the local cache) and nothing was started"""


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("r1dsl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return OK
    except Exception as e:  # the promise: no traceback for any input
        import os

        where = ""
        tb = e.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:
            where = f" at {os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}"
        print(f"r1dsl: internal error ({type(e).__name__}{where}): {e}", file=sys.stderr)
        print("This is a bug in r1dsl, not in your recipe; please report it with the recipe that caused it.", file=sys.stderr)
        return INTERNAL_ERROR


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="r1dsl", description="Compile DeepSeek-R1-style training recipes (.r1 files).",
                                epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def overrides(q):
        q.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a setting before checking: stage.section.key, stage.lr|steps|group_size, or a const")

    q = sub.add_parser("check", help="check recipes; report every mistake found")
    q.add_argument("files", nargs="+", metavar="FILE")
    q.add_argument("--format", choices=("text", "json", "github"), default="text")
    overrides(q)

    q = sub.add_parser("compile", help="write the run folder (configs, launch scripts, manifest)", epilog=EXIT_STATUS,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("file", metavar="FILE")
    q.add_argument("-o", "--output", metavar="DIR", help="run folder (default: runs/<recipe name>)")
    q.add_argument("--target", choices=("local", "slurm", "nemo-rl"), default="local")
    q.add_argument("--run", action="store_true",
                   help="run the stages after compiling (local target: first checks that each fits this machine; exit 4 if not)")
    q.add_argument("--dry-run", action="store_true", help="print what would run and why, and the preflight's findings")
    q.add_argument("--from", dest="from_stage", metavar="STAGE", help="rerun STAGE and everything downstream of it")
    q.add_argument("--only", metavar="STAGE", help="run STAGE alone (its inputs must exist)")
    q.add_argument("--progress", choices=("auto", "rich", "plain", "jsonl", "quiet"), default=None,
                   help="how running stages show progress (default auto: rich on a terminal, plain lines in a log)")
    q.add_argument("--smoke", action="store_true",
                   help="tiny stand-ins for every model and dataset, a few steps per stage: checks the pipeline's shape and data flow")
    overrides(q)

    q = sub.add_parser("fmt", help="rewrite recipes in the canonical layout (comments kept)")
    q.add_argument("files", nargs="+", metavar="FILE")
    q.add_argument("--check", action="store_true", help="only report files that are not formatted (exit 1)")

    q = sub.add_parser("graph", help="print the stage graph")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    overrides(q)

    q = sub.add_parser("explain", help="explain a diagnostic code (E002, W101, ...)")
    q.add_argument("code", metavar="CODE")

    q = sub.add_parser("fetch", help="download every hub model and dataset a recipe reads into the local cache (login node)")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--cache", metavar="DIR", help="hub cache to fill (default: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache)")
    q.add_argument("--offline", action="store_true",
                   help="download nothing: list what is cached and what is missing (also when HF_HUB_OFFLINE=1)")
    overrides(q)

    q = sub.add_parser("plan", help="estimate a recipe's compute: GPUs, memory per GPU, FLOPs and GPU-hours per stage")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--target", choices=("nemo-rl",), default=None,
                   help="also say, per stage, what runs it on that target: entry point, engines, vLLM's memory")
    overrides(q)

    q = sub.add_parser("report", help="plots and a Markdown/HTML report of a run folder (into RUN_DIR/report/)")
    q.add_argument("run_dir", metavar="RUN_DIR")

    q = sub.add_parser("run-stage", help="run one compiled stage: CONFIG is <run_dir>/<stage>/config.yaml")
    q.add_argument("config", metavar="CONFIG")
    return p


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if _backends is not None:
        catalogue.install(_backends.build())
    return {
        "check": cmd_check,
        "compile": cmd_compile,
        "fmt": cmd_fmt,
        "graph": cmd_graph,
        "explain": cmd_explain,
        "fetch": cmd_fetch,
        "plan": cmd_plan,
        "report": cmd_report,
        "run-stage": cmd_run_stage,
    }[args.command](args)


def _usage(message: str) -> int:
    print(f"r1dsl: {message}", file=sys.stderr)
    return USAGE_ERROR


def _check(path: str, overrides: list[str]):
    """(result, None) or (None, exit status) when the file cannot be read."""
    from r1dsl.frontend import check_file
    from r1dsl.loader import UsageError

    try:
        return check_file(path, overrides), None
    except UsageError as e:
        return None, _usage(str(e))


def _recipe(args, show_warnings: bool = False):
    """(checked recipe, None), or (None, exit status) after printing why there is none."""
    result, err = _check(args.file, args.overrides)
    if result is None:
        return None, err
    if not result.ok:
        _print_diagnostics(result)
        return None, RECIPE_ERROR
    if show_warnings and result.diagnostics:
        _print_diagnostics(result)
    return result.recipe, None


def _print_diagnostics(result, stream=None) -> None:
    from r1dsl.diagnostics import render_text, summary

    stream = stream or sys.stderr
    for d in result.diagnostics:
        print(render_text(d, result.sources), file=stream)
    if result.diagnostics:
        print(f"{summary(result.diagnostics)}", file=stream)


# ---------------------------------------------------------------- subcommands


def cmd_check(args) -> int:
    from r1dsl.diagnostics import render_github, render_json, render_text, summary

    status = OK
    everything = []
    for path in args.files:
        result, err = _check(path, args.overrides)
        if result is None:
            status = max(status, err)
            continue
        everything.append(result)
        if not result.ok:
            status = max(status, RECIPE_ERROR)
    diags = [d for r in everything for d in r.diagnostics]
    if args.format == "json":
        print(render_json(diags))
    elif args.format == "github":
        for d in diags:
            print(render_github(d))
    else:
        sources = {k: v for r in everything for k, v in r.sources.items()}
        for d in diags:
            print(render_text(d, sources))
        if everything:
            checked = len(everything)
            print(f"checked {checked} file{'s' if checked != 1 else ''}: {summary(diags)}")
    return status


def cmd_compile(args) -> int:
    from r1dsl.compiler import compile_recipe, model_parallel_misfits, target_errors, write_run_folder

    recipe, err = _recipe(args, show_warnings=True)
    if recipe is None:
        return err
    if args.smoke:
        from r1dsl.smoke import smoke

        recipe = smoke(recipe)
        if args.output is None:
            args.output = str(Path("runs") / f"{recipe.name}-smoke")
    refused = target_errors(recipe, args.target) if args.target == "slurm" else []
    if refused:
        from r1dsl.diagnostics import render_text, summary

        files = {d.span.file for d in refused if d.span is not None}
        sources = {f: Path(f).read_text(encoding="utf-8") for f in files if Path(f).is_file()}
        for d in refused:
            print(render_text(d, sources), file=sys.stderr)
        print(summary(refused), file=sys.stderr)
        return RECIPE_ERROR
    pipeline = compile_recipe(recipe, args.output, args.target)
    target = _target(args.target)
    if isinstance(target, str):
        return _usage(target)
    refused = getattr(target, "refusals", lambda _: [])(pipeline)
    if refused:  # what the target's runtime would reject (or could be subverted by): nothing is written
        for refusal in refused:
            print(refusal, file=sys.stderr)
        print(f"r1dsl: --target {args.target} refuses {len(refused)} thing(s) in this recipe; nothing was written",
              file=sys.stderr)
        return RECIPE_ERROR
    problems = []
    if args.target == "local" and (args.run or args.dry_run):
        from r1dsl import local, preflight

        try:
            running = [d.job.stage.name for d in local.decide(pipeline, args.from_stage, args.only) if d.run]
        except ValueError as e:
            return _usage(str(e))
        problems = preflight.check(pipeline, running)
        if problems and not args.dry_run:  # before anything is written or started
            print(preflight.report(problems), file=sys.stderr)
            return PREFLIGHT_FAILED
    if args.target == "local" and not (args.run or args.dry_run):
        for stage, key, size in model_parallel_misfits(recipe.stages, "local"):
            print(f"warning: stage `{stage.name}`: resources.{key} = {size}: the local target trains data-parallel "
                  "only, so --run refuses this stage; compile with --target nemo-rl to run it", file=sys.stderr)
    written = write_run_folder(pipeline)
    written += target.emit(pipeline)
    for warning in getattr(target, "unsupported", lambda _: [])(pipeline):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"compiled {recipe.name}: {len(pipeline.jobs)} stage(s) -> {pipeline.run_dir}")
    for job in pipeline.jobs:
        print(f"  {job.stage.name:<28} {job.stage.kind:<17} {job.config_hash[:12]}")
    if args.progress:
        import os

        os.environ["R1DSL_PROGRESS"] = args.progress  # read by every stage process it starts
    if args.run or args.dry_run:
        if args.target == "local":
            status = target.run(pipeline, dry_run=args.dry_run, from_stage=args.from_stage, only=args.only)
            if problems:
                print(preflight.report(problems).replace("nothing was started", "--run would stop here"), file=sys.stderr)
                return PREFLIGHT_FAILED
            return status
        if args.from_stage or args.only:
            return _usage(f"--from and --only select stages of the local target; {args.target} submits the whole pipeline")
        return target.run(pipeline, dry_run=args.dry_run)
    return OK


def _target(name: str):
    """The launch target: r1dsl.local, or one the backends' catalogue offers (emit/run); an error message if unavailable."""
    if name == "local":
        from r1dsl import local

        return local
    load = catalogue.current().targets.get(name)
    if load is None:
        return f"target `{name}` is not available: the backends that provide it are not installed"
    try:
        module = load()
    except Exception as e:
        return f"target `{name}` failed to load: {type(e).__name__}: {e}"
    if not (hasattr(module, "emit") and hasattr(module, "run")):
        return f"target `{name}` is incomplete: it must define emit(pipeline) and run(pipeline, dry_run)"
    return module


def cmd_fmt(args) -> int:
    from pathlib import Path

    from r1dsl.diagnostics import render_text
    from r1dsl.fmt import format_text
    from r1dsl.loader import UsageError, read_source
    from r1dsl.parser import ParseError

    status = OK
    for path in args.files:
        try:
            text = read_source(path)
        except UsageError as e:
            status = max(status, _usage(str(e)))
            continue
        try:
            formatted = format_text(text, path)
        except ParseError as e:
            print(render_text(e.diagnostic, {path: text}), file=sys.stderr)
            status = max(status, RECIPE_ERROR)
            continue
        if formatted == text:
            continue
        if args.check:
            print(f"{path}: not formatted (run `r1dsl fmt {path}`)")
            status = max(status, RECIPE_ERROR)
        else:
            Path(path).write_text(formatted)
            print(f"formatted {path}")
    return status


def cmd_graph(args) -> int:
    from r1dsl import graph

    recipe, err = _recipe(args)
    if recipe is None:
        return err
    print(graph.mermaid(recipe) if args.format == "mermaid" else graph.dot(recipe), end="")
    return OK


def cmd_explain(args) -> int:
    from r1dsl.codes import CODES, explain

    text = explain(args.code)
    if text is None:
        return _usage(f"unknown code `{args.code}`; known codes: {', '.join(CODES)}")
    print(text, end="")
    return OK


def cmd_fetch(args) -> int:
    import os

    from r1dsl import hub

    recipe, err = _recipe(args)
    if recipe is None:
        return err
    refs = hub.hub_refs(recipe)
    cache = Path(args.cache).expanduser() if args.cache else hub.hub_cache()
    if not refs:
        print(f"{args.file}: its stages read nothing from the hub (generated, local or earlier stages' data)")
        return OK
    offline = args.offline or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    print(f"{'checking' if offline else 'fetching'} {len(refs)} hub repositories into {cache}", file=sys.stderr)
    results = hub.fetch(refs, cache, offline=offline)
    missing = [r for r in results if r.commit is None]
    for r in results:
        state = f"{r.commit}" if r.commit else "missing"
        print(f"{r.ref.kind:<8} {r.ref.repo_id:<50} {state}")
    if missing:
        print(hub.missing_help(args.file, missing), file=sys.stderr)
        return RECIPE_ERROR
    if args.cache:
        print(f"stages read this cache when HF_HUB_CACHE={cache} is set for them", file=sys.stderr)
    return OK


def cmd_plan(args) -> int:
    from r1dsl import plan as plan_module

    recipe, err = _recipe(args)
    if recipe is None:
        return err
    out = plan_module.plan(recipe)
    print(out if isinstance(out, str) else str(out))
    refused = []
    if getattr(args, "target", None):
        import tempfile

        from r1dsl.compiler import compile_recipe

        target = _target(args.target)
        if isinstance(target, str):
            return _usage(target)
        with tempfile.TemporaryDirectory() as run:  # nothing is written there: the layout needs a run folder
            pipeline = compile_recipe(recipe, run, args.target)
            print("\n" + target.runtime_table(pipeline))
            refused = target.refusals(pipeline)
        for refusal in refused:
            print(refusal)
    return RECIPE_ERROR if getattr(out, "errors", None) or refused else OK


def cmd_report(args) -> int:
    from pathlib import Path

    from r1dsl.report import build_report

    if not Path(args.run_dir).is_dir():
        return _usage(f"no run folder at {args.run_dir}")
    print(build_report(args.run_dir))
    return OK


def cmd_run_stage(args) -> int:
    run_stage = catalogue.current().run_stage
    if run_stage is None:
        return _usage("the training backend is not available (backends/ is not installed)")
    return int(run_stage([args.config]) or 0)


if __name__ == "__main__":
    sys.exit(main())
