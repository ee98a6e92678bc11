"""Sweeps: reusing finished runs (``skip_finished=true``) and optbench's launcher and sweeper classes.

``find_finished`` and ``continuable`` decide what a sweep job does with earlier run
folders (see ``optbench.jobs``). The classes named in conf/hydra/launcher/*.yaml and
conf/hpo/*.yaml are thin subclasses of the Hydra plugins (extras ``optbench[slurm]``
and ``optbench[optuna]``); they are built on first use, so that this module imports
without the extras:

``SlurmLauncher``, ``LocalLauncher`` (presets ``slurm``, ``slurm_local``)
    submitit's launchers, except that (1) each job uses ``cpus_per_task`` torch threads
    unless ``threads=`` says otherwise, and (2) a job that dies without a result
    (killed, out of memory, ``os._exit``, node failure) no longer stops the collection
    of the others: the sweep waits for every job, marks the dead job's run folder
    ``failed`` in its summary.json, and then reports the failures.
``OptunaSweeper`` (presets ``hpo/*``)
    the Optuna sweeper, except that it creates the sweep dir before Optuna opens its
    SQLite file there, writes ``multirun.yaml`` like Hydra's basic sweeper, and numbers
    the job folders after the trials already in the study, so that a rerun that
    continues the study never overwrites an earlier trial's folder.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from optbench.config.hashing import config_hash

log = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------- dead jobs


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def mark_failed(run_dir: Path, reason: str, overrides: list[str] | None = None) -> str:
    """Record in ``run_dir/summary.json`` that the job's process died; return the status now there.

    A summary the job finished itself (completed, diverged, interrupted, failed) is left
    alone; a ``running`` one (the job was killed mid-run) or a missing one becomes
    ``failed`` with ``reason`` as its error.
    """
    from optbench.train.recorder import write_json_atomic

    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    if summary is not None and summary.get("status") not in (None, "running"):
        return str(summary["status"])
    if summary is None:
        summary = {"status": "running", "overrides": list(overrides or [])}
    summary.update(status="failed", error=reason, finished_at=_now())
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "summary.json", summary)
    return "failed"


def _set_threads(cpus: Any) -> None:
    """In a launched job: torch uses the job's CPUs (``threads=`` in the run config still wins)."""
    if cpus:
        import torch

        torch.set_num_threads(int(cpus))


# --------------------------------------------------------------------------- plugin subclasses


