"""Run folders as tidy pandas DataFrames, for notebooks (the reader ``optbench-report`` uses).

    from optbench import results
    r = results.load("multirun/2026-12-01/10-00-00-000000")     # paths, folders or globs
    r.steps.groupby(["optimizer.name", "step"]).loss.median()   # or r.epochs, r.runs

``load`` finds and reads folders exactly as ``optbench-plot`` does
(:func:`optbench.plot.runs.find_runs`, :func:`optbench.plot.runs.load_runs_and_failures`,
which read through :mod:`optbench.run_folder`), so a notebook, the plotter and the report
see the same runs, values and statuses. It reads only run files and never imports torch.

* ``steps``: one row per logged step (losses.csv), with the run's resolved config
  flattened into dotted columns (``optimizer.lr``, ``dataset.name``, ``seed``, ...).
* ``epochs``: one row per finished epoch (epochs.csv), with the same config columns.
* ``runs``: one row per run folder, loaded or not: status, what the legend would mark
  (``diverged``, ``incomplete``...), final and best values, times, the error or the
  reason it could not be read, and the config columns. A folder that could not be
  loaded has ``loaded == False`` and its ``reason``; it is never dropped.

Every frame starts with ``run`` (the folder, as given) and ``label`` (what differs
between the runs, as in the plotter's legends).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from optbench.plot.labels import make_labels
from optbench.plot.metrics import best_value, final_value, total_time
from optbench.plot.runs import PlotWarning, Run, find_runs, flatten, load_runs_and_failures
from optbench.run_folder import read_summary

#: the per-run columns (besides ``run``, ``label`` and the config's dotted keys)
RUN_COLUMNS = (
    "loaded", "status", "mark", "dataset", "optimizer", "impl", "seed", "steps_done", "epochs_completed",
    "diverged_at_step", "final_train_loss", "best_train_loss", "final_loss", "final_test_loss", "final_test_acc",
    "best_test_acc", "total_time_s", "train_time_s", "config_hash", "error", "reason",
)


@dataclass
class Results:
    """What :func:`load` returns: three tidy frames, and the loaded :class:`Run` objects."""

    steps: pd.DataFrame
    epochs: pd.DataFrame
    runs: pd.DataFrame
    loaded: list[Run] = field(default_factory=list, repr=False)
    failures: list[tuple[Path, str]] = field(default_factory=list, repr=False)
    warnings: list[str] = field(default_factory=list, repr=False)

    def __repr__(self) -> str:
        return (f"Results({len(self.runs)} runs, {len(self.steps)} logged steps, {len(self.epochs)} epochs"
                f"{f', {len(self.failures)} unreadable' if self.failures else ''})")


def _as_list(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str | os.PathLike]:
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    return list(paths)


def _config_columns(run: Run) -> dict[str, Any]:
    return {key: value for key, value in run.flat.items()}


def run_record(run: Run) -> dict[str, Any]:
    """The ``runs`` frame's row for one loaded run (without ``label``)."""
    summary = run.summary
    final = summary.get("final") or {}
    return {
        "run": run.name,
        "loaded": True,
        "status": run.status,
        "mark": run.mark,
        "dataset": run.dataset,
        "optimizer": run.optimizer,
        "impl": run.impl,
        "seed": run.seed,
        "steps_done": summary.get("steps"),
        "epochs_completed": summary.get("epochs_completed"),
        "diverged_at_step": run.diverged_at_step,
        "final_train_loss": final_value(run, "loss"),
        "best_train_loss": best_value(run, "loss"),
        "final_loss": final.get("loss"),
        "final_test_loss": final_value(run, "test_loss") if "test_loss" in _epoch_columns(run) else None,
        "final_test_acc": final_value(run, "test_acc") if "test_acc" in _epoch_columns(run) else None,
        "best_test_acc": best_value(run, "test_acc") if "test_acc" in _epoch_columns(run) else None,
        "total_time_s": total_time(run),
        "train_time_s": summary.get("train_time_s"),
        "config_hash": summary.get("config_hash"),
        "error": summary.get("error"),
        "reason": None,
    }


