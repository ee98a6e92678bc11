"""Seed 003's exponentially weighted average: the weight (1 - beta) * beta^t of the value t steps back.

v_t = beta * v_{t-1} + (1 - beta) * theta_t unrolls to sum_i (1 - beta) * beta^i * theta_{t-i},
so a smaller beta forgets faster (beta 0.9 weighs about the last 10 values).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from optbench.plot.runs import PlotError

DEFAULT_BETAS = (0.98, 0.95, 0.9, 0.8)


def ewa_weights(beta: float, points: int = 100) -> np.ndarray:
    """(1 - beta) * beta**t for t = 0 .. points-1."""
    return (1.0 - beta) * np.power(beta, np.arange(points, dtype=float))


def ewa_figure(betas: Sequence[float] = DEFAULT_BETAS, points: int = 100, title: str | None = None) -> Figure:
    if not betas:
        raise PlotError("ewa needs at least one --beta. Fix: e.g. optbench-plot ewa --beta 0.98 0.95 0.9 0.8.")
    for beta in betas:
        if not 0.0 <= beta < 1.0:
            raise PlotError(f"--beta {beta:g} is outside [0, 1). Fix: pass decay rates such as 0.9.")
    if points < 1:
        raise PlotError(f"--points {points}: need at least 1. Fix: e.g. --points 100.")
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    t = np.arange(points)
    single = len(betas) == 1
    for index, beta in enumerate(betas):
        label = f"beta={beta:g}" + ("\ny = beta^t * (1-beta)" if single else "")
        ax.plot(t, ewa_weights(beta, points), "-o" if single else "-", color="r" if single else f"C{index % 10}",
                markersize=3, label=label)
    ax.set_xlabel("time")
    ax.set_ylabel("weight")
    ax.set_title(title or "exponentially weighted average")
    ax.legend(loc="best")
    return fig
