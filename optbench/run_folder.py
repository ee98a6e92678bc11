"""The run folder's format: its file names, columns, statuses and summary schema, its
atomic writers, its lock, and the tolerant reader of its files (docs/run-format.md).

This is the one module that spells the format. The recorder, jobs, sweeps, the
plotter, the report and the tests' fixtures all use it. It imports neither torch nor
the trainer, so readers stay light.

Writers never leave a half-written file behind: JSON and rewritten CSVs go to a temp
file in the same folder and are renamed over the old one (``os.replace`` is atomic on
POSIX); CSV rows are appended whole and flushed. A folder has at most one writer at a
time: :class:`FolderLock` holds an exclusive ``flock`` on ``.optbench.lock`` for the
writer's whole life, and the kernel drops it when the process dies, however it dies.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from optbench.csv_cells import csv_cell
from optbench.errors import OptbenchError

# --------------------------------------------------------------------------- names

SUMMARY = "summary.json"
LOSSES = "losses.csv"
EPOCHS = "epochs.csv"
CHECKPOINT = "checkpoint.pt"
REUSED = "reused.json"
LOCK = ".optbench.lock"
LOG = "optbench.log"
HYDRA_DIR = ".hydra"
HYDRA_CONFIG = ".hydra/config.yaml"
HYDRA_OVERRIDES = ".hydra/overrides.yaml"
HYDRA_SETTINGS = ".hydra/hydra.yaml"
MULTIRUN_YAML = "multirun.yaml"

#: the files a run writes (besides Hydra's), in the order a reader wants them
RUN_FILES = (SUMMARY, LOSSES, EPOCHS, CHECKPOINT)
#: files whose presence makes a folder a run folder
RUN_MARKERS = (SUMMARY, LOSSES, REUSED, HYDRA_CONFIG)

# --------------------------------------------------------------------------- columns

#: losses.csv columns every run writes; a problem appends its own (``Problem.step_column_names``)
LOSS_COLUMNS = ("step", "epoch", "examples_seen", "wall_time_s", "loss", "lr")
#: epochs.csv columns, the same for every run (empty cells where a problem has no test set)
EPOCH_COLUMNS = ("epoch", "train_loss", "test_loss", "test_acc", "epoch_time_s")
#: the columns a reader cannot do without
LOSS_REQUIRED = ("step", "epoch", "examples_seen", "wall_time_s", "loss")
EPOCH_REQUIRED = ("epoch", "train_loss")
#: columns a problem may add to losses.csv, and what each means (docs/run-format.md)
PROBLEM_LOSS_COLUMNS = {
    "full_loss": "linreg only: loss on all examples after the update (seed 001's curve)",
    "suboptimality": "linreg and quadratic: `full_loss - f*`",
    "x": "quadratic only: the iterate before the update",
    "f_x": "quadratic only: f(x) = 4x^2",
    "grad_x": "quadratic only: f'(x) = 8x",
}

#: columns ``diagnostics=true`` adds to losses.csv at each logged step
DIAGNOSTIC_COLUMNS = {
    "grad_norm": "diagnostics=true: L2 norm of the gradient over all parameters, as the optimizer received it "
                 "(after clipping)",
    "update_norm": "diagnostics=true: L2 norm of theta_t - theta_(t-1) over all parameters",
    "update_ratio": "diagnostics=true: update_norm / L2 norm of theta_(t-1)",
}

# --------------------------------------------------------------------------- statuses

RUNNING, COMPLETED, DIVERGED, INTERRUPTED, FAILED, SKIPPED = (
    "running", "completed", "diverged", "interrupted", "failed", "skipped")
#: every status a summary.json (or a reused.json, for ``skipped``) may hold
STATUSES = (RUNNING, COMPLETED, DIVERGED, INTERRUPTED, FAILED, SKIPPED)
#: a run that reached its end: nothing may change its files any more
FINISHED = (COMPLETED, DIVERGED)
#: a run that stopped before its end and may be continued from its checkpoint
UNFINISHED = (RUNNING, INTERRUPTED)

# --------------------------------------------------------------------------- summary.json

#: every key of summary.json, in the order it is written, with its meaning
SUMMARY_KEYS = {
    "status": "one of the statuses above",
    "dataset": "the problem's dataset name",
    "optimizer": "the optimizer's name",
    "impl": "scratch or builtin",
    "seed": "the run's seed",
    "device": "the torch device it ran on (null before it started)",
    "config": "the resolved, validated run config (no `hydra` node)",
    "config_hash": "sha256 (first 16 hex digits) of `config` without output, launcher and console settings",
    "overrides": "the job's command-line overrides",
    "steps": "optimizer updates done",
    "epochs_completed": "finished epochs (float; a partial epoch counts fractionally)",
    "diverged_at_step": "the first step whose loss was non-finite, else null",
    "outputs": "what the run's columns mean and how to show them (`Outputs.to_json`; see below)",
    "final": "`loss` (last logged), `train_loss` (last epoch) and each metric column of `outputs` at the end "
             "(null when absent)",
    "best": "`loss` minimum over logged steps; `train_loss` and each epochs.csv metric of `outputs` over epochs: "
            "minimum, or maximum where higher is better",
    "total_time_s": "wall time of the whole job, from its start to its summary",
    "train_time_s": "wall time of the training steps (the last row's `wall_time_s`)",
    "compile_time_s": "seconds spent compiling the step (null unless `compile=true`)",
    "threads": "torch intra-op threads used",
    "report": "the problem's final report (linreg: `w`, `b`, `true_w`, `true_b`; quadratic: `x`)",
    "error": "the message, when status is `failed` or `interrupted`",
    "versions": "`optbench`, `torch`, `python`",
    "started_at": "ISO-8601 time the job started",
    "finished_at": "ISO-8601 time the job ended (null while running)",
}
#: keys present only in some summaries
OPTIONAL_SUMMARY_KEYS = {
    "resumed_from_step": "the step a resumed run continued from",
    "engine": "how the run was trained, e.g. `{\"kind\": \"vectorized\", ...}`; absent for a plain run",
}
#: reused.json's keys (a job skipped by ``skip_finished=true``)
REUSED_KEYS = ("status", "reused_run", "config_hash", "overrides")


class RunFolderError(OptbenchError):
    """A run folder (or file in one) that cannot be used; ``str(err)`` is one paragraph naming the fix."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


