"""The loss figure: one curve per run (or per seed group) against step, epoch, examples or time.

Functions here return :class:`matplotlib.figure.Figure` objects built without pyplot, so
they work with any backend and leave no global state; the CLI saves them (Agg).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from optbench.plot.aggregate import Group, align, band_stats, group_runs
from optbench.plot.iterates import draw_iterates, iterate_panel
from optbench.plot.labels import check_mathtext, literal, make_labels, mathtext_problem, with_mark
from optbench.plot.metrics import (
    X_COLUMNS,
    X_LABELS,
    Series,
    check_x,
    check_y,
    default_linear,
    default_x,
    run_series,
    y_choices,
    y_label,
    y_problem,
)
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


#: the fields of a preset's ``plot:`` node (``optbench.config.schema.PlotHints``)
HINT_FIELDS = ("x", "y", "linear", "title")


def plot_hints(runs: Sequence[Run], *, given: Sequence[str] = ()) -> dict:
    """The preset hints (``plot:`` config node) that hold for the whole figure.

    A hint is a preset's default for its own runs, so it must not decide how other runs
    are drawn: ``y`` is used only when every run records it (one preset's ``full_loss``
    must not drop the runs of another problem in a mixed glob); ``x``, ``linear`` and
    ``title`` only when every run carries the same one. A hint left out is named in a
    warning, unless the command line sets that field anyway (``given``).
    """
    nodes = []
    for run in runs:
        node = run.config.get("plot")
        nodes.append(node if isinstance(node, dict) else {})
    hints: dict = {}
    for name in HINT_FIELDS:
        if name in given:
            continue
        values = [node.get(name) for node in nodes]
        set_values = [v for v in values if v not in (None, False, "")]
        if not set_values:
            continue
        distinct = list(dict.fromkeys(repr(v) for v in set_values))
        value = set_values[0]
        why = None
        if len(distinct) > 1:
            why = f"the runs' presets disagree ({', '.join(distinct)})"
        elif name == "y":
            if value not in y_choices(runs):
                why = f"{value!r} is not a --y choice"
            else:
                unfit = [run for run in runs if y_problem(run, value) is not None]
                if unfit:
                    why = f"{len(unfit)} of the {len(runs)} runs (e.g. {unfit[0].name}, a {unfit[0].dataset} run) have no {value}"
        elif name == "x" and value not in X_COLUMNS:
            why = f"{value!r} is not an --x choice"
        elif len(set_values) < len(runs):
            why = f"only {len(set_values)} of the {len(runs)} runs set it"
        if name == "title" and why is None:
            if not isinstance(value, str):
                value = str(value)
            if mathtext_problem(value) is not None:
                value = literal(value)
        if why is None:
            hints[name] = value
        else:
            flag = "--linear" if name == "linear" else f"--{name} {shlex.quote(str(value))}"
            then = " (the runs that cannot show it are then skipped)" if name == "y" else ""
            warn(f"the preset hint plot.{name}={value} is not used: {why}. Fix: pass {flag} to ask for it{then}")
    return hints


def choose_axes(runs: Sequence[Run], x: str | None = None, y: str | None = None,
                linear: bool | None = None, title: str | None = None) -> AxesChoice:
    """Command-line choices win over the runs' ``plot`` hints, which win over the defaults.

    Defaults, from the runs' descriptions (``Run.outputs``): loss against the x axis they all ask
    for (else epoch), on a log axis unless every run's problem asks for a linear one (seed 003's
    quadratic) or ``y`` is described as linear (an accuracy).
    """
    given = [name for name, value in (("x", x), ("y", y), ("linear", linear), ("title", title)) if value is not None]
    hints = plot_hints(runs, given=given)
    x = check_x(x or hints.get("x") or default_x(runs))
    y = check_y(y or hints.get("y") or "loss", runs)
    if linear is None:
        linear = bool(hints.get("linear")) or default_linear(runs, y)
    return AxesChoice(x=x, y=y, log=not linear, title=title if title is not None else hints.get("title"))


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
    """Automatic labels (drawn literally: a ``$`` in a value starts no mathtext), or ``labels``
    (one per curve, in order; mathtext allowed, checked here)."""
    auto = [literal(label) for label in
            make_labels([g.first.flat for g in groups], [_group_overrides(g) for g in groups], drop=drop)]
    if labels:
        labels = [check_mathtext(str(label), "--label") for label in labels]
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
    return literal(", ".join(parts))


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

    Runs whose description asks for an iterate panel (seed 003's quadratic) get a second panel
    with their iterates on y = coef*x^2.
    """
    if smooth is not None and smooth < 1:
        raise PlotError(f"--smooth {smooth}: the window must be a whole number >= 1. Fix: e.g. --smooth 10.")
    if title is not None:
        check_mathtext(title, "--title")
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
    panels = [(g, c, p) for g, c in zip(groups, colors) if (p := iterate_panel(g)) is not None]
    fig = Figure(figsize=(12.5, 4.8) if panels else (7.5, 4.8), layout="constrained")
    ax = fig.add_subplot(1, 2 if panels else 1, 1)
    for group, name, color in zip(groups, names, colors):
        draw_group(ax, group, name, color, choice, smooth)
    if choice.log:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel(X_LABELS[choice.x])
    ylabel = y_label(runs, choice.y)
    if smooth and smooth > 1:
        ylabel += f", trailing mean of {smooth} points"
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best", fontsize="small" if len(groups) > 6 else "medium", title=legend_title(groups),
              title_fontsize="small")
    heading = choice.title if choice.title is not None else default_title(runs, names)
    if panels:
        draw_iterates(fig.add_subplot(1, 2, 2), [g for g, _, _ in panels], [c for _, c, _ in panels],
                      [p for _, _, p in panels])
        if heading:
            fig.suptitle(heading)
    elif heading:
        ax.set_title(heading)
    return fig
