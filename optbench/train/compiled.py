"""``compile=true``: the whole training step as one ``torch.compile``d function.

The step is what the eager loop does (``Trainer.eager_step``): the minibatch loss
and its gradient, gradient clipping, ``optimizer.step()``. It is written
functionally so that forward and backward land in one graph:

    grads, loss = torch.func.grad_and_value(loss_of)(params, batch)
    p.grad = g for each parameter;  clip;  optimizer.step()

``loss_of`` runs ``problem.loss(model, batch)`` with the parameters substituted
through ``torch.func.functional_call``, so every problem works unchanged (the
quadratic reads ``model.x`` directly). The update is the optimizer's own
``step()``: scratch and torch.optim optimizers compile alike; torch.optim's step
adds graph breaks of its own around the update, which cost nothing measurable.

Compilation happens here, before training, so that ``compile_time_s`` is reported
on its own and ``wall_time_s`` never includes it. ``compile_step`` traces on a
snapshot of the run: it takes one eager step (creating the optimizer's state),
then calls the compiled step on a full batch and on the epoch's last, shorter
batch (or a second full one), with the learning rate changed in between, and
finally puts parameters, optimizer state, gradients and the RNG back exactly as
they were. What that warm-up covers:

* the optimizer state exists: the run's first update runs eagerly (it creates the
  state; compiling that one-off branch would cost a second full compile), all
  later updates are compiled;
* the last batch of an epoch is shorter: compiled during warm-up, not mid-run;
* learning-rate schedules: torch 2.x's Dynamo does not specialise on Python
  floats (``specialize_float=False``), so ``lr`` (a float in ``param_groups``) is
  a graph input; changing it once during warm-up settles that, and a schedule
  then never recompiles. The same holds for the scratch optimizers' Python-int
  step counters. Tensors are never needed as hyperparameters.

Compiled and eager steps compute the same update with differently fused kernels,
so losses agree to float rounding, not bitwise (tests/test_compile.py).
Inductor keeps compiled kernels in its cache (``TORCHINDUCTOR_CACHE_DIR``,
default ``/tmp/torchinductor_<user>``): a cold compile of the MNIST step takes tens
of seconds, a warm one a few.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable

import torch
from torch import nn

from optbench.errors import OptbenchError
from optbench.problems.base import Batch, Problem

#: harmless messages torch prints while compiling on a CPU-only machine
_NOISE = ("Profiler record function", "Profiler function", "No CUDA runtime is found")


class _QuietCompileLogs(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_NOISE)


def _quiet_compile_logs() -> None:
    for name in ("torch._dynamo.variables.ctx_manager", "torch._dynamo.variables.torch", "torch.utils.cpp_extension"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _QuietCompileLogs) for f in logger.filters):
            logger.addFilter(_QuietCompileLogs())


class _LossOf(nn.Module):
    """``problem.loss(model, batch)`` as a module, for ``torch.func.functional_call``."""

    def __init__(self, problem: Problem, model: nn.Module):
        super().__init__()
        self.problem = problem
        self.model = model

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.problem.loss(self.model, batch)


class _Snapshot:
    """Parameters, buffers, optimizer state and RNG, restored in place (graph guards stay valid)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        self.model, self.optimizer = model, optimizer
        with torch.no_grad():
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


def compile_step(
    problem: Problem,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    clipper: Callable | None,
    spec,
    *,
    batch_size: int | None = None,
) -> tuple[Callable[[Batch], torch.Tensor], float]:
    """The compiled training step and the seconds spent compiling it.

    ``step_fn(batch)`` does forward, backward, clip and update and returns the
    detached 0-dim minibatch loss (computed before the update), like the loop's
    eager step. ``batch_size`` is the run's (it sets the warm-up batch shapes;
    default: the whole training set in one batch).
    """
    if spec.needs_closure:
        raise OptbenchError(
            f"compile=true cannot compile optimizer={spec.name}: its step(closure) re-evaluates the loss "
            "a data-dependent number of times, so there is no single training step to compile. "
            "Fix: run it with compile=false."
        )
    _quiet_compile_logs()
    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    names = {id(p): f"model.{name}" for name, p in model.named_parameters()}
    if any(id(p) not in names for p in params):
        raise OptbenchError("compile=true needs every tensor the optimizer updates to be a parameter of the model.")
    keys = [names[id(p)] for p in params]
    loss_module = _LossOf(problem, model)

    def loss_of(values: tuple[torch.Tensor, ...], batch: Batch) -> torch.Tensor:
        return torch.func.functional_call(loss_module, dict(zip(keys, values)), (batch,))

    grad_and_loss = torch.func.grad_and_value(loss_of)

    def step(batch: Batch) -> torch.Tensor:
        grads, loss = grad_and_loss(tuple(params), batch)
        for p, g in zip(params, grads):
            p.grad = g
        if clipper is not None:
            clipper(params)
        optimizer.step()
        return loss

    def eager(batch: Batch) -> torch.Tensor:
        for p in params:
            p.grad = None
        loss = problem.loss(model, batch)
        loss.backward()
        if clipper is not None:
            clipper(params)
        optimizer.step()
        return loss.detach()

    traced = torch.compile(step)

    def compiled(batch: Batch) -> torch.Tensor:
        # grad_and_value differentiates inside no_grad; outside it, nothing needs autograd,
        # so the compiled graph is an inference graph (no autograd wrapper around the step)
        with torch.no_grad():
            return traced(batch)
    started = time.perf_counter()
    full, last = _warmup_batches(problem, batch_size)
    snapshot = _Snapshot(model, optimizer)
    try:
        eager(full)  # creates the optimizer state, as the run's first update will
        compiled(full)
        for group in optimizer.param_groups:  # a schedule changes lr: settle that now
            group["lr"] = group["lr"] * 0.5
        compiled(last)
    finally:
        snapshot.restore()
    compile_time = time.perf_counter() - started

    calls = 0

    def step_fn(batch: Batch) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return compiled(batch) if calls > 1 else eager(batch)

    return step_fn, round(compile_time, 6)


def _warmup_batches(problem: Problem, batch_size: int | None) -> tuple[Batch, Batch]:
    """A full batch, and a batch of the size of an epoch's last one (the full batch again if equal)."""
    size = batch_size or problem.num_train
    full = next(iter(problem.batches(size, torch.Generator().manual_seed(0))))
    rest = problem.num_train % size
    last = tuple(t[:rest] for t in full) if rest and full[0].dim() and full[0].shape[0] > rest else full
    return full, last
