"""One Hydra job: decide what to do with its folder, then do it.

:func:`plan_job` looks at the config and the folders it names and returns a
:class:`Plan` (``fresh``, ``resume``, ``reuse`` or ``refuse``) without touching any file.
:func:`carry_out` then takes the folder's lock, checks that the folder is still as the
plan saw it, and only then writes. So a refused job changes nothing that was there
before: not a completed run's files, not its ``.hydra/`` files (Hydra's own copy is
turned off, ``hydra.output_subdir: null``; the job writes them when it starts a run).

A folder that holds a run is never started afresh: a completed (or diverged) run is
final, an unfinished one is continued only by ``resume=`` or, for its own job, by
``skip_finished=true`` or a SLURM requeue.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from optbench import run_folder as rf
from optbench import stop_signal
from optbench.config.validate import validate
from optbench.errors import OptbenchError
from optbench.train.console import RunConsole

#: keys an override beside ``resume=`` may set: they change how the run reports, not what it computes
RESUME_MAY_SET = ("resume", "quiet", "checkpoint_every")


class JobRefused(OptbenchError):
    """The plan refused the job; ``recorded`` says whether a ``failed`` summary was written for it."""

    def __init__(self, message: str, recorded: bool = False):
        super().__init__(message)
        self.recorded = recorded


class SweepJobRefused(OptbenchError):
    """A refused sweep job, raised as an ordinary exception so that the launcher runs the other jobs.

    Hydra's sweeper raises the first one once every job ran; its text then lists every
    refused job of the sweep (each job folder whose summary says ``failed``).
    """

    def __init__(self, message: str, sweep_dir: Path | str | None = None, folder: Path | str | None = None):
        super().__init__(message, None if sweep_dir is None else str(sweep_dir), _absolute(folder))
        _REFUSED_IN_THIS_PROCESS.setdefault(_absolute(folder), message)

    def __str__(self) -> str:
        message, where, folder = self.args
        lines = {folder: message}
        for other, text in _REFUSED_IN_THIS_PROCESS.items():  # the basic launcher runs every job here
            lines.setdefault(other, text)
        if where and Path(where).is_dir():  # jobs of other processes (joblib) leave a failed summary
            for job in rf.iter_run_dirs(Path(where)):
                summary = rf.read_summary(job) or {}
                error = " ".join(str(summary.get("error") or "").split())
                if summary.get("status") == rf.FAILED:
                    lines.setdefault(_absolute(job), refused_line(job.name, job, error))
        lines = list(lines.values())
        head = (f"{len(lines)} jobs of the sweep were refused (every other job ran): "
                if len(lines) > 1 else "1 job of the sweep was refused (every other job ran): ")
        return head + " | ".join(lines)


def _absolute(folder: Path | str | None) -> str | None:
    """One key per folder, however the sweep dir was spelled (``multirun/...`` or ``/abs/multirun/...``)."""
    return None if folder is None else os.path.abspath(folder)


def refused_line(num, folder: Path | str, message: str) -> str:
    """``job <num> (<folder>): <message>``; the folder once, when the message already starts with it."""
    message, folder = str(message), _absolute(folder)
    return f"job {num}: {message}" if message.startswith(str(folder)) else f"job {num} ({folder}): {message}"


#: refused sweep jobs of this process: folder -> message
_REFUSED_IN_THIS_PROCESS: dict[str, str] = {}


class SweepInterrupted(OptbenchError):
    """SIGINT/SIGTERM stopped a sweep job: the sweep stops too (a single run just ends ``interrupted``)."""

    exit_code = 130


@dataclass
class Plan:
    action: str  # fresh | resume | reuse | refuse
    folder: Path  # where the job writes (or would have)
    run_cfg: DictConfig | None = None
    message: str = ""  # refuse: why; others: the line to print, if any
    reuse_from: Path | None = None
    payload: dict | None = None  # resume: the checked checkpoint
    may_record_failure: bool = False  # refuse: the folder holds no run, so a failed summary may go there
    seen: tuple = field(default_factory=tuple)  # the folder's state when planned


def fingerprint(folder: Path) -> tuple:
    """What the plan saw of a folder: each run file's size and modification time."""
    seen = []
    for name in (*rf.RUN_FILES, rf.REUSED):
        try:
            stat = (Path(folder) / name).stat()
            seen.append((name, stat.st_size, stat.st_mtime_ns))
        except OSError:
            seen.append((name, None, None))
    return tuple(seen)


