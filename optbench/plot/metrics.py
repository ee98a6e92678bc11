"""What a figure reads from a run: the x and y columns, smoothing, final and best values.

Which y a run has, its file, label, default axis and which of its values is best come from
the run's description (``Run.outputs``, summary.json's ``outputs``), never from its dataset's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optbench.plot.runs import PlotError, Run, finite
from optbench.run_folder import (
    DIAGNOSTIC_COLUMNS,
    EPOCHS,
    GENERIC_OUTPUTS,
    LEGACY_OUTPUTS,
    LOSSES,
    Column,
    Outputs,
    recorded_by,
)

#: --x name -> losses.csv column
X_COLUMNS = {"step": "step", "epoch": "epoch", "examples": "examples_seen", "time": "wall_time_s"}
X_LABELS = {"step": "step", "epoch": "epoch", "examples": "examples seen", "time": "wall time (s)"}
#: columns only runs with diagnostics=true record
DIAGNOSTIC_Y = tuple(DIAGNOSTIC_COLUMNS)


def _descriptions(runs: Sequence[Run]) -> list[Outputs]:
    return [GENERIC_OUTPUTS, *LEGACY_OUTPUTS.values(), *(run.outputs for run in runs if run.outputs is not None)]


def y_choices(runs: Sequence[Run] = ()) -> dict[str, Column]:
    """Every --y choice: the metric columns of the generic description, of the known problems and of
    ``runs``' descriptions (first description wins), logged ones first, then epochs.csv's, then diagnostics."""
    seen: dict[str, Column] = {}
    for outputs in _descriptions(runs):
        for column in outputs.metrics():
            seen.setdefault(column.name, column)

    def rank(name: str) -> int:
        return 2 if name in DIAGNOSTIC_COLUMNS else 0 if seen[name].file == LOSSES else 1

    return {name: seen[name] for name in sorted(seen, key=rank)}


def column_of(run: Run, y: str) -> Column:
    """How ``run`` describes ``y`` (a plain losses.csv metric when it does not)."""
    return run.column(y) or Column(y)


def y_label(runs: Sequence[Run], y: str) -> str:
    """The axis label the runs' descriptions agree on, else the column's generic (or first known) label."""
    labels = {column.axis_label for column in (run.column(y) for run in runs) if column is not None}
    if len(labels) == 1:
        return labels.pop()
    return y_name(y, runs)


def y_name(y: str, runs: Sequence[Run] = ()) -> str:
    """The column's generic (or first known) label: what a measure is called across problems."""
    column = y_choices(runs).get(y)
    return column.axis_label if column is not None else y


def y_log_scale(runs: Sequence[Run], y: str) -> bool:
    """Whether ``y`` is drawn on a log axis by default: no description of it among the runs says otherwise."""
    described = [column for column in (run.column(y) for run in runs) if column is not None]
    if not described:
        known = y_choices(runs).get(y)
        described = [known] if known is not None else []
    return all(column.log_scale for column in described)


def default_x(runs: Sequence[Run]) -> str:
    """The x axis every run's description asks for (``epoch`` when they differ or ask for none)."""
    wanted = {run.outputs.x if run.outputs is not None and run.outputs.x in X_COLUMNS else "epoch" for run in runs}
    return wanted.pop() if len(wanted) == 1 else "epoch"


def default_linear(runs: Sequence[Run], y: str) -> bool:
    """A linear y axis by default: every run's problem asks for one, or ``y``'s description does."""
    problem = bool(runs) and all(run.outputs is not None and run.outputs.linear for run in runs)
    return problem or not y_log_scale(runs, y)


def check_x(x: str) -> str:
    if x not in X_COLUMNS:
        raise PlotError(f"unknown --x {x!r}. Fix: use one of {', '.join(X_COLUMNS)}.")
    return x


def check_y(y: str, runs: Sequence[Run] = ()) -> str:
    """``y`` if it is a --y choice (generic, a known problem's, or one ``runs`` describe)."""
    choices = y_choices(runs)
    if y not in choices:
        raise PlotError(f"unknown --y {y!r}. Fix: use one of {', '.join(choices)}.")
    return y


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def y_problem(run: Run, y: str) -> str | None:
    """Why ``run`` cannot give ``y`` at all (None when it can; finiteness is checked later)."""
    column = y
    where = recorded_by(y)
    not_recorded = (f"{run.name} is a {run.dataset} run and has no {y}"
                    f"{f' ({y} is recorded for {_and(where)} only)' if where else ''}. "
                    f"Fix: leave it out of this figure, or plot it with --y loss.")
    if run.outputs is not None and y not in run.outputs:
        return not_recorded
    if column_of(run, y).file == EPOCHS:
        try:
            table = run.epochs
        except PlotError as err:
            return str(err)
        if column in table.columns and len(table) == 0:
            return (f"{run.name} finished no epoch, so --y {y} has no value yet. "
                    "Fix: plot it with --y loss, or let the run finish an epoch.")
    else:
        table = run.losses
    if column not in table.columns:
        if y in DIAGNOSTIC_Y:
            return (f"{run.name} has no {y} column: it ran without diagnostics. "
                    "Fix: rerun it with diagnostics=true, or leave it out of this figure.")
        return not_recorded
    return None


def rolling(values: np.ndarray, window: int, *, log: bool) -> np.ndarray:
    """Trailing mean over ``window`` logged points (in log10 space on a log axis).

    Non-finite values stay in place and are not averaged in.
    """
    values = np.asarray(values, dtype=float)
    if window <= 1 or len(values) == 0:
        return values
    ok = np.isfinite(values) & ((values > 0) if log else True)
    out = values.copy()
    work = np.log10(values[ok]) if log else values[ok]
    smoothed = pd.Series(work).rolling(window, min_periods=1).mean().to_numpy()
    out[ok] = 10.0 ** smoothed if log else smoothed
    return out


