"""--sensitivity: final (or best) train loss against a swept hyperparameter."""

from __future__ import annotations

import numpy as np
import pytest
from run_folders import make_config, quadratic_rows, write_multirun

from optbench.plot.runs import PlotError, find_runs, load_runs
from optbench.plot.sensitivity import resolve_param, sensitivity_figure

LRS = (0.001, 0.01, 0.1, 1.0)


def curves(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


@pytest.fixture
def lr_sweep(tmp_path):
    """sgd and adam x 4 lrs x 3 seeds; adam at lr 1 diverges in every seed. Final epoch loss = f(lr, seed)."""
    jobs = []
    for name in ("sgd", "adam"):
        for lr in LRS:
            for seed in range(3):
                final = lr * (1 + seed) if name == "sgd" else 2 * lr * (1 + seed)
                diverged = name == "adam" and lr == 1.0
                losses = [1.0] * 9 + [float("nan") if diverged else final]
                jobs.append({"config": make_config("mnist", name, seed=seed, **{"optimizer.lr": lr}),
                             "overrides": [f"optimizer={name}", f"optimizer.lr={lr}", f"seed={seed}"],
                             "losses": losses, "status": "diverged" if diverged else "completed",
                             "epochs": [{"epoch": 1, "train_loss": float("nan") if diverged else final}]})
    return load_runs(find_runs([write_multirun(tmp_path / "m", jobs)]).runs)


def test_one_line_per_optimizer_on_log_axes(lr_sweep):
    ax = sensitivity_figure(lr_sweep, "lr").axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "optimizer.lr" and ax.get_ylabel() == "final train loss"
    lines = curves(ax)
    assert [line.get_label() for line in lines] == ["optimizer=sgd", "optimizer=adam (3/12 diverged)", "diverged (no value)"]
    sgd, adam = lines[0], lines[1]
    assert sgd.get_xdata() == pytest.approx(LRS)
    # median of lr*(1, 2, 3) over seeds = 2*lr; min-max band lr .. 3*lr (3 seeds)
    assert sgd.get_ydata() == pytest.approx([2 * lr for lr in LRS])
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.001) and band.max() == pytest.approx(3.0)
    assert adam.get_xdata() == pytest.approx(LRS[:3])  # lr 1 diverged: no value...
    (marked,) = [line for line in ax.get_lines() if line.get_label() == "_diverged"]
    assert marked.get_xdata() == pytest.approx([1.0])  # ...but marked at its x


def test_full_key_and_best(lr_sweep):
    ax = sensitivity_figure(lr_sweep, "optimizer.lr", best=True).axes[0]
    assert ax.get_ylabel() == "best train loss"
    assert curves(ax)[0].get_ydata() == pytest.approx([2 * lr for lr in LRS])


def test_param_resolution_and_errors(lr_sweep):
    assert resolve_param(lr_sweep, "lr") == "optimizer.lr"
    assert resolve_param(lr_sweep, "optimizer.lr") == "optimizer.lr"
    with pytest.raises(PlotError, match=r"--sensitivity beta9: no run's config has that key") as err:
        sensitivity_figure(lr_sweep, "beta9")
    assert "\n" not in str(err.value)
    with pytest.raises(PlotError, match=r"--sensitivity optimizer.impl: its values \(scratch\) are not numbers"):
        sensitivity_figure(lr_sweep, "impl")
    with pytest.raises(PlotError, match=r"every run has batch_size=64, so there is no sweep"):
        sensitivity_figure(lr_sweep, "batch_size")


def test_quadratic_lr_sweep_uses_the_last_iterate(tmp_path):
    lrs = np.linspace(0.01, 0.2, 10)
    jobs = [{"config": make_config("quadratic", "sgd", steps=100, **{"optimizer.lr": float(lr)}),
             "overrides": [f"optimizer.lr={lr}"], "losses": quadratic_rows(float(lr), 100)} for lr in lrs]
    runs = load_runs(find_runs([write_multirun(tmp_path / "q", jobs)]).runs)
    ax = sensitivity_figure(runs, "lr").axes[0]
    (line,) = curves(ax)
    assert line.get_xdata() == pytest.approx(lrs)
    expected = [4 * (2 * (1 - 8 * lr) ** 99) ** 2 for lr in lrs]  # f at the 100th iterate (step 99)
    assert line.get_ydata() == pytest.approx(expected, rel=1e-9)


def test_zero_values_fall_back_to_a_linear_x_axis(tmp_path):
    jobs = [{"config": make_config("quadratic", "momentum", steps=5, **{"optimizer.momentum": m}),
             "losses": quadratic_rows(0.01, 5)} for m in (0.0, 0.63, 0.9)]
    runs = load_runs(find_runs([write_multirun(tmp_path / "q", jobs)]).runs)
    with pytest.warns(UserWarning, match="cannot go on a log axis"):
        ax = sensitivity_figure(runs, "momentum").axes[0]
    assert ax.get_xscale() == "linear"


def test_zero_final_loss_on_a_log_axis_is_reported(tmp_path):
    # lr 0.125 = 1/8 reaches x = 0 (f = 0) in one step: nothing to show on a log axis
    jobs = [{"config": make_config("quadratic", "sgd", steps=5, **{"optimizer.lr": lr}), "losses": quadratic_rows(lr, 5)}
            for lr in (0.05, 0.1, 0.125)]
    runs = load_runs(find_runs([write_multirun(tmp_path / "q", jobs)]).runs)
    with pytest.warns(UserWarning, match=r"final loss is 0 \(or below\) at optimizer.lr=0.125.*add --linear"):
        ax = sensitivity_figure(runs, "lr").axes[0]
    assert curves(ax)[0].get_xdata() == pytest.approx([0.05, 0.1])
    ax = sensitivity_figure(runs, "lr", linear=True).axes[0]
    assert curves(ax)[0].get_xdata() == pytest.approx([0.05, 0.1, 0.125])


def test_a_gamma_sweep_is_an_alpha_sweep(tmp_path):
    jobs = [{"config": make_config(**{"optimizer.gamma": g}), "overrides": [f"optimizer.gamma={g}"],
             "losses": [1.0] * 9 + [g], "epochs": [{"epoch": 1, "train_loss": g}]} for g in (0.5, 0.9, 0.999)]
    runs = load_runs(find_runs([write_multirun(tmp_path / "m", jobs)]).runs)
    for param in ("gamma", "optimizer.gamma", "alpha"):
        assert resolve_param(runs, param) == "optimizer.alpha"  # not schedule.gamma, which does not vary
    ax = sensitivity_figure(runs, "gamma").axes[0]
    assert ax.get_xlabel() == "optimizer.alpha"
    assert curves(ax)[0].get_xdata() == pytest.approx([0.5, 0.9, 0.999])
    assert curves(ax)[0].get_ydata() == pytest.approx([0.5, 0.9, 0.999])
