"""The training loop: batches in, updates out, rows to the callbacks.

One step is the seeds' loop body: forward, loss, ``zero_grad``, backward, (clip),
``optimizer.step()``. The minibatch loss is accumulated on the device and read only
at log points and epoch ends, so unlogged steps never synchronise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from optbench.problems.base import Problem
from optbench.train.callbacks import Callback


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The batch order of ``epoch``: a pure function of (seed, epoch), the same for every optimizer."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def planned_steps(steps_per_epoch: int, epochs: int, max_steps: int | None) -> int:
    """Updates a run makes: ``epochs`` full epochs, cut to ``max_steps`` (the ``steps`` key) when set."""
    planned = epochs * steps_per_epoch
    return min(planned, max_steps) if max_steps else planned


def optimized_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The tensors ``optimizer`` updates: what a step clears, clips and steps."""
    return [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]


def loss_and_grad(problem: Problem, model: nn.Module, batch, params: list[torch.Tensor],
                  clipper: Callable | None) -> torch.Tensor:
    """The seeds' step body up to the update: clear grads, loss, backward, clip.

    Clearing sets ``grad = None`` directly: what ``optimizer.zero_grad(set_to_none=True)``
    does, without its ~25 us per-call wrapper.
    """
    for p in params:
        p.grad = None
    loss = problem.loss(model, batch)
    loss.backward()
    if clipper is not None:
        clipper(params)
    return loss


def epoch_row(state: "LoopState", steps_per_epoch: int, partial: bool, problem: Problem, model: nn.Module) -> dict:
    """The epochs.csv row of the epoch ``state`` is in: its number (fractional when ``partial``), the mean
    minibatch loss, its time and, when that loss is finite, the problem's evaluation of ``model``."""
    train_loss = state.epoch_loss_sum / state.batch_in_epoch
    number = state.epoch + state.batch_in_epoch / steps_per_epoch if partial else state.epoch + 1
    row = {"epoch": round(number, 6) if partial else number, "train_loss": train_loss,
           "epoch_time_s": round(state.epoch_time_s, 6)}
    if math.isfinite(train_loss):
        row.update(problem.evaluate(model))
    return row


@dataclass
class LoopState:
    """Where the loop is; saved in checkpoints so a resumed run continues bitwise."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    examples_seen: int = 0
    epoch_loss_sum: float = 0.0
    epoch_time_s: float = 0.0
    wall_time_s: float = 0.0
    last_loss: float | None = None
    best_loss: float | None = None
    last_row: dict = field(default_factory=dict)
    epoch_rows: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Outcome:
    status: str  # completed | diverged | interrupted
    diverged_at_step: int | None = None


@dataclass(frozen=True)
class LoopSettings:
    """What the loop runs: the batch order's seed, the batch size, how long, how often it logs."""

    seed: int
    batch_size: int
    epochs: int
    max_steps: int | None
    log_every: int


class EagerStep:
    """The seeds' step, eagerly: clear, loss, backward, clip, ``optimizer.step()``; returns the loss before it.

    The step protocol every engine shares: ``step(batch) -> loss`` (a detached 0-dim
    tensor), the update done. ``optbench.train.compiled`` makes a compiled one.
    """

    def __init__(self, problem: Problem, model: nn.Module, optimizer: torch.optim.Optimizer,
                 clipper: Callable | None = None, needs_closure: bool = False):
        self.problem, self.model, self.optimizer = problem, model, optimizer
        self.clipper, self.needs_closure = clipper, needs_closure
        self.params = optimized_params(optimizer)

    def _loss_and_grad(self, batch) -> torch.Tensor:
        return loss_and_grad(self.problem, self.model, batch, self.params, self.clipper)

    def __call__(self, batch) -> torch.Tensor:
        if self.needs_closure:
            return self.optimizer.step(lambda: self._loss_and_grad(batch)).detach()
        loss = self._loss_and_grad(batch)
        self.optimizer.step()
        return loss.detach()