# --------------------------------------------------------------------------- outputs (summary.json's `outputs`)


@dataclass(frozen=True)
class Column:
    """One column a run writes, and how a reader shows it: on an axis, in a table, in an epoch line.

    ``file``: ``losses.csv`` (per logged step) or ``epochs.csv`` (per epoch). ``label``: the axis
    label (empty: the name). ``log_scale``: its default y axis. ``higher_is_better``: its best
    value is the maximum, else the minimum. ``metric``: a measure of progress, offered as a y
    choice and summarised in summary.json's ``final`` and ``best``; False for bookkeeping (the
    learning rate, times, an iterate). ``noisy``: a minibatch estimate of the objective (readers
    smooth it, and a final value prefers the epoch mean); False where it is the objective itself.
    ``console``: the epoch line's part for an epochs.csv column, a ``str.format`` template of its
    value (empty: not printed). ``table``: the run table gives it final and best columns of its own.
    """

    name: str
    file: str = LOSSES
    label: str = ""
    log_scale: bool = True
    higher_is_better: bool = False
    metric: bool = True
    noisy: bool = False
    console: str = ""
    table: bool = False

    @property
    def axis_label(self) -> str:
        return self.label or self.name

    def best(self, values: Iterable[float]) -> float:
        """The best of ``values``: the maximum where higher is better, else the minimum."""
        return (max if self.higher_is_better else min)(values)