def holds_run(folder: Path) -> bool:
    """Whether ``folder`` holds a run (or a reuse pointer) that a new run must not replace.

    A folder with only a ``failed`` summary and no rows is a refusal record, not a run.
    """
    folder = Path(folder)
    if any((folder / name).exists() for name in (rf.LOSSES, rf.EPOCHS, rf.CHECKPOINT, rf.REUSED)):
        return True
    if not (folder / rf.SUMMARY).exists():
        return False
    return rf.status_of(folder) != rf.FAILED


def wanted_hash(run_cfg: DictConfig) -> str:
    from optbench.config.hashing import config_hash

    return config_hash(OmegaConf.to_container(run_cfg, resolve=True))


# --------------------------------------------------------------------------- deciding


def plan_job(cfg: DictConfig, run_dir: Path, overrides: list[str], sweep_dir: Path | None = None,
             requeued: bool = False) -> Plan:
    """Decide what the job will do. Reads files, writes none."""
    run_dir = Path(run_dir)
    if rf.is_locked(run_dir):
        return _refusal(run_dir, str(rf.busy_error(run_dir)))
    try:
        run_cfg = validate(cfg)
    except OptbenchError as err:
        return _refusal(run_dir, str(err))
    try:
        if run_cfg.resume:
            return _plan_resume(run_cfg, run_dir, overrides)
        if run_cfg.skip_finished or requeued:
            plan = _plan_continue(run_cfg, run_dir, sweep_dir, requeued)
            if plan is not None:
                return plan
        if holds_run(run_dir):
            return _occupied(run_cfg, run_dir)
    except OptbenchError as err:
        return _refusal(run_dir, str(err))
    return Plan("fresh", run_dir, run_cfg, seen=fingerprint(run_dir))


def _refusal(folder: Path, message: str) -> Plan:
    free = not holds_run(folder)
    return Plan("refuse", folder, message=message, may_record_failure=free, seen=fingerprint(folder))


def _occupied(run_cfg: DictConfig, run_dir: Path) -> Plan:
    summary = rf.read_summary(run_dir) or {}
    status = summary.get("status") or ("skipped" if (run_dir / rf.REUSED).exists() else "unknown")
    same = summary.get("config_hash") == wanted_hash(run_cfg)
    if status in rf.UNFINISHED and same:
        fix = f"continue it with `optbench resume={run_dir}`, or start afresh in a new folder"
    elif run_cfg.skip_finished:
        fix = (f"give this sweep a new hydra.sweep.dir and add results_root={run_dir.parent} so that it reuses "
               "the completed runs there")
    else:
        fix = "leave hydra.run.dir / hydra.sweep.dir at their defaults (a new folder per command), or name a new folder"
    what = f"config {summary.get('config_hash')}" if summary.get("config_hash") else "an unknown config"
    return _refusal(run_dir, (
        f"{run_dir} already holds a run ({status}, {what}, overrides "
        f"{' '.join(summary.get('overrides') or []) or 'none'}); optbench never writes over a run. Fix: {fix}."
    ))


def _plan_resume(run_cfg: DictConfig, run_dir: Path, overrides: list[str]) -> Plan:
    folder = Path(run_cfg.resume).expanduser()
    summary = rf.read_summary(folder)
    if not summary or not isinstance(summary.get("config"), dict):
        raise OptbenchError(
            f"resume={folder} is not a run folder with a readable summary.json. "
            "Fix: point resume= at the folder of a run that was interrupted (it holds summary.json and checkpoint.pt)."
        )
    if rf.is_locked(folder):
        raise rf.busy_error(folder)
    status = summary.get("status")
    if status in rf.FINISHED or (status == rf.FAILED and not (folder / rf.CHECKPOINT).exists()):
        raise OptbenchError(
            f"resume={folder} is a {status} run: there is nothing to continue, and optbench never changes a "
            f"finished run. Fix: start a new run (drop resume=), e.g. with checkpoint_every=N to allow resuming it."
        )
    ignored = [o for o in overrides if _override_key(o) not in RESUME_MAY_SET and not _override_key(o).startswith("hydra.")]
    if ignored:
        raise OptbenchError(
            f"resume= continues a run with the config it started with, so {' '.join(ignored)} cannot be applied "
            f"(only {', '.join(RESUME_MAY_SET[1:])} may change on resume). Fix: drop those overrides, or start a "
            "new run with them."
        )
    saved = dict(summary["config"])
    saved.update(resume=str(folder), quiet=run_cfg.quiet, checkpoint_every=_resume_checkpoint_every(run_cfg, saved))
    resumed_cfg = validate(OmegaConf.create(saved))
    payload = _checked_payload(folder, summary, resumed_cfg)
    return Plan("resume", folder, resumed_cfg, payload=payload, seen=fingerprint(folder),
                message=f"resuming {folder} from step {payload['loop']['step']}")