class Trainer:
    """The loop: a step function, loop settings and callbacks (``optbench.train.callbacks``).

    ``wall_time_s`` counts only the time from the start of ``step`` to the end of the
    scheduler's step, summed over steps (docs/run-format.md); logging, evaluation and
    callbacks are outside it.
    """

    def __init__(self, problem: Problem, model: nn.Module, optimizer: torch.optim.Optimizer, settings: LoopSettings,
                 *, step: Callable, scheduler=None, callbacks: Sequence[Callback] = ()):
        self.problem, self.model, self.optimizer, self.settings = problem, model, optimizer, settings
        self.step, self.scheduler = step, scheduler
        self.callbacks = list(callbacks)
        self.steps_per_epoch = problem.steps_per_epoch(settings.batch_size)
        self.total_steps = planned_steps(self.steps_per_epoch, settings.epochs, settings.max_steps)
        self.params = optimized_params(optimizer)
        #: seconds spent in end-of-epoch work (test-set evaluation, epoch rows), for the benchmark
        self.epoch_end_time_s = 0.0
        #: (loss, step, batch_in_epoch, examples_seen, lr) of the steps since the last log point
        self._unlogged: list[tuple] = []

    def title(self) -> str:
        return f"{self.problem.name}: {self.total_steps} steps, batch {self.settings.batch_size}"

    def run(self, state: LoopState | None = None) -> tuple[Outcome, LoopState]:
        state = state or LoopState()
        for callback in self.callbacks:
            callback.on_train_start(self, state)
        outcome, state = self._loop(state)
        for callback in self.callbacks:
            callback.on_train_end(self, state, outcome)
        return outcome, state

    def _should_stop(self) -> bool:
        return any(callback.should_stop() for callback in self.callbacks)

    def _savers(self, state: LoopState) -> list[Callback]:
        return [callback for callback in self.callbacks if callback.wants_save(state)]

    def _loop(self, state: LoopState) -> tuple[Outcome, LoopState]:
        settings = self.settings
        device = next(iter(self.params)).device if self.params else torch.device("cpu")
        while state.step < self.total_steps and state.epoch < settings.epochs:
            epoch_sum = torch.tensor(state.epoch_loss_sum, device=device, dtype=torch.float64)
            batches = self.problem.batches(settings.batch_size, epoch_generator(settings.seed, state.epoch))
            for _ in range(state.batch_in_epoch):  # resuming mid-epoch: skip what was done
                next(batches)
            for batch in batches:
                if self._should_stop():
                    outcome = self._first_nonfinite(state) or Outcome("interrupted")
                    state.epoch_loss_sum = float(epoch_sum)
                    return outcome, state
                outcome = self._one_step(state, batch, epoch_sum)
                savers = self._savers(state) if outcome is None else []
                if savers:
                    outcome = self._first_nonfinite(state)
                if outcome is not None:
                    state.epoch_loss_sum = float(epoch_sum)
                    self._end_epoch(state, partial=True)
                    return outcome, state
                if savers:
                    state.epoch_loss_sum = float(epoch_sum)
                    for callback in savers:
                        callback.save(self, state)
                if state.step >= self.total_steps:
                    break
            outcome = self._first_nonfinite(state)
            state.epoch_loss_sum = float(epoch_sum)
            if outcome is not None:
                self._end_epoch(state, partial=True)
                return outcome, state
            finished = state.batch_in_epoch >= self.steps_per_epoch
            self._end_epoch(state, partial=not finished)
            if not finished:
                break
            state.epoch, state.batch_in_epoch, state.epoch_loss_sum, state.epoch_time_s = state.epoch + 1, 0, 0.0, 0.0
        return Outcome("completed"), state

    def _one_step(self, state: LoopState, batch, epoch_sum: torch.Tensor) -> Outcome | None:
        step = state.step
        logged = step % self.settings.log_every == 0 or step == self.total_steps - 1
        lr = self.optimizer.param_groups[0]["lr"]
        before = None
        if logged:
            before = self.problem.step_columns_before(self.model)
            for callback in self.callbacks:
                callback.before_logged_step(self, state)
        started = time.perf_counter()
        loss = self.step(batch)
        epoch_sum += loss
        if self.scheduler is not None:
            self.scheduler.step()
        state.step += 1
        state.batch_in_epoch += 1
        state.examples_seen += int(batch[0].shape[0]) if batch[0].dim() else 1
        elapsed = time.perf_counter() - started
        state.epoch_time_s += elapsed
        state.wall_time_s += elapsed
        if not logged:
            self._unlogged.append((loss, step, state.batch_in_epoch, state.examples_seen, lr))
            return None
        diverged = self._first_nonfinite(state)
        if diverged is not None:
            return diverged
        value = float(loss)
        row = {
            "step": step,
            "epoch": state.epoch + state.batch_in_epoch / self.steps_per_epoch,
            "examples_seen": state.examples_seen,
            "loss": value,
            "lr": lr,
            **before,
            **self.problem.step_columns(self.model),
            "wall_time_s": round(state.wall_time_s, 6),
        }
        for callback in self.callbacks:
            row.update(callback.log_columns(self, state))
        self._log(state, row)
        if not math.isfinite(value):
            return Outcome("diverged", diverged_at_step=step)
        state.best_loss = value if state.best_loss is None else min(state.best_loss, value)
        return None

    def _log(self, state: LoopState, row: dict) -> None:
        for callback in self.callbacks:
            callback.on_log(self, state, row)
        state.last_loss, state.last_row = row["loss"], row

    def _first_nonfinite(self, state: LoopState) -> Outcome | None:
        """Check the unlogged steps since the last check; log the first non-finite one and stop there.

        Their losses stay on the device until now (no per-step sync); one ``isfinite`` over
        the stacked window finds the exact step, whatever ``log_every`` is.
        """
        window, self._unlogged = self._unlogged, []
        if not window:
            return None
        finite = torch.isfinite(torch.stack([entry[0] for entry in window]))
        if bool(finite.all()):
            return None
        loss, step, batch_in_epoch, examples_seen, lr = window[int((~finite).nonzero()[0, 0])]
        row = {"step": step, "epoch": state.epoch + batch_in_epoch / self.steps_per_epoch,
               "examples_seen": examples_seen, "loss": float(loss), "lr": lr,
               "wall_time_s": round(state.wall_time_s, 6)}
        self._log(state, row)
        return Outcome("diverged", diverged_at_step=step)

    def _end_epoch(self, state: LoopState, partial: bool) -> None:
        if state.batch_in_epoch == 0:
            return
        started = time.perf_counter()
        row = epoch_row(state, self.steps_per_epoch, partial, self.problem, self.model)
        state.epoch_rows.append(row)
        for callback in self.callbacks:
            callback.on_epoch(self, state, row)
        self.epoch_end_time_s += time.perf_counter() - started
