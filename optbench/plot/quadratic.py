"""Seed 003's right-hand panel: the iterates x_t drawn on the curve y = coef * x^2."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from optbench.plot.aggregate import Group

ITERATE_COLUMNS = ("x", "f_x")


def is_quadratic(group: Group) -> bool:
    run = group.first
    return run.dataset == "quadratic" and all(c in run.losses.columns for c in ITERATE_COLUMNS)


def draw_iterates(ax: Axes, groups: Sequence[Group], colors: Sequence[str]) -> None:
    """The curve (one per distinct ``dataset.coef``) and each group's iterates on it.

    Iterates are (x, f(x)) before each update, every logged step, non-finite ones left
    out. Seeds do not change the quadratic, so a group shows its first run.
    """
    spans, coefs = [3.0], []
    paths = []
    for group, color in zip(groups, colors):
        losses = group.first.losses
        x = losses["x"].to_numpy(dtype=float)
        f = losses["f_x"].to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(f)
        paths.append((x[ok], f[ok], color))
        if ok.any():
            spans.append(1.1 * float(np.max(np.abs(x[ok]))))
        coef = group.first.get("dataset.coef", 4.0)
        coef = float(coef) if isinstance(coef, (int, float)) else 4.0
        if coef not in coefs:
            coefs.append(coef)
    span = max(spans)
    grid = np.linspace(-span, span, 401)
    for coef in coefs:
        ax.plot(grid, coef * grid**2, color="0.35", linewidth=1.2, label=f"y = {coef:g}x^2")
    for x, f, color in paths:
        ax.plot(x, f, "-o", color=color, markersize=4, linewidth=1, label="_iterates")
    ax.grid(True)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("iterates on the objective", fontsize="medium")
    ax.legend(loc="best")
