"""optbench-report: the page's sections and values, built from synthetic run folders (no training).

``write_study`` (also used by the browser and hostile tests) writes a small study with
``tests/run_folders.py``: two optimizers x 4 seeds on mnist, rmsprop scratch/builtin
twins, an lr sweep, a quadratic lr sweep, a linreg run, and one run of every kind of
failure (diverged, interrupted, killed, failed before training, unreadable).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from run_folders import curve_rows, make_config, quadratic_rows, write_run

from optbench.plot.runs import find_runs, load_runs_and_failures
from optbench.report import profiles
from optbench.report.build import SECTIONS, render, sort_value, swept_keys
from optbench.report.cli import main
from optbench.report.twins import relative_gap

SWEEP = "multirun/2026-12-01/10-00-00-000000"


def _hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def job(path: Path, config: dict, overrides, losses, **kwargs) -> Path:
    summary = {"config_hash": _hash(config), **kwargs.pop("summary", {})}
    return write_run(path, config=config, overrides=overrides, losses=losses, summary=summary, **kwargs)


def curve(rate: float, seed: int = 0, n: int = 40, start: float = 2.3) -> list[float]:
    return [start * rate**i * (1 + 0.04 * ((3 * i + 5 * seed) % 4)) for i in range(n)]


def write_study(root: Path, *, failures: bool = True) -> Path:
    """A study folder with every section's material; returns the sweep folder."""
    sweep = Path(root) / SWEEP
    number = 0

    def nxt() -> Path:
        nonlocal number
        number += 1
        return sweep / str(number - 1)

    for opt, rate in (("sgd", 0.97), ("adam", 0.92)):
        for seed in range(4):
            job(nxt(), make_config("mnist", opt, seed=seed), [f"optimizer={opt}", f"seed={seed}"], curve(rate, seed))
    for impl, rate in (("scratch", 0.93), ("builtin", 0.931)):
        job(nxt(), make_config("mnist", "rmsprop", **{"optimizer.impl": impl}), [f"optimizer.impl={impl}"],
            curve(rate))
    for lr, rate in ((1e-4, 0.99), (1e-2, 0.95)):
        job(nxt(), make_config("mnist", "rmsprop", **{"optimizer.lr": lr}), [f"optimizer.lr={lr}"], curve(rate))
    for lr in (0.05, 0.1, 0.125):
        job(nxt(), make_config("quadratic", "sgd", **{"optimizer.lr": lr}), [f"optimizer.lr={lr}"],
            quadratic_rows(lr, 20))
    full = [4.6e-5 + 10 * 0.8**i for i in range(30)]
    job(nxt(), make_config("linreg", "rmsprop", **{"optimizer.lr": 0.03}), ["dataset=linreg"],
        curve_rows(full, extra={"full_loss": full, "suboptimality": [v - 4.6e-5 for v in full]}))
    if failures:
        job(nxt(), make_config("mnist", "sgd", **{"optimizer.lr": 10.0}), ["optimizer.lr=10.0"],
            [2.0, 9.0, 4e3, float("inf")], status="diverged")
        job(nxt(), make_config("mnist", "adam", **{"optimizer.lr": 0.01}), ["optimizer=adam", "optimizer.lr=0.01"],
            curve(0.9, n=15), status="interrupted",
            summary={"error": "interrupted by SIGTERM at step 14; continue with resume=<this folder>"})
        job(nxt(), make_config("mnist", "adam", **{"optimizer.eps": 1e-6}), ["optimizer.eps=1e-6"],
            curve(0.9, n=8), status="running")
        failed = job(nxt(), make_config("mnist", "adam", **{"optimizer.beta1": 0.5}), ["optimizer.beta1=0.5"],
                     curve(0.9, n=3), status="failed",
                     summary={"error": "optimizer.lr must be > 0, got -1.0. Fix: pass a valid value."})
        (failed / "losses.csv").unlink()
        (failed / "epochs.csv").unlink()
        broken = nxt()
        (broken / ".hydra").mkdir(parents=True)
        (broken / ".hydra" / "config.yaml").write_text("seed: 0\n")
        (broken / "summary.json").write_text("{not json")
    (sweep / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    return sweep


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    return write_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def page(study) -> str:
    runs, failures = load_runs_and_failures(find_runs([study]).runs)
    text, _ = render(runs, failures, inputs=[str(study)], targets={"mnist": 0.5})
    return text


def section(page: str, ident: str) -> str:
    match = re.search(rf'<section id="{ident}".*?</section>', page, flags=re.S)
    assert match, f"no section {ident}"
    return match.group(0)


def test_every_section_is_there_in_order(page):
    positions = [page.index(f'<section id="{ident}"') for ident, _ in SECTIONS]
    assert positions == sorted(positions)
    for _, heading in SECTIONS:
        assert f"<h2>{heading}</h2>" in page
    assert 'id="closing-note"' in page and "plotly" in page


def test_the_page_needs_nothing_from_outside(page):
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    for pattern in (r"<link\b", r"<script[^>]+src=", r"<img\b", r"@import", r"url\((?!#)", r"<iframe"):
        assert not re.search(pattern, page), pattern
    # the only URLs are XML namespace names inside the inline SVG
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    for ref in re.findall(r'(?:href|src)="([^"]*)"', page):
        assert ref.startswith("#"), ref
    # element ids that figures reference are unique across the page
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_overview_counts_problems_statuses_commands_and_versions(page):
    text = section(page, "overview")
    for problem in ("mnist", "quadratic", "linreg"):
        assert f"<td>{problem}</td>" in text
    for status in ("completed", "diverged", "interrupted", "running", "failed", "unreadable"):
        assert status in text
    assert "optbench optimizer=adam seed=3" in text
    assert "optbench 0.1.0, python 3.11, torch 2.x" in text


def test_curves_offer_every_x_axis_both_scales_and_seed_bands(page):
    text = section(page, "curves")
    blocks = re.findall(r'<div class="curves" id="curves-([^"]+)">', text)
    assert blocks == ["mnist", "quadratic", "linreg"]
    mnist = text[text.index('id="curves-mnist"'):text.index('id="curves-quadratic"')]
    variants = set(re.findall(r'data-variant="([^"]+)"', mnist))
    assert variants == {f"{x}-{s}" for x in ("step", "epoch", "examples", "time") for s in ("log", "linear")}
    assert mnist.count("<svg") == 8
    assert "median of 4 seeds, band: IQR" in mnist  # sgd and adam: 4 seeds each
    assert '<div class="figure" data-variant="epoch-log">' in mnist
    quadratic = text[text.index('id="curves-quadratic"'):text.index('id="curves-linreg"')]
    assert '<div class="figure" data-variant="step-log">' in quadratic


def test_results_tables_show_values_the_plotter_computes(study, page):
    from optbench.plot.table import summary_rows

    text = section(page, "results")
    assert text.count('<table class="sortable results">') == 3
    runs, _ = load_runs_and_failures(find_runs([study]).runs)
    mnist = [r for r in runs if r.dataset == "mnist"]
    rows = summary_rows(mnist, target=0.5, y="loss", smooth=5)
    assert sum(row["steps_to_target"] is not None for row in rows) >= 6
    for row in rows:
        for key in ("final_train_loss", "best_train_loss", "test_acc", "steps_to_target", "time_to_target_s"):
            assert f'data-v="{sort_value(row[key])}"' in text, key
    assert "target 0.5 on train loss (minibatch)" in text
    # the quadratic and linreg get an automatic target, which the page says
    assert text.count("auto: the median") == 2
    # the folder that failed before training is in mnist's table too
    assert "(could not be read)" in text


def test_sensitivity_draws_each_swept_numeric_key(study, page):
    runs, _ = load_runs_and_failures(find_runs([study]).runs)
    quadratic = [r for r in runs if r.dataset == "quadratic"]
    assert swept_keys(quadratic) == ["optimizer.lr"]
    text = section(page, "sensitivity")
    assert "<h3>quadratic: optimizer.lr</h3>" in text
    assert "<h3>mnist: optimizer.lr</h3>" in text
    assert "seed" not in re.findall(r"<h3>[^<]*: ([^<]*)</h3>", text)


def test_profiles_and_scores(page):
    text = section(page, "profiles")
    assert "<svg" in text
    assert '<table class="sortable scores">' in text
    for solver in ("sgd (scratch)", "adam (scratch)", "rmsprop (builtin)"):
        assert f"<td>{solver}</td>" in text


def test_profile_ratios_and_score_by_hand():
    inf = math.inf
    costs = {("a", "0"): {"x": 10, "y": 20}, ("a", "1"): {"x": 40, "y": 10}, ("b", "0"): {"x": inf, "y": 5},
             ("c", "0"): {"x": inf, "y": inf}}
    p = profiles.build(costs, ["x", "y"], "steps")
    assert p.cases == [("a", "0"), ("a", "1"), ("b", "0")] and p.unsolved == [("c", "0")]
    assert list(p.ratios["x"]) == [1.0, 4.0, inf]
    assert list(p.ratios["y"]) == [2.0, 1.0, 1.0]
    assert p.tau_max == 4.0
    assert p.rho("x", np.array([1.0, 3.9, 4.0])).tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3])
    # area on log2 tau in [0, 2]: x = (2 + 0 + 0) / (3 * 2); y = (1 + 2 + 2) / 6
    assert p.scores["x"] == pytest.approx(2 / 6)
    assert p.scores["y"] == pytest.approx(5 / 6)
    # a solver fastest everywhere scores 1; a cost of 0 steps counts as 1
    q = profiles.build({("a", "0"): {"x": 0, "y": 3}}, ["x", "y"], "steps")
    assert q.scores["x"] == 1.0 and q.ratios["y"].tolist() == [3.0]


