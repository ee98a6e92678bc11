"""K compatible runs trained as one stacked model; each member writes exactly its own run folder.

The loop is ``train/trainer.py``'s, run in lockstep for K members that share the loop's
shape (``grouping.group_key``): one stacked step per step
(:class:`~optbench.vectorized.stack.StackedModel`,
:class:`~optbench.vectorized.optimizers.StackedOptimizer`, per-member clipping), and
per member the trainer's bookkeeping, decision for decision:

* member i starts from its own run's weights (``torch.manual_seed(seed_i)`` then
  ``problem.make_model()``, as ``train.run.prepare``), takes its own batch order (its
  seed's ``epoch_generator``; for linreg its own data, drawn from its seed too), logs
  the same rows at the same steps (loss every ``log_every`` steps and at the last one,
  lr, the problem's step columns, the diagnostics columns), writes the same epoch rows
  and the same summary (final, best, status, ``diverged_at_step``), plus ``engine``;
* losses stay on the device between log points, as in the trainer; at each check point
  (a logged step, a checkpoint step, an epoch's end, a stop) the window of unlogged
  ``[K]`` losses is checked once, and a member whose loss turned non-finite is logged
  at its first non-finite step and frozen: its rows, epoch row and summary end where
  its own run's would, status ``diverged``. The stack keeps computing its slices (every
  operation is per member: per-member matmuls and losses, elementwise updates,
  per-member clipping norms), nothing of it reaches another member, and nothing of it
  is recorded after the freeze;
* a stop signal (``optbench.stop_signal``) ends every unfinished member at the next step
  boundary as ``interrupted``, with its own checkpoint.pt in the ordinary format (its
  model's state_dict, its own optimizer's and scheduler's state_dict, its loop state),
  so ``optbench resume=<member dir>`` or a vectorized rerun with ``skip_finished=true``
  continues it; :func:`train_group` restacks resumed members (one resume step per group).

Timing: a member's ``wall_time_s``, ``epoch_time_s``, ``train_time_s`` and
``total_time_s`` are its group's: the stacked step's time (the whole group's work per
step), and the group's time from its start to the member's summary.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from optbench import compat, stop_signal
from optbench.optim.registry import build_optimizer, hyperparameters
from optbench.problems import data_key, make_problem
from optbench.problems.base import Problem
from optbench.run_folder import CHECKPOINT, DIAGNOSTIC_COLUMNS, EPOCHS, FAILED, INTERRUPTED, LOG, RunLogHandler
from optbench.train.checkpoint import restore, save_checkpoint
from optbench.train.console import RunConsole
from optbench.train.device import resolve_device
from optbench.train.recorder import RunRecorder
from optbench.train.run import WriteError, _best, _final, _now, _write_error, base_summary
from optbench.train.schedules import make_scheduler
from optbench.train.trainer import LoopState, Outcome, epoch_generator, epoch_row, planned_steps
from optbench.vectorized.clipping import make_stacked_clipper
from optbench.vectorized.columns import StepColumns
from optbench.vectorized.diagnostics import StackedDiagnostics
from optbench.vectorized.grouping import group_key
from optbench.vectorized.optimizers import StackedOptimizer
from optbench.vectorized.stack import StackedModel

#: optbench.log's line format (conf/hydra/job_logging/optbench.yaml)
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


@dataclass
class Member:
    """One run of a group: its validated config, its own job folder (locked by the launcher), its overrides,
    and its checked checkpoint payload when it resumes (``jobs.Plan.payload``)."""

    cfg: DictConfig
    run_dir: Path
    overrides: list[str]
    resume: dict | None = None


class _Run:
    """One member's side: its problem, its own model (parameters = views of its slices), optimizer and
    scheduler (for checkpoints), its recorder and loop state, and how it ended."""

    def __init__(self, index: int, member: Member, problem: Problem, model, optimizer, scheduler):
        self.index, self.member = index, member
        self.cfg, self.run_dir = member.cfg, Path(member.run_dir)
        self.problem, self.model, self.optimizer, self.scheduler = problem, model, optimizer, scheduler
        self.state = LoopState()
        self.summary: dict = {}
        self.recorder: RunRecorder | None = None
        self.console = RunConsole(quiet=True)
        self.outcome: Outcome | None = None


class _Weights:
    """``model.state_dict()`` as compact copies: the member's parameters are views of the whole stack."""

    def __init__(self, model):
        self.model = model

    def state_dict(self) -> dict:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}


