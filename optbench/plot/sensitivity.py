"""Hyperparameter sensitivity: final (or best) train loss against a swept hyperparameter.

One line per combination of the other settings that differ (typically optimizer and
impl), the hyperparameter on a log x axis; a point with several seeds is their median
with a band (IQR from 4 seeds, else min-max; in log space on a log y axis). A run that
diverged gives no value: it is marked with an X at the top of the axes at its x.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from optbench.optimizer_aliases import aliases_of
from optbench.plot.aggregate import band_stats, group_runs
from optbench.plot.figures import curve_labels, plot_hints
from optbench.plot.labels import check_mathtext, format_value, is_ignored, literal, with_mark
from optbench.plot.metrics import best_value, check_y, final_value, y_log_scale, y_name, y_problem
from optbench.plot.runs import PlotError, Run, is_number, warn

DIVERGED_Y = 0.96  # axes fraction where diverged points are marked


def resolve_param(runs: Sequence[Run], param: str) -> str:
    """``lr`` -> ``optimizer.lr``: an exact dotted key, else the unique key ending in ``.param``."""
    param = param.strip().lstrip("+")
    keys: list[str] = []
    for run in runs:
        for key in run.flat:
            if key not in keys and not is_ignored(key):
                keys.append(key)
    if param in keys:
        return param
    candidates = [key for key in keys if key.endswith("." + param)]
    # an alias names its canonical key: rmsprop's gamma (or rho) is alpha, momentum's gamma is momentum
    group, _, leaf = param.rpartition(".")
    if group in ("", "optimizer"):
        for run in runs:
            canonical = aliases_of(run.optimizer).get(leaf)
            if canonical and f"optimizer.{canonical}" in keys and f"optimizer.{canonical}" not in candidates:
                candidates.append(f"optimizer.{canonical}")
    if len(candidates) > 1:
        varying = [key for key in candidates if len({repr(run.get(key)) for run in runs}) > 1]
        candidates = varying or candidates
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise PlotError(f"--sensitivity {param} is ambiguous: {', '.join(candidates)}. Fix: give the full dotted key.")
    varying = [key for key in keys if key != "seed" and len({repr(run.get(key)) for run in runs}) > 1]
    hint = f" (keys that vary here: {', '.join(varying)})" if varying else ""
    raise PlotError(f"--sensitivity {param}: no run's config has that key{hint}. Fix: name a config key such as optimizer.lr.")


def _metric(run: Run, y: str, best: bool) -> float | None:
    return best_value(run, y) if best else final_value(run, y)


def sensitivity_figure(runs: Sequence[Run], param: str, *, best: bool = False, y: str | None = None,
                       linear: bool | None = None, labels: Sequence[str] | None = None,
                       title: str | None = None) -> Figure:
    if title is not None:
        check_mathtext(title, "--title")
    key = resolve_param(runs, param)
    given = ["x", "linear"] + [name for name, value in (("y", y), ("title", title)) if value is not None]
    hints = plot_hints(runs, given=given)
    y = check_y(y or hints.get("y") or "loss", runs)
    log = not linear if linear is not None else y_log_scale(runs, y)
    if not any(is_number(run.get(key)) for run in runs):
        shown = ", ".join(dict.fromkeys(format_value(run.get(key)) for run in runs))
        raise PlotError(f"--sensitivity {key}: its values ({shown}) are not numbers. "
                        "Fix: name a numeric hyperparameter such as optimizer.lr.")
    kept = []
    for run in runs:
        value = run.get(key)
        problem = y_problem(run, y)
        if not is_number(value):
            problem = problem or f"{run.name} has {key}={format_value(value)}, not a number. Fix: leave it out."
        if problem:
            warn(f"skipped run: {problem}")
        else:
            kept.append(run)
    if not kept:
        raise PlotError(f"--sensitivity {key}: no run has a numeric {key} and a {y} value. Fix: point at a sweep over {key}.")
    values = sorted({float(run.get(key)) for run in kept})
    if len(values) < 2:
        raise PlotError(
            f"--sensitivity {key}: every run has {key}={format_value(values[0])}, so there is no sweep to draw. "
            f"Fix: point at a sweep over it, e.g. the folder of optbench -m {key}=0.001,0.01,0.1."
        )
    lines = group_runs(kept, drop=(key,))
    names = curve_labels(lines, labels, drop=(key,))
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    any_diverged = False
    hidden: list[float] = []
    for index, (line, name) in enumerate(zip(lines, names)):
        color = f"C{index % 10}"
        by_value: dict[float, list[Run]] = {}
        for run in line.runs:
            by_value.setdefault(float(run.get(key)), []).append(run)
        xs, center, low, high, diverged_x = [], [], [], [], []
        banded = False
        for value in sorted(by_value):
            seeds = by_value[value]
            metrics = [_metric(run, y, best) for run in seeds if not run.diverged]
            metrics = [m for m in metrics if m is not None and np.isfinite(m)]
            if len(metrics) < len(seeds):
                diverged_x.append(value)
            if not metrics:
                continue
            if log and all(m <= 0 for m in metrics):
                hidden.append(value)
                continue
            band = band_stats(np.array(metrics, dtype=float)[:, None], log=log, seeds=len(seeds))
            if not np.isfinite(band.center[0]):
                continue
            xs.append(value)
            center.append(band.center[0])
            low.append(band.low[0])
            high.append(band.high[0])
            banded = banded or len(metrics) > 1
        ax.plot(xs, center, "-o", color=color, markersize=5, label=with_mark(name, [run.mark for run in line.runs]))
        if banded:
            ax.fill_between(xs, low, high, color=color, alpha=0.2, linewidth=0, label=f"_band {name}")
        if diverged_x:
            any_diverged = True
            ax.plot(diverged_x, [DIVERGED_Y] * len(diverged_x), linestyle="none", marker="X", markersize=10,
                    color=color, transform=ax.get_xaxis_transform(), clip_on=False, label="_diverged")
    if hidden:
        shown = ", ".join(format_value(v) for v in sorted(set(hidden)))
        warn(f"--sensitivity {key}: the {'best' if best else 'final'} {y} is 0 (or below) at {key}={shown}, "
             "which a log axis cannot show; add --linear to see those points")
    if any_diverged:
        ax.plot([], [], linestyle="none", marker="X", markersize=10, color="0.3", label="diverged (no value)")
    if all(v > 0 for v in values):
        ax.set_xscale("log")
    else:
        warn(f"--sensitivity {key}: values <= 0 ({format_value(values[0])}) cannot go on a log axis; the x axis is linear")
    if log:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel(key)
    what = "train loss" if y in ("loss", "train_loss") else y_name(y, runs)
    ax.set_ylabel(f"{'best' if best else 'final'} {what}")
    ax.grid(True, which="major", alpha=0.3)
    sizes = sorted({len(v) for line in lines for v in _by_value(line.runs, key).values()})
    legend_title = None
    if sizes and sizes[-1] > 1:
        legend_title = "median over seeds, band: " + ("IQR" if sizes[0] >= 4 else "min-max" if sizes[-1] < 4 else "IQR / min-max")
    ax.legend(loc="best", title=legend_title, title_fontsize="small")
    ax.set_title(title if title is not None else hints.get("title") or literal(f"sensitivity to {key}"))
    return fig


def _by_value(runs: Sequence[Run], key: str) -> dict[float, list[Run]]:
    out: dict[float, list[Run]] = {}
    for run in runs:
        out.setdefault(float(run.get(key)), []).append(run)
    return out