@dataclass(frozen=True)
class IteratePanel:
    """A plot hint: the 1-D iterate ``x`` (column) and its value ``fx``, drawn on the parabola
    ``y = coef * x^2`` beside the curves, ``coef`` read from the config key ``coef_key``."""

    x: str
    fx: str
    coef_key: str
    coef_default: float = 1.0


#: the columns every run writes, declared once: (before the problem's own, after them) per file
GENERIC_COLUMNS: dict[str, tuple[tuple[Column, ...], tuple[Column, ...]]] = {
    LOSSES: (
        (Column("loss", LOSSES, "train loss (minibatch)", noisy=True),
         Column("lr", LOSSES, "learning rate", metric=False),
         Column("wall_time_s", LOSSES, "wall time (s)", log_scale=False, metric=False)),
        (Column("grad_norm", LOSSES, "gradient norm"),
         Column("update_norm", LOSSES, "update norm ||θ_t - θ_(t-1)||"),
         Column("update_ratio", LOSSES, "update ratio ||Δθ|| / ||θ||")),
    ),
    EPOCHS: (
        (Column("train_loss", EPOCHS, "train loss (epoch mean)", console="Train Loss: {:.6f}"),),
        (Column("epoch_time_s", EPOCHS, "epoch time (s)", log_scale=False, metric=False, console="Time: {:.2f} s"),),
    ),
}
GENERIC_NAMES = frozenset(c.name for head, tail in GENERIC_COLUMNS.values() for c in head + tail)
OUTPUT_FILES = tuple(GENERIC_COLUMNS)


def _merged(own: Iterable[Column]) -> tuple[Column, ...]:
    """The generic columns with the problem's own: an own column of a generic name replaces it in
    place; the others go between each file's leading and trailing generic columns."""
    own = list(own)
    by_name = {column.name: column for column in own}
    merged: list[Column] = []
    for file, (head, tail) in GENERIC_COLUMNS.items():
        merged += [by_name.get(c.name, c) for c in head]
        merged += [c for c in own if c.file == file and c.name not in GENERIC_NAMES]
        merged += [by_name.get(c.name, c) for c in tail]
    return tuple(merged)


