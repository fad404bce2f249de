"""Run one compiled stage: `python -m backends.run_stage DIR/<stage>/config.yaml`.

Dispatches on the config's `kind` through `backends.stages.STAGES`. A stage whose DONE marker exists is
skipped; a stage with checkpoints resumes from the latest one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backends.run_stage", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a compiled <stage>/config.yaml")
    parser.add_argument("--force", action="store_true", help="run even if the stage's DONE marker exists")
    args = parser.parse_args(argv)
    from backends.trainer import stop

    stop.install()  # before the slow imports: a time-limit warning during start-up is kept, not fatal

    from backends.stages import STAGES
    from r1dsl.config import ConfigError, StageConfig
    from backends.trainer.results import is_done

    path = Path(args.config)
    if not path.exists():
        print(f"error: {path}: no such stage config", file=sys.stderr)
        return 2
    try:
        cfg = StageConfig.load(path)  # typed: every default lives in the IR dataclasses, read nowhere else
    except ConfigError as e:
        print(f"error: {e} (recompile the recipe: r1dsl compile)", file=sys.stderr)
        return 2
    if cfg.kind not in STAGES:
        print(f"error: {path}: unknown stage kind {cfg.kind!r} (known: {', '.join(sorted(STAGES))})", file=sys.stderr)
        return 2
    if is_done(cfg.exp_manager.exp_dir) and not args.force:
        print(f"[{cfg.name}] already done ({cfg.exp_manager.exp_dir}/DONE); skipping")
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _quiet_libraries()
    from backends.data.loading import DataError
    from backends.models import ModelError
    from backends.trainer.stop import EXIT_CHECKPOINTED, Preempted

    try:
        metrics = STAGES[cfg.kind](cfg)
    except (DataError, ModelError) as e:  # bad input: say where and why, without a traceback
        print(f"error: stage {cfg.name}: {e}", file=sys.stderr)
        return 1
    except Preempted as e:  # SIGUSR1 (SLURM's time-limit warning): resumable, not done
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"[{cfg.name}] {e}; run it again to resume", flush=True)
        return EXIT_CHECKPOINTED
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"[{cfg.name}] done: {json.dumps(metrics, sort_keys=True)}")
    return 0


def _quiet_libraries() -> None:
    """Keep stage logs to our own lines: no per-shard progress bars or advisory warnings from libraries."""
    import warnings

    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="lightning")


if __name__ == "__main__":
    sys.exit(main())
