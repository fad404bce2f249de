"""Launch targets: each turns a compiled `Pipeline` into scripts (and submits them when asked).

`TARGETS[name]` is a module-level object with `emit(pipeline) -> list[Path]` and
`run(pipeline, dry_run: bool) -> int`. Torch-free: the compiler imports this.
"""

from backends.launchers import nemo_rl, slurm

# The local target is added by the front end (here or in r1dsl); each entry may also offer
# `unsupported(pipeline) -> list[str]`: recipe features the target cannot honour, reported as warnings.
TARGETS = {
    "slurm": slurm,
    "nemo-rl": nemo_rl,
}
