"""Which runs of a sweep can share one stacked model, and why the others train alone.

Torch-free: the launcher's collection phase (``optbench.vectorized.collect``) imports it
while planning every job.

Members of one group train in lockstep, so everything that shapes the loop or the
stacked tensors is in the key: the problem (dataset and model configs), the batch size,
``epochs`` and ``steps``, ``log_every``, ``checkpoint_every``, ``diagnostics``, the device,
``threads``, ``grad_clip.kind``, the whole schedule, and the optimizer's name and impl. What
may differ per member: the seed (its own initial weights, batch order and, for linreg, its
own data), and the optimizer's numeric hyperparameters when the impl is scratch (tensors
with a member dimension go to the pure kernels), plus ``grad_clip.threshold``. A builtin
(torch.optim) member joins only members with equal hyperparameters: one torch.optim
instance then steps the stacked tensors, which is exact for elementwise optimizers only.
A resumed member carries its checkpoint's position (step, epoch, batch in epoch) in the
key, so a group is always at one step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf

#: scratch optimizers whose pure kernels take per-member tensor hyperparameters
SCRATCH = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adadelta")
#: torch.optim classes whose update is elementwise within each parameter tensor, so one
#: instance over stacked [K, ...] tensors updates each member exactly as its own would
ELEMENTWISE_BUILTIN = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adadelta", "adamax", "adamw", "nadam",
                       "radam", "asgd", "rprop")
#: scratch hyperparameters that change which state buffers or which formula a kernel uses
#: (equal within a group); the numeric ones may differ per member
STRUCTURAL = {"rmsprop": ("centered", "eps_in_sqrt"), "adam": ("eps_in_sqrt",), "adagrad": ("eps_in_sqrt",)}
#: run-config keys that shape the shared loop or the stacked tensors
LOOP_KEYS = ("batch_size", "epochs", "steps", "log_every", "checkpoint_every", "diagnostics", "device", "threads",
             "compile")


def _plain(cfg: DictConfig | Mapping) -> dict:
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    return dict(cfg)


def why_alone(cfg: DictConfig | Mapping) -> str | None:
    """None when ``cfg`` can train in a stacked group; else the one-line reason it trains alone."""
    c = _plain(cfg)
    name, impl = c["optimizer"]["name"], c["optimizer"]["impl"]
    if name == "lbfgs":
        return "lbfgs needs a closure: it re-evaluates the loss a data-dependent number of times per update"
    if impl == "scratch" and name not in SCRATCH:
        return f"optimizer {name} has no vectorized scratch kernel"
    if impl == "builtin" and name not in ELEMENTWISE_BUILTIN:
        return f"torch.optim's {name} is not elementwise per parameter, so it cannot step stacked members exactly"
    if c.get("compile"):
        return "compile=true compiles one run's step; the vectorized engine trains stacked members eagerly"
    return None


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def group_key(cfg: DictConfig | Mapping, resume: Mapping | None = None) -> tuple:
    """Members with equal keys may share one stacked model (see the module docstring).

    ``resume``: the member's checked checkpoint payload (``jobs.Plan.payload``), or None
    for a fresh run; its loop position is part of the key.
    """
    c = _plain(cfg)
    optimizer = dict(c["optimizer"])
    name, impl = optimizer.pop("name"), optimizer.pop("impl")
    if impl == "builtin":
        hyper = optimizer  # all equal: one torch.optim instance steps the stack
    else:
        hyper = {k: optimizer.get(k) for k in STRUCTURAL.get(name, ())}
        if name == "rmsprop":  # momentum > 0 adds a velocity buffer
            hyper["has_velocity"] = float(optimizer.get("momentum") or 0.0) > 0
    loop = {k: c.get(k) for k in LOOP_KEYS}
    position = None
    if resume is not None:
        state = resume["loop"]
        position = (int(state["step"]), int(state["epoch"]), int(state["batch_in_epoch"]))
    return (
        _canonical(c["dataset"]), _canonical(c.get("model")), _canonical(loop), name, impl, _canonical(hyper),
        c["grad_clip"]["kind"], _canonical(c["schedule"]), position,
    )
