"""`r1dsl report RUN_DIR`: training curves, an eval chart, and a Markdown + HTML report of a run folder.

Reads only what the run folder holds (docs/design.md, "Run folder"): manifest.json, results.json and,
per stage, config.yaml, metrics.csv, eval.json and data_summary.json. Every file is optional, so a
report of a half-finished run shows what exists. Writes everything under RUN_DIR/report/.

matplotlib is imported lazily (the front end must start fast) and used through the object API with
the Agg canvas, so no global pyplot backend is touched.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

REPORT_DIR = "report"

# Panels of a stage's training-curve figure, in the paper's order: (title, y label, metric columns).
# `reward/*` columns (one per reward rule) are added to the first panel at read time.
PANELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("reward per rule", "reward", ("reward",)),
    ("accuracy", "rate", ("accuracy", "format", "format_rate")),
    ("mean response length", "tokens", ("completion_length",)),
    ("KL to reference", "KL", ("kl",)),
    ("loss", "loss", ("loss",)),
    ("entropy", "nats per token", ("entropy",)),
    ("learning rate", "lr", ("lr",)),
    ("throughput", "tokens/s", ("tokens_per_s",)),
)
STEP_COLUMNS = ("step", "global_step", "trainer/global_step")
SE = "_se"  # `<metric>_se`: the standard error over prompts the evaluation writes beside each metric


# ---------------------------------------------------------------- reading the run folder


@dataclass
class StageInfo:
    name: str
    kind: str = "?"
    after: tuple[str, ...] = ()
    dir: Path | None = None
    metrics: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # column -> [(step, value)]
    config_text: str | None = None
    eval: dict[str, float] = field(default_factory=dict)
    data_summary: dict[str, Any] | None = None


@dataclass
class Run:
    dir: Path
    name: str
    stages: list[StageInfo]
    results: dict[str, dict[str, float]]  # stage -> metric -> value


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _flatten(metrics: Any, prefix: str = "") -> dict[str, float]:
    """{metric: value} from a possibly nested dict ({dataset: {metric: value}} -> "dataset/metric")."""
    out: dict[str, float] = {}
    if not isinstance(metrics, Mapping):
        return out
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "/"))
        elif not isinstance(value, bool) and (number := _number(value)) is not None:
            out[name] = number
    return out


def read_metrics_csv(path: Path) -> dict[str, list[tuple[float, float]]]:
    """Column -> [(step, value)] from a metrics.csv; empty cells (sparse loggers) and text are skipped."""
    series: dict[str, list[tuple[float, float]]] = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = [c for c in (reader.fieldnames or []) if c]
        step_column = next((c for c in STEP_COLUMNS if c in columns), None)
        for index, row in enumerate(reader):
            step = _number(row.get(step_column)) if step_column else float(index)
            if step is None:
                continue
            for column in columns:
                if column in (step_column, "epoch"):
                    continue
                value = _number(row.get(column))
                if value is not None:
                    series.setdefault(column, []).append((step, value))
    return series


def _manifest_stages(manifest: Any) -> list[tuple[str, dict[str, Any]]]:
    """(name, entry) in run order, from a manifest whose `stages` is a list of entries or a name-keyed dict."""
    if not isinstance(manifest, Mapping):
        return []
    stages = manifest.get("stages")
    if isinstance(stages, Mapping):
        entries = [(str(name), dict(entry) if isinstance(entry, Mapping) else {}) for name, entry in stages.items()]
    elif isinstance(stages, list):
        entries = []
        for entry in stages:
            if isinstance(entry, Mapping) and "name" in entry:
                entries.append((str(entry["name"]), dict(entry)))
            elif isinstance(entry, str):
                entries.append((entry, {}))
    else:
        entries = []
    order = manifest.get("order") or manifest.get("stage_order")
    if isinstance(order, list) and entries:
        rank = {str(name): i for i, name in enumerate(order)}
        entries.sort(key=lambda e: rank.get(e[0], len(rank)))
    elif isinstance(order, list):
        entries = [(str(name), {}) for name in order]
    return entries


def read_run(run_dir: str | Path) -> Run:
    """Everything the report shows, read from the run folder; missing files give empty sections."""
    root = Path(run_dir).resolve()
    manifest = _read_json(root / "manifest.json") or {}
    entries = _manifest_stages(manifest)
    known = {name for name, _ in entries}
    # Stage folders the manifest does not list (or no manifest at all): any folder with stage files.
    for child in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if child.name not in known and child.name != REPORT_DIR and any(
            (child / f).exists() for f in ("config.yaml", "metrics.csv", "eval.json", "data_summary.json")
        ):
            entries.append((child.name, {}))

    stages = []
    for name, entry in entries:
        stage = StageInfo(name=name, kind=str(entry.get("kind", "?")), after=tuple(map(str, entry.get("after") or ())))
        folder = root / name
        if folder.is_dir():
            stage.dir = folder
            if (folder / "metrics.csv").is_file():
                stage.metrics = read_metrics_csv(folder / "metrics.csv")
            if (folder / "config.yaml").is_file():
                stage.config_text = (folder / "config.yaml").read_text()
                if stage.kind == "?":
                    match = re.search(r"^kind:\s*(\S+)", stage.config_text, re.M)
                    stage.kind = match.group(1) if match else "?"
            stage.eval = _flatten(_read_json(folder / "eval.json"))
            summary = _read_json(folder / "data_summary.json")
            stage.data_summary = summary if isinstance(summary, Mapping) else None
        stages.append(stage)

    results = {str(k): _flatten(v) for k, v in (_read_json(root / "results.json") or {}).items()}
    for stage in stages:  # results.json is the backend's summary; eval.json fills stages it lacks
        if stage.eval and stage.name not in results:
            results[stage.name] = stage.eval
    results = {k: v for k, v in results.items() if v}
    name = manifest.get("recipe") if isinstance(manifest, Mapping) else None
    return Run(dir=root, name=str(name or root.name), stages=stages, results=results)


# ---------------------------------------------------------------- plots


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average, as TensorBoard's smoothing slider shows a noisy RL curve."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _panels(metrics: Mapping[str, list]) -> list[tuple[str, str, list[str]]]:
    panels = []
    for title, ylabel, columns in PANELS:
        names = [c for c in columns if metrics.get(c)]
        if title == "reward per rule":
            names += sorted(c for c in metrics if c.startswith("reward/") and metrics[c])
        if names:
            panels.append((title, ylabel, names))
    return panels


def plot_training_curves(stage: StageInfo, path: Path) -> Path | None:
    """One PNG per training stage: a panel per metric group against steps; None when nothing was logged."""
    panels = _panels(stage.metrics)
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = _figure(4.2 * cols, 3.0 * rows)
    fig.suptitle(f"{stage.name} ({stage.kind})")
    for i, (title, ylabel, names) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        for name in names:
            steps, values = zip(*sorted(stage.metrics[name]))
            label = name.removeprefix("reward/") if name != "reward" else "total"
            if len(values) > 30:
                (line,) = ax.plot(steps, values, alpha=0.25, linewidth=1)
                ax.plot(steps, _smooth(list(values), max(2, len(values) // 20)), color=line.get_color(), label=label)
            else:
                ax.plot(steps, values, marker="o", markersize=3, label=label)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(names) > 1:
            ax.legend(fontsize="small")
        if title == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    fig.savefig(path)
    return path


def plot_eval(results: Mapping[str, Mapping[str, float]], path: Path) -> Path | None:
    """The eval table as bars: one panel per metric (metrics have different scales), a bar per stage.

    Counts (`num_prompts`, ...) stay in the table only.
    """
    metrics = sorted({m for values in results.values() for m in values
                      if not m.rsplit("/", 1)[-1].startswith("num_") and not m.endswith(SE)})
    if not metrics:
        return None
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    stages = list(results)
    fig = _figure(max(4.2, 0.9 * len(stages) + 1.5) * cols, 3.2 * rows)
    fig.suptitle("evaluation")
    colors = [f"C{i % 10}" for i in range(len(stages))]
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, i + 1)
        # Every panel keeps every stage's slot and colour, so a stage reads the same across panels.
        present = [(x, results[s][metric], c) for x, (s, c) in enumerate(zip(stages, colors)) if metric in results[s]]
        errors = [results[stages[x]].get(metric + SE, 0.0) for x, _, _ in present]  # one standard error over prompts
        bars = ax.bar([x for x, _, _ in present], [v for _, v, _ in present], color=[c for _, _, c in present],
                      yerr=errors, capsize=3)
        ax.bar_label(bars, labels=[_fmt(v) for _, v, _ in present], fontsize="small")
        ax.set_xticks(range(len(stages)), stages, rotation=30, ha="right")
        ax.set_xlim(-0.6, len(stages) - 0.4)
        ax.set_title(metric)
        ax.grid(axis="y", alpha=0.3)
        ax.margins(y=0.15)
    fig.savefig(path)
    return path


# ---------------------------------------------------------------- text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"
    return str(value)


def mermaid_graph(stages: list[StageInfo]) -> str:
    """The stage graph as Mermaid flowchart text: a node per stage (name and kind), an edge per `after`."""

    def node_id(name: str) -> str:
        return "s_" + re.sub(r"\W", "_", name)

    lines = ["flowchart LR"]
    names = {s.name for s in stages}
    for stage in stages:
        lines.append(f'  {node_id(stage.name)}["{stage.name}<br/>{stage.kind}"]')
    for stage in stages:
        for before in stage.after:
            if before not in names:
                lines.append(f'  {node_id(before)}["{before}"]')
                names.add(before)
            lines.append(f"  {node_id(before)} --> {node_id(stage.name)}")
    return "\n".join(lines)


def with_se(values: Mapping[str, float], metric: str) -> str:
    """`0.571 ± 0.031`: a metric and its standard error over prompts (`<metric>_se`), or the metric alone."""
    se = values.get(metric + SE)
    return _fmt(values[metric]) + (f" ± {se:.2g}" if se is not None and math.isfinite(se) else "")


def eval_table(results: Mapping[str, Mapping[str, float]]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): a row per evaluated stage, a column per metric, its standard error beside it."""
    metrics = sorted({m for values in results.values() for m in values if not m.endswith(SE)})
    rows = [[stage] + [with_se(values, m) if m in values else "" for m in metrics] for stage, values in results.items()]
    return ["stage", *metrics], rows