def _submitit_class(name: str):
    try:
        from hydra_plugins.hydra_submitit_launcher import submitit_launcher as plugin
    except ImportError:
        raise ImportError(
            f"optbench.sweeps.{name} needs the submitit launcher. Fix: pip install 'optbench[slurm]'."
        ) from None
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobReturn, JobStatus, filter_overrides
    from hydra.errors import CompactHydraException

    base = plugin.SlurmLauncher if name == "SlurmLauncher" else plugin.LocalLauncher

    class SweepJobsDied(CompactHydraException):
        """One or more jobs died without a result; the message lists them (no traceback)."""

    def __call__(self, sweep_overrides, job_dir_key, job_num, job_id, singleton_state):
        _set_threads(self.params.get("cpus_per_task"))
        return base.__call__(self, sweep_overrides, job_dir_key, job_num, job_id, singleton_state)

    def launch(self, job_overrides, initial_job_idx):
        # hydra-submitit-launcher 1.2's launch, except for how the results are collected
        import submitit

        assert self.config is not None
        assert len(job_overrides) > 0
        params = self.params
        init_params = {"folder": self.params["submitit_folder"]}
        specific_init_keys = {"max_num_timeout"}
        init_params.update(**{f"{self._EXECUTOR}_{x}": y for x, y in params.items() if x in specific_init_keys})
        init_keys = specific_init_keys | {"submitit_folder"}
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init_params)
        baseparams = set(OmegaConf.structured(plugin.BaseQueueConf).keys())
        params = {x if x in baseparams else f"{self._EXECUTOR}_{x}": y for x, y in params.items() if x not in init_keys}
        executor.update_parameters(**params)
        log.info(f"Submitit '{self._EXECUTOR}' sweep output dir : {self.config.hydra.sweep.dir}")
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        job_params = []
        for idx, overrides in enumerate(job_overrides):
            idx = initial_job_idx + idx
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        jobs = executor.map_array(self, *zip(*job_params))
        returns, dead = [], []
        for (overrides, _, idx, _, _), job in zip(job_params, jobs):
            try:
                returns.append(job.results()[0])
                continue
            except Exception as err:  # submitit's UncompletedJobError / FailedJobError
                reason = _short_reason(err, job)
            folder = self._job_folder(overrides, idx, sweep_dir)
            status = mark_failed(folder, reason, overrides) if folder is not None else "unknown"
            log.error(f"\t#{idx} died ({reason}); its run folder {folder} says {status}")
            dead.append(f"#{idx} ({' '.join(filter_overrides(overrides))}) in {folder}: {reason}")
            returns.append(JobReturn(overrides=overrides, status=JobStatus.FAILED))
        if dead:
            error = SweepJobsDied(
                f"{len(dead)} of {len(returns)} sweep jobs died without a result; the other {len(returns) - len(dead)} "
                f"ran to their end and their run folders are kept. Dead: {'; '.join(dead)}. Fix: see the job's log "
                f"under {sweep_dir}/.submitit/, then rerun the same command with hydra.sweep.dir={sweep_dir} "
                "skip_finished=true to run only the jobs that did not complete."
            )
            for ret in returns:
                if ret.status == JobStatus.FAILED and ret._return_value is None:
                    ret.return_value = error
        return returns

    def _job_folder(self, overrides, idx, sweep_dir: Path) -> Path | None:
        try:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg.hydra.job):
                cfg.hydra.job.num = idx
            return sweep_dir / str(OmegaConf.select(cfg, "hydra.sweep.subdir"))
        except Exception as err:  # an exotic subdir (e.g. ${hydra.job.id}) cannot be resolved here
            log.warning(f"cannot find the run folder of job #{idx}: {err}")
            return None

    cls = type(name, (base,), {"__call__": __call__, "launch": launch, "_job_folder": _job_folder,
                               "__module__": __name__, "__qualname__": name, "__doc__": base.__doc__})
    return cls


def _short_reason(err: Exception, job) -> str:
    state = getattr(job, "state", "?")
    first = str(err).strip().splitlines()
    text = " ".join(first[:2]) if first else type(err).__name__
    return f"the job process ended without a result (state {state}): {text[:300]}"


def _optuna_class():
    try:
        from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper as base
    except ImportError:
        raise ImportError(
            "optbench.sweeps.OptunaSweeper needs the Optuna sweeper. Fix: pip install 'optbench[optuna]'."
        ) from None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        base.setup(self, hydra_context=hydra_context, task_function=task_function, config=config)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)  # SQLite creates its file, not the folder
        OmegaConf.save(config, sweep_dir / "multirun.yaml")
        impl = self.sweeper
        impl.job_idx = existing_trials(impl.storage, impl.study_name)

    return type("OptunaSweeper", (base,), {"setup": setup, "__module__": __name__, "__qualname__": "OptunaSweeper",
                                           "__doc__": base.__doc__})


def existing_trials(storage: Any, study_name: str | None) -> int:
    """How many trials a stored study already holds (0 for a new study or no storage)."""
    if not storage or not study_name:
        return 0
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no such study yet
        return 0
    return len(study.get_trials(deepcopy=False))


_BUILT: dict[str, type] = {}


def __getattr__(name: str):  # PEP 562: build the plugin subclasses on first use
    if name in ("SlurmLauncher", "LocalLauncher", "OptunaSweeper"):
        if name not in _BUILT:
            _BUILT[name] = _optuna_class() if name == "OptunaSweeper" else _submitit_class(name)
        return _BUILT[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