@contextlib.contextmanager
def _member_log(run_dir: Path):
    """The ``optbench`` logger writes to this member's optbench.log only, for the duration."""
    logger = logging.getLogger("optbench")
    handler = RunLogHandler(str(Path(run_dir) / LOG))
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
        handler.close()


class _Batches:
    """Each member's minibatches of an epoch, stacked: ``(inputs[K, B, ...], targets[K, B, ...])``.

    Problems with the default ``Problem.batches`` (a seeded permutation sliced into index
    batches): one gather of all members' index rows per step, from the shared data or
    from the members' own data stacked ``[K, N, ...]``; members of one seed on shared
    data gather one batch, expanded (a view) over the K members. Any other problem: its own
    ``batches`` per member, stacked.
    """

    def __init__(self, problems: Sequence[Problem], seeds: Sequence[int], batch_size: int):
        self.problems, self.seeds, self.batch_size = list(problems), list(seeds), batch_size
        self.default = all(type(p).batches is Problem.batches for p in self.problems)
        self.shared = all(p is self.problems[0] for p in self.problems)
        if self.default:
            tensors = [p.train_tensors() for p in (self.problems[:1] if self.shared else self.problems)]
            if self.shared:
                self.inputs, self.targets = tensors[0]
            else:
                self.inputs = torch.stack([t[0] for t in tensors])
                self.targets = torch.stack([t[1] for t in tensors])
            self.device = self.inputs.device
            self.rows = torch.arange(len(self.problems), device=self.device)[:, None]
        #: every member draws the same batches (one seed, one problem): gathered once, seen K times
        self.same = self.default and self.shared and len(set(self.seeds)) == 1

    def epoch(self, epoch: int, skip: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self.default:
            yield from self._generic(epoch, skip)
            return
        n = self.problems[0].num_train
        seeds = self.seeds[:1] if self.same else self.seeds  # one seed: one permutation serves every member
        orders = torch.stack([torch.randperm(n, generator=epoch_generator(seed, epoch)) for seed in seeds])
        orders = orders.to(self.device)
        k = len(self.seeds)
        for start in range(skip * self.batch_size, n, self.batch_size):
            idx = orders[:, start:start + self.batch_size]
            if self.same:
                inputs, targets = self.inputs.index_select(0, idx[0]), self.targets.index_select(0, idx[0])
                yield inputs.expand(k, *inputs.shape), targets.expand(k, *targets.shape)
            elif self.shared:
                flat = idx.reshape(-1)
                yield (self.inputs.index_select(0, flat).view(k, -1, *self.inputs.shape[1:]),
                       self.targets.index_select(0, flat).view(k, -1, *self.targets.shape[1:]))
            else:
                yield self.inputs[self.rows, idx], self.targets[self.rows, idx]

    def _generic(self, epoch: int, skip: int):
        streams = [p.batches(self.batch_size, epoch_generator(seed, epoch)) for p, seed in zip(self.problems,
                                                                                                self.seeds)]
        for stream in streams:
            for _ in range(skip):
                next(stream)
        for batches in zip(*streams):
            yield torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])


