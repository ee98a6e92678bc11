"""One optimizer over stacked ``[K, ...]`` parameters that updates each member as its own optimizer would.

* **scratch**: the pure kernels (``optbench.optim.<name>.<name>_update``) called once on
  the stacked tensors. A hyperparameter equal across members is passed as the Python
  number its own optimizer holds (the same fast path, the same arithmetic); one that
  differs becomes a tensor of the parameters' dtype, one ``[K, 1, ...]`` view per
  parameter rank, so member i's slice is updated with member i's value.
* **builtin**: one torch.optim instance over the stacked tensors, built exactly as a
  member's own (all members' hyperparameters are equal, ``grouping.group_key``). Its
  update is elementwise (``grouping.ELEMENTWISE_BUILTIN``) and its step counters are
  shared (the members are at one step), so each slice follows its member's run.

Two ways to call a scratch kernel, the same numbers:

* **whole stack** (linreg's tiny members, any CUDA group): one call on the ``[K, ...]``
  leaves, per-member hyperparameters as ``[K, 1, ...]`` tensors;
* **member by member** (CPU, members of at least :data:`MEMBER_LOOP_MIN_NUMEL` elements):
  one call per member on its slices, with its own hyperparameters as Python numbers: the
  sequential run's fast path, number for number. On CPU an elementwise update of a large
  stack streams every buffer through memory once per operation; one member's slices stay
  in cache across the kernel's operations. Measured here (2 CPU threads, RMSprop, the
  784-200-10 MLP, K = 8, per-member lr): whole stack 3.8 ms per step, member by member
  1.3 ms. Plain SGD at one lr for every member (a sweep over seeds) keeps no buffers to
  stream, and takes the one whole-stack call (K = 16: 0.37 ms against 0.56 ms).

Learning-rate schedules: with builtin, the one scheduler over the stacked optimizer;
with scratch, one torch scheduler (``train.schedules.make_scheduler``) over a dummy
optimizer with one parameter group per member at that member's lr, so every member's
lr follows the sequence its own scheduler computes, float for float.

Checkpoints and resume go through each member's own optimizer and scheduler (built as
``train.run.prepare`` builds them): :meth:`export` puts slice i of the state into
member i's optimizer and scheduler, which then write the ordinary ``state_dict``;
:meth:`load_members` stacks the states that ``train.checkpoint.restore`` loaded into them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from optbench import compat
from optbench.optim.adadelta import adadelta_update
from optbench.optim.adagrad import adagrad_update
from optbench.optim.adam import adam_update
from optbench.optim.momentum import momentum_update
from optbench.optim.registry import OPTIMIZERS, build_optimizer
from optbench.optim.rmsprop import rmsprop_update
from optbench.optim.sgd import sgd_update
from optbench.train.schedules import make_scheduler

#: per scratch optimizer: the numeric hyperparameters that may differ per member (lr comes from the schedule)
NUMERIC = {
    "sgd": (),
    "momentum": ("momentum",),
    "adagrad": ("eps",),
    "rmsprop": ("alpha", "eps", "momentum", "weight_decay"),
    "adam": ("beta1", "beta2", "eps", "weight_decay"),
    "adadelta": ("rho", "eps", "weight_decay"),
}


#: the smallest member (parameter elements) for which a CPU group steps member by member (module docstring)
MEMBER_LOOP_MIN_NUMEL = 16384


def _count_steps(name: str, states: list[dict]) -> None:
    """The step counters a kernel reads (Adam's bias correction), advanced once per step."""
    if name == "adam":
        for s in states:
            s["step"] += 1


def _scratch_update(name: str, group: dict, params: list[Tensor], grads: list[Tensor], states: list[dict],
                    h: dict) -> None:
    """One call of optimizer ``name``'s kernel; ``group``: member 0's (structural keys), ``h``: hyperparameters.

    Step counters must already count this step (:func:`_count_steps`)."""
    if name == "sgd":
        sgd_update(params, grads, lr=h["lr"])
    elif name == "momentum":
        momentum_update(params, grads, [s["velocity"] for s in states], lr=h["lr"], momentum=h["momentum"])
    elif name == "adagrad":
        adagrad_update(params, grads, [s["sum"] for s in states], lr=h["lr"], eps=h["eps"],
                       eps_in_sqrt=group["eps_in_sqrt"])
    elif name == "rmsprop":
        rmsprop_update(params, grads, [s["square_avg"] for s in states],
                       [s["grad_avg"] for s in states] if group["centered"] else None,
                       [s["velocity"] for s in states] if group["momentum"] > 0 else None,
                       lr=h["lr"], alpha=h["alpha"], eps=h["eps"], momentum=h["momentum"],
                       weight_decay=h["weight_decay"], eps_in_sqrt=group["eps_in_sqrt"])
    elif name == "adam":
        adam_update(params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                    [s["step"] for s in states], lr=h["lr"], beta1=h["beta1"], beta2=h["beta2"], eps=h["eps"],
                    weight_decay=h["weight_decay"], eps_in_sqrt=group["eps_in_sqrt"])
    elif name == "adadelta":
        adadelta_update(params, grads, [s["square_avg"] for s in states], [s["acc_delta"] for s in states],
                        lr=h["lr"], rho=h["rho"], eps=h["eps"], weight_decay=h["weight_decay"])
    else:
        raise ValueError(f"no vectorized scratch kernel for {name!r}")


def member_views(values: Tensor, leaves: Sequence[Tensor]) -> list[Tensor]:
    """A ``[K]`` tensor as one ``[K, 1, ...]`` view per leaf (broadcasting over each leaf's trailing dims)."""
    return [values.view(-1, *([1] * (leaf.dim() - 1))) for leaf in leaves]


def _stack_state(states: Sequence[dict], leaf: Tensor) -> dict:
    """Members' states of one parameter -> one state: per-element tensors stacked, counters from member 0."""
    if not states[0]:
        return {}
    out = {}
    for key, value in states[0].items():
        if torch.is_tensor(value) and value.dim() > 0 and tuple(value.shape) == tuple(leaf.shape[1:]):
            out[key] = torch.stack([s[key] for s in states]).to(leaf.device)
        else:
            out[key] = value.clone() if torch.is_tensor(value) else value
    return out


def _slice_state(state: dict, leaf: Tensor, i: int) -> dict:
    return {key: (value[i].clone() if torch.is_tensor(value) and tuple(value.shape) == tuple(leaf.shape)
                  else value.clone() if torch.is_tensor(value) else value)
            for key, value in state.items()}


class StackedOptimizer:
    """Steps the stacked leaves; ``lrs()`` is each member's current lr (what its ``param_groups[0]["lr"]`` says)."""

    def __init__(self, name: str, impl: str, hparams: dict, templates: Sequence[torch.optim.Optimizer],
                 leaves: Sequence[Tensor], schedule, total_steps: int):
        self.name, self.impl, self.k = name, impl, len(templates)
        self.templates, self.leaves = list(templates), list(leaves)
        self.group = dict(self.templates[0].param_groups[0])
        like = self.leaves[0]
        if impl == "builtin":
            with compat.dynamo_stays_unimported():
                self.inner = build_optimizer(self.leaves, name, impl, hparams)
            self.scheduler = make_scheduler(self.inner, schedule, total_steps)
            self.state: list[dict] = []
            self.hyper: dict = {}
        else:
            if name not in NUMERIC or OPTIMIZERS[name].scratch is None:
                raise ValueError(f"no vectorized scratch kernel for {name!r}")
            groups = [t.param_groups[0] for t in self.templates]
            with compat.dynamo_stays_unimported():
                self._dummy = torch.optim.SGD([{"params": [torch.zeros(1)], "lr": g["lr"]} for g in groups])
            self.scheduler = make_scheduler(self._dummy, schedule, total_steps)
            self.state = [{} for _ in self.leaves]
            self.hyper = {}
            #: per member, its own hyperparameters as its optimizer holds them (the member-by-member step)
            self.member_hyper = [{key: g[key] for key in NUMERIC[name]} for g in groups]
            for key in NUMERIC[name]:
                values = [float(g[key]) for g in groups]
                same = all(v == values[0] for v in values)
                self.hyper[key] = groups[0][key] if same else member_views(
                    torch.tensor(values, dtype=like.dtype, device=like.device), self.leaves)
        member_numel = sum(leaf[0].numel() for leaf in self.leaves)
        # plain SGD at one lr (the group shares its schedule, so it stays one) keeps no buffers: one call
        one_lr_sgd = name == "sgd" and len({t.param_groups[0]["lr"] for t in self.templates}) == 1
        self.member_by_member = (impl == "scratch" and like.device.type == "cpu"
                                 and member_numel >= MEMBER_LOOP_MIN_NUMEL and not one_lr_sgd)
        self._member_states: tuple | None = None  # (self.state it views, per member its per-leaf state views)
        self._init_state = OPTIMIZERS[name].scratch.init_state if impl == "scratch" else None
        self._lr_cache: tuple | None = None
        self._stepped = False

    @property
    def update_kind(self) -> str:
        """How a step calls the kernels (the log line names it, as ``StackedModel.kind`` names the forward)."""
        return "member by member" if self.member_by_member else "whole-stack"

    def lrs(self) -> list[float]:
        if self.impl == "builtin":
            return [self.inner.param_groups[0]["lr"]] * self.k
        return [g["lr"] for g in self._dummy.param_groups]

    def _lr(self):
        values = self.lrs()
        if all(v == values[0] for v in values):
            return values[0]
        key = tuple(values)
        if self._lr_cache is None or self._lr_cache[0] != key:
            like = self.leaves[0]
            self._lr_cache = (key, member_views(torch.tensor(values, dtype=like.dtype, device=like.device),
                                                self.leaves))
        return self._lr_cache[1]

    @torch.no_grad()
    def step(self) -> None:
        if self.impl == "builtin":
            self.inner.step()
            return
        grads = [p.grad for p in self.leaves]
        for state, leaf in zip(self.state, self.leaves):
            if not state and self.name != "sgd":
                self._init_state(None, state, leaf, self.group)
        _count_steps(self.name, self.state)
        if not self.member_by_member:
            _scratch_update(self.name, self.group, self.leaves, grads, self.state, {"lr": self._lr(), **self.hyper})
            return
        for i, (lr, states) in enumerate(zip(self.lrs(), self._per_member_states())):
            _scratch_update(self.name, self.group, [p[i] for p in self.leaves], [g[i] for g in grads], states,
                            {"lr": lr, **self.member_hyper[i]})

    def _per_member_states(self) -> list[list[dict]]:
        """Member i's state per leaf: views of slice i of the stacked buffers; counters as the stack has them."""
        if self._member_states is None or self._member_states[0] is not self.state:
            views = [[{key: value[i] if torch.is_tensor(value) and value.shape == leaf.shape else value
                       for key, value in state.items()} for state, leaf in zip(self.state, self.leaves)]
                     for i in range(self.k)]
            self._member_states = (self.state, views)
        views = self._member_states[1]
        for j, state in enumerate(self.state):  # counters (Adam's step) are numbers: copy this step's
            for key, value in state.items():
                if not torch.is_tensor(value):
                    for member in views:
                        member[j][key] = value
        return views

    def scheduler_step(self) -> None:
        if self.scheduler is None:
            return
        if self.impl == "builtin" or self._stepped:
            self.scheduler.step()
            return
        with warnings.catch_warnings():  # the dummy optimizer only holds the lrs: it never steps
            warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
            self.scheduler.step()
        self._stepped = True

    def _states(self) -> list[dict]:
        if self.impl == "builtin":
            return [self.inner.state.get(leaf, {}) for leaf in self.leaves]
        return self.state

    # ---- one member's view, for checkpoints and resume ----------------------------------
    def export(self, i: int, optimizer: torch.optim.Optimizer, scheduler) -> None:
        """Put member ``i``'s slice of the state, its lr and its scheduler's state into its own optimizer."""
        params = [p for g in optimizer.param_groups for p in g["params"]]
        for p, leaf, state in zip(params, self.leaves, self._states()):
            optimizer.state.pop(p, None)
            if state:
                optimizer.state[p] = _slice_state(state, leaf, i)
        optimizer.param_groups[0]["lr"] = self.lrs()[i]
        if scheduler is not None and self.scheduler is not None:
            saved = self.scheduler.state_dict()
            if self.impl == "scratch":  # one group per member in the dummy: member i's entry
                saved = {k: [v[i]] if isinstance(v, list) and len(v) == self.k else v for k, v in saved.items()}
            scheduler.load_state_dict(saved)

    def load_members(self, optimizers: Sequence[torch.optim.Optimizer], schedulers: Sequence) -> None:
        """Stack the states restored into the members' own optimizers and schedulers (a resumed group)."""
        member_params = [[p for g in o.param_groups for p in g["params"]] for o in optimizers]
        stacked = [_stack_state([o.state.get(ps[j], {}) for o, ps in zip(optimizers, member_params)], leaf)
                   for j, leaf in enumerate(self.leaves)]
        lrs = [o.param_groups[0]["lr"] for o in optimizers]
        if self.impl == "builtin":
            for leaf, state in zip(self.leaves, stacked):
                if state:
                    self.inner.state[leaf] = state
            self.inner.param_groups[0]["lr"] = lrs[0]
            groups = self.inner.param_groups
        else:
            self.state = stacked
            for g, lr in zip(self._dummy.param_groups, lrs):
                g["lr"] = lr
            groups = self._dummy.param_groups
        for g, o in zip(groups, optimizers):
            if "initial_lr" in o.param_groups[0]:
                g["initial_lr"] = o.param_groups[0]["initial_lr"]
        if self.scheduler is not None and schedulers[0] is not None:
            states = [s.state_dict() for s in schedulers]
            merged = dict(states[0])
            if self.impl == "scratch":
                for key, value in states[0].items():
                    if isinstance(value, list) and len(value) == 1:
                        merged[key] = [s[key][0] for s in states]
            self.scheduler.load_state_dict(merged)
        for o in optimizers:  # the stack holds the state now
            o.state.clear()
