"""Turn Hydra's composed config into a checked run config, or one clear error.

Hydra composes the YAML files untyped (so that ``+optimizer.foo=1`` reaches us);
here every node is merged into its schema dataclass, which refuses wrong types and
unknown keys, and then ranges and the device are checked. Nothing trains before this
returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

from optbench.config.schema import CHOICES, DATASET_SCHEMAS, RunConfig
from optbench.errors import OptbenchError
from optbench.optim.registry import OPTIMIZERS, resolve_aliases

#: hyperparameters that are decay rates: they must lie in [0, 1)
UNIT_INTERVAL_KEYS = ("alpha", "beta1", "beta2", "rho", "momentum")
#: optimizers whose key of that name is not a decay rate (asgd's alpha is a power)
NOT_DECAY_RATES = {"asgd": ("alpha",)}
#: top-level integers and the least value each may take
MINIMUM_INTEGERS = {"batch_size": 1, "epochs": 1, "log_every": 1, "steps": 1, "threads": 1,
                    "checkpoint_every": 1, "schedule.step_size": 1}


def validate(cfg: DictConfig | Mapping) -> DictConfig:
    """Check a composed config; return it typed, with aliases resolved and no ``hydra`` node."""
    raw = _plain(cfg)
    raw.pop("hydra", None)
    dataset = _typed_node(raw.pop("dataset", None), "dataset", _dataset_schema)
    optimizer = _typed_node(raw.pop("optimizer", None), "optimizer", _optimizer_schema)
    run = _merge(OmegaConf.structured(RunConfig), raw, where="")
    run.dataset = dataset
    run.optimizer = _canonical_optimizer(optimizer)
    _check_missing(run)
    _check_ranges(run)
    _check_optimizer_choice(run.optimizer)
    check_device(run.device)
    return run


def _plain(cfg: DictConfig | Mapping) -> dict:
    if isinstance(cfg, DictConfig):
        try:
            return OmegaConf.to_container(cfg, resolve=True)
        except OmegaConfBaseException as err:
            raise OptbenchError(f"The config could not be resolved: {err}. Fix the interpolation it names.") from None
    return dict(cfg)


def _dataset_schema(node: dict) -> type:
    name = node.get("name")
    if name not in DATASET_SCHEMAS:
        raise OptbenchError(
            f"Unknown dataset {name!r}. Fix: choose one of {', '.join(DATASET_SCHEMAS)} with dataset=<name>."
        )
    return DATASET_SCHEMAS[name]


def _optimizer_schema(node: dict) -> type:
    name = node.get("name")
    if name not in OPTIMIZERS:
        raise OptbenchError(
            f"Unknown optimizer {name!r}. Fix: choose one of {', '.join(sorted(OPTIMIZERS))} with optimizer=<name>."
        )
    return OPTIMIZERS[name].schema


def _typed_node(node: Any, group: str, schema_of) -> DictConfig:
    if not isinstance(node, Mapping):
        raise OptbenchError(f"The config has no `{group}` node. Fix: select one with {group}=<name>.")
    return _merge(OmegaConf.structured(schema_of(node)), dict(node), where=group)


def _merge(schema: DictConfig, values: dict, where: str) -> DictConfig:
    try:
        return OmegaConf.merge(schema, values)
    except ConfigKeyError as err:
        key = _full_key(where, err)
        valid = ", ".join(k for k in schema.keys() if k not in ("name",))
        what = f"optimizer {values.get('name')!r}" if where == "optimizer" else (f"dataset {values.get('name')!r}" if where == "dataset" else "optbench")
        raise OptbenchError(
            f"Unknown config key `{key}` for {what}. Valid keys here: {valid}. "
            f"Fix: remove `{key}` (or `+{key}=...`) from the command line or config, or spell it as one of the valid keys."
        ) from None
    except OmegaConfBaseException as err:
        key = _full_key(where, err)
        raise OptbenchError(
            f"Bad value for `{key}`: {getattr(err, 'msg', str(err)).splitlines()[0]}. "
            f"Fix: pass a value of the right type, e.g. `{key}=<{_type_name(schema, err)}>`."
        ) from None


def _full_key(where: str, err: OmegaConfBaseException) -> str:
    key = str(getattr(err, "full_key", "") or getattr(err, "key", "") or "?")
    return f"{where}.{key}" if where and not key.startswith(where + ".") else key


def _type_name(schema: DictConfig, err: OmegaConfBaseException) -> str:
    """The schema's declared type at the failing key (int, float, bool, str)."""
    *parents, leaf = str(getattr(err, "full_key", "")).split(".")
    try:
        node = schema
        for part in parents:
            node = node[part]
        ref_type = _unwrap_optional(node._get_node(leaf)._metadata.ref_type)
    except (KeyError, AttributeError, OmegaConfBaseException):
        return "value"
    return getattr(ref_type, "__name__", "value")


