"""SIGINT, SIGTERM (and a scheduler's warning signal) from the first line of the process.

``install()`` is the first thing the console script does, before Hydra or torch are
imported. Until training begins a stop signal ends the process at once (there
is nothing to save yet); once the trainer calls :func:`training_began` it only sets a
flag, and the loop stops at the next step boundary, saves a checkpoint and ends the
run as ``interrupted``. The process then exits with 128 + the signal's number (130
for SIGINT, 143 for SIGTERM).

Signals that a launcher had handlers for (submitit's SIGUSR2, "this job is about to
time out") are chained: after the run's checkpoint is on disk, :func:`forward` calls
the launcher's own handler, which requeues the job.
"""

from __future__ import annotations

import os
import signal
import threading

#: the signals that stop a run (SIGUSR2: SLURM's --signal, as submitit asks for it)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)


def exit_code(signum: int) -> int:
    """The shell's convention for a process ended by a signal: 128 + its number."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class _State:
    def __init__(self):
        self.received: int | None = None
        self.all: list[int] = []  # every stop signal that arrived, in order, each once
        self.training = False
        self.previous: dict[int, object] = {}


_STATE = _State()


def _handle(signum, frame) -> None:
    first = _STATE.received is None
    if signum not in _STATE.all:
        _STATE.all.append(signum)
    if first or signum != signal.SIGUSR2:
        _STATE.received = signum if first or _STATE.received == signal.SIGUSR2 else _STATE.received
    if not _STATE.training and first:
        _stop_before_training(signum)


#: called with the signal number when a stop signal arrives before training began (jobs.py sets it
#: once it knows the run folder: it writes the ``interrupted`` summary)
_early_stop_hooks: list = []


def on_stop_before_training(hook) -> None:
    """Run ``hook(signum)`` if a stop signal arrives before training begins (set while a job starts)."""
    _early_stop_hooks[:] = [hook]


def clear_stop_hook() -> None:
    _early_stop_hooks.clear()


def _stop_before_training(signum: int) -> None:
    """End the process now, cleanly: nothing to save yet, and no half-done import is ever resumed.

    Raising into the interrupted code instead could land inside an import (numpy's,
    torch's) and leave it half-initialised, which later fails with a traceback. So the
    hook writes the summary, a launcher's own handler gets the signal (submitit
    requeues a job on SIGUSR2), and the process exits with 128 + the signal's number.
    """
    for hook in list(_early_stop_hooks):
        try:
            hook(signum)
        except Exception:  # the exit must happen whatever the hook met
            pass
    if launcher_handles(signum):
        forward()
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(exit_code(signum))


def _take_over(remember_any: bool) -> None:
    """Put ``_handle`` on every stop signal, remembering the handler that was there for :func:`forward`.

    ``remember_any``: remember whatever was there (at start-up: the defaults); otherwise
    only a callable a launcher installed since.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        current = signal.getsignal(sig)
        if current is _handle:
            continue
        try:
            signal.signal(sig, _handle)
        except (ValueError, OSError):
            continue
        if remember_any or callable(current):
            _STATE.previous[sig] = current


def install() -> None:
    """Route the stop signals to this module (main thread only; elsewhere a no-op)."""
    _take_over(remember_any=True)


def adopt_launcher_handlers() -> None:
    """Take over handlers that a launcher installed after :func:`install` (submitit does so in the job)."""
    _take_over(remember_any=False)


def training_began() -> None:
    """From now on a stop signal only sets the flag: the loop checkpoints and stops at a step boundary."""
    adopt_launcher_handlers()
    _STATE.training = True  # stays so: after training too, a signal only sets the flag


def received() -> int | None:
    """The stop signal that arrived, if any."""
    return _STATE.received


def should_stop() -> bool:
    return _STATE.received is not None


def reset() -> None:
    """Forget a received signal (tests, and a library caller running several runs)."""
    _STATE.received = None
    _STATE.all = []
    _STATE.training = False


def forward() -> None:
    """Give the received signals to the handlers a launcher had for them (submitit requeues on SIGUSR2).

    Called after the run's files and checkpoint are written; a launcher's handler may
    end the process. Every stop signal that arrived is forwarded once, SIGUSR2 last: on
    SLURM a SIGTERM may follow the USR2 (the time limit, or the requeue's own kill), and
    submitit's SIGTERM handler only logs, while its USR2 handler requeues the job and
    exits (``sys.exit(-1)``), or raises ``UncompletedJobError`` when it may not requeue.
    Handlers are called as the signal module would, with ``(signum, frame)``; submitit's
    accept ``frame=None``.
    """
    order = [s for s in _STATE.all if s != signal.SIGUSR2] + [s for s in _STATE.all if s == signal.SIGUSR2]
    if not order and _STATE.received is not None:
        order = [_STATE.received]
    for signum in order:
        handler = _STATE.previous.get(signum)
        if callable(handler) and handler not in (signal.default_int_handler, _handle):
            handler(signum, None)


def launcher_handles(signum: int) -> bool:
    """Whether a launcher installed a handler of its own for ``signum``."""
    handler = _STATE.previous.get(signum)
    return callable(handler) and handler not in (signal.default_int_handler,)