def test_twins_gap_and_parity_expectation(study, page):
    runs, _ = load_runs_and_failures(find_runs([study]).runs)
    scratch, builtin = [r for r in runs if r.optimizer == "rmsprop" and r.get("optimizer.lr") == 0.001
                        and r.dataset == "mnist"]
    gap, step, points = relative_gap(scratch, builtin)
    a, b = scratch.losses["loss"].to_numpy(), builtin.losses["loss"].to_numpy()
    assert gap == pytest.approx(float(np.max(np.abs(a - b) / np.abs(b))))
    assert points == 40 and step == int(np.argmax(np.abs(a - b) / np.abs(b)))
    text = section(page, "twins")
    assert f'data-v="{gap!r}"' in text
    assert "eps inside vs outside the sqrt" in text  # rmsprop's row of the README's parity table


def test_failures_lists_every_kind_with_its_reason(page):
    text = section(page, "failures")
    assert "the loss became non-finite (nan or inf) at step 3" in text
    assert "interrupted by SIGTERM at step 14" in text
    assert "still says running" in text
    assert "optimizer.lr must be &gt; 0" in text
    assert "not valid JSON" in text
    assert text.count("<tr>") == 1 + 5  # header + five runs


def test_hostile_strings_from_run_files_are_escaped(tmp_path):
    sweep = write_study(tmp_path, failures=False)
    bad = "</script><script>alert(1)</script><b>x"
    job(sweep / "99", make_config("mnist", "sgd", **{"optimizer.lr": 0.5}), [f"+note={bad}", "optimizer.lr=0.5"],
        curve(0.9), status="failed", summary={"error": bad})
    runs, failures = load_runs_and_failures(find_runs([sweep]).runs)
    text, _ = render(runs, failures, inputs=[str(sweep)], title=bad)
    assert bad not in text and "alert(1)" in text
    assert text.count("<script>") == 1


