"""``compile=true``: the training step as one ``torch.compile``d function.

The step does what the eager step does (``trainer.EagerStep``): the minibatch loss
and its gradient, gradient clipping, ``optimizer.step()``. It is written
functionally so that forward and backward land in the same graph as the update::

    grads, loss = torch.func.grad_and_value(loss_of)(params, batch)
    p.grad = g for every parameter;  clip;  optimizer.step()

``loss_of`` is ``problem.loss(model, batch)`` with the parameters substituted by
``torch.func.functional_call``, so every problem works unchanged (the quadratic
reads ``model.x`` directly). The update is the optimizer's own ``step()``, so
scratch and torch.optim optimizers compile alike (torch.optim's ``step`` adds two
graph breaks of its own around the update). The compiled function runs under
``torch.no_grad()`` (``grad_and_value`` differentiates regardless), so Inductor
builds an inference graph with no autograd bookkeeping around the step.

Compilation happens here, before training, so that ``compile_time_s`` is reported
on its own and ``wall_time_s`` never includes it: the step is traced on a snapshot
of the run (one eager step, which creates the optimizer state, then the compiled
step on a full batch and on a batch the size of an epoch's last one), after which
parameters, gradients, optimizer state and RNG are put back exactly. Hence:

* the run's first update runs eagerly: it creates the optimizer state (compiling
  that one-off branch would cost a whole extra compile); the state tensors it
  creates are then moved into the tensors the step was compiled against, because
  Dynamo guards on the identity of torch.optim's state tensors;
* the shorter last batch of an epoch was compiled during warm-up, not mid-run;
* learning rates: a Python float ``lr`` handed to a kernel is a constant that
  Dynamo bakes into the graph, so every change (a schedule) would recompile the
  step. The compiled step therefore sees each group's ``lr`` as a 0-dim tensor
  (one per group, of the parameters' dtype and device): before each call the
  tensor is refreshed in place from ``param_groups`` (where the scheduler writes its
  float) and put into the group for the duration of the call, then the float is
  put back, so the recorder, the scheduler and checkpoints only ever see floats.
  The scratch kernels take tensor hyperparameters (``optbench.optim.functional``);
  torch.optim's steps accept a tensor ``lr`` (the Adam family only with
  ``capturable=True``, which the compiled call sets the same way: under
  ``torch.compile`` it only selects the tensor-step arithmetic). A schedule then
  changes a graph input's value, never the graph;
* LBFGS (``step(closure)``) is refused: it evaluates the loss a data-dependent
  number of times per update;
* nothing new can appear after warm-up, so when the step compiled to one graph per
  batch shape (the scratch optimizers), later calls check only the guards that pick
  between those graphs (``skip_guard_eval_unsafe``), which saves ~70 us of a ~600 us
  MNIST step; torch.optim's steps (graph breaks) keep the full check;
* ``torch._dynamo.reset()`` first: a sweep's earlier jobs in the same process leave
  graphs that guard on their own models and count against Dynamo's recompile limit.

Compiled and eager steps compute the same update with differently fused kernels,
so losses agree to float rounding, not bitwise (tests/test_compile.py). Inductor
caches compiled kernels (``TORCHINDUCTOR_CACHE_DIR``, default
``/tmp/torchinductor_<user>``): a cold compile of the MNIST step takes 20-30 s on
two cores, a warm one 3-4 s.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
from torch import nn

from optbench import compat
from optbench.errors import OptbenchError
from optbench.problems.base import Batch, LossModule, Problem
from optbench.train.trainer import loss_and_grad, optimized_params


def compile_step(
    problem: Problem,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    clipper: Callable | None,
    spec,
    *,
    batch_size: int | None = None,
    scheduler=None,
) -> tuple[Callable[[Batch], torch.Tensor], float]:
    """The compiled training step and the seconds spent compiling it.

    ``step_fn(batch)`` does forward, backward, clip and update and returns the
    detached 0-dim minibatch loss (computed before the update), like the loop's
    eager step. ``batch_size`` is the run's (it sets the warm-up batch shapes;
    default: the whole training set as one batch); ``scheduler``, the run's
    learning-rate scheduler, needs nothing here: the step reads each group's ``lr``
    at every call (see the module docstring). Raises ``OptbenchError`` for what
    cannot be compiled.
    """
    if spec.needs_closure:
        raise OptbenchError(
            f"compile=true cannot compile optimizer={spec.name}: its step(closure) re-evaluates the loss "
            "a data-dependent number of times, so there is no single training step to compile. "
            "Fix: run it with compile=false."
        )
    compat.quiet_compile_logs()
    compat.reset_dynamo()  # earlier runs' graphs (a sweep's jobs) would count against the recompile limit
    step = CompiledStep(problem, model, optimizer, clipper)
    started = time.perf_counter()
    step.warm_up(*_warmup_batches(problem, batch_size))
    return step, round(time.perf_counter() - started, 6)


class CompiledStep:
    """``step(batch) -> loss``: eager for the first update, compiled afterwards."""

    def __init__(self, problem: Problem, model: nn.Module, optimizer: torch.optim.Optimizer, clipper):
        self.problem, self.model, self.optimizer, self.clipper = problem, model, optimizer, clipper
        self.params = optimized_params(optimizer)
        names = {id(p): f"model.{name}" for name, p in model.named_parameters()}
        if any(id(p) not in names for p in self.params):
            raise OptbenchError("compile=true needs every tensor the optimizer updates to be a parameter of the "
                                "model. Fix: run with compile=false.")
        self._keys = [names[id(p)] for p in self.params]
        self._loss_module = LossModule(problem, model)
        self._grad_and_loss = torch.func.grad_and_value(self._loss_of)
        self._traced = torch.compile(self._step)
        self._compiled_state: dict = {}  # the optimizer state tensors the graph was compiled against
        # each group's lr as the 0-dim tensor the graph reads (a graph input, not a constant)
        like = self.params[0] if self.params else torch.zeros(())
        self._lr_values = [group["lr"] for group in optimizer.param_groups]
        self._lrs = [torch.tensor(float(v), dtype=like.dtype, device=like.device) for v in self._lr_values]
        self._swapped = ("lr", "capturable")  # the group keys a compiled call changes and puts back
        self._calls = 0
        #: steady-state calls check only the guards that tell the compiled graphs apart
        #: (set by ``warm_up``: only for a step compiled without graph breaks)
        self.skip_guards = False

    def __call__(self, batch: Batch) -> torch.Tensor:
        self._calls += 1
        if self._calls == 1:
            loss = self.eager(batch)
            self._reseat_state()
            return loss
        if not self.skip_guards:
            return self.compiled(batch)
        # Warm-up compiled every graph the run needs (both batch shapes; lr is a tensor whose
        # value may change; no new state), so the full guard check (~70 us of a ~600 us MNIST step)
        # can only pass: check just what picks between the graphs (the batch size).
        with compat.fast_guards():
            return self.compiled(batch)

    def _loss_of(self, values: tuple[torch.Tensor, ...], batch: Batch) -> torch.Tensor:
        return torch.func.functional_call(self._loss_module, dict(zip(self._keys, values)), (batch,))

    def _step(self, batch: Batch) -> torch.Tensor:
        grads, loss = self._grad_and_loss(tuple(self.params), batch)
        for p, g in zip(self.params, grads):
            p.grad = g
        if self.clipper is not None:
            self.clipper(self.params)
        self.optimizer.step()
        return loss

    def compiled(self, batch: Batch) -> torch.Tensor:
        groups = self.optimizer.param_groups
        saved = [{key: group[key] for key in self._swapped if key in group} for group in groups]
        for i, (tensor, group) in enumerate(zip(self._lrs, groups)):
            if group["lr"] != self._lr_values[i]:  # a schedule moved it: the same tensor, a new value
                tensor.fill_(group["lr"])
                self._lr_values[i] = group["lr"]
            group["lr"] = tensor
            if "capturable" in group:  # torch.optim's Adam family takes a tensor lr only so
                group["capturable"] = True
        try:
            with torch.no_grad():  # an inference graph; grad_and_value differentiates inside it anyway
                return self._traced(batch)
        finally:
            for group, values in zip(groups, saved):
                group.update(values)

    def eager(self, batch: Batch) -> torch.Tensor:
        loss = loss_and_grad(self.problem, self.model, batch, self.params, self.clipper)
        self.optimizer.step()
        return loss.detach()

    def warm_up(self, full: Batch, last: Batch) -> None:
        """Compile for both batch shapes on a snapshot of the run, then restore it."""
        breaks = compat.graph_breaks()
        snapshot = _Snapshot(self.model, self.optimizer)
        try:
            self.eager(full)  # creates the optimizer state, as the run's first update will
            self.compiled(full)
            self.compiled(last)
            self._compiled_state = {p: dict(s) for p, s in self.optimizer.state.items()}
        finally:
            snapshot.restore()
        # One graph per batch shape (scratch optimizers): the reduced guard check is safe.
        # torch.optim's step breaks the graph into several frames, whose reduced checks
        # torch does not always resolve (it raises): those runs keep the full check.
        self.skip_guards = compat.graph_breaks() == breaks

    @torch.no_grad()
    def _reseat_state(self) -> None:
        """Move state the eager first update created into the tensors compiled against."""
        for p, state in self.optimizer.state.items():
            compiled = self._compiled_state.get(p, {})
            for key, value in state.items():
                target = compiled.get(key)
                if (target is not value and torch.is_tensor(value) and torch.is_tensor(target)
                        and target.shape == value.shape and target.dtype == value.dtype
                        and target.device == value.device):
                    target.copy_(value)
                    state[key] = target


class _Snapshot:
    """Parameters, buffers, gradients, optimizer state and RNG; restored in place."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        self.model, self.optimizer = model, optimizer
        self.tensors = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
        self.state = {p: {k: (v.clone() if torch.is_tensor(v) else copy.deepcopy(v)) for k, v in s.items()}
                      for p, s in optimizer.state.items()}
        self.groups = [{k: copy.deepcopy(v) for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        self.grads = {p: None if p.grad is None else p.grad.clone() for p in model.parameters()}
        self.rng = torch.get_rng_state()

    @torch.no_grad()
    def restore(self) -> None:
        live = self.model.state_dict(keep_vars=True)
        for key, value in self.tensors.items():
            live[key].copy_(value)
        state = self.optimizer.state
        for p in [p for p in state if p not in self.state]:
            del state[p]
        for p, saved in self.state.items():
            current = state[p]
            for key in [k for k in current if k not in saved]:
                del current[key]
            for key, value in saved.items():
                old = current.get(key)
                if torch.is_tensor(value) and torch.is_tensor(old) and old.shape == value.shape:
                    old.copy_(value)
                else:
                    current[key] = value
        for group, saved in zip(self.optimizer.param_groups, self.groups):
            group.update(saved)
        for p, grad in self.grads.items():
            p.grad = grad
        torch.set_rng_state(self.rng)


def _warmup_batches(problem: Problem, batch_size: int | None) -> tuple[Batch, Batch]:
    """A full batch, and one the size of an epoch's last batch (the full batch when that is full)."""
    size = batch_size or problem.num_train
    full = next(iter(problem.batches(size, torch.Generator().manual_seed(0))))
    rest = problem.num_train % size
    if rest and full[0].dim() and full[0].shape[0] > rest:
        return full, tuple(t[:rest] for t in full)
    return full, full
