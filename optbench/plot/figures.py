"""The loss figure: one curve per run (or per seed group) against step, epoch, examples or time.

Functions here return :class:`matplotlib.figure.Figure` objects built without pyplot, so
they work with any backend and leave no global state; the CLI saves them (Agg).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from optbench.plot.aggregate import Group, align, band_stats, group_runs
from optbench.plot.labels import make_labels, with_mark
from optbench.plot.metrics import X_LABELS, Y_LABELS, Series, check_x, check_y, run_series, y_problem
from optbench.plot.quadratic import draw_iterates, is_quadratic
from optbench.plot.runs import PlotError, Run, warn

#: a curve with at most this many points is drawn with point markers (seed 003's '-o')
MARKER_POINTS = 50
DIVERGED_MARKER = "X"
UNFINISHED_MARKER = "o"


@dataclass
class AxesChoice:
    x: str
    y: str
    log: bool
    title: str | None


def plot_hints(runs: Sequence[Run]) -> dict:
    """The ``plot:`` node of the first run that has one (a preset's hint)."""
    for run in runs:
        hints = run.config.get("plot")
        if isinstance(hints, dict) and any(v not in (None, False) for v in hints.values()):
            return hints
    return {}


def choose_axes(runs: Sequence[Run], x: str | None = None, y: str | None = None,
                linear: bool | None = None, title: str | None = None) -> AxesChoice:
    """Command-line choices win over the runs' ``plot`` hints, which win over the defaults.

    Defaults: loss against epoch on a log axis; quadratic runs (seed 003) against step on
    a linear axis; test_acc on a linear axis.
    """
    hints = plot_hints(runs)
    quadratic = bool(runs) and all(run.dataset == "quadratic" for run in runs)
    x = check_x(x or hints.get("x") or ("step" if quadratic else "epoch"))
    y = check_y(y or hints.get("y") or "loss")
    if linear is None:
        linear = bool(hints.get("linear")) or quadratic or y == "test_acc"
    return AxesChoice(x=x, y=y, log=not linear, title=title or hints.get("title"))


def usable_runs(runs: Sequence[Run], y: str, log: bool) -> list[Run]:
    """Runs that can show ``y``; the others are skipped with a warning (error if none is left)."""
    kept, problems = [], []
    for run in runs:
        problem = y_problem(run, y)
        if problem is None:
            source_ok = _drawable(run, y, log)
            if not source_ok:
                problem = (f"{run.name} has no {'positive ' if log else ''}finite {y} value to draw "
                           f"(status {run.status}). Fix: leave it out{', or use --linear' if log else ''}.")
        if problem:
            problems.append(problem)
        else:
            kept.append(run)
    if not kept:
        raise PlotError(problems[0] if len(problems) == 1 else f"no run can be drawn; the first: {problems[0]}")
    for problem in problems:
        warn(f"skipped run: {problem}")
    return kept


def _drawable(run: Run, y: str, log: bool) -> bool:
    series = run_series(run, "step", y, log=log)
    ok = np.isfinite(series.y) & ((series.y > 0) if log else True)
    return bool(ok.any())


def _has_nonpositive(run: Run, choice: AxesChoice) -> bool:
    ys = run_series(run, choice.x, choice.y).y
    return bool((np.isfinite(ys) & (ys <= 0)).any())


def curve_labels(groups: Sequence[Group], labels: Sequence[str] | None = None, *, drop: Sequence[str] = ()) -> list[str]:
    """Automatic labels, or ``labels`` (one per curve, in order)."""
    auto = make_labels([g.first.flat for g in groups], [_group_overrides(g) for g in groups], drop=drop)
    if labels:
        labels = list(labels)
        if len(labels) != len(groups):
            raise PlotError(
                f"--label was given {len(labels)} time(s) but the figure has {len(groups)} curve(s) "
                f"({'; '.join(auto)}). Fix: pass exactly one --label per curve, in that order."
            )
        return labels
    return auto


def _group_overrides(group: Group) -> list[str]:
    merged: list[str] = []
    for run in group.runs:
        for item in run.overrides:
            if item not in merged:
                merged.append(item)
    return merged


def _visible(series: Series, log: bool) -> np.ndarray:
    return np.isfinite(series.x) & np.isfinite(series.y) & ((series.y > 0) if log else True)


def draw_group(ax, group: Group, label: str, color: str, choice: AxesChoice, smooth: int | None) -> None:
    """One curve (a run, or the median of a seed group with its band) and its end markers."""
    series = [run_series(run, choice.x, choice.y, smooth=smooth, log=choice.log) for run in group.runs]
    full_label = with_mark(label, [run.mark for run in group.runs])
    if group.size == 1:
        xs, ys = series[0].x, series[0].y
        ok = _visible(series[0], choice.log)
        marker = "o" if ok.sum() <= MARKER_POINTS else None
        ax.plot(xs[ok], ys[ok], color=color, marker=marker, markersize=4, linewidth=1.2, label=full_label)
    else:
        aligned = align([(s.key, s.x, s.y) for s in series])
        band = band_stats(aligned.y, log=choice.log, seeds=group.size)
        ok = np.isfinite(band.center) & np.isfinite(aligned.x)
        marker = "o" if ok.sum() <= MARKER_POINTS else None
        ax.plot(aligned.x[ok], band.center[ok], color=color, marker=marker, markersize=4, linewidth=1.4, label=full_label)
        ax.fill_between(aligned.x[ok], band.low[ok], band.high[ok], color=color, alpha=0.2, linewidth=0,
                        label=f"_band {band.kind} {label}")
    for run, s in zip(group.runs, series):
        mark = run.mark
        ok = _visible(s, choice.log)
        if mark is None or not ok.any():
            continue
        last = np.flatnonzero(ok)[-1]
        diverged = mark == "diverged"
        ax.plot([s.x[last]], [s.y[last]], linestyle="none",
                marker=DIVERGED_MARKER if diverged else UNFINISHED_MARKER,
                markersize=10 if diverged else 8, color=color,
                markerfacecolor=color if diverged else "none", markeredgewidth=1.5,
                label=f"_{mark}")


def default_title(runs: Sequence[Run], labels: Sequence[str]) -> str:
    datasets = list(dict.fromkeys(run.dataset for run in runs))
    optimizers = list(dict.fromkeys(run.optimizer for run in runs))
    parts = [datasets[0]] if len(datasets) == 1 else []
    if len(optimizers) == 1 and not any(label.startswith("optimizer=") for label in labels):
        parts.append(optimizers[0])
    return ", ".join(parts)


def legend_title(groups: Sequence[Group]) -> str | None:
    sizes = sorted({g.size for g in groups if g.size > 1})
    if not sizes:
        return None
    n = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
    kinds = sorted({g.band_kind for g in groups if g.size > 1})
    return f"median of {n} seeds, band: {' / '.join(kinds)}"


def loss_figure(runs: Sequence[Run], *, x: str | None = None, y: str | None = None, linear: bool | None = None,
                smooth: int | None = None, labels: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """Loss (or ``y``) against ``x``, one curve per run; runs differing only in seed share a curve.

    Quadratic runs get a second panel with their iterates on y = coef*x^2.
    """
    if smooth is not None and smooth < 1:
        raise PlotError(f"--smooth {smooth}: the window must be a whole number >= 1. Fix: e.g. --smooth 10.")
    choice = choose_axes(runs, x, y, linear, title)
    runs = usable_runs(runs, choice.y, choice.log)
    if choice.log:
        hidden = [run.name for run in runs if _has_nonpositive(run, choice)]
        if hidden:
            warn(f"{', '.join(hidden[:3])}{' ...' if len(hidden) > 3 else ''}: {choice.y} values <= 0 "
                 "are not shown on a log axis; add --linear to see them")
    groups = group_runs(runs)
    names = curve_labels(groups, labels)
    colors = [f"C{i % 10}" for i in range(len(groups))]
    quadratic = [(g, c) for g, c in zip(groups, colors) if is_quadratic(g)]
    fig = Figure(figsize=(12.5, 4.8) if quadratic else (7.5, 4.8), layout="constrained")
    ax = fig.add_subplot(1, 2 if quadratic else 1, 1)
    for group, name, color in zip(groups, names, colors):
        draw_group(ax, group, name, color, choice, smooth)
    if choice.log:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel(X_LABELS[choice.x])
    ylabel = Y_LABELS[choice.y]
    if choice.y == "loss" and all(run.dataset == "quadratic" for run in runs):
        ylabel = "loss f(x)"  # full-batch: no minibatch
    if smooth and smooth > 1:
        ylabel += f", trailing mean of {smooth} points"
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best", fontsize="small" if len(groups) > 6 else "medium", title=legend_title(groups),
              title_fontsize="small")
    heading = choice.title if choice.title is not None else default_title(runs, names)
    if quadratic:
        draw_iterates(fig.add_subplot(1, 2, 2), [g for g, _ in quadratic], [c for _, c in quadratic])
        if heading:
            fig.suptitle(heading)
    elif heading:
        ax.set_title(heading)
    return fig
