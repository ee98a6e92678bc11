"""Seed 003's exponentially weighted average weights."""

from __future__ import annotations

import numpy as np
import pytest

from optbench.plot.ewa import ewa_figure, ewa_weights
from optbench.plot.runs import PlotError


def test_weights_are_one_minus_beta_times_beta_to_the_t():
    w = ewa_weights(0.9, 100)
    assert len(w) == 100
    assert w[0] == pytest.approx(0.1) and w[1] == pytest.approx(0.09) and w[10] == pytest.approx(0.1 * 0.9**10)
    assert w.sum() == pytest.approx(1 - 0.9**100)  # seed 003 prints np.sum(weights)


def test_figure_has_one_curve_per_beta():
    fig = ewa_figure([0.98, 0.95, 0.9, 0.8])
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["beta=0.98", "beta=0.95", "beta=0.9", "beta=0.8"]
    assert lines[3].get_xdata() == pytest.approx(np.arange(100))
    assert lines[3].get_ydata() == pytest.approx(0.2 * 0.8 ** np.arange(100))
    assert ax.get_xlabel() == "time" and ax.get_ylabel() == "weight"
    assert ax.get_yscale() == "linear"


def test_bad_beta_is_one_line_error():
    with pytest.raises(PlotError, match=r"--beta 1.5 is outside \[0, 1\)"):
        ewa_figure([1.5])
