"""The ``optbench`` command: a thin Hydra entry point.

Hydra composes conf/ (installed as ``optbench.conf``); ``validate`` checks it;
``execute`` trains into Hydra's output folder. Bad input ends as one paragraph on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

from optbench import stop_signal

stop_signal.install()  # before the imports below: a Ctrl-C while Hydra or torch loads is still a clean stop

import atexit  # noqa: E402
import os
import sys
import threading
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from optbench.config.schema import register
from optbench.errors import OptbenchError

register()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def run_job(cfg: DictConfig) -> float | None:
    """Validate, train, and return the sweep objective (used by the Optuna sweeper)."""
    from optbench.train.console import RunConsole

    _flush_denormals()
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    console = RunConsole(quiet=bool(cfg.get("quiet", False)))
    try:
        from optbench.jobs import run_validated

        return run_validated(cfg, run_dir, overrides, console)
    except OptbenchError as err:
        console.error(str(err))
        sys.exit(err.exit_code)


def _flush_denormals() -> None:
    """Treat denormal floats as zero on the CPU, before torch runs its first op.

    With alpha 0.9, RMSProp's running average of a dead ReLU unit's gradient decays
    into denormals, and CPU arithmetic on those is ~35x slower. The setting is per
    thread and torch's worker threads copy it when they are created (at the first
    parallel op), so it must come first. Fashion-MNIST runs give bitwise the same
    losses with it (README, "Speed"); ``execute`` called from Python keeps torch's default.
    """
    import torch

    torch.set_flush_denormal(True)


def main() -> None:
    """The console script. Ends the process without interpreter teardown when that is safe (``_exit``)."""
    try:
        run_job()
    except SystemExit as stop:
        _exit(stop.code)
    _exit(0)


def _exit(code) -> None:
    """``sys.exit(code)``, skipping the interpreter's teardown unless other threads must be joined.

    Tearing down a process that imported torch takes about a second (it collects
    torch's whole module graph), a quarter of the default run. By then every file
    optbench writes is closed; the exit handlers (logging's flush among them) still
    run and the standard streams are flushed. While non-daemon threads are alive (a
    parallel launcher's executor), the ordinary exit joins them.
    """
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 1
    os._exit(status)


if __name__ == "__main__":
    main()
