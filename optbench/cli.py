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
from omegaconf import DictConfig

from optbench.config.schema import register
from optbench.errors import OptbenchError

register()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def run_job(cfg: DictConfig) -> float | None:
    """Validate, train, and return the sweep objective (used by the Optuna sweeper)."""
    from optbench.train.console import RunConsole

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


def main() -> None:
    run_job()


if __name__ == "__main__":
    main()