def test_cli_writes_the_report_and_refuses_to_overwrite(study, tmp_path, capsys):
    out = tmp_path / "r" / "study.html"
    assert main([str(study), "--out", str(out), "--target", "mnist=0.5", "--title", "My study"]) == 0
    printed = capsys.readouterr()
    assert str(out) in printed.out and "warning" in printed.err  # the unreadable folder is named
    text = out.read_text()
    assert "<title>My study</title>" in text
    before = out.read_bytes()
    assert main([str(study), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main([str(study), "--out", str(out), "--force", "--target", "0.4"]) == 0
    assert out.read_bytes() != before and "target 0.4 on" in out.read_text()


def test_report_imports_neither_torch_nor_the_trainer(study, tmp_path):
    code = (
        "import sys\n"
        "from optbench.report.cli import main\n"
        "from optbench import results\n"
        f"rc = main([{str(study)!r}, '--out', {str(tmp_path / 'r.html')!r}])\n"
        f"results.load({str(study)!r}, quiet=True)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')\n"
        "             or m.startswith(('optbench.train.', 'optbench.problems.', 'optbench.optim.'))\n"
        "             or m in ('optbench.train', 'optbench.problems', 'optbench.optim', 'optbench.jobs',\n"
        "                      'optbench.cli', 'optbench.sweeps'))\n"
        "print('BAD', bad)\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "BAD []" in done.stdout, done.stdout
    assert (tmp_path / "r.html").stat().st_size > 10_000


def test_every_warning_on_stderr_is_also_in_the_failures_section(tmp_path, capsys):
    import html

    sweep = write_study(tmp_path)
    shutil.copytree(sweep / "0", sweep / "copy")  # the same run twice: drawn once, and said so
    (sweep / "empty").mkdir()
    (sweep / "empty" / "losses.csv").write_text("")
    out = tmp_path / "r.html"
    assert main([str(sweep), "--out", str(out)]) == 0
    warned = [line.split("warning: ", 1)[1] for line in capsys.readouterr().err.splitlines() if "warning: " in line]
    assert len(warned) >= 3
    text = section(out.read_text(), "failures")
    for message in warned:
        assert html.escape(message, quote=True) in text, message
