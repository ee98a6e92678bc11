"""One run, from a validated config to a finished run folder.

config -> problem (data, model, loss) + optimizer -> trainer loop -> recorder.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

import optbench
from optbench import compat, stop_signal
from optbench.config.hashing import config_hash
from optbench.errors import OptbenchError
from optbench.optim.registry import OPTIMIZERS, build_optimizer, hyperparameters
from optbench.problems import make_problem
from optbench.run_folder import (
    CHECKPOINT,
    DIAGNOSTIC_COLUMNS,
    EPOCHS,
    FAILED,
    GENERIC_OUTPUTS,
    INTERRUPTED,
    RUNNING,
    SUMMARY,
    SUMMARY_KEYS,
    Outputs,
    write_json_atomic,
)
from optbench.train.callbacks import Checkpointing, Diagnosing, Progress, Recording, StopOnSignal, process_callbacks
from optbench.train.checkpoint import restore, save_checkpoint
from optbench.train.clipping import make_clipper
from optbench.train.console import RunConsole
from optbench.train.device import resolve_device
from optbench.train.recorder import RunRecorder
from optbench.train.schedules import make_scheduler
from optbench.train.trainer import EagerStep, LoopSettings, LoopState, Trainer, optimized_params, planned_steps


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def base_summary(cfg: DictConfig, overrides: list[str], outputs: Outputs | None = None) -> dict:
    """summary.json at the start of a run: every key of ``run_folder.SUMMARY_KEYS``, in order.

    ``outputs``: the problem's description (``Problem.outputs``); null when the run failed before
    its problem was built.
    """
    config = OmegaConf.to_container(cfg, resolve=True)
    summary = dict.fromkeys(SUMMARY_KEYS)
    summary.update(
        status=RUNNING, dataset=cfg.dataset.name, optimizer=cfg.optimizer.name, impl=cfg.optimizer.impl,
        seed=cfg.seed, config=config, config_hash=config_hash(config), overrides=list(overrides), steps=0,
        outputs=None if outputs is None else outputs.to_json(),
        epochs_completed=0.0, final={}, best={}, total_time_s=0.0, train_time_s=0.0,
        threads=torch.get_num_threads(), report={},
        versions={"optbench": optbench.__version__, "torch": torch.__version__, "python": platform.python_version()},
        started_at=_now(),
    )
    return summary


def write_failure(run_dir: Path, cfg: DictConfig | None, overrides: list[str], message: str) -> None:
    """A run that could not start still leaves a summary.json that says why."""
    summary = base_summary(cfg, overrides) if cfg is not None else {"overrides": list(overrides), "status": RUNNING}
    summary.update(status=FAILED, error=message, finished_at=_now())
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(run_dir) / SUMMARY, summary)


def prepare(cfg: DictConfig, device: torch.device):
    """Problem, model and optimizer of a run; the model's initial weights depend only on the seed."""
    problem = make_problem(cfg, device)
    torch.manual_seed(cfg.seed)  # the same initial weights for every optimizer
    model = problem.make_model()
    with compat.dynamo_stays_unimported():
        optimizer = build_optimizer(model.parameters(), cfg.optimizer.name, cfg.optimizer.impl,
                                    hyperparameters(OmegaConf.to_container(cfg.optimizer)))
    return problem, model, optimizer


