"""NeMo-RL v0.7.0's own config types, loaded from its source without its heavy imports.

`load(module)` parses a NeMo-RL module (from third_party/nemo_rl_v0_7_0, copied unchanged from the
release, Apache-2.0, see LICENSE/NOTICE there) and executes only what defines config types: imports
from `typing`/`pydantic`, TypedDict and BaseModel classes (their annotated fields, class keywords such
as `total=False`/`extra="allow"`), and module-level type aliases. Imports of other NeMo-RL modules
load those the same way; every other imported name (torch, ray, vLLM classes...) becomes `Any`.

`master_config(algorithm, cfg)` then does what NeMo-RL's run scripts do after loading the YAML
(`examples/run_grpo.py`: `config = MasterConfig(**OmegaConf.to_container(config, resolve=True))`):
pydantic validates every TypedDict field recursively (required keys, types). `strict=True`
also rejects keys a TypedDict does not declare: pydantic would drop them silently, so a setting
r1dsl emits under a wrong name would have no effect.
"""

from __future__ import annotations

import ast
import builtins
import sys
import types
import typing
from pathlib import Path
from typing import Any

import typing_extensions

FIXTURE = Path(__file__).resolve().parents[2] / "third_party" / "nemo_rl_v0_7_0"
PACKAGE = "_nemo_rl_v0_7_0_types"  # where the loaded modules live in sys.modules
MASTER_CONFIGS = {"grpo": "nemo_rl.algorithms.grpo", "sft": "nemo_rl.algorithms.sft"}

_TYPE_MODULES = {"typing", "typing_extensions", "collections.abc", "pydantic", "enum"}
_loaded: dict[str, types.ModuleType] = {}


