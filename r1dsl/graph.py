"""`r1dsl graph`: the stage graph (models and stages, `from` and data edges) as Mermaid or DOT."""

from __future__ import annotations

from r1dsl import ir


def edges(recipe: ir.Recipe) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(nodes, edges): nodes are (id, label, shape: model|stage), edges (src, dst, label: from|data|eval)."""
    nodes: list[tuple[str, str, str]] = []
    out: list[tuple[str, str, str]] = []
    models = sorted({s.init for s in recipe.stages if not s.init_is_stage and s.init})
    for m in models:
        nodes.append((m, m, "model"))
    for s in recipe.stages:
        label = f"{s.name}\\n{s.kind}" + (f" ({s.student_of})" if s.student_of else "")
        nodes.append((s.name, "\\n".join([label, *s.data_schedule()]), "stage"))
        if s.init:
            out.append((s.init, s.name, "from"))
        for d in s.data:
            ds = recipe.datasets.get(d)
            if ds is not None and ds.source == "stage":
                out.append((ds.path, s.name, "data"))
        for d in s.eval_data:
            ds = recipe.datasets.get(d)
            if ds is not None and ds.source == "stage" and d not in s.data:
                out.append((ds.path, s.name, "eval"))
    return nodes, out


def mermaid(recipe: ir.Recipe) -> str:
    nodes, links = edges(recipe)
    lines = ["flowchart LR"]
    for node_id, label, shape in nodes:
        text = label.replace("\\n", "<br/>")
        lines.append(f'  {node_id}(["{text}"])' if shape == "model" else f'  {node_id}["{text}"]')
    for src, dst, label in links:
        lines.append(f"  {src} --> {dst}" if label == "from" else f"  {src} -. {label} .-> {dst}")
    return "\n".join(lines) + "\n"


def dot(recipe: ir.Recipe) -> str:
    nodes, links = edges(recipe)
    lines = [f'digraph "{recipe.name}" {{', "  rankdir=LR;"]
    for node_id, label, shape in nodes:
        style = "shape=ellipse" if shape == "model" else "shape=box"
        lines.append(f'  "{node_id}" [label="{label}", {style}];')
    for src, dst, label in links:
        style = "" if label == "from" else f' [style=dashed, label="{label}"]'
        lines.append(f'  "{src}" -> "{dst}"{style};')
    lines.append("}")
    return "\n".join(lines) + "\n"