def _unwrap_optional(tp):
    args = [a for a in getattr(tp, "__args__", ()) if a is not type(None)]
    return args[0] if len(args) == 1 else tp


def _canonical_optimizer(node: DictConfig) -> DictConfig:
    """Move alias values (seed 001's ``gamma`` for RMSProp's ``alpha``...) to the torch name."""
    values = OmegaConf.to_container(node)
    spec = OPTIMIZERS[values["name"]]
    meta = {"name": values.pop("name"), "impl": values.pop("impl")}
    return OmegaConf.create({**meta, **resolve_aliases(spec.name, values)})


def _check_missing(run: DictConfig) -> None:
    for key in _walk_keys(run):
        try:
            OmegaConf.select(run, key, throw_on_missing=True)
        except MissingMandatoryValue:
            raise OptbenchError(f"`{key}` has no value. Fix: set it on the command line, e.g. `{key}=...`.") from None


def _walk_keys(node: DictConfig, prefix: str = ""):
    for key in node.keys():
        full = f"{prefix}{key}"
        if OmegaConf.is_missing(node, key):
            yield full
            continue
        child = node[key]
        if isinstance(child, DictConfig):
            yield from _walk_keys(child, full + ".")


def _refuse(key: str, value: Any, rule: str, example: str) -> None:
    raise OptbenchError(f"`{key}` must be {rule}, got {value!r}. Fix: pass a valid value, e.g. `{key}={example}`.")


def _check_ranges(run: DictConfig) -> None:
    for key, least in MINIMUM_INTEGERS.items():
        value = OmegaConf.select(run, key)
        if value is not None and value < least:
            _refuse(key, value, f"an integer >= {least}", max(least, 1))
    for key, options in CHOICES.items():
        value = OmegaConf.select(run, key)
        if value not in options:
            raise OptbenchError(f"`{key}` must be one of {', '.join(options)}, got {value!r}. Fix: `{key}={options[0]}`.")
    if not run.grad_clip.threshold > 0:
        _refuse("grad_clip.threshold", run.grad_clip.threshold, "> 0", 1.0)
    if not run.schedule.gamma > 0:
        _refuse("schedule.gamma", run.schedule.gamma, "> 0", 0.1)
    for key, value in run.optimizer.items():
        full = f"optimizer.{key}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            _refuse(full, value, "a finite number", 0.1)
        if key == "lr" and value <= 0:
            _refuse(full, value, "> 0", 0.001)
        decay_rate = key in UNIT_INTERVAL_KEYS and key not in NOT_DECAY_RATES.get(run.optimizer.name, ())
        if decay_rate and not 0 <= value < 1:
            _refuse(full, value, "in [0, 1)", 0.9)
        if key in ("eps", "weight_decay") and value < 0:
            _refuse(full, value, ">= 0", 0.0)


def _check_optimizer_choice(node: DictConfig) -> None:
    spec = OPTIMIZERS[node.name]
    if node.impl not in ("scratch", "builtin"):
        raise OptbenchError(
            f"`optimizer.impl` must be scratch or builtin, got {node.impl!r}. Fix: `optimizer.impl=builtin`."
        )
    if spec.refusal:
        raise OptbenchError(spec.refusal)
    if node.impl == "scratch" and spec.scratch is None:
        have = ", ".join(name for name, s in sorted(OPTIMIZERS.items()) if s.scratch is not None)
        raise OptbenchError(
            f"{node.name} has no scratch implementation; the optimizers with one are: {have}. "
            f"Fix: run it as `optimizer={node.name} optimizer.impl=builtin`."
        )


def check_device(device: str) -> None:
    """Refuse a device this machine does not have."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise OptbenchError(
            "device=cuda was asked for, but CUDA is not available on this machine "
            f"(torch {torch.__version__} sees no GPU). Fix: use device=cpu, or device=auto to pick the best available."
        )
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise OptbenchError(
            "device=mps was asked for, but Apple's MPS backend is not available here. "
            "Fix: use device=cpu, or device=auto to pick the best available."
        )