def _build_runs(members: Sequence[Member], device: torch.device, total_steps_of) -> list[_Run]:
    """Each member's problem, model, optimizer and scheduler, as ``train.run.prepare`` builds them."""
    problems: dict = {}
    runs = []
    for i, member in enumerate(members):
        cfg = member.cfg
        key = data_key(cfg)  # members whose data is the same share one problem
        if key not in problems:
            problems[key] = make_problem(cfg, device)
        problem = problems[key]
        torch.manual_seed(cfg.seed)  # the member's own initial weights
        model = problem.make_model()
        with compat.dynamo_stays_unimported():
            optimizer = build_optimizer(model.parameters(), cfg.optimizer.name, cfg.optimizer.impl,
                                        hyperparameters(OmegaConf.to_container(cfg.optimizer)))
        scheduler = make_scheduler(optimizer, cfg.schedule, total_steps_of(problem))
        runs.append(_Run(i, member, problem, model, optimizer, scheduler))
    return runs


class _Group:
    """The lockstep loop (``Trainer._loop``'s structure) over the members' runs."""

    def __init__(self, runs: list[_Run], group: str, console: RunConsole, started: float):
        self.runs, self.group, self.console, self.started = runs, group, console, started
        cfg = runs[0].cfg
        problem = runs[0].problem
        self.batch_size, self.epochs, self.log_every = cfg.batch_size, cfg.epochs, cfg.log_every
        self.steps_per_epoch = problem.steps_per_epoch(cfg.batch_size)
        self.total_steps = planned_steps(self.steps_per_epoch, cfg.epochs, cfg.steps)
        self.checkpoint_every = cfg.checkpoint_every
        self.batches = _Batches([r.problem for r in runs], [r.cfg.seed for r in runs], cfg.batch_size)
        probe = next(self.batches.epoch(0, 0)) if self.batches.default else None
        self.model = StackedModel(problem, [r.model for r in runs], probe=probe, shared_inputs=self.batches.same)
        self.leaves = self.model.leaves
        self.optimizer = StackedOptimizer(
            cfg.optimizer.name, cfg.optimizer.impl, hyperparameters(OmegaConf.to_container(cfg.optimizer)),
            [r.optimizer for r in runs], self.leaves, cfg.schedule, self.total_steps)
        if runs[0].member.resume is not None:
            self.optimizer.load_members([r.optimizer for r in runs], [r.scheduler for r in runs])
        self.clipper = make_stacked_clipper(cfg.grad_clip.kind, [r.cfg.grad_clip.threshold for r in runs],
                                            self.leaves[0])
        self.diagnostics = StackedDiagnostics(self.leaves) if cfg.diagnostics else None
        self.step_columns = StepColumns([r.problem for r in runs], self.model.params)
        self.cuda = self.leaves[0].device.type == "cuda"
        self.active = list(runs)
        #: one per member whose own folder the OS refused to write (that member failed; the others went on)
        self.write_errors: list[WriteError] = []
        #: (losses [K], step, batch_in_epoch, examples_seen, lrs) of the steps since the last check
        self._unlogged: list[tuple] = []

    # ---- the stacked step -----------------------------------------------------------------
    def _step(self, batch) -> torch.Tensor:
        for p in self.leaves:
            p.grad = None
        losses = self.model.losses(batch)
        losses.sum().backward()  # the sum: each member's gradient is its own mean loss's
        if self.clipper is not None:
            self.clipper(self.leaves)
        self.optimizer.step()
        return losses.detach()

    def _clock(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    # ---- per-member bookkeeping (the trainer's) ---------------------------------------------
    @contextlib.contextmanager
    def writing(self, run: _Run):
        """A member's own writes. An OS error there fails that member alone, as it fails a sequential run
        (summary ``failed`` with the message, its CSVs ending on their last whole row); the others go on."""
        try:
            yield
        except OSError as err:
            self.write_failed(run, err)

    def write_failed(self, run: _Run, err: OSError) -> None:
        if run in self.active:
            self.active.remove(run)
        run.outcome = Outcome(FAILED)
        if run.summary:
            self._summarise(run, run.outcome)
        if run.recorder is not None:
            with contextlib.suppress(OSError):
                run.recorder.close()
        self.write_errors.append(_write_error(run.run_dir, err, run.summary))

    def _log(self, run: _Run, row: dict) -> None:
        run.recorder.log_step(row)
        run.state.last_loss, run.state.last_row = row["loss"], row

    def _check(self, exclude: Sequence[int] = ()) -> dict[int, Outcome]:
        """The window since the last check: each active member's first non-finite step, logged; they diverged."""
        window, self._unlogged = self._unlogged, []
        if not window:
            return {}
        finite = torch.isfinite(torch.stack([entry[0] for entry in window]))
        if bool(finite.all()):
            return {}
        bad = (~finite).any(dim=0).tolist()
        first = (~finite).int().argmax(dim=0).tolist()
        outcomes = {}
        for run in list(self.active):
            i = run.index
            if not bad[i] or i in exclude:
                continue
            losses, step, batch_in_epoch, examples_seen, lrs = window[first[i]]
            with self.writing(run):
                self._log(run, {"step": step, "epoch": run.state.epoch + batch_in_epoch / self.steps_per_epoch,
                                "examples_seen": examples_seen, "loss": float(losses[i]), "lr": lrs[i],
                                "wall_time_s": round(run.state.wall_time_s, 6)})
            if run.outcome is None:
                outcomes[i] = Outcome("diverged", diverged_at_step=step)
        return outcomes

    def _one_step(self, batch, epoch_sum: torch.Tensor) -> dict[int, Outcome]:
        step = self.active[0].state.step
        logged = step % self.log_every == 0 or step == self.total_steps - 1
        lrs = self.optimizer.lrs()
        before = {}
        if logged:
            before = self.step_columns.before([(r.index, r.problem, r.model) for r in self.active])
            if self.diagnostics is not None:
                self.diagnostics.before_step()
        started = self._clock()
        losses = self._step(batch)
        epoch_sum += losses
        self.optimizer.scheduler_step()
        elapsed = self._clock() - started
        examples = int(batch[0].shape[1]) if batch[0].dim() > 1 else 1
        for run in self.active:
            state = run.state
            state.step += 1
            state.batch_in_epoch += 1
            state.examples_seen += examples
            state.epoch_time_s += elapsed
            state.wall_time_s += elapsed
        if not logged:
            state = self.active[0].state
            self._unlogged.append((losses, step, state.batch_in_epoch, state.examples_seen, lrs))
            return {}
        outcomes = self._check()
        values = losses.tolist()
        extra = self.diagnostics.after_step() if self.diagnostics is not None else None
        after = self.step_columns([(r.index, r.problem, r.model) for r in self.active if r.index not in outcomes])
        for run in list(self.active):
            i, state = run.index, run.state
            if i in outcomes:
                continue
            row = {"step": step, "epoch": state.epoch + state.batch_in_epoch / self.steps_per_epoch,
                   "examples_seen": state.examples_seen, "loss": values[i], "lr": lrs[i], **before[i],
                   **after[i], "wall_time_s": round(state.wall_time_s, 6)}
            if extra is not None:
                row.update(extra[i])
            with self.writing(run):
                self._log(run, row)
            if run.outcome is not None:
                continue
            if not math.isfinite(values[i]):
                outcomes[i] = Outcome("diverged", diverged_at_step=step)
            else:
                state.best_loss = values[i] if state.best_loss is None else min(state.best_loss, values[i])
        self.console.advance(step + 1)
        return outcomes

    def _end_epoch(self, run: _Run, partial: bool) -> None:
        state = run.state
        if state.batch_in_epoch == 0:
            return
        row = epoch_row(state, self.steps_per_epoch, partial, run.problem, run.model)
        state.epoch_rows.append(row)
        run.recorder.log_epoch(row)
        with _member_log(run.run_dir):
            run.console.epoch(state.epoch, row)

    def _checkpoint(self, run: _Run) -> None:
        self.optimizer.export(run.index, run.optimizer, run.scheduler)
        try:
            save_checkpoint(run.run_dir, _Weights(run.model), run.optimizer, run.scheduler, run.state,
                            run.recorder.losses.rows, run.recorder.epochs.rows,
                            config_hash=run.summary["config_hash"], optimizer_name=run.cfg.optimizer.name)
        finally:
            run.optimizer.state.clear()

    def _finish(self, run: _Run, outcome: Outcome) -> None:
        """The member's summary, as ``train.run.execute`` writes it; the member leaves the loop."""
        run.outcome = outcome
        if run in self.active:
            self.active.remove(run)
        if outcome.status == INTERRUPTED:
            self._checkpoint(run)
        self._summarise(run, outcome)
        run.recorder.write_summary()
        run.recorder.close()
        if outcome.status != INTERRUPTED:
            (run.run_dir / CHECKPOINT).unlink(missing_ok=True)

    def _summarise(self, run: _Run, outcome: Outcome) -> None:
        state = run.state
        run.summary.update(
            status=outcome.status,
            diverged_at_step=outcome.diverged_at_step,
            steps=state.step,
            epochs_completed=round(state.epoch + state.batch_in_epoch / self.steps_per_epoch, 6),
            final=_final(state, run.problem.outputs),
            best=_best(state, run.problem.outputs),
            train_time_s=round(state.wall_time_s, 6),
            total_time_s=round(time.perf_counter() - self.started, 6),
            compile_time_s=None,
            report=run.problem.report(run.model),
            finished_at=_now(),
        )
        if outcome.status == INTERRUPTED and stop_signal.received() is not None:
            run.summary["error"] = f"stopped by {stop_signal.signal_name(stop_signal.received())}"

    def _freeze(self, outcomes: dict[int, Outcome], epoch_sum: torch.Tensor, end_epoch: bool = True) -> None:
        sums = epoch_sum.tolist()
        for run in list(self.active):
            if run.index in outcomes:
                run.state.epoch_loss_sum = sums[run.index]
                with self.writing(run):
                    if end_epoch:
                        self._end_epoch(run, partial=True)
                    self._finish(run, outcomes[run.index])

    # ---- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        while self.active:
            state = self.active[0].state
            if not (state.step < self.total_steps and state.epoch < self.epochs):
                break
            device = self.leaves[0].device
            epoch_sum = torch.tensor([r.state.epoch_loss_sum for r in self.runs], dtype=torch.float64, device=device)
            for batch in self.batches.epoch(state.epoch, state.batch_in_epoch):
                if stop_signal.should_stop():
                    outcomes = self._check()
                    self._freeze({r.index: outcomes.get(r.index, Outcome(INTERRUPTED)) for r in self.active},
                                 epoch_sum, end_epoch=False)
                    return
                outcomes = self._one_step(batch, epoch_sum)
                if not self.active:  # every member failed to write its folder
                    return
                save = bool(self.checkpoint_every) and self.active[0].state.step % self.checkpoint_every == 0
                if save:
                    outcomes.update(self._check(exclude=list(outcomes)))
                self._freeze(outcomes, epoch_sum)
                if not self.active:
                    return
                if save:
                    sums = epoch_sum.tolist()
                    for run in list(self.active):
                        run.state.epoch_loss_sum = sums[run.index]
                        with self.writing(run):
                            self._checkpoint(run)
                    if not self.active:
                        return
                if self.active[0].state.step >= self.total_steps:
                    break
            outcomes = self._check()
            sums = epoch_sum.tolist()
            for run in self.active:
                run.state.epoch_loss_sum = sums[run.index]
            self._freeze(outcomes, epoch_sum)
            if not self.active:
                return
            finished = self.active[0].state.batch_in_epoch >= self.steps_per_epoch
            for run in list(self.active):
                with self.writing(run):
                    self._end_epoch(run, partial=not finished)
            if not self.active:
                return
            if not finished:
                break
            for run in self.active:
                s = run.state
                s.epoch, s.batch_in_epoch, s.epoch_loss_sum, s.epoch_time_s = s.epoch + 1, 0, 0.0, 0.0
        for run in list(self.active):
            with self.writing(run):
                self._finish(run, Outcome("completed"))


def _check_members(members: Sequence[Member]) -> None:
    if not members:
        raise ValueError("train_group needs at least one member")
    keys = {group_key(m.cfg, m.resume) for m in members}
    if len(keys) != 1:
        raise ValueError("train_group's members must have equal grouping.group_key")


def train_group(members: list[Member], *, group: str, console: RunConsole) -> list[dict]:
    """Train ``members`` (equal ``grouping.group_key``) as one stacked model; return their summaries in order.

    Writes each member's losses.csv, epochs.csv, summary.json (with ``engine`` =
    ``{"kind": "vectorized", "group": group, "members": K, "member": i}``) and optbench.log
    lines; when a stop signal arrives, each unfinished member's checkpoint.pt.
    """
    started = time.perf_counter()
    _check_members(members)
    cfg = members[0].cfg
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    runs = _build_runs(members, device,
                       lambda problem: planned_steps(problem.steps_per_epoch(cfg.batch_size), cfg.epochs, cfg.steps))
    for run in runs:
        if run.member.resume is not None:
            run.state = restore(run.member.resume, run.model, run.optimizer, run.scheduler)
    loop = _Group(runs, group, console, started)
    k = len(runs)
    for run in runs:
        summary = base_summary(run.cfg, run.member.overrides, run.problem.outputs)
        summary.update(device=str(device), threads=torch.get_num_threads())
        if run.member.resume is not None:
            summary.update(resumed_from_step=run.state.step)
        summary["engine"] = {"kind": "vectorized", "group": group, "members": k, "member": run.index}
        run.summary = summary
        run.console.describe(run.problem.outputs)
        columns = tuple(run.problem.step_column_names) + (tuple(DIAGNOSTIC_COLUMNS) if run.cfg.diagnostics else ())
        with loop.writing(run):
            run.recorder = RunRecorder(run.run_dir, columns, summary, resume=run.member.resume,
                                       epoch_columns=run.problem.outputs.problem_columns(EPOCHS))
    title = f"{runs[0].problem.name}: {loop.total_steps} steps, batch {cfg.batch_size}"
    for run in list(loop.active):
        with loop.writing(run), _member_log(run.run_dir):
            run.console.start(title, loop.total_steps, done=run.state.step)
            logging.getLogger("optbench").info(f"vectorized: group {group}, member {run.index} of {k} "
                                               f"({loop.model.kind} forward, {loop.optimizer.update_kind} update)")
    stop_signal.training_began()
    console.start(f"vectorized group {group}: {k} members, {title}", loop.total_steps, done=runs[0].state.step)
    try:
        loop.run()
    except OSError as err:
        failing = next((r for r in runs if r.outcome is None), runs[0])
        for run in runs:
            if run.recorder is not None:
                run.recorder.close()
        raise _write_error(failing.run_dir, err, failing.summary) from None
    finally:
        console.stop()
    for run in runs:
        if run.outcome is None or run.outcome.status != FAILED:
            with _member_log(run.run_dir):
                run.console.finish(run.summary, str(run.run_dir))
    if loop.write_errors:  # after the other members finished, as one sequential run's write error ends a sweep
        raise _group_write_error(loop.write_errors)
    return [run.summary for run in runs]


def _group_write_error(errors: list[WriteError]) -> WriteError:
    """The first failed member's paragraph, naming how many others failed too."""
    message = str(errors[0])
    if len(errors) > 1:
        message += (f" {len(errors) - 1} other member(s) of the group failed the same way; their summary.json "
                    "files say which. The members that could write their folders trained on to their own end.")
    else:
        message += " The group's other members trained on to their own end (their summaries say how)."
    return WriteError(message)