def rejection_table(stages: list[StageInfo]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): kept/seen per rejection-sampling stage, in total and per filter."""

    def row(stage: str, what: str, counts: Any) -> list[str]:
        counts = counts if isinstance(counts, Mapping) else {}
        seen, kept = _number(counts.get("seen")), _number(counts.get("kept"))
        rate = f"{kept / seen:.1%}" if seen and kept is not None else ""
        return [stage, what, _fmt(kept) if kept is not None else "", _fmt(seen) if seen is not None else "", rate]

    rows = []
    for stage in stages:
        summary = stage.data_summary
        if not summary:
            continue
        rows.append(row(stage.name, "all filters", summary))
        for name, counts in (summary.get("per_filter") or {}).items():
            rows.append(row(stage.name, str(name), counts))
    return ["stage", "filter", "kept", "seen", "kept/seen"], rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_markdown(run: Run, images: Mapping[str, Path], out_dir: Path) -> str:
    md = [f"# Run report: {run.name}", "", f"Run folder: `{run.dir}`", "", "## Stage graph", ""]
    md += ["```mermaid", mermaid_graph(run.stages), "```", ""]
    md += ["## Evaluation", ""]
    if run.results:
        md += [_md_table(*eval_table(run.results)), ""]
        if "eval" in images:
            md += [f"![evaluation]({images['eval'].relative_to(out_dir)})", ""]
    else:
        md += ["No stage has been evaluated yet.", ""]
    header, rows = rejection_table(run.stages)
    if rows:
        md += ["## Rejection sampling", "", _md_table(header, rows), ""]
    md += ["## Training curves", ""]
    curves = [s for s in run.stages if "stage/" + s.name in images]
    for stage in curves:
        link = images["stage/" + stage.name].relative_to(out_dir)
        md += [f"### {stage.name} ({stage.kind})", "", f"![{stage.name}]({link})", ""]
    if not curves:
        md += ["No stage has logged metrics yet.", ""]
    md += ["## Stage configs", ""]
    for stage in run.stages:
        if stage.config_text is not None:
            md += [f"<details><summary>{stage.name}/config.yaml</summary>", "", "```yaml", stage.config_text.rstrip(), "```", "", "</details>", ""]
    return "\n".join(md)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th:first-child, td:first-child, td:nth-child(2) { text-align: left; }
img { max-width: 100%; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; }
summary { cursor: pointer; font-family: monospace; }
"""


