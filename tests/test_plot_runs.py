"""Finding and loading run folders; every bad input gives one line naming the problem and the fix."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from run_folders import make_config, quadratic_rows, write_multirun, write_run

from optbench.plot.runs import PlotError, PlotWarning, find_runs, load_run, load_runs, read_table


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    assert "Fix:" in text
    return text


# --------------------------------------------------------------------------- discovery


def test_single_run_multirun_and_glob_in_any_mix(tmp_path):
    single = write_run(tmp_path / "outputs/2024-06-01/10-00-00-000001")
    multi = write_multirun(tmp_path / "multirun/2024-06-01/11-00-00-000001", [{} for _ in range(12)])
    write_run(tmp_path / "outputs/2024-06-02/09-00-00-000001")
    found = find_runs([single, multi, str(tmp_path / "outputs/2024-06-02/*")])
    names = [p.relative_to(tmp_path).as_posix() for p in found.runs]
    # job folders in numeric order (2 before 10), then the glob's match
    assert names[0] == "outputs/2024-06-01/10-00-00-000001"
    assert names[1:13] == [f"multirun/2024-06-01/11-00-00-000001/{i}" for i in range(12)]
    assert names[13] == "outputs/2024-06-02/09-00-00-000001"
    assert found.first_input == single


def test_duplicates_are_listed_once_and_parents_are_searched(tmp_path):
    write_multirun(tmp_path / "multirun/a", [{}, {}])
    found = find_runs([tmp_path / "multirun", tmp_path / "multirun/a/1"])
    assert [p.name for p in found.runs] == ["0", "1"]


def test_missing_path_is_one_line_error(tmp_path):
    with pytest.raises(PlotError) as err:
        find_runs([tmp_path / "nope"])
    assert "no such file or folder" in one_line(err)


def test_glob_without_match_is_one_line_error(tmp_path):
    with pytest.raises(PlotError) as err:
        find_runs([str(tmp_path / "multirun/*/nothing*")])
    assert "no path matches" in one_line(err)


def test_folder_without_runs_is_one_line_error(tmp_path):
    (tmp_path / "empty/sub").mkdir(parents=True)
    (tmp_path / "empty/sub/notes.txt").write_text("hello")
    with pytest.raises(PlotError) as err:
        find_runs([tmp_path / "empty"])
    assert "no runs found" in one_line(err)


def test_missing_path_among_good_inputs_is_a_warning(tmp_path):
    good = write_run(tmp_path / "run")
    with pytest.warns(PlotWarning, match="no such file"):
        found = find_runs([tmp_path / "missing", good])
    assert found.runs == [good]


# --------------------------------------------------------------------------- loading


def test_load_run_reads_config_overrides_csvs_and_summary(tmp_path):
    config = make_config("linreg", "rmsprop", **{"optimizer.alpha": 0.999})
    rows = [{"step": i, "epoch": (i + 1) / 100, "examples_seen": 10 * (i + 1), "wall_time_s": 0.001 * (i + 1),
             "loss": 1.0 / (i + 1), "lr": 0.03, "full_loss": 2.0 / (i + 1), "suboptimality": 1.5 / (i + 1)}
            for i in range(300)]
    write_run(tmp_path / "r", config=config, overrides=["optimizer.alpha=0.999"], losses=rows)
    run = load_run(tmp_path / "r")
    assert run.dataset == "linreg" and run.optimizer == "rmsprop" and run.impl == "scratch"
    assert run.get("optimizer.alpha") == 0.999
    assert run.overrides == ["optimizer.alpha=0.999"]
    assert list(run.losses.columns[:5]) == ["step", "epoch", "examples_seen", "wall_time_s", "loss"]
    assert len(run.losses) == 300 and run.losses["full_loss"].iloc[1] == pytest.approx(1.0)
    assert len(run.epochs) == 3
    assert run.status == "completed" and run.mark is None and not run.diverged


def test_nan_and_inf_and_empty_cells_are_read(tmp_path):
    path = tmp_path / "losses.csv"
    path.write_text("step,epoch,examples_seen,wall_time_s,loss,lr,full_loss\n0,0.1,1,0.1,1.5,0.1,\n1,0.2,2,0.2,inf,0.1,\n2,0.3,3,0.3,nan,0.1,\n")
    table = read_table(path, ["step", "loss"])
    assert table["loss"].iloc[0] == 1.5 and math.isinf(table["loss"].iloc[1]) and math.isnan(table["loss"].iloc[2])
    assert table["full_loss"].isna().all()


def test_config_falls_back_to_summary_json(tmp_path):
    write_run(tmp_path / "r", config=make_config(**{"optimizer.lr": 0.5}), hydra=False, overrides=["optimizer.lr=0.5"])
    run = load_run(tmp_path / "r")
    assert run.get("optimizer.lr") == 0.5 and run.overrides == ["optimizer.lr=0.5"]


@pytest.mark.parametrize("content, words", [
    ("", "is empty"),
    ("step,epoch,examples_seen,wall_time_s,loss,lr\n", "no rows"),
    ("step,epoch,examples_seen,wall_time_s,loss,lr\n0,0.1,64,0.1,2.3,0.001\n1,0.2,128,0.2,2.1", "truncated"),
    ("step,epoch,examples_seen,wall_time_s,loss,lr\n0,0.1,64,0.1,2.3\n1,0.2,128,0.2,2.1,0.001\n", "truncated or malformed at line 2"),
    ("step,epo", "truncated in its header"),
    ("step,epoch,examples_seen,wall_time_s,loss,lr\n0,0.1,64,0.1,abc,0.001\n", "not a number"),
])
def test_bad_losses_csv_is_one_line_error(tmp_path, content, words):
    write_run(tmp_path / "r")
    (tmp_path / "r/losses.csv").write_text(content)
    with pytest.raises(PlotError) as err:
        load_run(tmp_path / "r")
    text = one_line(err)
    assert words in text and "losses.csv" in text


def test_summary_json_that_is_not_json_is_one_line_error(tmp_path):
    write_run(tmp_path / "r")
    (tmp_path / "r/summary.json").write_text('{"status": "completed", "final": {')
    with pytest.raises(PlotError) as err:
        load_run(tmp_path / "r")
    assert "is not valid JSON" in one_line(err)


def test_failed_run_without_losses_names_its_error(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r/summary.json").write_text(json.dumps({"status": "failed", "error": "Unknown optimizer 'adamz'.\nFix: ..."}))
    with pytest.raises(PlotError) as err:
        load_run(tmp_path / "r")
    assert "failed before logging a step: Unknown optimizer 'adamz'" in one_line(err)


def test_job_that_never_started_is_one_line_error(tmp_path):
    (tmp_path / "r/.hydra").mkdir(parents=True)
    (tmp_path / "r/.hydra/config.yaml").write_text("seed: 0\n")
    with pytest.raises(PlotError) as err:
        load_run(tmp_path / "r")
    assert "never started" in one_line(err)


def test_bad_epochs_csv_only_matters_when_used(tmp_path):
    write_run(tmp_path / "r")
    (tmp_path / "r/epochs.csv").write_text("epoch,train_loss,test_loss,test_acc,epoch_time_s\n1,0.5,0.4")
    run = load_run(tmp_path / "r")  # the loss curve does not need epochs.csv
    with pytest.raises(PlotError) as err:
        run.epochs
    assert "epochs.csv is truncated" in one_line(err)


def test_bad_run_among_good_ones_is_skipped_with_warning(tmp_path):
    write_multirun(tmp_path / "m", [{}, {}, {}])
    (tmp_path / "m/1/summary.json").write_text("not json")
    with pytest.warns(PlotWarning, match=r"m/1/summary.json is not valid JSON"):
        runs = load_runs(find_runs([tmp_path / "m"]).runs)
    assert [r.path.name for r in runs] == ["0", "2"]


def test_all_runs_bad_raises_the_first_problem(tmp_path):
    write_multirun(tmp_path / "m", [{}, {}])
    for job in ("0", "1"):
        (tmp_path / f"m/{job}/losses.csv").write_text("")
    with pytest.raises(PlotError) as err:
        load_runs(find_runs([tmp_path / "m"]).runs)
    assert "none of the 2 runs could be loaded" in one_line(err)


def test_skipped_job_plots_the_run_it_reuses(tmp_path):
    earlier = write_run(tmp_path / "outputs/earlier", losses=[1.0, 0.5, 0.25])
    (tmp_path / "m/3/.hydra").mkdir(parents=True)
    (tmp_path / "m/3/reused.json").write_text(json.dumps(
        {"status": "skipped", "reused_run": str(earlier), "config_hash": "x", "overrides": ["seed=0"]}))
    run = load_run(tmp_path / "m/3")
    assert run.reused_from == earlier and list(run.losses["loss"]) == [1.0, 0.5, 0.25]
    # given together with the run it reuses, it is not counted twice
    assert [r.path for r in load_runs([earlier, tmp_path / "m/3"])] == [earlier]


def test_statuses_and_divergence(tmp_path):
    write_run(tmp_path / "d", losses=[1.0, 3.0, float("inf")], status="diverged")
    write_run(tmp_path / "k", losses=[1.0, 0.5], status="running")
    write_run(tmp_path / "i", losses=[1.0, 0.5], status="interrupted")
    diverged, killed, interrupted = (load_run(tmp_path / n) for n in "dki")
    assert diverged.diverged and diverged.mark == "diverged" and diverged.diverged_at_step == 2
    assert killed.mark == "incomplete" and interrupted.mark == "interrupted"


def test_quadratic_columns(tmp_path):
    write_run(tmp_path / "q", config=make_config("quadratic", "sgd"), losses=quadratic_rows(0.2, 4))
    run = load_run(tmp_path / "q")
    assert np.allclose(run.losses["x"], [2.0, -1.2, 0.72, -0.432])
    assert np.allclose(run.losses["f_x"], 4 * run.losses["x"] ** 2)


def test_running_run_with_a_half_written_last_line_drops_it(tmp_path):
    write_run(tmp_path / "r", losses=[1.0, 0.5, 0.25], status="running")
    text = (tmp_path / "r/losses.csv").read_text()
    (tmp_path / "r/losses.csv").write_text(text + "3,0.4,25")  # the writer is mid-line
    with pytest.warns(PlotWarning, match="dropped its unfinished last line"):
        (run,) = load_runs([tmp_path / "r"])
    assert list(run.losses["loss"]) == [1.0, 0.5, 0.25] and run.mark == "incomplete"
