"""The trainer's callbacks: everything the loop does besides stepping.

The loop (``optbench.train.trainer``) batches, steps and keeps time; the recorder, the
console, checkpointing, the stop signal and diagnostics hang off it as callbacks, each
small, each optional. A hook is called only where it matters: ``before_logged_step``,
``log_columns`` and ``on_log`` at log points; ``should_stop`` and ``wants_save`` once
per step (both cheap); the rest once per epoch or per run.

Extra callbacks for every run of this process (the benchmark's timer) are added with
:func:`add_process_callback`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optbench.train.console import RunConsole
    from optbench.train.recorder import RunRecorder
    from optbench.train.trainer import LoopState, Outcome, Trainer


class Callback:
    """No-op hooks; override the ones you need."""

    def on_train_start(self, trainer: Trainer, state: LoopState) -> None: ...

    def before_logged_step(self, trainer: Trainer, state: LoopState) -> None: ...

    def log_columns(self, trainer: Trainer, state: LoopState) -> dict[str, Any]:
        return {}

    def on_log(self, trainer: Trainer, state: LoopState, row: dict[str, Any]) -> None: ...

    def on_epoch(self, trainer: Trainer, state: LoopState, row: dict[str, Any]) -> None: ...

    def should_stop(self) -> bool:
        return False

    def wants_save(self, state: LoopState) -> bool:
        return False

    def save(self, trainer: Trainer, state: LoopState) -> None: ...

    def on_train_end(self, trainer: Trainer, state: LoopState, outcome: Outcome) -> None: ...


class Recording(Callback):
    """losses.csv and epochs.csv rows, as they happen."""

    def __init__(self, recorder: RunRecorder):
        self.recorder = recorder

    def on_log(self, trainer, state, row):
        self.recorder.log_step(row)

    def on_epoch(self, trainer, state, row):
        self.recorder.log_epoch(row)


class Progress(Callback):
    """The console: title, progress bar, epoch lines."""

    def __init__(self, console: RunConsole):
        self.console = console

    def on_train_start(self, trainer, state):
        self.console.start(trainer.title(), trainer.total_steps, done=state.step)

    def on_log(self, trainer, state, row):
        self.console.advance(state.step, row["loss"])

    def on_epoch(self, trainer, state, row):
        self.console.epoch(state.epoch, row)


class StopOnSignal(Callback):
    """SIGINT/SIGTERM/SIGUSR2 (``optbench.stop_signal``): stop at the next step boundary."""

    def __init__(self, received: Callable[[], bool]):
        self.should_stop = received  # type: ignore[method-assign]


class Checkpointing(Callback):
    """checkpoint.pt every ``every`` steps (``checkpoint_every``); the run saves one itself when interrupted."""

    def __init__(self, every: int | None, save: Callable[[LoopState], None]):
        self.every, self._save = every, save

    def wants_save(self, state):
        return bool(self.every) and state.step % self.every == 0

    def save(self, trainer, state):
        self._save(state)


class Diagnosing(Callback):
    """``diagnostics=true``: grad_norm, update_norm, update_ratio at logged steps."""

    def __init__(self, params):
        from optbench.train.diagnostics import Diagnostics

        self.diagnostics = Diagnostics(params)

    def before_logged_step(self, trainer, state):
        self.diagnostics.before_step()

    def log_columns(self, trainer, state):
        return self.diagnostics.after_step()


_PROCESS_CALLBACKS: list[Callable[[], Callback]] = []


def add_process_callback(factory: Callable[[], Callback]) -> None:
    """Give every run of this process a callback made by ``factory`` (the benchmark's loop timer)."""
    _PROCESS_CALLBACKS.append(factory)


def process_callbacks() -> list[Callback]:
    return [factory() for factory in _PROCESS_CALLBACKS]