def _epoch_columns(run: Run) -> list[str]:
    try:
        return list(run.epochs.columns)
    except Exception:  # noqa: BLE001 - a malformed epochs.csv: no epoch values
        return []


def failure_record(folder: Path, reason: str) -> dict[str, Any]:
    """The ``runs`` frame's row for a folder that could not be loaded (status from summary.json if readable)."""
    summary = read_summary(folder) or {}
    config = summary.get("config") if isinstance(summary.get("config"), dict) else {}
    status = summary.get("status") if isinstance(summary.get("status"), str) else "unreadable"
    record = dict.fromkeys(RUN_COLUMNS)
    record.update(run=str(folder), loaded=False, status=status, mark=status,
                  dataset=summary.get("dataset") or (config.get("dataset") or {}).get("name"),
                  optimizer=summary.get("optimizer") or (config.get("optimizer") or {}).get("name"),
                  impl=summary.get("impl") or (config.get("optimizer") or {}).get("impl"),
                  seed=summary.get("seed"), error=summary.get("error"), reason=reason)
    record.update(flatten(config))
    return record


def _frame(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True, sort=False) if parts else pd.DataFrame(columns=["run", "label"])


def from_runs(runs: Sequence[Run], failures: Sequence[tuple[Path, str]] = ()) -> Results:
    """The three frames for runs already loaded (the report builds on this)."""
    labels = make_labels([run.flat for run in runs], [run.overrides for run in runs]) if runs else []
    steps, epochs, records = [], [], []
    for run, label in zip(runs, labels):
        config = _config_columns(run)
        head = {"run": run.name, "label": label}
        losses = run.losses
        steps.append(pd.concat([pd.DataFrame(head, index=losses.index), losses,
                                pd.DataFrame([config] * len(losses), index=losses.index)], axis=1))
        try:
            table = run.epochs
        except Exception:  # noqa: BLE001 - a malformed epochs.csv: the run's failure says why
            table = pd.DataFrame()
        if len(table):
            epochs.append(pd.concat([pd.DataFrame(head, index=table.index), table,
                                     pd.DataFrame([config] * len(table), index=table.index)], axis=1))
        records.append({**run_record(run), "label": label, **config})
    for folder, reason in failures:
        records.append({**failure_record(folder, reason), "label": ""})
    first = ["run", "label", *RUN_COLUMNS]
    runs_frame = pd.DataFrame(records)
    if len(runs_frame):
        runs_frame = runs_frame[first + [c for c in runs_frame.columns if c not in first]]
    else:
        runs_frame = pd.DataFrame(columns=first)
    return Results(steps=_frame(steps), epochs=_frame(epochs), runs=runs_frame, loaded=list(runs),
                   failures=list(failures))


def load(paths: str | os.PathLike | Iterable[str | os.PathLike], *, quiet: bool = False) -> Results:
    """Read run folders (single runs, multirun folders, any folder above runs, or globs).

    Raises :class:`optbench.run_folder.RunFolderError` (one paragraph naming the fix) when
    nothing can be read. Bad folders among good ones are kept in ``runs`` (``loaded``
    False, with the ``reason``) and listed in ``warnings``; ``quiet=False`` also emits
    them as :class:`optbench.plot.runs.PlotWarning`.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PlotWarning)
        found = find_runs([os.fspath(p) for p in _as_list(paths)])
        runs, failures = load_runs_and_failures(found.runs)
    messages = [str(item.message) for item in caught if issubclass(item.category, PlotWarning)]
    results = from_runs(runs, failures)
    results.warnings = messages
    if not quiet:
        for message in messages:
            warnings.warn(message, PlotWarning, stacklevel=2)
    return results
