"""Launch targets: each turns a compiled `Pipeline` into scripts (and submits them when asked).

`TARGETS[name]` is a module-level object with `emit(pipeline) -> list[Path]` and
`run(pipeline, dry_run: bool) -> int`. Torch-free: the compiler imports this.
"""
