"""The iterate panel (seed 003's right-hand one): a 1-D iterate x_t drawn on the parabola y = coef * x^2.

A run's description asks for it with an ``IteratePanel`` hint (``Run.outputs.iterates``):
which columns hold the iterate and its value, and which config key holds ``coef``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from optbench.plot.aggregate import Group
from optbench.run_folder import IteratePanel


def iterate_panel(group: Group) -> IteratePanel | None:
    """The group's iterate panel hint, when its first run asks for one and logged its columns."""
    run = group.first
    panel = run.outputs.iterates if run.outputs is not None else None
    if panel is None or not all(c in run.losses.columns for c in (panel.x, panel.fx)):
        return None
    return panel


def draw_iterates(ax: Axes, groups: Sequence[Group], colors: Sequence[str], panels: Sequence[IteratePanel]) -> None:
    """The curve (one per distinct ``coef``) and each group's iterates on it.

    Iterates are (x, f(x)) before each update, every logged step, non-finite ones left
    out. Seeds do not change the objective, so a group shows its first run.
    """
    spans, coefs = [3.0], []
    paths = []
    for group, color, panel in zip(groups, colors, panels):
        losses = group.first.losses
        x = losses[panel.x].to_numpy(dtype=float)
        f = losses[panel.fx].to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(f)
        paths.append((x[ok], f[ok], color))
        if ok.any():
            spans.append(1.1 * float(np.max(np.abs(x[ok]))))
        coef = group.first.get(panel.coef_key, panel.coef_default)
        coef = float(coef) if isinstance(coef, (int, float)) else panel.coef_default
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
