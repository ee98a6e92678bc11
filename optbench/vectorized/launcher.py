"""``hydra/launcher=vectorized``: a sweep's compatible jobs trained as one stacked model each.

A launch call has two phases.

1. **Collect.** Every job runs through Hydra exactly as under the basic launcher: its
   numbered folder, its composed config, its job logging, the ``optbench`` task
   function, which plans it (``optbench.jobs.plan_job``: fresh, resume, reuse or
   refuse). A ``fresh`` or ``resume`` plan that can be stacked is handed over
   (``optbench.vectorized.collect``) and the job returns at once; everything else is
   carried out by the job itself, as always: a refusal fails the job, a reuse prints
   its ``skipped:`` line, and a job that cannot be stacked (lbfgs...) trains alone
   after one line saying why.
2. **Train.** The handed-over jobs are grouped by ``grouping.group_key`` and the step
   they start from, in job order, and each group is cut into chunks of at most
   ``max_group`` members (5 jobs with ``max_group=2``: 2 + 2 + 1). For each chunk the
   launcher does what ``jobs.carry_out`` does for one job: take every member folder's
   lock, check that the folder is still as its plan saw it (else that member is
   refused, and the others train), write its ``.hydra/`` files, then call
   ``engine.train_group``. Each member's objective replaces its job's placeholder
   return value.

A stop signal during a group leaves every member ``interrupted`` with its own
checkpoint (the engine's part); the sweep then stops with the basic launcher's exit
code and a one-paragraph message, and the same command with ``skip_finished=true``
continues the group. Refused jobs end the sweep with exit code 2 and the list of them,
as under the basic launcher (``jobs.SweepJobRefused``).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Sequence

from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from optbench.errors import OptbenchError
from optbench.vectorized.collect import Collected, Collector, collecting

log = logging.getLogger(__name__)

#: the default of ``hydra.launcher.max_group`` (conf/hydra/launcher/vectorized.yaml says why)
MAX_GROUP = 64


class VectorizedLauncher(Launcher):
    """Hydra's Launcher interface; Hydra finds it as ``hydra_plugins.optbench_vectorized_launcher.VectorizedLauncher``."""

    def __init__(self, max_group: int = MAX_GROUP) -> None:
        super().__init__()
        self.max_group = max_group
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self.compose = None  # (master config, a job's overrides) -> the job's composed config

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from optbench.compat import compose_sweep_jobs_once

        if isinstance(self.max_group, bool) or not isinstance(self.max_group, int) or self.max_group < 1:
            raise OptbenchError(
                f"hydra.launcher.max_group={self.max_group!r} is not a whole number of members of at least 1. "
                "Fix: pass e.g. hydra.launcher.max_group=16 (members trained as one stacked model; memory grows "
                "with it), or leave it at its default."
            )
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        self.compose = compose_sweep_jobs_once(hydra_context.config_loader)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Run the batch's jobs (groupable ones stacked); their JobReturns in job order."""
        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs locally, compatible ones stacked "
                 f"(at most {self.max_group} per group)")
        collector = Collector()
        runs: list[JobReturn] = []
        with collecting(collector):
            for offset, overrides in enumerate(job_overrides):
                idx = initial_job_idx + offset
                log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
                sweep_config = self.compose(self.config, list(overrides))  # the sweeper's validation composed it
                with open_dict(sweep_config):
                    sweep_config.hydra.job.id = idx
                    sweep_config.hydra.job.num = idx
                collector.position, collector.num = offset, idx
                runs.append(run_job(hydra_context=self.hydra_context, task_function=self.task_function,
                                    config=sweep_config, job_dir_key="hydra.sweep.dir",
                                    job_subdir_key="hydra.sweep.subdir"))
                configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        for chunk in chunks(collector.jobs, self.max_group):
            train_chunk(chunk, runs, sweep_dir)
        return runs


def chunks(jobs: list[Collected], max_group: int) -> list[list[Collected]]:
    """Jobs with equal keys, in order of their first job, cut into runs of at most ``max_group``."""
    by_key: dict[tuple, list[Collected]] = {}
    for job in jobs:
        by_key.setdefault(job.key, []).append(job)
    return [members[start:start + max_group] for members in by_key.values()
            for start in range(0, len(members), max_group)]