def execute(cfg: DictConfig, run_dir: Path, overrides: list[str] = (), console: RunConsole | None = None,
            resume: dict | None = None) -> dict:
    """Train one run into ``run_dir``; return its summary. Raises OptbenchError on bad input.

    ``resume`` is a checkpoint payload already loaded and checked against this run
    (``optbench.jobs`` does that before any file changes); nothing in the folder
    changes until its states have been restored into the fresh model and optimizer.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    console = console or RunConsole(quiet=cfg.quiet)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    problem, model, optimizer = prepare(cfg, device)
    spec = OPTIMIZERS[cfg.optimizer.name]
    total_steps = planned_steps(problem.steps_per_epoch(cfg.batch_size), cfg.epochs, cfg.steps)
    scheduler = make_scheduler(optimizer, cfg.schedule, total_steps)
    state = restore(resume, model, optimizer, scheduler) if resume else LoopState()

    summary = base_summary(cfg, overrides, problem.outputs)
    summary.update(device=str(device), threads=torch.get_num_threads())
    console.describe(problem.outputs)
    if resume:
        summary.update(resumed_from_step=state.step)
    try:
        columns = tuple(problem.step_column_names) + (tuple(DIAGNOSTIC_COLUMNS) if cfg.diagnostics else ())
        recorder = RunRecorder(run_dir, columns, summary, resume=resume,
                               epoch_columns=problem.outputs.problem_columns(EPOCHS))
    except OSError as err:
        raise _write_error(run_dir, err, summary) from None

    def checkpoint(loop_state: LoopState) -> None:
        save_checkpoint(run_dir, model, optimizer, scheduler, loop_state, recorder.losses.rows, recorder.epochs.rows,
                        config_hash=summary["config_hash"], optimizer_name=cfg.optimizer.name)

    try:
        clipper = make_clipper(cfg.grad_clip.kind, cfg.grad_clip.threshold)
        step, compile_time = EagerStep(problem, model, optimizer, clipper, spec.needs_closure), None
        if cfg.compile:
            from optbench.train.compiled import compile_step

            step, compile_time = compile_step(problem, model, optimizer, clipper, spec,
                                              batch_size=cfg.batch_size, scheduler=scheduler)
        callbacks = [Recording(recorder), Progress(console), StopOnSignal(stop_signal.should_stop),
                     Checkpointing(cfg.checkpoint_every, checkpoint)]
        if cfg.diagnostics:
            callbacks.append(Diagnosing(optimized_params(optimizer)))
        settings = LoopSettings(seed=cfg.seed, batch_size=cfg.batch_size, epochs=cfg.epochs, max_steps=cfg.steps,
                                log_every=cfg.log_every)
        trainer = Trainer(problem, model, optimizer, settings, step=step, scheduler=scheduler,
                          callbacks=callbacks + process_callbacks())
        stop_signal.training_began()
        try:
            outcome, state = trainer.run(state)
        finally:
            console.stop()
        if outcome.status == INTERRUPTED:
            checkpoint(state)
        summary.update(
            status=outcome.status,
            diverged_at_step=outcome.diverged_at_step,
            steps=state.step,
            epochs_completed=round(state.epoch + state.batch_in_epoch / trainer.steps_per_epoch, 6),
            final=_final(state, problem.outputs),
            best=_best(state, problem.outputs),
            train_time_s=round(state.wall_time_s, 6),
            total_time_s=round(time.perf_counter() - started, 6),
            compile_time_s=compile_time,
            report=problem.report(model),
            finished_at=_now(),
        )
        if outcome.status == INTERRUPTED and stop_signal.received() is not None:
            summary["error"] = f"stopped by {stop_signal.signal_name(stop_signal.received())}"
        recorder.write_summary()
    except OSError as err:
        recorder.close()
        raise _write_error(run_dir, err, summary) from None
    recorder.close()
    if outcome.status != INTERRUPTED:
        (run_dir / CHECKPOINT).unlink(missing_ok=True)
    console.finish(summary, str(run_dir))
    return summary


class WriteError(OptbenchError):
    """The OS refused to write the run folder (disk full, read-only, permission denied)."""

    exit_code = 1


def _write_error(run_dir: Path, err: OSError, summary: dict) -> WriteError:
    """The one-paragraph message for an OS error while writing; the summary says ``failed`` if it still can."""
    where = err.filename or run_dir
    message = (f"could not write the run folder {run_dir}: {err.strerror or err} ({where}). The CSVs end on their "
               "last whole row. Fix: free space or make the folder writable, or send the run elsewhere with "
               "hydra.run.dir=<folder> (hydra.sweep.dir=<folder> for a sweep).")
    summary.update(status=FAILED, error=message, finished_at=_now())
    try:
        write_json_atomic(run_dir / SUMMARY, summary)
    except OSError:
        _overwrite_in_place(run_dir / SUMMARY, summary)
    return WriteError(message)


def _overwrite_in_place(path: Path, summary: dict) -> None:
    """A full disk has no room for a temp file, but the summary's own blocks can take the new text."""
    import json

    try:
        with open(path, "r+b") as handle:
            handle.write((json.dumps(summary, indent=2, default=str) + "\n").encode())
            handle.truncate()
    except OSError:
        pass


def _final(state: LoopState, outputs: Outputs = GENERIC_OUTPUTS) -> dict:
    """``loss`` (last logged), ``train_loss`` (last epoch) and each of the problem's own metric columns:
    its last epoch's value (epochs.csv) or its last logged one (losses.csv)."""
    last_epoch = state.epoch_rows[-1] if state.epoch_rows else {}
    final = {"loss": state.last_loss, "train_loss": last_epoch.get("train_loss")}
    for column in outputs.metrics(own=True):
        final[column.name] = (last_epoch if column.file == EPOCHS else state.last_row).get(column.name)
    return final


def _best(state: LoopState, outputs: Outputs = GENERIC_OUTPUTS) -> dict:
    """``loss``: the least logged; ``train_loss`` and each own epochs.csv metric: the best over epochs
    (maximum where higher is better). Logged columns keep no history here, so they have no best."""
    rows = state.epoch_rows

    def pick(column):
        values = [r[column.name] for r in rows if r.get(column.name) is not None and r[column.name] == r[column.name]]
        return column.best(values) if values else None

    best = {"loss": state.best_loss}
    for column in (outputs.column("train_loss"), *outputs.metrics(EPOCHS, own=True)):
        best[column.name] = pick(column)
    return best
