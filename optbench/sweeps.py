"""Sweeps: reusing finished runs (``skip_finished=true``), and the Optuna presets' callback.

``find_finished``, ``continuable`` and ``other_config_in`` tell a sweep job what an
earlier run folder means for it (``optbench.jobs`` acts on the answer). ``PrepareSweep``
is the Hydra callback that conf/hpo/*.yaml adds (see docs/scaling.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from optbench.config.hashing import config_hash

#: the files of a run (docs/run-format.md), removed when a stale copy gives way to a reused run
RUN_FILES = ("summary.json", "losses.csv", "epochs.csv", "checkpoint.pt")
#: statuses of a run that stopped before its end and may be continued from its checkpoint
UNFINISHED = ("running", "interrupted")


# --------------------------------------------------------------------------- skip_finished


def read_summary(folder: Path) -> dict | None:
    """A run folder's summary.json, or None when it is missing or unreadable."""
    try:
        summary = json.loads((Path(folder) / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def wanted_hash(run_cfg: DictConfig) -> str:
    return config_hash(OmegaConf.to_container(run_cfg, resolve=True))


def search_roots(run_cfg: DictConfig, run_dir: Path, sweep_dir: Path | None = None) -> list[Path]:
    """Where skip_finished looks: ``results_root`` (if set), then the sweep dir.

    Without a sweep dir (a single run, or a caller outside Hydra) the run folder's parent
    stands in for it.
    """
    roots = [Path(run_cfg.results_root)] if run_cfg.results_root else []
    roots.append(Path(sweep_dir) if sweep_dir is not None else Path(run_dir).parent)
    return roots


def find_finished(run_cfg: DictConfig, run_dir: Path, sweep_dir: Path | None = None) -> Path | None:
    """A completed run with this config's hash: the job's own folder first, then under the roots."""
    wanted = wanted_hash(run_cfg)
    own = read_summary(run_dir)
    if own and own.get("status") == "completed" and own.get("config_hash") == wanted:
        return Path(run_dir)
    for root in search_roots(run_cfg, run_dir, sweep_dir):
        if not root.is_dir():
            continue
        for summary_path in sorted(root.rglob("summary.json")):
            summary = read_summary(summary_path.parent)
            if summary and summary.get("status") == "completed" and summary.get("config_hash") == wanted:
                return summary_path.parent
    return None


def continuable(run_cfg: DictConfig, run_dir: Path) -> dict | None:
    """The summary of an unfinished run of this config in ``run_dir`` that left a checkpoint, else None."""
    from optbench.train.checkpoint import CHECKPOINT

    own = read_summary(run_dir)
    if (own and own.get("status") in UNFINISHED and own.get("config_hash") == wanted_hash(run_cfg)
            and (Path(run_dir) / CHECKPOINT).exists()):
        return own
    return None


def other_config_in(run_cfg: DictConfig, run_dir: Path) -> dict | None:
    """The summary of a run of a *different* config that already occupies ``run_dir``, else None."""
    own = read_summary(run_dir)
    if own and own.get("config_hash") and own["config_hash"] != wanted_hash(run_cfg):
        return own
    return None


def clear_run_files(run_dir: Path) -> None:
    for name in RUN_FILES:
        (Path(run_dir) / name).unlink(missing_ok=True)


# --------------------------------------------------------------------------- Optuna sweeps


class PrepareSweep(Callback):
    """Hydra callback of the ``hpo/*`` presets (the Optuna sweeper), run before the first trial.

    * creates the sweep dir, so that Optuna can open its SQLite file there (SQLite creates
      the file, not the folder);
    * writes ``multirun.yaml`` there, as Hydra's basic sweeper does (Optuna's does not);
    * fixes the ``${now:...}`` in ``hydra.sweep.subdir`` (the presets' per-command
      folder, which keeps a continued study from overwriting earlier trial folders) to
      one value for every trial of this command.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, sweep_dir / "multirun.yaml")
        prime_now(config)


def prime_now(config: DictConfig) -> None:
    """Give every ``${now:...}`` in ``hydra.sweep.subdir`` one value for the whole command.

    Hydra's ``now`` resolver caches its value in the config, and each job's config starts
    from a copy of the master config's cache; a pattern the master never resolved (the
    subdir is resolved only in the jobs) would otherwise be resolved again, at another
    time, in each job.
    """
    import datetime as dt
    import re

    subdir = OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir") or ""
    cache = OmegaConf.get_cache(config)["now"]
    for pattern in re.findall(r"\$\{now:([^}]*)\}", str(subdir)):
        cache.setdefault((pattern,), dt.datetime.now().strftime(pattern))
