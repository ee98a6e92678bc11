"""Finding and loading run folders; every bad input gives one line naming the problem and the fix."""

from __future__ import annotations

import json
import math
import os

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
    write_multirun(tmp_path / "m", [{"config": make_config(seed=seed)} for seed in range(3)])
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
    digest = json.loads((earlier / "summary.json").read_text())["config_hash"]
    (tmp_path / "m/3/reused.json").write_text(json.dumps(
        {"status": "skipped", "reused_run": str(earlier), "config_hash": digest, "overrides": ["seed=0"]}))
    run = load_run(tmp_path / "m/3")
    assert run.reused_from == earlier and list(run.losses["loss"]) == [1.0, 0.5, 0.25]
    # given together with the run it reuses, it is not counted twice
    with pytest.warns(PlotWarning, match=r"m/3 holds the same run as .*earlier .*reused.json points at"):
        assert [r.path for r in load_runs([earlier, tmp_path / "m/3"])] == [earlier]
    with pytest.warns(PlotWarning, match="holds the same run"):  # whichever comes first, the run's own files win
        assert [r.path for r in load_runs([tmp_path / "m/3", earlier])] == [earlier]


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


# --------------------------------------------------------------------------- the truth: resolved config, one run once


def test_the_resolved_config_in_summary_json_wins_over_hydras_raw_one(tmp_path):
    # seed 001's gamma sweep: Hydra's composition holds gamma 0.999 next to the yaml's alpha 0.9
    write_run(tmp_path / "r", config=make_config(**{"optimizer.gamma": 0.999}), overrides=["optimizer.gamma=0.999"])
    assert "gamma: 0.999" in (tmp_path / "r/.hydra/config.yaml").read_text()
    run = load_run(tmp_path / "r")
    assert run.get("optimizer.alpha") == 0.999 and "optimizer.gamma" not in run.flat


def test_a_rewritten_hydra_config_does_not_relabel_a_run(tmp_path):
    write_run(tmp_path / "r", config=make_config(**{"optimizer.lr": 0.01}))
    raw = (tmp_path / "r/.hydra/config.yaml").read_text()
    (tmp_path / "r/.hydra/config.yaml").write_text(raw.replace("lr: 0.001", "lr: 0.05"))  # a later rerun's
    assert load_run(tmp_path / "r").get("optimizer.lr") == 0.01


def test_hydra_config_fallback_resolves_aliases(tmp_path):
    write_run(tmp_path / "r", config=make_config(**{"optimizer.rho": 0.95}), summary={"config": None})
    run = load_run(tmp_path / "r")
    assert run.get("optimizer.alpha") == 0.95 and "optimizer.rho" not in run.flat and "optimizer.gamma" not in run.flat
    write_run(tmp_path / "m", config=make_config("mnist", "momentum", **{"optimizer.gamma": 0.5}),
              summary={"config": None})
    assert load_run(tmp_path / "m").get("optimizer.momentum") == 0.5


def test_a_copied_run_is_one_run_not_two_seeds(tmp_path):
    import shutil

    original = write_run(tmp_path / "a/0", config=make_config(**{"optimizer.lr": 0.1}))
    other = write_run(tmp_path / "a/1", config=make_config(**{"optimizer.lr": 0.2}))
    copy = tmp_path / "b/0"
    shutil.copytree(original, copy)
    with pytest.warns(PlotWarning, match=r"b/0 holds the same run as .*a/0 .*not as two seeds"):
        runs = load_runs([original, other, copy])
    assert [r.path for r in runs] == [original, other]


def test_of_two_identical_runs_the_finished_one_is_kept(tmp_path):
    config = make_config(seed=3)
    killed = write_run(tmp_path / "k", config=config, losses=[1.0, 0.5], status="running")
    done = write_run(tmp_path / "d", config=config, losses=[1.0, 0.5, 0.2, 0.1])
    with pytest.warns(PlotWarning, match="holds the same run"):
        (run,) = load_runs([killed, done])
    assert run.path == done


