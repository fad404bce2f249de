"""Order: the stages in a valid run order (declaration order where free); a cycle is E006.

May import: .scope.
"""

from __future__ import annotations

from r1dsl.checker.scope import Context


def order(cx: Context) -> list[str]:
    """Stages in a valid run order (declaration order where free); a cycle is E006."""
    index = {name: i for i, name in enumerate(cx.stages)}
    for info in cx.stages.values():  # keep only stages and distill jobs
        info.deps = {d: span for d, span in info.deps.items() if d in cx.stages or d in cx.job_names}
    deps = {
        name: list(dict.fromkeys(cx.job_names.get(d, d) for d in info.deps))
        for name, info in cx.stages.items()
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
                cx.failed.update(cycle)  # what a stage of the cycle reads or provides is unknown: no follow-up errors
                if key not in reported:
                    reported.add(key)
                    chain = " -> ".join(reversed(cycle))
                    where = next((s for d, s in cx.stages[name].deps.items() if cx.job_names.get(d, d) == dep), None)
                    cx.d.error("E006", f"the stage graph has a cycle: {chain}", where,
                               help="a stage can only start from, or read, stages that finish before it")
            elif state.get(dep) is None:
                visit(dep, path + [dep])
        state[name] = 2

    for name in cx.stages:
        if name not in state:
            visit(name, [name])
    done: list[str] = []
    placed: set[str] = set()
    remaining = sorted(cx.stages, key=index.get)
    while remaining:
        ready = [n for n in remaining if all(d in placed or d == n for d in deps[n])]
        if not ready:  # a cycle (already reported): keep declaration order
            ready = remaining[:1]
        done.append(ready[0])
        placed.add(ready[0])
        remaining.remove(ready[0])
    return done
