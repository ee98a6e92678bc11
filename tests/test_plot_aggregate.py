"""Seed bands, checked against numbers computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from run_folders import make_config, write_run

from optbench.plot.aggregate import align, band_stats, group_runs
from optbench.plot.figures import loss_figure
from optbench.plot.runs import load_run


def test_four_seeds_log_axis_gives_iqr_in_log_space():
    # one point, seeds 1, 10, 100, 1000: log10 = 0, 1, 2, 3
    # median of logs = 1.5; quartiles (linear interpolation at 0.75 and 2.25 positions) = 0.75, 2.25
    band = band_stats(np.array([[1.0], [10.0], [100.0], [1000.0]]), log=True)
    assert band.kind == "IQR"
    assert band.center[0] == pytest.approx(10**1.5)  # 31.6227..., not the linear median 55
    assert band.low[0] == pytest.approx(10**0.75)  # 5.6234...
    assert band.high[0] == pytest.approx(10**2.25)  # 177.827...
    assert band.low[0] > 0


def test_four_seeds_linear_axis_gives_plain_iqr():
    band = band_stats(np.array([[1.0], [10.0], [100.0], [1000.0]]), log=False)
    # sorted 1, 10, 100, 1000; q25 at position 0.75 -> 1 + 0.75*9 = 7.75; q75 at 2.25 -> 100 + 0.25*900 = 325
    assert band.center[0] == pytest.approx(55.0)
    assert band.low[0] == pytest.approx(7.75)
    assert band.high[0] == pytest.approx(325.0)


def test_three_seeds_give_min_max_and_median():
    band = band_stats(np.array([[1.0, 2.0], [4.0, 8.0], [16.0, 0.5]]), log=True)
    assert band.kind == "min-max"
    assert band.center == pytest.approx([4.0, 2.0])
    assert band.low == pytest.approx([1.0, 0.5])
    assert band.high == pytest.approx([16.0, 8.0])


def test_two_seeds_median_is_geometric_mean_on_log_axis():
    band = band_stats(np.array([[1.0], [100.0]]), log=True)
    assert band.center[0] == pytest.approx(10.0)
    band = band_stats(np.array([[1.0], [100.0]]), log=False)
    assert band.center[0] == pytest.approx(50.5)


def test_non_finite_and_missing_values_drop_out():
    values = np.array([[1.0, 2.0, np.nan], [3.0, np.inf, np.nan], [5.0, 4.0, 9.0]])
    band = band_stats(values, log=False)
    assert band.count.tolist() == [3, 2, 1]
    assert band.center == pytest.approx([3.0, 3.0, 9.0])
    assert band.low == pytest.approx([1.0, 2.0, 9.0])
    assert band.high == pytest.approx([5.0, 4.0, 9.0])


def test_align_on_union_of_steps():
    aligned = align([(np.array([0, 30, 60]), np.array([0.1, 0.2, 0.3]), np.array([3.0, 2.0, 1.0])),
                     (np.array([0, 30]), np.array([0.1, 0.2]), np.array([4.0, 2.5]))])
    assert aligned.key.tolist() == [0, 30, 60]
    assert aligned.x == pytest.approx([0.1, 0.2, 0.3])
    assert np.isnan(aligned.y[1, 2]) and aligned.y[1, 1] == 2.5


def test_runs_differing_only_in_seed_form_one_group(tmp_path):
    runs = [load_run(write_run(tmp_path / f"s{seed}", config=make_config(seed=seed, quiet=seed == 1)))
            for seed in range(4)]
    runs.append(load_run(write_run(tmp_path / "other", config=make_config(**{"optimizer.alpha": 0.5}))))
    groups = group_runs(runs)
    assert [g.size for g in groups] == [4, 1]


def test_band_drawn_in_figure_matches_hand_computation(tmp_path):
    # 4 seeds, 3 logged steps; values per step chosen so the log-space stats are round numbers
    per_seed = [[1.0, 10.0, 100.0], [10.0, 100.0, 1000.0], [100.0, 1000.0, 10000.0], [1000.0, 10000.0, 100000.0]]
    runs = [load_run(write_run(tmp_path / f"s{seed}", config=make_config(seed=seed), losses=values,
                               overrides=[f"seed={seed}"]))
            for seed, values in enumerate(per_seed)]
    fig = loss_figure(runs)
    ax = fig.axes[0]
    curves = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert len(curves) == 1 and curves[0].get_label() == "optimizer=rmsprop"
    # median of log10 per step: 1.5, 2.5, 3.5
    assert curves[0].get_ydata() == pytest.approx([10**1.5, 10**2.5, 10**3.5])
    (band,) = ax.collections
    vertices = band.get_paths()[0].vertices
    ys = vertices[:, 1]
    # IQR in log space: 10**(median - 0.75) .. 10**(median + 0.75)
    for median in (1.5, 2.5, 3.5):
        assert any(math.isclose(y, 10 ** (median - 0.75), rel_tol=1e-9) for y in ys)
        assert any(math.isclose(y, 10 ** (median + 0.75), rel_tol=1e-9) for y in ys)
    assert ys.min() == pytest.approx(10**0.75) and ys.max() == pytest.approx(10**4.25)
    assert ax.get_yscale() == "log"