def source_path(module: str) -> Path:
    base = FIXTURE / Path(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _is_type_class(node: ast.ClassDef, namespace: dict[str, Any]) -> bool:
    for base in node.bases:
        name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
        if name in ("TypedDict", "BaseModel"):
            return True
        value = namespace.get(name) if name else None
        if isinstance(value, type) and (typing_extensions.is_typeddict(value) or _is_model(value)):
            return True
    return False


def _is_model(cls: type) -> bool:
    from pydantic import BaseModel

    return isinstance(cls, type) and issubclass(cls, BaseModel)


def _fields_only(node: ast.ClassDef) -> ast.ClassDef:
    """The class with its annotated fields only (methods, validators and plain assignments dropped)."""
    body = [stmt for stmt in node.body if isinstance(stmt, ast.AnnAssign)]
    cls = ast.ClassDef(name=node.name, bases=node.bases, keywords=node.keywords, body=body or [ast.Pass()],
                       decorator_list=[], type_params=[])
    return ast.fix_missing_locations(ast.copy_location(cls, node))


def load(module: str) -> types.ModuleType:
    """The config types of one NeMo-RL module (see the module docstring)."""
    if module in _loaded:
        return _loaded[module]
    path = source_path(module)
    if not path.exists():
        raise FileNotFoundError(f"{path}: copy it from NeMo-RL v0.7.0 into the fixture")
    mod = types.ModuleType(f"{PACKAGE}.{module}")
    mod.__file__ = str(path)
    sys.modules[mod.__name__] = mod
    _loaded[module] = mod
    ns = mod.__dict__
    ns["__pending__"] = {}  # NeMo-RL names imported here, loaded when a kept class uses them
    tree = ast.parse(path.read_text(), str(path))
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module != "__future__":
            source = ("." * stmt.level) + (stmt.module or "")
            if stmt.level:
                parts = module.split(".")
                pkg = parts[: len(parts) - stmt.level + (1 if path.name == "__init__.py" else 0)]
                source = ".".join(pkg + ([stmt.module] if stmt.module else []))
            for alias in stmt.names:
                if source.startswith("nemo_rl"):
                    ns["__pending__"][alias.asname or alias.name] = (source, alias.name)
                else:
                    ns[alias.asname or alias.name] = _imported(source, alias.name)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                top = alias.name.split(".")[0]
                ns[alias.asname or top] = __import__(top) if top in sys.stdlib_module_names else Any
        elif isinstance(stmt, ast.ClassDef) and _is_type_class(stmt, _resolve(ns, stmt.bases)):
            _exec(_fields_only(stmt), ns, path)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(getattr(stmt, "value", None), ast.Subscript):
            try:  # a type alias such as `SchedulerMilestones = dict[str, list[int]]`
                _exec(stmt, ns, path)
            except Exception:
                pass
    for value in list(ns.values()):  # annotations reference classes defined later in the file
        if isinstance(value, type) and _is_model(value) and value.__module__ == mod.__name__:
            value.model_rebuild(_types_namespace=ns)
    return mod


def _resolve(ns: dict[str, Any], nodes: list[ast.AST]) -> dict[str, Any]:
    """Load the NeMo-RL names that `nodes` use (imports are lazy); returns the namespace."""
    for node in nodes:
        for name in _names(node):
            if name in ns["__pending__"]:
                ns[name] = _imported(*ns["__pending__"].pop(name))
    return ns


def _exec(stmt: ast.stmt, ns: dict[str, Any], path: Path) -> None:
    _resolve(ns, [stmt])
    for name in _names(stmt):
        if name not in ns and not hasattr(builtins, name):
            ns.setdefault(name, Any)  # something the fixture does not define (a class of torch or vLLM)
    code = compile(ast.Module(body=[stmt], type_ignores=[]), str(path), "exec")
    exec(code, ns)


def _imported(source: str, name: str) -> Any:
    if source in _TYPE_MODULES or source.split(".")[0] in sys.stdlib_module_names | {"pydantic"}:
        if name in ("TypedDict", "NotRequired", "Required"):  # pydantic needs typing_extensions' on Python < 3.12
            return getattr(typing_extensions, name)
        module = __import__(source, fromlist=[name])
        return getattr(module, name, Any)
    if source.startswith("nemo_rl"):
        if source_path(source).exists():
            mod = load(source)
            if name in mod.__dict__["__pending__"]:  # a re-export (`from .loss_functions import X` in __init__)
                mod.__dict__[name] = _imported(*mod.__dict__["__pending__"].pop(name))
            return getattr(mod, name, Any)
        if source_path(f"{source}.{name}").exists():
            return load(f"{source}.{name}")
    return Any


def master_config(algorithm: str, cfg: dict[str, Any]) -> Any:
    """`MasterConfig(**cfg)` of NeMo-RL's grpo or sft, as its run script builds it; raises pydantic's ValidationError."""
    return load(MASTER_CONFIGS[algorithm]).MasterConfig(**cfg)


def declared_keys(tp: Any) -> set[str] | None:
    """Keys a config type declares (the union over a Union's TypedDicts); None: any key (dict, Any)."""
    tp = _strip(tp)
    if typing_extensions.is_typeddict(tp):
        return set(typing_extensions.get_type_hints(tp))
    if isinstance(tp, type) and _is_model(tp):
        return set(tp.model_fields)
    members = [_strip(a) for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and members:
        keys: set[str] = set()
        for member in members:
            found = declared_keys(member)
            if found is None:
                return None
            keys |= found
        return keys
    return None


def field_type(tp: Any, key: str) -> Any:
    """The declared type of `key` in a config type (searching a Union's members); Any if undeclared."""
    tp = _strip(tp)
    candidates = [tp] + [_strip(a) for a in typing.get_args(tp)]
    for c in candidates:
        if typing_extensions.is_typeddict(c):
            hints = typing_extensions.get_type_hints(c)
            if key in hints:
                return hints[key]
        elif isinstance(c, type) and _is_model(c) and key in c.model_fields:
            return c.model_fields[key].annotation
    return Any


def _strip(tp: Any) -> Any:
    """Without NotRequired/Required/Annotated wrappers."""
    while typing.get_origin(tp) in (typing_extensions.NotRequired, typing_extensions.Required, typing.Annotated):
        tp = typing.get_args(tp)[0]
    return tp


def undeclared_keys(algorithm: str, cfg: Any, reference: Any, path: str = "") -> list[str]:
    """Keys of `cfg` that neither NeMo-RL's config types nor its example config (`reference`) have at that path.

    pydantic ignores keys a TypedDict does not declare, so a setting emitted under a wrong name would have
    no effect. NeMo-RL's examples themselves carry keys its types leave out (the `*Disabled` variants,
    `vllm_cfg`), so a key of the example at the same path counts as known.
    """
    return _undeclared(load(MASTER_CONFIGS[algorithm]).MasterConfig, cfg, reference, path)


def _undeclared(tp: Any, cfg: Any, reference: Any, path: str) -> list[str]:
    if isinstance(cfg, list):
        ref = reference[0] if isinstance(reference, list) and reference else reference
        item = next((a for a in typing.get_args(_strip(tp)) if typing.get_origin(a) is list), None)
        inner = typing.get_args(item)[0] if item is not None else tp
        return [e for i, v in enumerate(cfg) for e in _undeclared(inner, v, ref, f"{path}[{i}]")]
    if not isinstance(cfg, dict):
        return []
    keys = declared_keys(tp)
    ref = reference if isinstance(reference, dict) else {}
    out = []
    for key, value in cfg.items():
        here = f"{path}.{key}" if path else key
        if keys is not None and key not in keys and key not in ref:
            out.append(here)
            continue
        out += _undeclared(field_type(tp, key), value, ref.get(key), here)
    return out


# ---------------------------------------------------------------- what NeMo-RL asserts at setup


def setup_errors(algorithm: str, cfg: dict[str, Any]) -> list[str]:
    """The checks NeMo-RL v0.7.0 makes on a config before training, each failing one as a message.

    From `nemo_rl/algorithms/grpo.py` `setup()` (generation config, batch_multiplier, validation data,
    force_on_policy_ratio, colocated and non-colocated placement) and `nemo_rl/models/policy/lm_policy.py`
    `Policy.__init__` (one training backend, the TP >= 4 logprob batch check, world size divisible by
    PP x CP x TP, dynamic batching with one pipeline stage, packing xor dynamic batching), plus the
    global batch splitting over data-parallel ranks and micro-batches that the policy workers need.
    Only the config-level conditions: nothing here needs a GPU, Ray or the model.
    """
    errors: list[str] = []

    def check(ok: bool, message: str) -> None:
        if not ok:
            errors.append(message)

    policy, cluster = cfg["policy"], cfg["cluster"]
    nodes, gpus = cluster["num_nodes"], cluster["gpus_per_node"]
    world = nodes * gpus
    if algorithm == "grpo":
        g, generation = cfg["grpo"], policy["generation"]
        check(generation is not None, "A generation config in the PolicyConfig is required for GRPO")
        if not g["use_dynamic_sampling"]:
            check(g.get("batch_multiplier", 1) == 1, "batch_multiplier>1 can only be used if use_dynamic_sampling=True")
        if g["val_period"] > 0 or g["val_at_start"] or g["val_at_end"]:
            train = cfg["data"]["train"]
            split = any((t or {}).get("split_validation_size", 0) for t in (train if isinstance(train, list) else [train]))
            check(cfg["data"].get("validation") is not None or split,
                  "Validation dataset is required if validation is enabled")
        if cfg["loss_fn"].get("force_on_policy_ratio"):
            check(g["num_prompts_per_step"] * g["num_generations_per_prompt"] == policy["train_global_batch_size"],
                  "force_on_policy_ratio requires train_global_batch_size == num_prompts_per_step * num_generations_per_prompt")
        colocated = generation["colocated"]
        if not colocated["enabled"]:
            res = colocated["resources"]
            inference_gpus, inference_nodes = res["gpus_per_node"], res["num_nodes"]
            if nodes == 1:
                check(inference_gpus is not None and inference_gpus > 0,
                      "policy.generation.colocated.resources.gpus_per_node must be explicitly set to a value > 0 "
                      "when policy_nodes = 1 and inference is non-colocated")
                check(inference_nodes is None or inference_nodes == 1,
                      "policy.generation.colocated.resources.num_nodes must be 1 or set to null when policy_nodes = 1")
                world = gpus - (inference_gpus or 0)
                check(world > 0, "No enough GPUs for training")
            else:
                check(inference_nodes is not None and inference_nodes > 0,
                      "policy.generation.colocated.resources.num_nodes must be > 0 when cluster.num_nodes > 1")
                check(inference_gpus is not None and inference_gpus == gpus,
                      "policy.generation.colocated.resources.gpus_per_node must be explicitly set and equal to "
                      "cluster.gpus_per_node when cluster.num_nodes > 1 and inference is non-colocated")
                train_nodes = nodes - (inference_nodes or 0)
                check(train_nodes > 0, "Non-colocated mode requires train_nodes > 0 and inference_nodes > 0")
                world = train_nodes * gpus
            rollout = (inference_gpus or 0) * (inference_nodes or 1)
        else:
            rollout = nodes * gpus
        vllm_tp = generation["vllm_cfg"]["tensor_parallel_size"]
        check(rollout % vllm_tp == 0, f"vLLM tensor_parallel_size {vllm_tp} must divide the {rollout} generation GPUs")
    megatron, dtensor = policy["megatron_cfg"], policy["dtensor_cfg"]
    check(megatron["enabled"] != dtensor["enabled"],
          "Configure either Megatron (policy.megatron_cfg.enabled=true) or DTensor (policy.dtensor_cfg.enabled=true)")
    if megatron["enabled"]:
        tp, pp, cp = (megatron["tensor_model_parallel_size"], megatron["pipeline_model_parallel_size"],
                      megatron["context_parallel_size"])
    else:
        tp, pp, cp = dtensor["tensor_parallel_size"], 1, dtensor["context_parallel_size"]
    if "logprob_batch_size" in policy and tp >= 4 and not cfg.get("loss_fn", {}).get("force_on_policy_ratio"):
        check(policy["train_micro_batch_size"] == policy["logprob_batch_size"],
              "There is a known batch-variant accuracy issue with TP>=4: train_micro_batch_size must equal logprob_batch_size")
    check(world >= pp * cp * tp and world % (pp * cp * tp) == 0,
          f"World size ({world}) must be divisible by PP * CP * TP ({pp * cp * tp})")
    if policy["dynamic_batching"]["enabled"]:
        check(pp == 1, "Dynamic batching is only supported for single pipeline parallel stage")
        check(not policy["sequence_packing"]["enabled"], "Dynamic Batching is exclusive of Sequence Packing")
    if world % (pp * cp * tp) == 0 and world >= pp * cp * tp:
        dp = world // (pp * cp * tp)
        check(policy["train_global_batch_size"] % (dp * policy["train_micro_batch_size"]) == 0,
              f"train_global_batch_size {policy['train_global_batch_size']} must split into {dp} data-parallel "
              f"ranks x micro-batches of {policy['train_micro_batch_size']}")
    first, last = megatron.get("num_layers_in_first_pipeline_stage"), megatron.get("num_layers_in_last_pipeline_stage")
    if megatron["enabled"] and (first is not None or last is not None):
        check(pp >= 3 and first is not None and last is not None, "uneven pipeline stages need first and last set")
    return errors