@dataclass
class Series:
    """One run's curve: ``key`` aligns seeds (step, or epoch for epochs.csv values)."""

    key: np.ndarray
    x: np.ndarray
    y: np.ndarray


def run_series(run: Run, x: str, y: str, *, smooth: int | None = None, log: bool = True) -> Series:
    column = y
    losses = run.losses
    x_column = X_COLUMNS[x]
    if column_of(run, y).file == LOSSES:
        key = losses["step"].to_numpy(dtype=float)
        xs = losses[x_column].to_numpy(dtype=float)
        ys = losses[column].to_numpy(dtype=float)
    else:
        epochs = run.epochs
        key = epochs["epoch"].to_numpy(dtype=float)
        ys = epochs[column].to_numpy(dtype=float)
        if x == "epoch":
            xs = key.copy()
        else:
            # the x value at the end of each epoch, read off losses.csv
            order = np.argsort(losses["epoch"].to_numpy(dtype=float), kind="stable")
            xs = np.interp(key, losses["epoch"].to_numpy(dtype=float)[order], losses[x_column].to_numpy(dtype=float)[order])
    if smooth and smooth > 1:
        ys = rolling(ys, smooth, log=log)
    return Series(key=key, x=xs, y=ys)


def last_finite(values) -> float | None:
    values = finite(values)
    return float(values[-1]) if len(values) else None


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def final_value(run: Run, y: str = "loss") -> float | None:
    """The run's final ``y``; for ``loss`` the final train loss.

    ``loss``/``train_loss``: the last finished epoch's mean minibatch loss (summary.json
    ``final.train_loss``, else epochs.csv), falling back to the last logged loss; where the
    run's description says its loss is the objective itself (not a minibatch estimate: a
    full-batch problem) the last logged loss. Diverged runs give a non-finite value or the
    last finite one; callers check ``run.diverged``.
    """
    described, column = column_of(run, y), y
    if y in ("loss", "train_loss"):
        if y == "loss" and not described.noisy:
            return _last_logged(run, "loss")
        value = _number(run.final("train_loss"))
        if value is None:
            value = _epochs_last(run, "train_loss")
        return value if value is not None else _last_logged(run, "loss")
    value = _number(run.final(column))
    if value is not None:
        return value
    return _epochs_last(run, column) if described.file == EPOCHS else _last_logged(run, column)


def best_value(run: Run, y: str = "loss") -> float | None:
    """The best ``y`` over the run (the maximum where its description says higher is better, else the
    minimum); ``loss``: the best epoch train loss, or the least logged loss where it is the objective itself."""
    described, column = column_of(run, y), y
    pick = described.best
    if y in ("loss", "train_loss"):
        if y == "loss" and not described.noisy:
            return _pick_logged(run, "loss", min)
        value = _number(run.best("train_loss"))
        if value is None:
            value = _pick_epochs(run, "train_loss", min)
        return value if value is not None else _pick_logged(run, "loss", min)
    value = _number(run.best(column))
    if value is not None:
        return value
    return _pick_epochs(run, column, pick) if described.file == EPOCHS else _pick_logged(run, column, pick)


def _last_logged(run: Run, column: str) -> float | None:
    if column not in run.losses.columns:
        return None
    values = run.losses[column].to_numpy(dtype=float)
    values = values[~np.isnan(values)]
    return float(values[-1]) if len(values) else None


def _pick_logged(run: Run, column: str, pick) -> float | None:
    if column not in run.losses.columns:
        return None
    values = finite(run.losses[column])
    return float(pick(values)) if len(values) else None


def _epochs_frame(run: Run) -> pd.DataFrame | None:
    try:
        return run.epochs
    except PlotError:
        return None


def _epochs_last(run: Run, column: str) -> float | None:
    epochs = _epochs_frame(run)
    if epochs is None or column not in epochs.columns or len(epochs) == 0:
        return None
    values = epochs[column].to_numpy(dtype=float)
    values = values[~np.isnan(values)]
    return float(values[-1]) if len(values) else None


def _pick_epochs(run: Run, column: str, pick) -> float | None:
    epochs = _epochs_frame(run)
    if epochs is None or column not in epochs.columns:
        return None
    values = finite(epochs[column])
    return float(pick(values)) if len(values) else None


def target_hit(run: Run, target: float, y: str = "loss", smooth: int | None = None) -> tuple[int, float] | None:
    """(steps, seconds) when the logged ``y`` first reaches ``<= target``; None if never.

    ``y`` must come from losses.csv (loss, full_loss, suboptimality); the step's loss is
    measured before its update, so ``steps`` = the updates done when it was reached.
    """
    column = y
    if column_of(run, y).file != LOSSES or column not in run.losses.columns:
        column = "loss"
    values = run.losses[column].to_numpy(dtype=float)
    if smooth and smooth > 1:
        values = rolling(values, smooth, log=False)
    hits = np.flatnonzero(np.isfinite(values) & (values <= target))
    if not len(hits):
        return None
    row = run.losses.iloc[hits[0]]
    return int(row["step"]), float(row["wall_time_s"])


def total_time(run: Run) -> float | None:
    value = _number(run.summary.get("total_time_s"))
    if value is not None and (value > 0 or run.status not in ("running", "unknown")):
        return value
    return last_finite(run.losses["wall_time_s"])
