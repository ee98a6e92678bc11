"""The ``optbench`` command: a thin Hydra entry point.

Hydra composes conf/ (installed as ``optbench.conf``); ``validate`` checks it;
``execute`` trains into Hydra's output folder. Bad input ends as one paragraph on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from optbench import stop_signal
from optbench.config.schema import register
from optbench.errors import OptbenchError

register()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def run_job(cfg: DictConfig) -> float | None:
    """Plan and carry out one job; return the sweep objective (used by the Optuna sweeper).

    In a sweep, a refused job raises :class:`~optbench.jobs.SweepJobRefused`, an
    ordinary exception: Hydra records the job as failed and the launcher runs the
    others; the command then ends with exit code 2 and the list of refused jobs.
    """
    from optbench.jobs import JobRefused, SweepJobRefused, refused_line, run_validated, sweep_dir
    from optbench.train.console import RunConsole

    _flush_denormals()
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = [str(o) for o in OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)]  # as typed
    console = RunConsole(quiet=bool(cfg.get("quiet", False)))
    in_sweep = sweep_dir()
    try:
        value = run_validated(cfg, run_dir, overrides, console, hydra_files=_hydra_files(cfg, hydra_cfg))
    except JobRefused as err:
        console.error(str(err), logged=err.recorded)  # never a line in the log of a run it refused to touch
        if in_sweep is not None:
            raise SweepJobRefused(refused_line(hydra_cfg.job.get("num", "?"), run_dir, err), in_sweep, run_dir) from None
        sys.exit(err.exit_code)
    except OptbenchError as err:
        console.error(str(err))
        sys.exit(err.exit_code)
    finally:
        _detach_job_log()
    if stop_signal.received() is not None:
        sys.exit(stop_signal.exit_code(stop_signal.received()))
    return value


def _hydra_files(cfg: DictConfig, hydra_cfg) -> dict[str, str]:
    """What Hydra would write to ``.hydra/`` (its own copy is off: a refused job must not touch a run)."""
    from hydra.core.hydra_config import HydraConfig as _Hydra
    from omegaconf import OmegaConf

    from optbench import run_folder as rf

    return {
        rf.HYDRA_CONFIG: OmegaConf.to_yaml(cfg),
        rf.HYDRA_SETTINGS: OmegaConf.to_yaml(_Hydra.instance().cfg),
        rf.HYDRA_OVERRIDES: OmegaConf.to_yaml(hydra_cfg.overrides.task),
    }


def _detach_job_log() -> None:
    """Close this job's optbench.log, so that the launcher's next lines do not land in it."""
    import logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()


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
    """The console script. Ends the process without interpreter teardown when that is safe (``_exit``).

    Hydra's own errors (an override it cannot parse, an unknown key or option, an
    unwritable run folder...) end as one paragraph and exit code 2, like optbench's:
    ``front_door`` checks the command line first, and explains whatever Hydra raises
    (``compat.hydra_errors_raised``). An exception from inside a job keeps its traceback.
    """
    from optbench import compat
    from optbench.config import front_door

    compat.register_hydra_plugins()  # hydra/launcher=vectorized (idempotent; entry.py calls it first)
    compat.quiet_refused_job_returns()

    try:
        with compat.hydra_errors_raised() as explain:
            if explain:
                front_door.check_command_line(sys.argv[1:])
            try:
                run_job()
            except Exception as err:
                refusal = front_door.explain(err, sys.argv[1:]) if explain else None
                if refusal is None:
                    raise
                raise refusal from None
    except OptbenchError as err:
        from optbench.train.console import RunConsole

        RunConsole().error(str(err), logged=False)  # not a job's error: no run folder's log
        _exit(err.exit_code)
    except SystemExit as stop:
        _exit(stop.code)
    _exit(0)


def _exit(code) -> None:
    from optbench.compat import fast_exit

    fast_exit(code)


if __name__ == "__main__":
    main()