def render_html(run: Run, images: Mapping[str, Path]) -> str:
    """A single self-contained file: images inlined as base64; Mermaid renders when online, reads as text when not."""

    def img(key: str, alt: str) -> str:
        data = base64.b64encode(images[key].read_bytes()).decode("ascii")
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'

    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>r1dsl report: {e(run.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Run report: {e(run.name)}</h1><p>Run folder: <code>{e(str(run.dir))}</code></p>",
        "<h2>Stage graph</h2>",
        f'<pre class="mermaid">{e(mermaid_graph(run.stages))}</pre>',
        "<h2>Evaluation</h2>",
    ]
    if run.results:
        parts.append(_html_table(*eval_table(run.results)))
        if "eval" in images:
            parts.append(img("eval", "evaluation"))
    else:
        parts.append("<p>No stage has been evaluated yet.</p>")
    header, rows = rejection_table(run.stages)
    if rows:
        parts += ["<h2>Rejection sampling</h2>", _html_table(header, rows)]
    parts.append("<h2>Training curves</h2>")
    curves = [s for s in run.stages if "stage/" + s.name in images]
    for stage in curves:
        parts += [f"<h3>{e(stage.name)} ({e(stage.kind)})</h3>", img("stage/" + stage.name, stage.name)]
    if not curves:
        parts.append("<p>No stage has logged metrics yet.</p>")
    parts.append("<h2>Stage configs</h2>")
    for stage in run.stages:
        if stage.config_text is not None:
            parts.append(
                f"<details><summary>{e(stage.name)}/config.yaml</summary><pre>{e(stage.config_text)}</pre></details>"
            )
    parts += [
        '<script type="module">',
        "import mermaid from 'https://cdn.jsdelivr.net/npm/mermaid@10/dist/mermaid.esm.min.mjs';",
        "mermaid.initialize({ startOnLoad: true });",
        "</script>",
        "</body></html>",
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------- entry point


def build_report(run_dir: str | Path) -> Path:
    """Write RUN_DIR/report/{report.md, report.html, *.png} and return the path of report.html."""
    run = read_run(run_dir)
    if not run.dir.is_dir():
        raise FileNotFoundError(f"no run folder at {run.dir}")
    out = run.dir / REPORT_DIR
    out.mkdir(exist_ok=True)
    images: dict[str, Path] = {}
    for stage in run.stages:
        if (png := plot_training_curves(stage, out / f"curves_{stage.name}.png")) is not None:
            images["stage/" + stage.name] = png
    if (png := plot_eval(run.results, out / "eval.png")) is not None:
        images["eval"] = png
    (out / "report.md").write_text(render_markdown(run, images, out))
    html_path = out / "report.html"
    html_path.write_text(render_html(run, images))
    return html_path