def _resume_checkpoint_every(run_cfg: DictConfig, saved: dict):
    return run_cfg.checkpoint_every if run_cfg.checkpoint_every is not None else saved.get("checkpoint_every")


def _override_key(override: str) -> str:
    key = override.split("=", 1)[0].lstrip("+~")
    return re.sub(r"@.*$", "", key)


def _checked_payload(folder: Path, summary: dict, run_cfg: DictConfig) -> dict:
    from optbench.train.checkpoint import check_payload, load_checkpoint

    if not (folder / rf.CHECKPOINT).exists():
        raise OptbenchError(
            f"resume={folder} has no {rf.CHECKPOINT}: only runs stopped by SIGINT/SIGTERM or saved with "
            "checkpoint_every=N can be resumed. Fix: point resume= at such a run folder, or start a new run."
        )
    payload = load_checkpoint(folder)
    expected = summary.get("config_hash")
    if expected != wanted_hash(run_cfg):
        raise rf.RunFolderError(
            f"{folder}/summary.json's config_hash ({expected}) does not match its own config, so the folder was "
            "changed by hand. Nothing was changed. Fix: start a new run."
        )
    check_payload(payload, folder, expected, run_cfg.optimizer.name)
    return payload


def _plan_continue(run_cfg: DictConfig, run_dir: Path, sweep_dir: Path | None, requeued: bool) -> Plan | None:
    """skip_finished / a SLURM requeue: reuse a completed run, or continue this job's unfinished one."""
    from optbench import sweeps

    wanted = wanted_hash(run_cfg)
    own = rf.read_summary(run_dir) or {}
    if own.get("config_hash") == wanted and own.get("status") in rf.FINISHED:
        return Plan("reuse", run_dir, run_cfg, reuse_from=run_dir, seen=fingerprint(run_dir),
                    message=f"skipped: config {wanted} already {own['status']} in this job's folder")
    if own.get("config_hash") == wanted and own.get("status") in rf.UNFINISHED and (run_dir / rf.CHECKPOINT).exists():
        payload = _checked_payload(run_dir, own, run_cfg)
        how = (f"was interrupted at step {own.get('steps')}" if own["status"] == rf.INTERRUPTED
               else "was left unfinished (its process died)")
        resumed = OmegaConf.merge(run_cfg, {"resume": str(run_dir)})
        return Plan("resume", run_dir, resumed, payload=payload, seen=fingerprint(run_dir),
                    message=f"continuing: config {wanted} {how} in {run_dir}; resuming from its checkpoint")
    if requeued and own.get("config_hash") == wanted and own.get("status") in rf.UNFINISHED:
        # SLURM restarted this very job before it saved a checkpoint: its partial rows are redone from step 0
        return Plan("fresh", run_dir, run_cfg, seen=fingerprint(run_dir),
                    message=f"restarting: config {wanted} was requeued by SLURM before its first checkpoint")
    if not run_cfg.skip_finished:
        return None
    earlier = sweeps.find_finished(run_cfg, run_dir, sweep_dir)
    if earlier is not None and not holds_run(run_dir):
        return Plan("reuse", run_dir, run_cfg, reuse_from=earlier, seen=fingerprint(run_dir),
                    message=f"skipped: config {wanted} already completed in {earlier} (skip_finished=true)")
    return None


# --------------------------------------------------------------------------- acting


def carry_out(plan: Plan, overrides: list[str], console: RunConsole, hydra_files: dict[str, str] | None = None,
              sweep_dir: Path | None = None) -> float:
    """Do what the plan says; return the sweep objective (lower is better; inf unless completed)."""
    if plan.action == "refuse":
        recorded = False
        if plan.may_record_failure:
            recorded = _record_failure(plan, overrides)
        raise JobRefused(plan.message, recorded=recorded)
    if plan.action == "reuse" and Path(plan.reuse_from).resolve() == Path(plan.folder).resolve():
        return _reuse(plan, overrides, console, hydra_files)  # writes nothing: no lock either
    lock = rf.FolderLock(plan.folder)
    try:
        lock.acquire()
    except OSError as err:
        raise JobRefused(_unwritable(plan.folder, err)) from None
    try:
        if fingerprint(plan.folder) != plan.seen:
            raise JobRefused(
                f"{plan.folder} changed while this job was deciding what to do (another process wrote it). Nothing "
                "was written. Fix: rerun the command; give concurrent runs their own folders."
            )
        if plan.action == "reuse":
            return _reuse(plan, overrides, console, hydra_files)
        summary = _train(plan, overrides, console, hydra_files)
    finally:
        lock.release()
    if summary.get("status") == rf.INTERRUPTED:
        stop_signal.forward()  # a launcher's own handler (submitit requeues the job on SIGUSR2)
        if sweep_dir is not None:
            error = SweepInterrupted(_stopped_message(plan.folder, sweep_dir, summary))
            if stop_signal.received() is not None:
                error.exit_code = stop_signal.exit_code(stop_signal.received())
            raise error
    return objective(summary, plan.run_cfg.objective)


