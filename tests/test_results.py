"""optbench.results.load: tidy DataFrames of run folders, read the way the plotter reads them."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from test_report import write_study

from optbench import results
from optbench.plot.metrics import final_value
from optbench.plot.runs import PlotWarning, find_runs, load_runs_and_failures
from optbench.run_folder import RunFolderError


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_study(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def loaded(study):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlotWarning)
        return results.load(study)


def test_steps_one_row_per_logged_step_with_the_config_flattened(study, loaded):
    runs, _ = load_runs_and_failures(find_runs([study]).runs)
    steps = loaded.steps
    assert isinstance(steps, pd.DataFrame)
    assert len(steps) == sum(len(run.losses) for run in runs)
    assert list(steps.columns[:2]) == ["run", "label"]
    for column in ("step", "epoch", "examples_seen", "wall_time_s", "loss", "lr",
                   "optimizer.name", "optimizer.impl", "optimizer.lr", "dataset.name", "seed", "batch_size"):
        assert column in steps.columns, column
    one = runs[0]
    mine = steps[steps.run == one.name]
    assert mine["loss"].tolist() == one.losses["loss"].tolist()
    assert set(mine["optimizer.lr"]) == {one.get("optimizer.lr")}
    # the three-line notebook use from the README
    medians = steps.groupby(["optimizer.name", "step"]).loss.median()
    assert medians.loc[("adam", 0)] == pytest.approx(steps[(steps["optimizer.name"] == "adam") & (steps.step == 0)]
                                                     .loss.median())
    # problem columns stay: linreg's full_loss, the quadratic's iterates
    assert {"full_loss", "x", "f_x", "grad_x"} <= set(steps.columns)


def test_epochs_one_row_per_finished_epoch(study, loaded):
    runs, _ = load_runs_and_failures(find_runs([study]).runs)
    assert len(loaded.epochs) == sum(len(run.epochs) for run in runs)
    assert {"epoch", "train_loss", "test_loss", "test_acc", "epoch_time_s", "optimizer.name"} <= set(loaded.epochs.columns)


def test_runs_one_row_per_folder_even_the_unreadable_ones(study, loaded):
    frame = loaded.runs
    folders = find_runs([study]).runs
    assert len(frame) == len(folders)
    assert frame["run"].tolist()[: len(loaded.loaded)] == [run.name for run in loaded.loaded]
    unread = frame[~frame.loaded.astype(bool)]
    assert len(unread) == 2 and unread.reason.str.contains("Fix").all()
    assert set(unread.status) == {"failed", "unreadable"}
    statuses = dict(zip(frame.run.map(lambda p: p.rsplit("/", 1)[1]), frame.status))
    assert sorted(statuses.values()).count("completed") == 16
    assert {"diverged", "interrupted", "running"} <= set(statuses.values())
    diverged = frame[frame.status == "diverged"].iloc[0]
    assert diverged.mark == "diverged" and diverged.diverged_at_step == 3
    for run in loaded.loaded:
        row = frame[frame.run == run.name].iloc[0]
        value = final_value(run, "loss")
        assert (pd.isna(row.final_train_loss) and value is None) or row.final_train_loss == pytest.approx(value)
    assert "optimizer.lr" in frame.columns and "config_hash" in frame.columns


def test_load_takes_one_path_a_list_or_a_glob_and_warns_about_bad_folders(study):
    with pytest.warns(PlotWarning, match="not valid JSON"):
        single = results.load(str(study))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlotWarning)  # quiet: warnings kept, not emitted
        listed = results.load([study / "0", study / "1"], quiet=True)
        globbed = results.load(str(study / "[0-3]"), quiet=True)
    assert len(listed.runs) == 2 and len(globbed.runs) == 4 and not listed.warnings
    assert any("not valid JSON" in message for message in single.warnings)
    assert "runs" in repr(single)


def test_nothing_to_read_is_one_error_naming_the_fix(tmp_path):
    with pytest.raises(RunFolderError, match="Fix"):
        results.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="no runs found"):
        results.load(tmp_path / "empty")
