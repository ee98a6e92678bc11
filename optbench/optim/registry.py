"""Every optimizer optbench can run: its scratch class, its torch.optim twin, its config schema.

``_TABLE`` below is the one place that says, per optimizer, which config keys exist,
their types, and which torch.optim argument each one becomes (``"betas.0"`` = first
element of the ``betas`` tuple). The config schema dataclasses and ``to_torch`` are
generated from it; the defaults live in ``conf/optimizer/<name>.yaml`` (seed values).

Aliases (``gamma`` / ``rho`` for RMSProp's ``alpha``, ``gamma`` for momentum's
``momentum``) are config keys defaulting to null. Choice: an alias that is set (not
None) overrides the canonical key, silently, because the canonical key always holds a
default from the YAML, so "both given" cannot be told apart from "alias given". Two
different aliases of one key set to different values is refused (no way to choose).

Scratch-only keys (``_SCRATCH_ONLY``) map to no torch argument (target None). Today that
is ``eps_in_sqrt`` (rmsprop, adagrad, adam), default null: each implementation's own
place for eps, inside the square root for scratch (the seeds' formula, the scratch
classes' default True), outside for builtin (torch.optim's). ``false`` puts it outside
in both; ``true`` with ``impl=builtin`` is refused (torch.optim cannot put it inside).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Optional

import torch
from torch import optim

from optbench import compat
from optbench.errors import OptbenchError
from optbench.optim.adadelta import Adadelta
from optbench.optim.adagrad import Adagrad
from optbench.optim.adam import Adam
from optbench.optim.momentum import Momentum
from optbench.optim.rmsprop import RMSprop
from optbench.optim.sgd import SGD
from optbench.optimizer_aliases import OPTIMIZER_ALIASES, resolve_optimizer_aliases

IMPLS = ("scratch", "builtin")


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    scratch: type[torch.optim.Optimizer] | None  # None = builtin-only
    builtin: type[torch.optim.Optimizer] | None  # the torch.optim class
    schema: type  # dataclass of the config node (name, impl, hyperparameters, aliases)
    to_torch: Callable[[dict], dict]  # config hyperparameters -> torch kwargs
    aliases: Mapping[str, str]  # alias key -> canonical key
    needs_closure: bool = False  # lbfgs: step(closure) re-evaluates the loss
    refusal: str | None = None  # why it cannot run here, naming the fix


_BETAS = {"beta1": (float, "betas.0"), "beta2": (float, "betas.1")}
_EPS_IN_SQRT = {"eps_in_sqrt": (Optional[bool], None)}  # scratch-only: see the module docstring

#: scratch-only key: (its default in the schema, the values impl=builtin accepts, why the others are refused)
_SCRATCH_ONLY: dict[str, tuple] = {
    "eps_in_sqrt": (None, (None, False),
                    "torch.optim puts eps outside the square root (sqrt(s) + eps), so with optimizer.impl=builtin "
                    "leave optimizer.eps_in_sqrt null or set it to false; only optimizer.impl=scratch puts eps inside"),
}

# name: (scratch class, torch class, {config key: (type, torch argument)}, fixed torch kwargs, aliases)
_TABLE: dict[str, tuple] = {
    "sgd": (SGD, optim.SGD, {"lr": (float, "lr")}, {}, {}),
    "momentum": (Momentum, optim.SGD, {"lr": (float, "lr"), "momentum": (float, "momentum")}, {},
                 OPTIMIZER_ALIASES["momentum"]),
    "adagrad": (Adagrad, optim.Adagrad, {"lr": (float, "lr"), "eps": (float, "eps"), **_EPS_IN_SQRT},
                {"lr_decay": 0.0, "initial_accumulator_value": 0.0}, {}),
    "rmsprop": (RMSprop, optim.RMSprop,
                {"lr": (float, "lr"), "alpha": (float, "alpha"), "eps": (float, "eps"),
                 "momentum": (float, "momentum"), "centered": (bool, "centered"),
                 "weight_decay": (float, "weight_decay"), **_EPS_IN_SQRT}, {},
                OPTIMIZER_ALIASES["rmsprop"]),
    "adam": (Adam, optim.Adam, {"lr": (float, "lr"), **_BETAS, "eps": (float, "eps"),
                                "weight_decay": (float, "weight_decay"), **_EPS_IN_SQRT}, {}, {}),
    "adadelta": (Adadelta, optim.Adadelta,
                 {"lr": (float, "lr"), "rho": (float, "rho"), "eps": (float, "eps"),
                  "weight_decay": (float, "weight_decay")}, {}, {}),
    # builtin-only (torch's defaults in the YAML)
    "adamax": (None, optim.Adamax, {"lr": (float, "lr"), **_BETAS, "eps": (float, "eps"),
                                    "weight_decay": (float, "weight_decay")}, {}, {}),
    "asgd": (None, optim.ASGD, {"lr": (float, "lr"), "lambd": (float, "lambd"), "alpha": (float, "alpha"),
                                "t0": (float, "t0"), "weight_decay": (float, "weight_decay")}, {}, {}),
    "rprop": (None, optim.Rprop, {"lr": (float, "lr"), "eta_minus": (float, "etas.0"),
                                  "eta_plus": (float, "etas.1"), "step_size_min": (float, "step_sizes.0"),
                                  "step_size_max": (float, "step_sizes.1")}, {}, {}),
    "lbfgs": (None, optim.LBFGS, {"lr": (float, "lr"), "max_iter": (int, "max_iter"),
                                  "max_eval": (Optional[int], "max_eval"),
                                  "tolerance_grad": (float, "tolerance_grad"),
                                  "tolerance_change": (float, "tolerance_change"),
                                  "history_size": (int, "history_size"),
                                  "line_search_fn": (Optional[str], "line_search_fn")}, {}, {}),
    "adamw": (None, optim.AdamW, {"lr": (float, "lr"), **_BETAS, "eps": (float, "eps"),
                                  "weight_decay": (float, "weight_decay"), "amsgrad": (bool, "amsgrad")},
              {}, {}),
    "nadam": (None, optim.NAdam, {"lr": (float, "lr"), **_BETAS, "eps": (float, "eps"),
                                  "weight_decay": (float, "weight_decay"),
                                  "momentum_decay": (float, "momentum_decay"),
                                  "decoupled_weight_decay": (bool, "decoupled_weight_decay")}, {}, {}),
    "radam": (None, optim.RAdam, {"lr": (float, "lr"), **_BETAS, "eps": (float, "eps"),
                                  "weight_decay": (float, "weight_decay"),
                                  "decoupled_weight_decay": (bool, "decoupled_weight_decay")}, {}, {}),
    "sparse_adam": (None, optim.SparseAdam, {"lr": (float, "lr"), **_BETAS, "eps": (float, "eps")}, {}, {}),
}

_REFUSALS = {
    "sparse_adam": (
        "torch.optim.SparseAdam only accepts sparse gradients (from nn.Embedding(sparse=True) and the "
        "like), and every optbench model (linear regression, the MLPs, the quadratic) produces dense "
        "gradients, so it would fail on its first step. Fix: use optimizer=adam (or optimizer=adamw) instead."
    ),
}
_NEEDS_CLOSURE = {"lbfgs"}

#: Value ranges that validation enforces (``optbench.config.validate``), as
#: (low, low inclusive, high, high inclusive), None = unbounded. COMMON_LIMITS hold for
#: every optimizer with that key; LIMITS add or replace them per optimizer, for what
#: torch.optim's constructors do not check but breaks or silently misbehaves at step
#: time (LBFGS's history_size=-1, ASGD's negative lambd...). torch's own constructor
#: checks are applied too: validation builds the torch.optim twin on a dummy tensor.
_UNIT = (0.0, True, 1.0, False)
_NON_NEGATIVE = (0.0, True, None, False)
_POSITIVE = (0.0, False, None, False)
COMMON_LIMITS: dict[str, tuple] = {
    "lr": _POSITIVE, "eps": _NON_NEGATIVE, "weight_decay": _NON_NEGATIVE,
    "alpha": _UNIT, "beta1": _UNIT, "beta2": _UNIT, "rho": _UNIT, "momentum": _UNIT,
}
LIMITS: dict[str, dict[str, tuple]] = {
    # eta = lr / (1 + lambd*lr*t)^alpha; the weights are multiplied by 1 - lambd*eta each step
    "asgd": {"alpha": _NON_NEGATIVE, "lambd": _NON_NEGATIVE, "t0": _NON_NEGATIVE},
    "rprop": {"eta_minus": (0.0, False, 1.0, False), "eta_plus": (1.0, False, None, False),
              "step_size_min": _NON_NEGATIVE, "step_size_max": _POSITIVE},
    # history_size: LBFGS keeps 2 x history_size copies of the flattened parameters
    "lbfgs": {"max_iter": (1, True, None, False), "max_eval": (1, True, None, False),
              "history_size": (1, True, 10**6, True),
              "tolerance_grad": _NON_NEGATIVE, "tolerance_change": _NON_NEGATIVE},
    "nadam": {"momentum_decay": _NON_NEGATIVE},
}
#: string hyperparameters and the values torch accepts
STRING_CHOICES: dict[str, dict[str, tuple]] = {"lbfgs": {"line_search_fn": (None, "strong_wolfe")}}


def limits(name: str) -> dict[str, tuple]:
    """The range of each numeric hyperparameter of optimizer ``name`` (canonical keys)."""
    keys = _TABLE[name][2]
    out = {k: v for k, v in COMMON_LIMITS.items() if k in keys}
    out.update(LIMITS.get(name, {}))
    return out


def _to_torch(keys: Mapping[str, tuple], fixed: Mapping, foreach: bool, hparams: Mapping) -> dict:
    """Config hyperparameters -> torch.optim kwargs, following ``keys`` (see ``_TABLE``)."""
    kwargs = dict(fixed)
    for key, (_, target) in keys.items():
        if target is None:  # scratch-only
            _, accepted, why = _SCRATCH_ONLY[key]
            if hparams.get(key) not in accepted:
                raise OptbenchError(f"optimizer.{key}={str(hparams[key]).lower()} has no torch.optim equivalent: "
                                    f"{why}. Fix: drop optimizer.{key}=true, or pass optimizer.impl=scratch.")
            continue
        arg, _, index = target.partition(".")
        if index:
            kwargs.setdefault(arg, [None, None])[int(index)] = hparams[key]
        else:
            kwargs[arg] = hparams[key]
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    if foreach:
        kwargs["foreach"] = True  # without it torch takes its per-tensor loop on CPU
    return kwargs


def _schema(name: str, keys: Mapping[str, tuple], aliases: Mapping[str, str]) -> type:
    """The config node's dataclass: hyperparameters without defaults, aliases Optional = None."""
    fields = [("name", str), ("impl", str)] + [
        (k, t, dataclasses.field(default=_SCRATCH_ONLY[k][0])) if k in _SCRATCH_ONLY else (k, t)
        for k, (t, _) in keys.items()]
    fields += [(a, Optional[keys[c][0]], dataclasses.field(default=None)) for a, c in aliases.items()]
    cls_name = "".join(part.title() for part in name.split("_")) + "OptimizerConfig"
    return compat.make_importable(dataclasses.make_dataclass(cls_name, fields), __name__)


