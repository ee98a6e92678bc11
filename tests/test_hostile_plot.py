"""The plotter's share of the hostile-input battery (issue 9, points 9-11).

Each case builds run folders with ``tests/run_folders.py`` (no training), often next to
figures and tables that already exist, runs the installed ``optbench-plot`` and checks,
through ``hostile.battery_case``: the exit code, no traceback, a refusal that is one
paragraph naming a fix, and the bytes of every file that was there before.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hostile import battery_case, optbench_plot
from run_folders import curve_rows, make_config, write_multirun, write_run

from optbench.run_folder import LOSSES, REUSED, SUMMARY


@dataclass
class Case:
    """``build(tmp)`` makes the folders and returns the arguments; ``code`` 2 is a refusal."""

    build: Callable[[Path], list[str]]
    code: int = 2
    mentions: tuple[str, ...] = ()
    stderr_has: tuple[str, ...] = ()  # for code 0: the warnings that must be printed
    check: Callable[[Path, object], None] | None = None
    env: dict = field(default_factory=dict)


def sweep(tmp: Path, name: str = "multirun/2024-06-01/10-00-00-000000", n: int = 2) -> Path:
    return write_multirun(tmp / name, [{"config": make_config(seed=s), "overrides": [f"seed={s}"]} for s in range(n)])


def with_summary(tmp: Path, **fields) -> Path:
    return write_run(tmp / "outputs/2024-06-01/10-00-00-000000", summary=fields)


def good_and(tmp: Path, spoil: Callable[[Path], None]) -> list[str]:
    root = sweep(tmp, n=3)
    spoil(root / "1")
    return [str(root), "--out", "figs"]


def figure_exists(tmp: Path) -> list[str]:
    root = sweep(tmp)
    (tmp / "figs").mkdir()
    (tmp / "figs/10-00-00-000000_loss_vs_epoch.png").write_bytes(b"an earlier figure")
    return [str(root), "--out", "figs"]


def table_exists(tmp: Path) -> list[str]:
    root = sweep(tmp)
    (tmp / "figs").mkdir()
    (tmp / "figs/10-00-00-000000_summary.csv").write_text("run,label\nmine,0\n")
    return [str(root), "--out", "figs", "--table"]


def default_table_of_the_same_sweep(tmp: Path) -> list[str]:
    root = sweep(tmp)
    (root.parent / "figures").mkdir()
    (root.parent / "figures/10-00-00-000000_summary.csv").write_text("an earlier table\n")
    return [str(root), "--table", "--x", "step"]


def ewa_exists(tmp: Path) -> list[str]:
    (tmp / "figures").mkdir()
    (tmp / "figures/ewa.png").write_bytes(b"an earlier ewa figure")
    return ["ewa"]


def copied_run(tmp: Path) -> list[str]:
    original = write_run(tmp / "outputs/2024-06-01/10-00-00-000000")
    shutil.copytree(original, tmp / "backup/10-00-00-000000")
    return [str(original), str(tmp / "backup"), "--out", "figs"]


def reused_and_its_run(tmp: Path) -> list[str]:
    earlier = write_run(tmp / "outputs/2024-06-01/10-00-00-000000")
    job = tmp / "multirun/2024-06-02/09-00-00-000000/0"
    job.mkdir(parents=True)
    digest = json.loads((earlier / SUMMARY).read_text())["config_hash"]
    (job / REUSED).write_text(json.dumps({"status": "skipped", "reused_run": str(earlier), "config_hash": digest,
                                          "overrides": []}))
    return [str(job.parent), str(earlier), "--out", "figs"]


def reused_run_vanished(tmp: Path) -> list[str]:
    job = tmp / "multirun/2024-06-02/09-00-00-000000/0"
    job.mkdir(parents=True)
    (job / REUSED).write_text(json.dumps({"status": "skipped", "reused_run": str(tmp / "gone"),
                                          "config_hash": "0", "overrides": []}))
    return [str(job)]


def mixed_glob_with_a_preset_hint(tmp: Path) -> list[str]:
    rows = curve_rows([1.0, 0.5, 0.2], extra={"full_loss": [0.9, 0.4, 0.1], "suboptimality": [0.8, 0.3, 0.05]})
    write_run(tmp / "runs/linreg", config=make_config("linreg", "rmsprop", plot={"y": "full_loss", "title": "seed 001"}),
              losses=rows)
    write_run(tmp / "runs/mnist-0", config=make_config(seed=0))
    write_run(tmp / "runs/mnist-1", config=make_config(seed=1))
    return ["runs/*", "--out", "figs"]


def gamma_sweep(tmp: Path) -> list[str]:
    jobs = [{"config": make_config(**{"optimizer.gamma": g}), "overrides": [f"optimizer.gamma={g}"]}
            for g in (0.9, 0.99, 0.999)]
    write_multirun(tmp / "m", jobs)
    return ["m", "--sensitivity", "gamma", "--out", "figs", "--table"]


def markup_in_names(tmp: Path) -> list[str]:
    write_run(tmp / "runs/[/red]x[bold]", config=make_config(**{"optimizer.impl": "[/]$x^$"}))
    write_run(tmp / "runs/plain", config=make_config(seed=1))
    return ["runs", "--table", "--out", "figs"]


def wide_table(tmp: Path) -> list[str]:
    jobs = []
    for name, impl, status in (("adadelta", "builtin", "interrupted"), ("rmsprop", "scratch", "completed"),
                               ("momentum", "builtin", "running")):
        jobs.append({"config": make_config("mnist", name, batch_size=12345, **{"optimizer.impl": impl}),
                     "overrides": [f"optimizer={name}", f"optimizer.impl={impl}", "batch_size=12345"],
                     "losses": curve_rows([2.3 * 0.5**i for i in range(25)], steps_per_epoch=5, step_time=999.0),
                     "status": status})
    write_multirun(tmp / "multirun/2024-06-01/10-00-00-000000-a-long-descriptive-sweep-name", jobs)
    return ["multirun/2024-06-01/10-00-00-000000-a-long-descriptive-sweep-name", "--table", "--target", "0.01",
            "--out", "figs"]


def table_fits(tmp: Path, outcome) -> None:
    lines = outcome.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, outcome.stdout
    for word in ("optimizer=adadelta", "impl=builtin", "interrupted", "running", "steps to", "target"):
        assert word in outcome.stdout


def figure_written(pattern: str):
    def check(tmp: Path, outcome) -> None:
        assert list(tmp.glob(pattern)), outcome.output
    return check


def only(folder: str, names: set[str]):
    def check(tmp: Path, outcome) -> None:
        assert {p.name for p in (tmp / folder).iterdir()} == names  # refused before anything was drawn
    return check


def no_file_in(folder: str):
    def check(tmp: Path, outcome) -> None:
        assert not (tmp / folder).exists() or not any((tmp / folder).iterdir()), sorted((tmp / folder).iterdir())
    return check


def summary_dir(run: Path) -> None:
    (run / SUMMARY).unlink()
    (run / SUMMARY).mkdir()  # unreadable as a file (a stand-in for permissions: the tests may run as root)


def spoil_json(run: Path) -> None:
    (run / SUMMARY).write_text('{"status": "completed", "final": {')


def spoil_type(run: Path) -> None:
    summary = json.loads((run / SUMMARY).read_text())
    summary["final"] = ["not", "an", "object"]
    (run / SUMMARY).write_text(json.dumps(summary))


def spoil_losses(run: Path) -> None:
    (run / LOSSES).write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00 garbage\nmore,garbage\n")


def bad_yaml_no_config(tmp: Path) -> list[str]:
    run = write_run(tmp / "r", summary={"config": None})
    (run / ".hydra/config.yaml").write_text("optimizer: [unclosed\n  - : :\n")
    return [str(run)]


def step_nan(tmp: Path) -> list[str]:
    run = write_run(tmp / "r")
    (run / LOSSES).write_text((run / LOSSES).read_text().replace("\n0,", "\nnan,", 1))
    return [str(run)]


def out_is_a_file(tmp: Path) -> list[str]:
    root = sweep(tmp)
    (tmp / "figs").write_text("a file where the folder would go\n")
    return [str(root), "--out", "figs"]


CASES = {
    # refused: exit 2, one paragraph naming the fix, nothing changed
    "missing path": Case(lambda t: [str(t / "nope")], mentions=("no such file or folder",)),
    "glob matching nothing": Case(lambda t: [str(t / "multirun/*/none*")], mentions=("no path matches",)),
    "folder without runs": Case(lambda t: (t / "empty/sub").mkdir(parents=True) or [str(t / "empty")],
                                mentions=("no runs found",)),
    "existing figure": Case(figure_exists, mentions=("already exist", "--force")),
    "existing table": Case(table_exists, mentions=("_summary.csv already exist", "--force"),
                           check=only("figs", {"10-00-00-000000_summary.csv"})),
    "existing default table of the sweep": Case(default_table_of_the_same_sweep, mentions=("--force",),
                                                check=only("multirun/2024-06-01/figures",
                                                           {"10-00-00-000000_summary.csv"})),
    "existing ewa figure": Case(ewa_exists, mentions=("ewa.png already exist", "--force")),
    "mathtext error in --title": Case(lambda t: [str(sweep(t)), "--title", "$\\frac{$", "--out", "figs"],
                                      mentions=("is not valid mathtext", "\\$"), check=no_file_in("figs")),
    "mathtext error in --label": Case(lambda t: [str(sweep(t)), "--label", "$x^$", "--out", "figs"],
                                      mentions=("--label", "not valid mathtext"), check=no_file_in("figs")),
    "mathtext error in ewa --title": Case(lambda t: ["ewa", "--title", "$\\sqrt{$", "--out", "figs"],
                                          mentions=("not valid mathtext",)),
    "steps is a string": Case(lambda t: [str(with_summary(t, steps="many"))], mentions=("`steps` is 'many'",)),
    "final is a list": Case(lambda t: [str(with_summary(t, final=[]))], mentions=("`final` is []",)),
    "seed is an object": Case(lambda t: [str(with_summary(t, seed={}))], mentions=("`seed` is {}",)),
    "summary.json not JSON": Case(lambda t: spoil_json(r := write_run(t / "r")) or [str(r)],
                                  mentions=("not valid JSON",)),
    "summary.json unreadable": Case(lambda t: summary_dir(r := write_run(t / "r")) or [str(r)],
                                    mentions=("cannot be read",)),
    "losses.csv garbage": Case(lambda t: spoil_losses(r := write_run(t / "r")) or [str(r)], mentions=("losses.csv",)),
    "step that is nan": Case(step_nan, mentions=("step nan is not a whole number",)),
    "bad .hydra yaml, no config": Case(bad_yaml_no_config, mentions=("not valid YAML",)),
    "reused run vanished": Case(reused_run_vanished, mentions=("no longer holds a run",)),
    "--name is a path": Case(lambda t: [str(sweep(t)), "--name", "../../x"], mentions=("not a file name stem",)),
    "--out is a file": Case(out_is_a_file, mentions=("cannot write",)),
    # drawn: exit 0, the bad run skipped (or the repeat dropped) with a warning, nothing changed
    "unreadable run among good ones": Case(lambda t: good_and(t, summary_dir), code=0,
                                           stderr_has=("warning: skipped run:", "cannot be read")),
    "bad JSON among good ones": Case(lambda t: good_and(t, spoil_json), code=0, stderr_has=("not valid JSON",)),
    "wrong type among good ones": Case(lambda t: good_and(t, spoil_type), code=0, stderr_has=("`final` is",)),
    "garbage losses among good ones": Case(lambda t: good_and(t, spoil_losses), code=0,
                                           stderr_has=("skipped run:", "losses.csv")),
    "a copied run is one run": Case(copied_run, code=0, stderr_has=("holds the same run", "not as two seeds")),
    "reused.json and its run are one run": Case(reused_and_its_run, code=0,
                                                stderr_has=("holds the same run", "reused.json points at")),
    "preset hint in a mixed glob": Case(mixed_glob_with_a_preset_hint, code=0,
                                        stderr_has=("plot.y=full_loss is not used",),
                                        check=figure_written("figs/*_loss_vs_epoch.png")),
    "gamma sensitivity is alpha": Case(gamma_sweep, code=0, check=figure_written("figs/m_sensitivity_gamma.png")),
    "rich markup and $ in names": Case(markup_in_names, code=0, check=figure_written("figs/runs_summary.csv")),
    "table fits 100 columns": Case(wide_table, code=0, check=table_fits),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_plot(tmp_path, name):
    case = CASES[name]
    argv = case.build(tmp_path)
    outcome = battery_case(optbench_plot(*argv), tmp_path, code=case.code, mentions=case.mentions, env=case.env)
    for text in case.stderr_has:
        assert text in outcome.stderr, outcome.stderr
    if case.check is not None:
        case.check(tmp_path, outcome)
