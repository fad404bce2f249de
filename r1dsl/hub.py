"""The Hugging Face hub as the stages see it: where its cache is, what a recipe reads from it, and `fetch`.

Stages run offline (compute nodes often have no internet): they read models and datasets from the local hub
cache only. `r1dsl fetch RECIPE`, run once on a login node, downloads every hub model and dataset the recipe's
stages read into that cache (huggingface_hub's own layout and resumable downloads), and says which revision
each resolved to; `compile` records the cached revisions in manifest.json. Without network it lists what is
missing. Torch-free; huggingface_hub is imported only by `fetch`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from r1dsl import ir

KINDS = ("model", "dataset")  # huggingface_hub's repo types that recipes name


def hub_cache() -> Path:
    """The Hugging Face hub cache, as huggingface_hub resolves it (HF_HUB_CACHE, HF_HOME/hub, XDG, ~/.cache)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return _hf_home() / "hub"


def datasets_cache() -> Path:
    """The `datasets` library's own cache (prepared Arrow files)."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    return _hf_home() / "datasets"


def _hf_home() -> Path:
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface"


@dataclass(frozen=True)
class HubRef:
    """One hub repository a recipe's stages read; `used_as` names the recipe declarations that point at it."""

    kind: str  # "model" | "dataset"
    repo_id: str
    used_as: tuple[str, ...]
    revision: str = "main"  # what fetch asks for; the cache then maps it to a commit

    @property
    def label(self) -> str:
        return f"{self.kind} {self.repo_id}"


def hub_refs(recipe: ir.Recipe) -> list[HubRef]:
    """Every hub model and dataset a stage of `recipe` reads (its init, reward models, train and eval data), once."""
    found: dict[tuple[str, str], list[str]] = {}

    def add(kind: str, repo_id: str | None, name: str) -> None:
        if repo_id:
            names = found.setdefault((kind, repo_id), [])
            if name not in names:
                names.append(name)

    for stage in recipe.stages:
        for name in stage_models(stage):
            model = recipe.models.get(name)
            if model is not None and model.source == "hf":
                add("model", model.path, name)
        for name in stage.data + stage.eval_data:
            ds = recipe.datasets.get(name)
            if ds is not None and ds.source == "hf":
                add("dataset", ds.path, name)
    return [HubRef(kind, repo_id, tuple(names)) for (kind, repo_id), names in found.items()]


def stage_models(stage: ir.Stage) -> list[str]:
    """The declared models a stage reads, once each: its `from` (unless an earlier stage) and its rewards' models."""
    models = [] if stage.init_is_stage else [stage.init]
    for reward in stage.rewards:
        models += [v.model for v in reward.params.values() if isinstance(v, ir.ModelRef)]
    return list(dict.fromkeys(models))


def repo_folder(cache: Path, kind: str, repo_id: str) -> Path:
    """huggingface_hub's layout: <cache>/<kind>s--org--name/{refs,snapshots,blobs}."""
    return cache / f"{kind}s--{repo_id.replace('/', '--')}"


def cached_revision(cache: Path, kind: str, repo_id: str, revision: str = "main") -> str | None:
    """The commit the cache holds for `revision` (a branch, tag or commit) with its snapshot present, else None."""
    folder = repo_folder(cache, kind, repo_id)
    commit = revision
    ref = folder / "refs" / revision
    try:
        if ref.is_file():
            commit = ref.read_text(encoding="utf-8").strip()
        return commit if commit and (folder / "snapshots" / commit).is_dir() else None
    except OSError:
        return None


def has_snapshot(cache: Path, kind: str, repo_id: str | None) -> bool:
    """Some revision of the repository is in the cache (what an offline stage can read)."""
    if not repo_id:
        return False
    try:
        return any((repo_folder(cache, kind, repo_id) / "snapshots").iterdir())
    except OSError:
        return False


def pins(recipe: ir.Recipe, cache: Path | None = None) -> list[dict[str, str | None]]:
    """What manifest.json records: each hub repository and the commit the local cache holds (None: not fetched)."""
    cache = cache or hub_cache()
    return [{"kind": r.kind, "repo_id": r.repo_id, "revision": cached_revision(cache, r.kind, r.repo_id, r.revision)}
            for r in hub_refs(recipe)]


@dataclass(frozen=True)
class Fetched:
    ref: HubRef
    commit: str | None  # None: not in the cache after this fetch
    why: str = ""  # why it is missing
    downloaded: bool = False  # False: it was already cached


def fetch(refs: list[HubRef], cache: Path, offline: bool = False, out: TextIO = sys.stderr) -> list[Fetched]:
    """Download each repository into `cache` (resuming partial files); offline, only report what is cached."""
    results = []
    for i, ref in enumerate(refs, start=1):
        print(f"[{i}/{len(refs)}] {ref.label} ({', '.join(ref.used_as)})", file=out, flush=True)
        if offline:
            commit = cached_revision(cache, ref.kind, ref.repo_id, ref.revision)
            results.append(Fetched(ref, commit, "" if commit else "not in the cache, and offline"))
        else:
            results.append(_download(ref, cache))
        done = results[-1]
        print(f"      {'cached at ' + done.commit[:12] if done.commit else 'MISSING: ' + done.why}", file=out, flush=True)
    return results


def _download(ref: HubRef, cache: Path) -> Fetched:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub import errors as hub_errors
    except ImportError:
        return Fetched(ref, None, "huggingface_hub is not installed (pip install huggingface_hub)")
    before = cached_revision(cache, ref.kind, ref.repo_id, ref.revision)
    try:
        snapshot_download(ref.repo_id, repo_type=ref.kind, revision=ref.revision, cache_dir=cache)
    except hub_errors.GatedRepoError:
        return Fetched(ref, None, "gated on the hub: accept its terms on its page, then set HF_TOKEN")
    except hub_errors.RevisionNotFoundError:
        return Fetched(ref, None, f"the hub has no revision {ref.revision!r} of it")
    except hub_errors.RepositoryNotFoundError:
        return Fetched(ref, None, "not found on the hub (a typo, or private: set HF_TOKEN)")
    except hub_errors.LocalEntryNotFoundError:
        return Fetched(ref, None, "the hub cannot be reached and the cache does not hold it (no network?)")
    except Exception as e:  # network errors of several libraries; each is reported and the next repo is tried
        return Fetched(ref, None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": "))
    commit = cached_revision(cache, ref.kind, ref.repo_id, ref.revision)
    if commit is None:
        return Fetched(ref, None, "downloaded, but the cache does not show its snapshot")
    return Fetched(ref, commit, downloaded=commit != before)


def missing_help(recipe_file: str, missing: list[Fetched]) -> str:
    """What to do about repositories fetch could not get."""
    lines = [f"{len(missing)} of the recipe's hub repositories are not in the cache:"]
    lines += [f"  {m.ref.label:<60} {m.why}" for m in missing]
    lines.append(f"run `r1dsl fetch {recipe_file}` on a machine with network (a login node) that shares this cache "
                 "(HF_HUB_CACHE or HF_HOME), then run the stages")
    return "\n".join(lines)
