"""Sweeps: reusing finished runs (``skip_finished=true``), and the Optuna presets' callback.

``find_finished`` tells a sweep job where a completed run of its config is
(``optbench.jobs`` decides what to do with the answer). ``PrepareSweep``
is the Hydra callback that conf/hpo/*.yaml adds (see docs/scaling.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from optbench import run_folder as rf

# --------------------------------------------------------------------------- skip_finished


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
    from optbench.jobs import wanted_hash

    wanted = wanted_hash(run_cfg)
    own = rf.read_summary(run_dir)
    if own and own.get("status") == rf.COMPLETED and own.get("config_hash") == wanted:
        return Path(run_dir)
    for root in search_roots(run_cfg, run_dir, sweep_dir):
        if not root.is_dir():
            continue
        for summary_path in sorted(root.rglob(rf.SUMMARY)):
            summary = rf.read_summary(summary_path.parent)
            if summary and summary.get("status") == rf.COMPLETED and summary.get("config_hash") == wanted:
                return summary_path.parent
    return None


# --------------------------------------------------------------------------- Optuna sweeps


class PrepareSweep(Callback):
    """Hydra callback of the ``hpo/*`` presets (the Optuna sweeper), run before the first trial.

    * creates the sweep dir, so that Optuna can open its SQLite file there (SQLite creates
      the file, not the folder);
    * writes ``multirun.yaml`` there, as Hydra's basic sweeper does (Optuna's does not);
    * for the Optuna sweeper: marks the trials a stopped command left RUNNING as FAIL, and
      lets the sweeper claim best parameters only for a finite objective
      (:func:`optbench.compat.optuna_best_trial_must_be_finite`);
    * fixes the ``${now:...}`` in ``hydra.sweep.subdir`` (the presets' per-command
      folder, which keeps a continued study from overwriting earlier trial folders) to
      one value for every trial of this command.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from optbench import compat

        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, sweep_dir / rf.MULTIRUN_YAML)
        prime_now(config)
        sweeper = config.hydra.sweeper
        if "optuna" in str(sweeper.get("_target_", "")).lower():
            compat.fail_stale_optuna_trials(sweeper.get("storage"), sweeper.get("study_name"))
            self._finite_best = compat.optuna_best_trial_must_be_finite(sweeper.get("study_name"))
            self._finite_best.__enter__()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        finite_best = getattr(self, "_finite_best", None)
        if finite_best is not None:
            finite_best.__exit__(None, None, None)


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