def _train(plan: Plan, overrides: list[str], console: RunConsole, hydra_files: dict[str, str] | None) -> dict:
    """Start or resume the run; a stop signal before training began still leaves an ``interrupted`` summary."""
    stop_signal.on_stop_before_training(lambda signum: _mark_interrupted(plan, overrides, signum))
    try:
        if plan.message:
            console.out.print(plan.message, soft_wrap=True, markup=False)
        if plan.action == "fresh":
            _write_hydra_files(plan.folder, hydra_files)
        from optbench.train.run import execute

        return execute(plan.run_cfg, plan.folder, overrides, console, resume=plan.payload)
    finally:
        stop_signal.clear_stop_hook()


def _mark_interrupted(plan: Plan, overrides: list[str], signum: int) -> None:
    """A stop signal before training began: the summary says ``interrupted`` (there is no checkpoint yet).

    Torch-free: the signal may have arrived while torch was being imported.
    """
    import datetime as dt

    path = Path(plan.folder) / rf.SUMMARY
    summary = rf.read_summary(plan.folder)
    if summary is not None and summary.get("status") != rf.RUNNING:
        return  # a resume stopped before it changed anything: the folder is as it was
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    if summary is None:
        from optbench.config.hashing import config_hash

        config = OmegaConf.to_container(plan.run_cfg, resolve=True)
        summary = {key: None for key in rf.SUMMARY_KEYS}
        summary.update(dataset=config["dataset"]["name"], optimizer=config["optimizer"]["name"],
                       impl=config["optimizer"]["impl"], seed=config["seed"], config=config,
                       config_hash=config_hash(config), overrides=list(overrides), steps=0, epochs_completed=0.0,
                       final={}, best={}, report={}, started_at=now)
    summary.update(status=rf.INTERRUPTED, finished_at=now,
                   error=f"stopped by {stop_signal.signal_name(signum)} before training began")
    try:
        rf.write_json_atomic(path, summary)
    except OSError:
        pass


def _unwritable(folder: Path, err: OSError) -> str:
    return (f"cannot write the run folder {folder}: {err.strerror or err}. Fix: make it writable, or send the run "
            "elsewhere with hydra.run.dir=<folder> (hydra.sweep.dir=<folder> for a sweep).")


def _record_failure(plan: Plan, overrides: list[str]) -> bool:
    """A refused job still leaves a summary.json that says why, in a folder that holds no run."""
    from optbench.train.run import write_failure

    try:
        with rf.FolderLock(plan.folder):
            if holds_run(plan.folder):
                return False
            write_failure(plan.folder, None, overrides, plan.message)
    except (OSError, rf.RunFolderError):
        return False
    return True


def _write_hydra_files(folder: Path, hydra_files: dict[str, str] | None) -> None:
    for name, text in (hydra_files or {}).items():
        path = Path(folder) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        rf.write_bytes_atomic(path, text.encode())


def _reuse(plan: Plan, overrides: list[str], console: RunConsole, hydra_files: dict[str, str] | None) -> float:
    """Point this job at a finished run of the same config, in one line, without training."""
    summary = rf.read_json(Path(plan.reuse_from) / rf.SUMMARY)
    console.out.print(plan.message, soft_wrap=True, markup=False)
    if Path(plan.reuse_from).resolve() != Path(plan.folder).resolve():
        marker = {"status": rf.SKIPPED, "reused_run": str(plan.reuse_from), "config_hash": summary["config_hash"],
                  "overrides": list(overrides)}
        _write_hydra_files(plan.folder, hydra_files)
        rf.write_json_atomic(Path(plan.folder) / rf.REUSED, marker)
    return objective(summary, plan.run_cfg.objective)