@dataclass(frozen=True)
class Outputs:
    """A problem's description of its outputs; summary.json's ``outputs`` holds it (``to_json``).

    ``columns``: what the problem declares (its own columns, and any generic one it shows
    differently, by name); after construction it holds every column, the generic ones merged
    in. Plot hints: ``x``, the default x axis (``epoch`` or ``step``); ``linear``, a linear y
    axis by default for every figure of this problem; ``objective``, the lower-is-better
    losses.csv column that measures progress (the report's curves and targets);
    ``iterates``, an :class:`IteratePanel`. ``report_lines``: how the console shows
    summary.json's ``report``: ``str.format`` templates over its keys (a list value is
    formatted item by item, joined by ``, ``); a line whose keys the report lacks is left out.
    """

    columns: tuple[Column, ...] = ()
    x: str = "epoch"
    linear: bool = False
    objective: str = "loss"
    iterates: IteratePanel | None = None
    report_lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", _merged(self.columns))
        object.__setattr__(self, "report_lines", tuple(self.report_lines))

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.columns)

    def problem_columns(self, file: str) -> tuple[str, ...]:
        """The columns of ``file`` the problem adds to the generic ones (losses.csv: ``Problem.step_column_names``)."""
        return tuple(c.name for c in self.columns if c.file == file and c.name not in GENERIC_NAMES)

    def metrics(self, file: str | None = None, *, own: bool = False) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.metric and (file is None or c.file == file)
                     and not (own and c.name in GENERIC_NAMES))

    @property
    def loss_is_objective(self) -> bool:
        """The minibatch loss is the exact objective (a full-batch problem), not an estimate of it."""
        loss = self.column("loss")
        return loss is not None and not loss.noisy

    def to_json(self) -> dict:
        return {"x": self.x, "linear": self.linear, "objective": self.objective,
                "iterates": None if self.iterates is None else asdict(self.iterates),
                "report_lines": list(self.report_lines), "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_json(cls, payload: Any, where: str = SUMMARY) -> Outputs:
        """The description summary.json's ``outputs`` holds; RunFolderError (one paragraph) if it is malformed."""
        def bad(what: str) -> RunFolderError:
            return RunFolderError(f"{where}: `outputs` {what}, so the file is damaged or was not written by optbench. "
                                  "Fix: rerun the run, or repair that field (or delete `outputs` to read the run "
                                  "by its dataset name).")

        if not isinstance(payload, dict):
            raise bad("is not an object")
        columns = payload.get("columns", [])
        if not isinstance(columns, list) or not all(isinstance(c, dict) for c in columns):
            raise bad("has `columns` that are not a list of objects")
        built = []
        for item in columns:
            fields = {k: v for k, v in item.items() if k in _COLUMN_FIELDS}
            if not isinstance(fields.get("name"), str) or fields.get("file", LOSSES) not in OUTPUT_FILES or not all(
                    isinstance(fields[k], type(_COLUMN_FIELDS[k])) for k in fields if k != "name"):
                raise bad(f"has a malformed column ({repr(item)[:60]})")
            built.append(Column(**fields))
        iterates = payload.get("iterates")
        try:
            iterates = None if iterates is None else IteratePanel(**iterates)
        except TypeError:
            raise bad("has a malformed `iterates`") from None
        if iterates is not None and not (all(isinstance(v, str) for v in (iterates.x, iterates.fx, iterates.coef_key))
                                         and isinstance(iterates.coef_default, (int, float))):
            raise bad("has a malformed `iterates`")
        lines = payload.get("report_lines", [])
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise bad("has `report_lines` that are not a list of strings")
        x, objective = payload.get("x", "epoch"), payload.get("objective", "loss")
        if not isinstance(x, str) or not isinstance(objective, str) or not isinstance(payload.get("linear", False), bool):
            raise bad("has a malformed `x`, `objective` or `linear`")
        return cls(columns=tuple(built), x=x, linear=payload.get("linear", False), objective=objective,
                   iterates=iterates, report_lines=tuple(lines))


_COLUMN_FIELDS = {f.name: f.default for f in fields(Column)}

#: the description of a run whose problem declares nothing of its own
GENERIC_OUTPUTS = Outputs()

_IMAGES_OUTPUTS = Outputs(columns=(
    Column("test_loss", EPOCHS, "test loss", console="Test Loss: {:.6f}"),
    Column("test_acc", EPOCHS, "test accuracy", log_scale=False, higher_is_better=True, console="Test Acc: {:.4f}"),
))
#: what the problems that ran before summary.json had `outputs` wrote, by dataset name: the reader of
#: those old summaries (``outputs_of``). Each equals its problem's ``outputs`` (tests/test_problem_outputs.py).
LEGACY_OUTPUTS: dict[str, Outputs] = {
    "linreg": Outputs(
        columns=(Column("full_loss", LOSSES, "full-data loss"), Column("suboptimality", LOSSES, "suboptimality f - f*")),
        objective="full_loss",
        report_lines=("w: [{w:.4f}]  (true [{true_w:g}])   b: {b:.4f}  (true {true_b:g})",),
    ),
    "quadratic": Outputs(
        columns=(Column("loss", LOSSES, "loss f(x)"), Column("x", LOSSES, "iterate x", log_scale=False, metric=False),
                 Column("f_x", LOSSES, "f(x)", metric=False), Column("grad_x", LOSSES, "f'(x)", metric=False),
                 Column("suboptimality", LOSSES, "suboptimality f - f*")),
        x="step", linear=True, iterates=IteratePanel("x", "f_x", coef_key="dataset.coef", coef_default=4.0),
        report_lines=("x: {x:.6g}  (minimum at {x_star:g})",),
    ),
    "mnist": _IMAGES_OUTPUTS,
    "fashion_mnist": _IMAGES_OUTPUTS,
}


def outputs_of(summary: Mapping, dataset: str | None = None, where: str = SUMMARY) -> Outputs | None:
    """A run's description: its summary.json's ``outputs``, else (a summary written before that key)
    the one its dataset name had then, else None (nothing is known about its columns).

    ``dataset`` defaults to the summary's. RunFolderError naming ``where`` if ``outputs`` is malformed.
    """
    payload = summary.get("outputs")
    if payload is not None:
        return Outputs.from_json(payload, where)
    name = dataset if dataset is not None else summary.get("dataset")
    return LEGACY_OUTPUTS.get(name) if isinstance(name, str) else None


def known_column(name: str) -> Column | None:
    """The generic column ``name``, else the first known problem's (for runs that describe nothing)."""
    generic = GENERIC_OUTPUTS.column(name)
    if generic is not None:
        return generic
    return next((o.column(name) for o in LEGACY_OUTPUTS.values() if name in o), None)


def recorded_by(name: str) -> list[str]:
    """The known datasets whose problem writes the metric column ``name`` (none for a generic one)."""
    if name in GENERIC_NAMES:
        return []
    return [dataset for dataset, outputs in LEGACY_OUTPUTS.items() if name in outputs]


# --------------------------------------------------------------------------- writers


def _json_default(value: Any):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a reader (or a crash) sees the old file or the new, never a mix."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, payload: Mapping) -> None:
    text = json.dumps(payload, indent=2, default=_json_default, allow_nan=True) + "\n"
    write_bytes_atomic(path, text.encode())


def header_line(columns: Sequence[str]) -> str:
    return ",".join(columns) + "\n"


def row_line(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    """One CSV row, with the cells the recorder and the fixtures share (``csv_cell``)."""
    out: list[str] = []
    _ROW_WRITER(out).writerow([csv_cell(row.get(c)) for c in columns])
    return out[0]


class _ListSink:
    def __init__(self, out: list[str]):
        self.out = out

    def write(self, text: str) -> None:
        self.out.append(text)


def _ROW_WRITER(out: list[str]):  # noqa: N802 - a factory named for what it makes
    return csv.writer(_ListSink(out), lineterminator="\n")


class CsvLog:
    """An append-only CSV file whose every row reaches the OS, whole, before ``append`` returns.

    Each row is one ``write`` on an ``O_APPEND`` descriptor; if the OS refuses part of
    it (disk full, file too large), the file is cut back to its last whole row and the
    error is raised, so the file always ends on a whole row. ``keep_rows`` (resume)
    first cuts the file to its header and that many data rows, atomically.
    """

    def __init__(self, path: Path, columns: Sequence[str], keep_rows: int | None = None):
        self.path, self.columns = Path(path), tuple(columns)
        if keep_rows is None:
            write_bytes_atomic(self.path, header_line(self.columns).encode())
            self.rows = 0
        else:
            truncate_rows_atomic(self.path, keep_rows)
            self.rows = keep_rows
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._size = os.fstat(self._fd).st_size

    def append(self, row: Mapping[str, Any]) -> None:
        data = row_line(row, self.columns).encode()
        try:
            view = memoryview(data)
            while view:  # a short write is followed by one that raises the OS's reason (ENOSPC, EFBIG)
                written = os.write(self._fd, view)
                if written == 0:
                    raise OSError(28, os.strerror(28))
                view = view[written:]
        except OSError:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass
            raise
        self._size += len(data)
        self.rows += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def count_rows(path: Path) -> int:
    """Whole data rows of a CSV (lines after the header that end in a newline)."""
    data = Path(path).read_bytes()
    return max(data.count(b"\n") - 1, 0)


def truncate_rows_atomic(path: Path, rows: int) -> None:
    """Keep the header and the first ``rows`` whole data rows; refuse if fewer are there."""
    lines = Path(path).read_bytes().splitlines(keepends=True)
    whole = [line for line in lines if line.endswith(b"\n")]
    if len(whole) < rows + 1:
        raise RunFolderError(
            f"{path} holds {max(len(whole) - 1, 0)} whole rows, fewer than the {rows} its checkpoint recorded, "
            "so it does not belong to that checkpoint. Fix: resume from the folder the checkpoint was saved in, "
            "or start a new run."
        )
    if len(whole) == rows + 1 and len(lines) == len(whole):
        return  # already exactly that: leave the file untouched
    write_bytes_atomic(path, b"".join(whole[: rows + 1]))


# --------------------------------------------------------------------------- lock


class FolderLock:
    """An exclusive lock on a run folder, held for the life of the writer (run or resume).

    The lock file names its holder (pid, host, command); ``flock`` is released by the
    kernel when the process ends, so a SIGKILLed run never leaves a stale lock.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise busy_error(self.folder) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}: {' '.join(sys.argv)[:300]}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_holder(folder: Path) -> str:
    try:
        return (Path(folder) / LOCK).read_text(errors="replace").strip() or "another process"
    except OSError:
        return "another process"


def busy_error(folder: Path) -> RunFolderError:
    return RunFolderError(
        f"{folder} is being written by another optbench process ({lock_holder(folder)}). Only one run may write "
        "a run folder at a time. Fix: wait for that process to end (or stop it), or give this run its own "
        "folder (leave hydra.run.dir at its default)."
    )


def is_locked(folder: Path) -> bool:
    """Whether another process holds ``folder``'s lock now."""
    import fcntl

    path = Path(folder) / LOCK
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


# --------------------------------------------------------------------------- readers


def is_run_dir(path: Path) -> bool:
    """A folder with a run's files, or a sweep's numbered job folder (one whose job died before writing any)."""
    path = Path(path)
    try:
        if not path.is_dir():
            return False
        if any((path / marker).exists() for marker in RUN_MARKERS):
            return True
        return path.name.isdigit() and (path.parent / MULTIRUN_YAML).exists()
    except OSError:  # a folder we may not look into
        return False


def _read_text(path: Path, fix: str) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise RunFolderError(f"{path}: cannot be read ({err.strerror}). Fix: {fix}.") from None


def read_json(path: Path) -> dict:
    """A JSON object file; RunFolderError (one paragraph) if it is missing, empty, invalid or not an object."""
    path = Path(path)
    text = _read_text(path, "check that it exists and its permissions")
    if not text.strip():
        raise RunFolderError(f"{path} is empty (the run was killed while writing it). Fix: rerun the run, or leave this folder out.")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunFolderError(
            f"{path} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}). "
            "Fix: rerun the run, or repair or delete that file (the CSVs are still plotted without it)."
        ) from None
    if not isinstance(payload, dict):
        raise RunFolderError(f"{path} holds a JSON {type(payload).__name__}, not an object. Fix: rerun the run, or delete that file.")
    return payload


def read_summary(folder: Path) -> dict | None:
    """A run folder's summary.json, or None when it is missing or unreadable (the tolerant form)."""
    try:
        return read_json(Path(folder) / SUMMARY)
    except RunFolderError:
        return None


def status_of(folder: Path) -> str | None:
    summary = read_summary(folder)
    status = summary.get("status") if summary else None
    return status if isinstance(status, str) else None


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_table(path: Path, required: Sequence[str], *, allow_no_rows: bool = False,
               notes: list[str] | None = None):
    """A numeric CSV as a pandas DataFrame; empty cells are NaN, ``nan``/``inf`` are kept.

    Raises RunFolderError for a missing, empty, truncated or malformed file. With
    ``notes`` (a run still writing), an unterminated last line is dropped and noted instead.
    """
    import numpy as np
    import pandas as pd

    path = Path(path)
    text = _read_text(path, "check its permissions")
    if not text.strip():
        raise RunFolderError(
            f"{path} is empty: the run wrote no header and no rows (it died while starting). "
            "Fix: rerun it, or leave this folder out."
        )
    lines = text.splitlines()
    header = [name.strip() for name in lines[0].split(",")]
    missing = [name for name in required if name not in header]
    if missing:
        cut = len(lines) == 1 and not text.endswith("\n")
        what = "is truncated in its header" if cut else f"lacks the column(s) {', '.join(missing)}"
        raise RunFolderError(
            f"{path} {what} (header: {lines[0][:80]!r}). "
            "Fix: rerun the run with this optbench version, or leave this folder out."
        )
    if len(set(header)) != len(header):
        raise RunFolderError(f"{path} repeats a column in its header ({lines[0][:80]!r}). Fix: rerun the run, or leave it out.")
    rows = list(lines[1:])
    while rows and not rows[-1].strip():
        rows.pop()
    if notes is not None and rows and not text.endswith("\n") and len(rows[-1].split(",")) != len(header):
        rows.pop()
        notes.append(f"{path}: dropped its unfinished last line (the run is still writing, or was killed mid-line)")
    if not rows and not allow_no_rows:
        raise RunFolderError(
            f"{path} has a header but no rows: the run logged nothing before it stopped. "
            "Fix: rerun it, or leave this folder out."
        )
    width = len(header)
    cells: list[list[str]] = []
    for number, line in enumerate(rows, start=2):
        fields = line.split(",")
        if len(fields) != width:
            last = number == len(rows) + 1
            where = "its last line" if last else f"line {number}"
            raise RunFolderError(
                f"{path} is truncated or malformed at {where} (line {number}: {len(fields)} fields, the header has {width}). "
                f"Fix: rerun the run, or delete line {number}{'' if last else ' and after'} to plot what is left."
            )
        cells.append(fields)
    columns: dict[str, Any] = {}
    for index, name in enumerate(header):
        raw = [row[index].strip() or "nan" for row in cells]
        try:
            columns[name] = np.array(raw, dtype=float)
        except ValueError:
            number, bad = next((n, v) for n, v in enumerate(raw, start=2) if not _is_float(v))
            raise RunFolderError(
                f"{path}, line {number}: {bad[:30]!r} in column {name} is not a number. "
                "Fix: rerun the run, or repair that line."
            ) from None
    return pd.DataFrame(columns, columns=header)


def finite_or_none(value: Any) -> float | None:
    """A number for summary.json, or None when it is missing or not finite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (relative path -> bytes), for tests that check nothing changed."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def iter_run_dirs(top: Path) -> Iterable[Path]:
    """Run folders at or below ``top``, depth first, never descending into a run folder."""
    for dirpath, dirnames, _ in os.walk(top):
        here = Path(dirpath)
        if is_run_dir(here):
            dirnames[:] = []
            yield here
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))


class RunLogHandler(logging.FileHandler):
    """optbench.log's handler (conf/hydra/job_logging/optbench.yaml): opened at the first line, never fatal.

    Opening late means a job that writes no line (a refusal in a folder that holds a
    run) never touches the log; an OS error while logging is dropped, because the run's
    data are its CSVs and the summary, which report such errors themselves.
    """

    def __init__(self, filename: str, mode: str = "a", encoding: str | None = "utf-8"):
        super().__init__(filename, mode=mode, encoding=encoding, delay=True)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            super().emit(record)
        except OSError:
            pass

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        pass  # never a "--- Logging error ---" traceback on stderr

    def move_to(self, folder: Path) -> None:
        """Write to ``folder``'s optbench.log from now on (a resumed run logs into its own folder)."""
        self.acquire()
        try:
            self.close()
            self.baseFilename = os.path.abspath(Path(folder) / LOG)
        finally:
            self.release()