def group_name(chunk: list[Collected]) -> str:
    """The group's name in each member's summary: ``g`` and its first job's number (unique in a sweep)."""
    return f"g{chunk[0].num}"


def train_chunk(chunk: list[Collected], runs: list[JobReturn], sweep_dir: Path) -> None:
    """Lock, check and train one group; set each member's JobReturn. Exits the sweep on a stop signal."""
    from optbench import jobs, stop_signal
    from optbench import run_folder as rf
    from optbench.train.console import RunConsole

    console = RunConsole(quiet=all(job.quiet for job in chunk))
    locks, ready = [], []
    try:
        for job in chunk:
            refusal = _take(job, locks)
            if refusal is None:
                ready.append(job)
            else:
                _refuse(job, refusal, runs, sweep_dir, console)
        if not ready:
            return
        stop_signal.on_stop_before_training(
            lambda signum: [jobs._mark_interrupted(job.plan, job.overrides, signum) for job in ready])
        try:
            with _launcher_log_off():
                summaries = _train(ready, group_name(chunk), console)
        except OptbenchError as err:  # as a job's would: the sweep ends with its message
            console.error(str(err), logged=False)
            sys.exit(err.exit_code)
        except Exception as err:  # a bug: Hydra's failed-job report, with its traceback, for every member
            for job in ready:
                runs[job.position].status, runs[job.position].return_value = JobStatus.FAILED, err
            return
        finally:
            stop_signal.clear_stop_hook()
    finally:
        for lock in locks:
            lock.release()
    for job, summary in zip(ready, summaries):
        runs[job.position].return_value = jobs.objective(summary, job.plan.run_cfg.objective)
    stopped = [(job, summary) for job, summary in zip(ready, summaries) if summary.get("status") == rf.INTERRUPTED]
    if stopped:
        stop_signal.forward()  # a launcher's own handler (submitit's), as carry_out does
        error = jobs.SweepInterrupted(jobs.stopped_group_message([job.plan.folder for job, _ in stopped], sweep_dir,
                                                                 stopped[0][1]))
        if stop_signal.received() is not None:
            error.exit_code = stop_signal.exit_code(stop_signal.received())
        console.error(str(error), logged=False)
        sys.exit(error.exit_code)


@contextlib.contextmanager
def _launcher_log_off():
    """While a group trains, the root logger has no handler: the engine writes each member's optbench.log,
    and the launcher's console handler must not print their lines (a basic-launcher job's logging is file-only)."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    for handler in handlers:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.addHandler(handler)


def _take(job: Collected, locks: list) -> str | None:
    """Lock the member's folder and check it is as planned (``jobs.carry_out``); the refusal, or None."""
    from optbench import jobs
    from optbench import run_folder as rf

    lock = rf.FolderLock(job.plan.folder)
    try:
        lock.acquire()
    except OSError as err:
        return jobs._unwritable(job.plan.folder, err)
    except OptbenchError as err:  # another process holds it
        return str(err)
    locks.append(lock)
    if jobs.fingerprint(job.plan.folder) != job.plan.seen:
        return (f"{job.plan.folder} changed while this job was deciding what to do (another process wrote it). "
                "Nothing was written. Fix: rerun the command; give concurrent runs their own folders.")
    return None


def _refuse(job: Collected, message: str, runs: list[JobReturn], sweep_dir: Path, console) -> None:
    """The member fails as a refused basic-launcher job does: its paragraph now, in the sweep's list at the end."""
    from optbench.jobs import SweepJobRefused, refused_line

    console.error(message, logged=False)
    runs[job.position].status = JobStatus.FAILED
    runs[job.position].return_value = SweepJobRefused(refused_line(job.num, job.run_dir, message), sweep_dir,
                                                      job.run_dir)


def _train(ready: list[Collected], group: str, console) -> list[dict]:
    from optbench import jobs
    from optbench.vectorized.engine import Member, train_group

    for job in ready:
        if job.plan.message:
            console.out.print(job.plan.message, soft_wrap=True, markup=False)
        if job.plan.action == "fresh":
            jobs._write_hydra_files(job.plan.folder, job.hydra_files)
    members = [Member(cfg=job.plan.run_cfg, run_dir=Path(job.plan.folder), overrides=job.overrides,
                      resume=job.plan.payload) for job in ready]
    return train_group(members, group=group, console=console)
