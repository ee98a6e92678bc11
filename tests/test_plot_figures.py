"""The loss figure: curves, labels, axes, markers for diverged and unfinished runs, quadratic panel."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from run_folders import curve_rows, make_config, quadratic_rows, write_multirun, write_run

from optbench.plot.figures import loss_figure
from optbench.plot.runs import PlotError, PlotWarning, find_runs, load_run, load_runs


def curves(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def markers(ax, kind):
    return [line for line in ax.get_lines() if line.get_label() == f"_{kind}"]


def load_dir(path):
    return load_runs(find_runs([path]).runs)


@pytest.fixture
def alpha_sweep(tmp_path):
    """Seed 000: scratch alpha 0.9, 0.999 and builtin 0.9 (a multirun folder)."""
    jobs = []
    for impl, alpha in (("scratch", 0.9), ("scratch", 0.999), ("builtin", 0.9)):
        jobs.append({"config": make_config(**{"optimizer.impl": impl, "optimizer.alpha": alpha}),
                     "overrides": [f"optimizer.impl={impl}", f"optimizer.alpha={alpha}", "+experiment=rmsprop_alpha"],
                     "losses": curve_rows([2.3 * 0.9**i for i in range(50)], steps_per_epoch=10)})
    return write_multirun(tmp_path / "multirun/2024-06-01/10-00-00-000000", jobs)


def test_default_is_semilogy_loss_against_epoch(alpha_sweep):
    fig = loss_figure(load_dir(alpha_sweep))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xscale() == "linear"
    assert ax.get_xlabel() == "epoch"
    assert [c.get_label() for c in curves(ax)] == ["impl=scratch, alpha=0.9", "impl=scratch, alpha=0.999",
                                                   "impl=builtin, alpha=0.9"]
    first = curves(ax)[0]
    assert first.get_xdata()[0] == pytest.approx(0.1) and first.get_xdata()[-1] == pytest.approx(5.0)
    assert first.get_ydata()[0] == pytest.approx(2.3)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [c.get_label() for c in curves(ax)]


@pytest.mark.parametrize("x, column, label", [("step", "step", "step"), ("epoch", "epoch", "epoch"),
                                              ("examples", "examples_seen", "examples seen"),
                                              ("time", "wall_time_s", "wall time (s)")])
def test_x_options_read_losses_csv(alpha_sweep, x, column, label):
    runs = load_dir(alpha_sweep)
    ax = loss_figure(runs, x=x).axes[0]
    assert ax.get_xlabel() == label
    assert curves(ax)[0].get_xdata() == pytest.approx(runs[0].losses[column].to_numpy())


def test_label_option_replaces_labels_in_order(alpha_sweep):
    ax = loss_figure(load_dir(alpha_sweep), labels=["a", "b", "c"]).axes[0]
    assert [c.get_label() for c in curves(ax)] == ["a", "b", "c"]


def test_wrong_number_of_labels_is_one_line_error(alpha_sweep):
    with pytest.raises(PlotError, match=r"--label was given 2 time\(s\) but the figure has 3 curve\(s\)") as err:
        loss_figure(load_dir(alpha_sweep), labels=["a", "b"])
    assert "\n" not in str(err.value)


def test_linear_title_and_smoothing(alpha_sweep):
    runs = load_dir(alpha_sweep)
    ax = loss_figure(runs, linear=True, title="seed 000").axes[0]
    assert ax.get_yscale() == "linear" and ax.get_title() == "seed 000"
    raw = curves(loss_figure(runs, linear=True).axes[0])[0].get_ydata()
    smooth = curves(loss_figure(runs, linear=True, smooth=3).axes[0])[0].get_ydata()
    assert smooth[0] == pytest.approx(raw[0])
    assert smooth[4] == pytest.approx(np.mean(raw[2:5]))  # trailing window of 3 points
    logged = curves(loss_figure(runs, smooth=3).axes[0])[0].get_ydata()
    assert logged[4] == pytest.approx(np.exp(np.mean(np.log(raw[2:5]))))  # geometric on a log axis


def test_unknown_x_or_y_is_one_line_error(alpha_sweep):
    runs = load_dir(alpha_sweep)
    with pytest.raises(PlotError, match=r"unknown --x 'iteration'. Fix: use one of step, epoch, examples, time"):
        loss_figure(runs, x="iteration")
    with pytest.raises(PlotError, match=r"unknown --y 'accuracy'. Fix: use one of loss, full_loss"):
        loss_figure(runs, y="accuracy")


def test_test_metrics_from_epochs_csv(alpha_sweep):
    runs = load_dir(alpha_sweep)
    ax = loss_figure(runs, y="test_acc").axes[0]
    assert ax.get_yscale() == "linear"  # accuracy: linear by default
    assert curves(ax)[0].get_xdata() == pytest.approx([1, 2, 3, 4, 5])
    assert curves(ax)[0].get_ydata() == pytest.approx(runs[0].epochs["test_acc"].to_numpy())
    ax = loss_figure(runs, y="test_loss", x="step").axes[0]
    assert ax.get_yscale() == "log"
    assert curves(ax)[0].get_xdata() == pytest.approx([9, 19, 29, 39, 49])  # last step of each epoch


def test_y_that_makes_no_sense_for_one_run_skips_it(tmp_path, alpha_sweep):
    linreg = write_run(tmp_path / "linreg", config=make_config("linreg", "rmsprop"),
                       losses=curve_rows([1.0, 0.5, 0.2], extra={"full_loss": [1, 0.4, 0.1], "suboptimality": [1, 0.4, 0.1]}))
    runs = load_runs(find_runs([alpha_sweep, linreg]).runs)
    with pytest.warns(PlotWarning, match=r"linreg is a linreg run and has no test_acc \(test_acc is recorded for mnist and fashion_mnist only\)"):
        ax = loss_figure(runs, y="test_acc").axes[0]
    assert len(curves(ax)) == 3


def test_y_that_makes_no_sense_for_any_run_is_one_line_error(tmp_path):
    linreg = write_run(tmp_path / "linreg", config=make_config("linreg", "rmsprop"),
                       losses=curve_rows([1.0, 0.5], extra={"full_loss": [1, 0.4], "suboptimality": [1, 0.4]}))
    with pytest.raises(PlotError, match="has no test_acc") as err:
        loss_figure([load_run(linreg)], y="test_acc")
    assert "\n" not in str(err.value) and "Fix:" in str(err.value)
    with pytest.raises(PlotError, match="has no full_loss .*linreg only"):
        loss_figure([load_run(write_run(tmp_path / "m"))], y="full_loss")


def test_linreg_full_loss_and_suboptimality(tmp_path):
    rows = curve_rows([1.0, 0.5, 0.2], extra={"full_loss": [0.9, 0.3, 0.05], "suboptimality": [0.8, 0.2, 0.01]})
    run = load_run(write_run(tmp_path / "l", config=make_config("linreg", "rmsprop"), losses=rows))
    ax = loss_figure([run], y="full_loss").axes[0]
    assert curves(ax)[0].get_ydata() == pytest.approx([0.9, 0.3, 0.05]) and ax.get_yscale() == "log"
    ax = loss_figure([run], y="suboptimality").axes[0]
    assert curves(ax)[0].get_ydata() == pytest.approx([0.8, 0.2, 0.01]) and ax.get_ylabel().startswith("suboptimality")


def test_diverged_run_ends_with_a_marker_and_says_so(tmp_path):
    good = write_run(tmp_path / "good", config=make_config(**{"optimizer.lr": 0.001}))
    bad = write_run(tmp_path / "bad", config=make_config(**{"optimizer.lr": 1.0}),
                    losses=[2.0, 5.0, 40.0, float("nan")], status="diverged")
    ax = loss_figure(load_runs([good, bad])).axes[0]
    labels = [c.get_label() for c in curves(ax)]
    assert labels == ["lr=0.001", "lr=1 (diverged)"]
    (marker,) = markers(ax, "diverged")
    assert marker.get_xdata()[0] == pytest.approx(0.3) and marker.get_ydata()[0] == pytest.approx(40.0)
    assert curves(ax)[1].get_ydata() == pytest.approx([2.0, 5.0, 40.0])  # the curve ends at the last finite point


def test_running_and_interrupted_runs_are_marked(tmp_path):
    killed = write_run(tmp_path / "k", config=make_config(**{"optimizer.lr": 0.1}), losses=[1.0, 0.8], status="running")
    stopped = write_run(tmp_path / "i", config=make_config(**{"optimizer.lr": 0.2}), losses=[1.0, 0.7], status="interrupted")
    ax = loss_figure(load_runs([killed, stopped])).axes[0]
    assert [c.get_label() for c in curves(ax)] == ["lr=0.1 (incomplete)", "lr=0.2 (interrupted)"]
    assert len(markers(ax, "incomplete")) == 1 and len(markers(ax, "interrupted")) == 1


def test_seed_group_with_one_diverged_seed(tmp_path):
    paths = [write_run(tmp_path / f"s{s}", config=make_config(seed=s), losses=[1.0, 0.5, 0.25]) for s in range(3)]
    paths.append(write_run(tmp_path / "s3", config=make_config(seed=3), losses=[1.0, 9.0, float("inf")], status="diverged"))
    ax = loss_figure(load_runs(paths)).axes[0]
    (curve,) = curves(ax)
    assert curve.get_label() == "optimizer=rmsprop (1/4 diverged)"
    assert len(markers(ax, "diverged")) == 1
    assert ax.get_legend().get_title().get_text() == "median of 4 seeds, band: IQR"


def test_quadratic_runs_get_the_iterates_panel(tmp_path):
    jobs = [{"config": make_config("quadratic", "sgd", steps=4, **{"optimizer.lr": lr}),
             "overrides": [f"optimizer.lr={lr}"], "losses": quadratic_rows(lr, 4)} for lr in (1.0, 0.5, 0.2, 0.125)]
    runs = load_dir(write_multirun(tmp_path / "q", jobs))
    fig = loss_figure(runs)
    left, right = fig.axes
    assert left.get_xlabel() == "step" and left.get_yscale() == "linear"  # seed 003: linear, per iteration
    assert [c.get_label() for c in curves(left)] == ["lr=1", "lr=0.5", "lr=0.2", "lr=0.125"]
    assert curves(left)[0].get_ydata() == pytest.approx([16.0, 784.0, 38416.0, 4 * 686.0**2])
    parabola = [line for line in right.get_lines() if line.get_label() == "y = 4x^2"]
    assert len(parabola) == 1
    x, y = parabola[0].get_xdata(), parabola[0].get_ydata()
    assert y == pytest.approx(4 * x**2) and x.max() >= 686  # wide enough for lr 1's iterates
    iterates = [line for line in right.get_lines() if line.get_label() == "_iterates"]
    assert len(iterates) == 4
    assert iterates[2].get_xdata() == pytest.approx([2.0, -1.2, 0.72, -0.432])
    assert iterates[2].get_ydata() == pytest.approx(4 * np.array([2.0, -1.2, 0.72, -0.432]) ** 2)
    assert iterates[2].get_color() == curves(left)[2].get_color()


def test_plot_hints_in_config_set_defaults_and_options_win(tmp_path):
    config = make_config("linreg", "rmsprop", plot={"y": "full_loss", "x": "step", "linear": True, "title": "seed 001"})
    rows = curve_rows([1.0, 0.5], extra={"full_loss": [0.9, 0.4], "suboptimality": [0.8, 0.3]})
    run = load_run(write_run(tmp_path / "l", config=config, losses=rows))
    ax = loss_figure([run]).axes[0]
    assert ax.get_xlabel() == "step" and ax.get_yscale() == "linear" and ax.get_title() == "seed 001"
    assert curves(ax)[0].get_ydata() == pytest.approx([0.9, 0.4])
    ax = loss_figure([run], x="epoch", y="loss", linear=False, title="mine").axes[0]
    assert ax.get_xlabel() == "epoch" and ax.get_yscale() == "log" and ax.get_title() == "mine"


def test_run_with_nothing_finite_is_skipped(tmp_path):
    good = write_run(tmp_path / "good")
    dead = write_run(tmp_path / "dead", config=make_config(**{"optimizer.lr": 9.0}), losses=[float("nan")], status="diverged")
    with pytest.warns(PlotWarning, match="dead has no positive finite loss"):
        ax = loss_figure(load_runs([good, dead])).axes[0]
    assert len(curves(ax)) == 1


def test_zero_loss_on_a_forced_log_axis_is_reported(tmp_path):
    run = load_run(write_run(tmp_path / "q", config=make_config("quadratic", "sgd"), losses=quadratic_rows(0.125, 3)))
    with pytest.warns(PlotWarning, match="loss values <= 0 are not shown on a log axis; add --linear"):
        ax = loss_figure([run], linear=False).axes[0]
    assert ax.get_yscale() == "log"


def test_a_preset_hint_does_not_drop_the_other_datasets_runs(tmp_path, alpha_sweep):
    rows = curve_rows([1.0, 0.5], extra={"full_loss": [0.9, 0.4], "suboptimality": [0.8, 0.3]})
    hinted = write_run(tmp_path / "linreg", config=make_config("linreg", "rmsprop", plot={"y": "full_loss",
                       "x": None, "linear": False, "title": "seed 001"}), losses=rows)
    runs = load_runs(find_runs([hinted, alpha_sweep]).runs)
    with pytest.warns(PlotWarning, match=r"plot.y=full_loss is not used: 3 of the 4 runs .* have no full_loss"):
        fig = loss_figure(runs)
    ax = fig.axes[0]
    assert len(curves(ax)) == 4 and ax.get_ylabel() == "train loss (minibatch)" and ax.get_title() != "seed 001"
    # alone, the preset's runs still follow their hint
    ax = loss_figure([runs[0]]).axes[0]
    assert ax.get_ylabel() == "full-data loss" and ax.get_title() == "seed 001"


def test_bad_mathtext_in_title_or_label_is_one_line_error(alpha_sweep):
    runs = load_dir(alpha_sweep)
    with pytest.raises(PlotError, match=r"--title '\$\\\\frac\{\$' is not valid mathtext") as err:
        loss_figure(runs, title="$\\frac{$")
    assert "\n" not in str(err.value) and "Fix:" in str(err.value)
    with pytest.raises(PlotError, match="--label '\\$x\\^\\$' is not valid mathtext"):
        loss_figure(runs, labels=["a", "$x^$", "c"])
    ax = loss_figure(runs, title="$\\alpha$ sweep", labels=["$\\alpha=0.9$", "b", "c"]).axes[0]
    assert ax.get_title() == "$\\alpha$ sweep"


def test_a_dollar_in_a_config_value_is_drawn_literally(tmp_path):
    import io

    paths = [write_run(tmp_path / n, config=make_config(**{"optimizer.impl": impl})) for n, impl in
             (("a", "$x^$"), ("b", "$\\frac{$"))]
    fig = loss_figure(load_runs(paths))
    assert [c.get_label() for c in curves(fig.axes[0])] == ["impl=\\$x^\\$", "impl=\\$\\frac{\\$"]
    fig.savefig(io.BytesIO(), format="png")  # no mathtext error at draw time