def _stopped_message(run_dir: Path, sweep_dir: Path, summary: dict) -> str:
    stopped = (f"the sweep was stopped: job {run_dir} was interrupted at step {summary.get('steps')} "
               f"(checkpoint saved; `optbench resume={run_dir}` finishes that run alone).")
    if "optuna" in _sweeper_target():
        return (f"{stopped} Fix: to go on with the study, rerun the same command: it loads the study from its "
                "storage and adds new trials (the interrupted trial is marked failed there on the next start).")
    return (f"{stopped} Fix: to go on, rerun the same command with hydra.sweep.dir={sweep_dir} skip_finished=true; "
            "it reuses the completed jobs, continues the interrupted one from its checkpoint and runs the rest.")


def stopped_group_message(folders: list[Path], sweep_dir: Path, summary: dict) -> str:
    """The vectorized launcher's ``_stopped_message``: a stop signal interrupted a stacked group of jobs."""
    names = ", ".join(Path(folder).name for folder in folders)
    stopped = (f"the sweep was stopped: {len(folders)} job(s) of a vectorized group ({names} in {sweep_dir}) were "
               f"interrupted at step {summary.get('steps')} (each member's checkpoint saved; `optbench "
               f"resume=<its folder>` finishes one run alone).")
    if "optuna" in _sweeper_target():
        return (f"{stopped} Fix: to go on with the study, rerun the same command: it loads the study from its "
                "storage and adds new trials (the interrupted trials are marked failed there on the next start).")
    return (f"{stopped} Fix: to go on, rerun the same command with hydra.sweep.dir={sweep_dir} skip_finished=true; "
            "it reuses the completed jobs, continues the interrupted group from its checkpoints and runs the rest.")


def _sweeper_target() -> str:
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().sweeper.get("_target_", "")).lower()
    except Exception:  # outside Hydra
        return ""


def objective(summary: dict, name: str) -> float:
    """The value an Optuna sweep minimises (test accuracy is negated); inf unless the run completed.

    inf is what a diverged run scores: Optuna (2.10, with SQLite storage too) stores it
    as a COMPLETE trial with the worst value, so the sampler learns to avoid that region
    and the study goes on. A refused job raises instead and is stored as FAIL.
    """
    if summary.get("status") != rf.COMPLETED:
        return math.inf
    final, best = summary.get("final") or {}, summary.get("best") or {}
    value = {
        "final_train_loss": final.get("loss") if final.get("train_loss") is None else final["train_loss"],
        "best_test_loss": best.get("test_loss"),
        "test_acc": None if best.get("test_acc") is None else -best["test_acc"],
    }[name]
    return math.inf if value is None or not math.isfinite(value) else float(value)


def sweep_dir() -> Path | None:
    """The sweep dir when Hydra runs this job as part of a multirun, else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return None
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return None
        return Path(str(hydra_cfg.sweep.dir))
    except Exception:  # outside Hydra, or an unresolvable sweep dir: behave like a single run
        return None


def run_validated(cfg: DictConfig, run_dir: Path, overrides: list[str], console: RunConsole,
                  hydra_files: dict[str, str] | None = None) -> float:
    """Plan, then carry out, one job (the ``optbench`` task function's body).

    Under ``hydra/launcher=vectorized`` a fresh or resume plan that can be stacked is
    handed to that launcher instead (``optbench.vectorized.collect``), which trains it
    in a group after collecting the sweep; the job then returns a placeholder objective.
    """
    from optbench.compat import slurm_requeued

    where = sweep_dir()
    plan = plan_job(cfg, run_dir, overrides, where, requeued=slurm_requeued())
    if plan.action == "resume" and Path(plan.folder).resolve() != Path(run_dir).resolve():
        _remove_if_empty(Path(run_dir))  # Hydra made it; the run continues in its own folder
        _move_job_log(Path(plan.folder))
    if where is not None and _collected(plan, run_dir, overrides, console, hydra_files):
        from optbench.vectorized.collect import PENDING

        return PENDING  # hydra/launcher=vectorized trains it in a group and sets the objective then
    return carry_out(plan, overrides, console, hydra_files, where)


def _collected(plan: Plan, run_dir: Path, overrides: list[str], console: RunConsole,
               hydra_files: dict[str, str] | None) -> bool:
    """Whether the vectorized launcher, collecting this sweep's jobs, took the plan for a stacked group."""
    from optbench.vectorized.collect import current  # torch-free

    collector = current()  # None unless that launcher is collecting this sweep's jobs
    return collector is not None and collector.offer(plan, run_dir, overrides, console, hydra_files)


def _move_job_log(folder: Path) -> None:
    import logging

    for handler in logging.getLogger().handlers:
        if isinstance(handler, rf.RunLogHandler):
            handler.move_to(folder)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