def _spec(name: str, row: tuple) -> OptimizerSpec:
    scratch, builtin, keys, fixed, aliases = row
    foreach = "foreach" in inspect.signature(builtin).parameters
    return OptimizerSpec(
        name=name, scratch=scratch, builtin=builtin, schema=_schema(name, keys, aliases),
        to_torch=functools.partial(_to_torch, keys, fixed, foreach), aliases=dict(aliases),
        needs_closure=name in _NEEDS_CLOSURE, refusal=_REFUSALS.get(name),
    )


OPTIMIZERS: dict[str, OptimizerSpec] = {name: _spec(name, row) for name, row in _TABLE.items()}


def _get(name: str) -> OptimizerSpec:
    if name not in OPTIMIZERS:
        raise OptbenchError(
            f"Unknown optimizer {name!r}. Fix: choose one of {', '.join(OPTIMIZERS)} with optimizer=<name>."
        )
    return OPTIMIZERS[name]


def resolve_aliases(name: str, hparams: dict) -> dict:
    """``hparams`` with each set alias moved onto its canonical key; alias keys removed."""
    _get(name)
    return resolve_optimizer_aliases(name, hparams)


def hyperparameters(cfg_node: Mapping) -> dict:
    """The optimizer config node minus ``name``/``impl``, with aliases resolved and removed."""
    rest = {k: v for k, v in cfg_node.items() if k not in ("name", "impl")}
    return resolve_aliases(cfg_node["name"], rest)