def test_a_reused_json_whose_run_changed_is_skipped(tmp_path):
    earlier = write_run(tmp_path / "earlier")
    good = write_run(tmp_path / "good", config=make_config(seed=1))
    (tmp_path / "m/0").mkdir(parents=True)
    (tmp_path / "m/0/reused.json").write_text(json.dumps(
        {"status": "skipped", "reused_run": str(earlier), "config_hash": "ffffffffffffffff", "overrides": []}))
    with pytest.warns(PlotWarning, match="now holds a different run"):
        runs = load_runs([tmp_path / "m/0", good])
    assert [r.path for r in runs] == [good]


@pytest.mark.parametrize("field, value", [("steps", "many"), ("final", []), ("seed", {}), ("best", {"loss": "low"}),
                                          ("diverged_at_step", "x"), ("status", 3), ("overrides", "lr=1"),
                                          ("total_time_s", True), ("config", [1, 2])])
def test_a_summary_field_of_the_wrong_type_skips_the_run(tmp_path, field, value):
    bad = write_run(tmp_path / "bad", summary={field: value})
    good = write_run(tmp_path / "good", config=make_config(seed=1))
    with pytest.raises(PlotError) as err:
        load_run(bad)
    assert f"`{field}` is" in one_line(err)
    with pytest.warns(PlotWarning, match=f"skipped run: .*bad/summary.json: `{field}`"):
        assert [r.path for r in load_runs([bad, good])] == [good]


def test_unreadable_runs_are_skipped_with_a_warning(tmp_path):
    good = write_run(tmp_path / "m/0")
    write_run(tmp_path / "m/1", config=make_config(seed=1))
    (tmp_path / "m/1/summary.json").unlink()
    (tmp_path / "m/1/summary.json").mkdir()  # unreadable as a file, even for root
    write_run(tmp_path / "m/2", config=make_config(seed=2))
    (tmp_path / "m/2/losses.csv").write_bytes(b"\x00\xff garbage \x89PNG\n\x01\x02")
    write_run(tmp_path / "m/3", config=make_config(seed=3))
    text = (tmp_path / "m/3/losses.csv").read_text().replace("\n1,", "\nnan,", 1)
    (tmp_path / "m/3/losses.csv").write_text(text)  # a step that is not a whole number
    found = find_runs([tmp_path / "m"]).runs
    with pytest.warns(PlotWarning) as caught:
        runs = load_runs(found)
    assert [r.path for r in runs] == [good]
    messages = " | ".join(str(w.message) for w in caught)
    assert "m/1/summary.json: cannot be read" in messages
    assert "m/2/losses.csv" in messages and "m/3/losses.csv, line 3: step nan" in messages


def test_a_run_folder_that_vanished_is_skipped(tmp_path):
    import shutil

    good = write_run(tmp_path / "m/0")
    gone = write_run(tmp_path / "m/1", config=make_config(seed=1))
    found = find_runs([tmp_path / "m"]).runs
    shutil.rmtree(gone)
    with pytest.warns(PlotWarning, match=r"m/1: no such folder"):
        assert [r.path for r in load_runs(found)] == [good]


def test_permission_denied_is_a_skipped_run_even_for_root(tmp_path, monkeypatch):
    # root ignores file modes, so the refusal the kernel gives a user is simulated
    import pathlib

    good = write_run(tmp_path / "m/0")
    locked = write_run(tmp_path / "m/1", config=make_config(seed=1))
    shut = write_run(tmp_path / "m/2", config=make_config(seed=2))
    real_read_text, real_listdir = pathlib.Path.read_text, os.listdir

    def read_text(self, *args, **kwargs):
        if self.parent == locked and self.name == "losses.csv":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_text(self, *args, **kwargs)

    def listdir(path="."):
        if Path(path) == shut:
            raise PermissionError(13, "Permission denied", str(path))
        return real_listdir(path)

    from pathlib import Path

    found = find_runs([tmp_path / "m"]).runs
    monkeypatch.setattr(pathlib.Path, "read_text", read_text)
    monkeypatch.setattr(os, "listdir", listdir)
    with pytest.warns(PlotWarning) as caught:
        assert [r.path for r in load_runs(found)] == [good]
    messages = [str(w.message) for w in caught]
    assert any("m/1/losses.csv: cannot be read (Permission denied)" in m for m in messages)
    assert any("m/2: cannot be read (Permission denied)" in m for m in messages)
