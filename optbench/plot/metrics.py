"""What a figure reads from a run: the x and y columns, smoothing, final and best values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optbench.plot.runs import PlotError, Run, finite

#: --x name -> losses.csv column
X_COLUMNS = {"step": "step", "epoch": "epoch", "examples": "examples_seen", "time": "wall_time_s"}
X_LABELS = {"step": "step", "epoch": "epoch", "examples": "examples seen", "time": "wall time (s)"}
#: --y name -> (file, column)
Y_SOURCES = {
    "loss": ("losses", "loss"),
    "full_loss": ("losses", "full_loss"),
    "suboptimality": ("losses", "suboptimality"),
    "train_loss": ("epochs", "train_loss"),
    "test_loss": ("epochs", "test_loss"),
    "test_acc": ("epochs", "test_acc"),
    "grad_norm": ("losses", "grad_norm"),
    "update_norm": ("losses", "update_norm"),
    "update_ratio": ("losses", "update_ratio"),
}
Y_LABELS = {
    "loss": "train loss (minibatch)",
    "full_loss": "full-data loss",
    "suboptimality": "suboptimality f - f*",
    "train_loss": "train loss (epoch mean)",
    "test_loss": "test loss",
    "test_acc": "test accuracy",
    "grad_norm": "gradient norm",
    "update_norm": "update norm ||θ_t - θ_(t-1)||",
    "update_ratio": "update ratio ||Δθ|| / ||θ||",
}
#: which datasets record a column, for the message when one does not
Y_DATASETS = {
    "full_loss": "linreg",
    "suboptimality": "linreg and quadratic",
    "test_loss": "mnist and fashion_mnist",
    "test_acc": "mnist and fashion_mnist",
}
Y_DATASET_NAMES = {
    "full_loss": {"linreg"},
    "suboptimality": {"linreg", "quadratic"},
    "test_loss": {"mnist", "fashion_mnist"},
    "test_acc": {"mnist", "fashion_mnist"},
}
KNOWN_DATASETS = {"mnist", "fashion_mnist", "linreg", "quadratic"}
#: columns only runs with diagnostics=true record
DIAGNOSTIC_Y = ("grad_norm", "update_norm", "update_ratio")
#: y values where larger is better
HIGHER_IS_BETTER = {"test_acc"}


def check_x(x: str) -> str:
    if x not in X_COLUMNS:
        raise PlotError(f"unknown --x {x!r}. Fix: use one of {', '.join(X_COLUMNS)}.")
    return x


def check_y(y: str) -> str:
    if y not in Y_SOURCES:
        raise PlotError(f"unknown --y {y!r}. Fix: use one of {', '.join(Y_SOURCES)}.")
    return y


def y_problem(run: Run, y: str) -> str | None:
    """Why ``run`` cannot give ``y`` at all (None when it can; finiteness is checked later)."""
    source, column = Y_SOURCES[y]
    where = Y_DATASETS.get(y)
    not_recorded = (f"{run.name} is a {run.dataset} run and has no {y}"
                    f"{f' ({y} is recorded for {where} only)' if where else ''}. "
                    f"Fix: leave it out of this figure, or plot it with --y loss.")
    recorded_by = Y_DATASET_NAMES.get(y)
    if recorded_by is not None and run.dataset in KNOWN_DATASETS and run.dataset not in recorded_by:
        return not_recorded
    if source == "epochs":
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
    source, column = Y_SOURCES[y]
    losses = run.losses
    x_column = X_COLUMNS[x]
    if source == "losses":
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
    ``final.train_loss``, else epochs.csv), falling back to the last logged loss; on the
    quadratic (one "epoch" of full-batch steps) the last logged f(x). Diverged runs give
    a non-finite value or the last finite one; callers check ``run.diverged``.
    """
    source, column = Y_SOURCES[y]
    if y in ("loss", "train_loss"):
        if run.dataset == "quadratic" and y == "loss":
            return _last_logged(run, "loss")
        value = _number(run.final("train_loss"))
        if value is None:
            value = _epochs_last(run, "train_loss")
        return value if value is not None else _last_logged(run, "loss")
    value = _number(run.final(column))
    if value is not None:
        return value
    return _epochs_last(run, column) if source == "epochs" else _last_logged(run, column)


def best_value(run: Run, y: str = "loss") -> float | None:
    """The best ``y`` over the run (max for test_acc, else min); ``loss``: best epoch train loss."""
    source, column = Y_SOURCES[y]
    pick = max if y in HIGHER_IS_BETTER else min
    if y in ("loss", "train_loss"):
        if run.dataset == "quadratic" and y == "loss":
            return _pick_logged(run, "loss", min)
        value = _number(run.best("train_loss"))
        if value is None:
            value = _pick_epochs(run, "train_loss", min)
        return value if value is not None else _pick_logged(run, "loss", min)
    value = _number(run.best(column))
    if value is not None:
        return value
    return _pick_epochs(run, column, pick) if source == "epochs" else _pick_logged(run, column, pick)


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
    _, column = Y_SOURCES[y]
    if Y_SOURCES[y][0] != "losses" or column not in run.losses.columns:
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