def build_optimizer(params, name: str, impl: str, hparams: dict) -> torch.optim.Optimizer:
    """The optimizer ``name`` over ``params``: our scratch class or its torch.optim twin."""
    spec = _get(name)
    if spec.refusal:
        raise OptbenchError(spec.refusal)
    if impl not in IMPLS:
        raise OptbenchError(
            f"optimizer.impl must be 'scratch' (our implementation) or 'builtin' (torch.optim), got {impl!r}. "
            f"Fix: pass optimizer.impl=scratch or optimizer.impl=builtin."
        )
    if impl == "scratch" and spec.scratch is None:
        have = ", ".join(n for n, s in OPTIMIZERS.items() if s.scratch is not None)
        raise OptbenchError(
            f"Optimizer {name!r} has no scratch implementation in optbench, only torch.optim's. "
            f"Fix: pass optimizer.impl=builtin, or pick one with a scratch version: {have}."
        )
    hparams = resolve_aliases(name, hparams)
    expected = list(_TABLE[name][2])
    required = [k for k in expected if k not in _SCRATCH_ONLY]
    if not set(required) <= set(hparams) <= set(expected):
        raise OptbenchError(
            f"Optimizer {name!r} takes exactly the hyperparameters {', '.join(expected)}, got "
            f"{', '.join(sorted(hparams)) or 'none'}. Fix: use conf/optimizer/{name}.yaml's keys "
            f"(optimizer.<key>=value on the command line)."
        )
    if impl == "builtin":
        for key, (_, accepted, why) in _SCRATCH_ONLY.items():
            if hparams.get(key) not in accepted:
                raise OptbenchError(f"optimizer.{key}={str(hparams[key]).lower()} has no torch.optim equivalent: "
                                    f"{why}. Fix: drop optimizer.{key}=true, or pass optimizer.impl=scratch.")
    if impl == "scratch":  # a scratch-only key left null: the scratch class's own default
        hparams = {k: v for k, v in hparams.items() if not (k in _SCRATCH_ONLY and v is None)}
    try:
        if impl == "scratch":
            return spec.scratch(params, **hparams)
        return spec.builtin(params, **spec.to_torch(hparams))
    except ValueError as err:
        raise OptbenchError(
            f"{name} ({impl}) rejected its hyperparameters {hparams}: {err}. "
            f"Fix: correct the value in conf/optimizer/{name}.yaml or on the command line."
        ) from None
