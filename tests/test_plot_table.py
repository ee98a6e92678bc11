"""--table: one row per run, rich table and summary.csv."""

from __future__ import annotations

import csv
import io

import pytest
from rich.console import Console
from run_folders import curve_rows, make_config, write_run

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
    text = buffer.getvalue()
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
    with open(tmp_path / "figs" / "summary.csv", newline="") as handle:
        rows = {row["run"]: row for row in csv.DictReader(handle)}
    assert rows[str(tmp_path / "sweep" / "1")]["status"] == "failed"
    assert rows[str(tmp_path / "sweep" / "0")]["status"] == "completed"
    assert "failed" in capsys.readouterr().out
