"""--table: one row per run, rich table and summary.csv."""

from __future__ import annotations

import csv
import io

import pytest
from rich.console import Console
from run_folders import curve_rows, make_config, write_multirun, write_run

from optbench.plot.runs import load_runs
from optbench.plot.table import COLUMNS, rich_table, summary_rows, write_summary_csv


@pytest.fixture
def runs(tmp_path):
    fast = write_run(tmp_path / "fast", config=make_config(**{"optimizer.lr": 0.01}),
                     losses=curve_rows([1.0, 0.6, 0.3, 0.1, 0.05], steps_per_epoch=121, log_every=30, step_time=0.5))
    slow = write_run(tmp_path / "slow", config=make_config(**{"optimizer.lr": 0.001}),
                     losses=curve_rows([1.0, 0.9, 0.8, 0.7, 0.6], steps_per_epoch=121, log_every=30, step_time=0.5))
    dead = write_run(tmp_path / "dead", config=make_config(**{"optimizer.lr": 1.0}), losses=[1.0, float("inf")],
                     status="diverged")
    killed = write_run(tmp_path / "killed", config=make_config(**{"optimizer.lr": 0.1}), losses=[1.0, 0.4], status="running")
    return load_runs([fast, slow, dead, killed])


def test_rows_hold_the_documented_columns(runs):
    rows = summary_rows(runs, target=0.3)
    assert [r["label"] for r in rows] == ["lr=0.01", "lr=0.001", "lr=1", "lr=0.1"]
    assert [r["status"] for r in rows] == ["completed", "completed", "diverged", "running"]
    fast, slow, dead, killed = rows
    assert fast["final_train_loss"] == pytest.approx(0.41)  # the epoch's mean loss
    assert fast["best_train_loss"] == pytest.approx(0.41)
    assert fast["test_loss"] == pytest.approx(0.5) and fast["test_acc"] == pytest.approx(0.81)
    # step 60 (the third logged row, 30 steps apart) reaches 0.3; wall time (60+1)*0.5
    assert fast["steps_to_target"] == 60 and fast["time_to_target_s"] == pytest.approx(30.5)
    assert slow["steps_to_target"] is None and slow["time_to_target_s"] is None
    assert killed["total_time_s"] == pytest.approx(0.02)  # no final summary yet: last logged wall time
    assert fast["total_time_s"] == pytest.approx(61.0)  # summary.json total_time_s


def test_csv_and_rich_table(runs, tmp_path):
    rows = summary_rows(runs, target=0.3)
    path = write_summary_csv(rows, tmp_path / "out" / "summary.csv")
    with path.open() as handle:
        table = list(csv.reader(handle))
    assert tuple(table[0]) == COLUMNS
    assert len(table) == 5
    assert table[1][0].endswith("fast") and table[1][8] == "60"
    assert table[2][8] == "" and table[2][9] == ""  # never reached: empty
    assert table[3][4] == "1"  # best of the diverged run
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(rich_table(rows, 0.3))
    text = " ".join(buffer.getvalue().split())  # the title wraps to the table's width when tmp_path is long
    assert "lr=0.01" in text and "diverged" in text and "target loss 0.3" in text


def test_without_target_the_target_columns_are_empty(runs):
    rows = summary_rows(runs)
    assert all(r["steps_to_target"] is None and r["time_to_target_s"] is None for r in rows)


def test_a_hard_crashed_job_is_listed_as_failed(tmp_path, capsys):
    from optbench.plot.cli import main

    write_run(tmp_path / "sweep" / "0", config=make_config(), losses=curve_rows([2.0, 1.0, 0.5]))
    crashed = tmp_path / "sweep" / "1" / ".hydra"  # os._exit at job start leaves only Hydra's files
    crashed.mkdir(parents=True)
    (crashed / "config.yaml").write_text("seed: 0\n")
    assert main([str(tmp_path / "sweep"), "--table", "--out", str(tmp_path / "figs")]) == 0
    with open(tmp_path / "figs" / "sweep_summary.csv", newline="") as handle:
        rows = {row["run"]: row for row in csv.DictReader(handle)}
    assert rows[str(tmp_path / "sweep" / "1")]["status"] == "failed"
    assert rows[str(tmp_path / "sweep" / "0")]["status"] == "completed"
    assert "failed" in capsys.readouterr().out


def _wide_sweep(root):
    """The widest table a sweep gives: mnist (test loss and accuracy), long labels, every status."""
    jobs = []
    for name, impl, status in (("adadelta", "builtin", "interrupted"), ("rmsprop", "scratch", "completed"),
                               ("adam", "builtin", "diverged"), ("momentum", "scratch", "running")):
        losses = [2.3 * 0.5**i for i in range(25)] + ([float("nan")] if status == "diverged" else [])
        jobs.append({"config": make_config("mnist", name, batch_size=12345, **{"optimizer.impl": impl,
                                                                               "optimizer.lr": 1.2345e-05}),
                     "overrides": [f"optimizer={name}", f"optimizer.impl={impl}", "batch_size=12345",
                                   "optimizer.lr=1.2345e-05"],
                     "losses": curve_rows(losses, steps_per_epoch=5, step_time=1234.5), "status": status})
    return write_multirun(root, jobs)


def test_the_table_fits_100_columns_and_cuts_nothing(tmp_path, capsys, monkeypatch):
    from optbench.plot.cli import main

    sweep = _wide_sweep(tmp_path / "multirun/2024-06-01/10-00-00-000000-a-rather-long-sweep-folder-name-indeed")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")
    assert main([str(sweep.relative_to(tmp_path)), "--table", "--target", "0.001", "--out", "o"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100, "\n".join(line for line in lines if len(line) > 100)
    with open(next((tmp_path / "o").glob("*_summary.csv")), newline="") as handle:
        rows = list(csv.DictReader(handle))
    squeezed = "".join(out.split())  # folded cells continue on the next line: compare without blanks
    for row in rows:
        assert "".join(row["status"].split()) in squeezed
        for part in row["label"].split(", "):
            assert part in out  # a label wraps at its commas, never inside a key=value
    for word in ("final", "best", "test", "acc", "time", "target", "interrupted", "diverged", "running"):
        assert word in out
    numbers = [f"{float(rows[1][key]):.4g}" for key in ("final_train_loss", "best_train_loss", "test_loss", "test_acc")]
    assert all(number in out for number in numbers)  # never folded: whole on one line
    assert str(rows[1]["steps_to_target"]) in out


def test_folder_names_and_labels_are_not_rich_markup(tmp_path):
    path = write_run(tmp_path / "a[/red]b[bold]", config=make_config(**{"optimizer.impl": "[/x]"}))
    rows = summary_rows(load_runs([path, write_run(tmp_path / "plain", config=make_config(seed=1))]))
    buffer = io.StringIO()
    Console(file=buffer, width=100).print(rich_table(rows))
    text = buffer.getvalue()
    assert "a[/red]b[bold]" in text and "[/x]" in text
