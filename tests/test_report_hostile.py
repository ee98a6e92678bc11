"""optbench-report's hostile-input battery: one paragraph on stderr naming the fix, exit 2,
no traceback, and no byte changed in the working folder (an existing --out is never replaced)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile import battery_case, run_command
from test_report import SWEEP, write_study


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder holding a study, an earlier report, a folder with no runs and one unreadable run."""
    root = tmp_path_factory.mktemp("hostile")
    write_study(root, failures=False)
    (root / "report.html").write_text("<html>an earlier report</html>\n")
    (root / "figures").mkdir()
    (root / "empty").mkdir()
    bad = root / "bad" / "0"
    bad.mkdir(parents=True)
    (bad / "losses.csv").write_text("step,epoch,examples_seen,wall_time_s,loss,lr\n0,0.1,64,0.01,2.3,0.001\n1,0.2")
    (bad / "summary.json").write_text('{"status": "completed"')
    return root


CASES = {
    "no path": (["optbench-report"], ["PATH"]),
    "missing path": (["optbench-report", "no/such/sweep", "--out", "new.html"], ["no such file"]),
    "glob matching nothing": (["optbench-report", "multirun/*/nothing*", "--out", "new.html"], ["no path matches"]),
    "folder without runs": (["optbench-report", "empty", "--out", "new.html"], ["no runs found"]),
    "only unreadable runs": (["optbench-report", "bad", "--out", "new.html"], ["not valid JSON"]),
    "existing --out": (["optbench-report", SWEEP], ["report.html already exists", "--force"]),
    "--out is a folder": (["optbench-report", SWEEP, "--out", "figures"], ["is a folder"]),
    "--out not html": (["optbench-report", SWEEP, "--out", f"{SWEEP}/0/summary.json"], [".html"]),
    "--out below a file": (["optbench-report", SWEEP, "--out", f"{SWEEP}/0/losses.csv/r.html"], ["is a file"]),
    "--target not a number": (["optbench-report", SWEEP, "--out", "new.html", "--target", "fast"],
                              ["not a number"]),
    "--target negative": (["optbench-report", SWEEP, "--out", "new.html", "--target", "-1"], ["above 0"]),
    "--target nan": (["optbench-report", SWEEP, "--out", "new.html", "--target", "mnist=nan"], ["finite"]),
    "--target unknown problem": (["optbench-report", SWEEP, "--out", "new.html", "--target", "cifar=0.1"],
                                 ["cifar", "mnist"]),
    "--target twice": (["optbench-report", SWEEP, "--out", "new.html", "--target", "mnist=0.1",
                        "--target", "mnist=0.2"], ["twice"]),
    "unknown option": (["optbench-report", SWEEP, "--out", "new.html", "--x", "time"], ["--x"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_refused(work, name):
    argv, mentions = CASES[name]
    outcome = battery_case(argv, work, mentions=mentions)
    assert not (work / "new.html").exists(), "a refused command wrote its --out"
    assert outcome.stderr.strip().splitlines()[-1].startswith("optbench-report: error: ")


def test_force_replaces_and_a_bad_run_among_good_ones_is_a_warning(work, tmp_path):
    out = tmp_path / "report.html"
    out.write_text("old")
    done = run_command(["optbench-report", SWEEP, "bad", "--out", str(out), "--force"], work)
    assert done.returncode == 0, done.output[-3000:]
    assert "optbench-report: warning:" in done.stderr and "bad/0" in done.stderr
    assert "Traceback" not in done.output
    assert out.read_text().startswith("<!DOCTYPE html>")
