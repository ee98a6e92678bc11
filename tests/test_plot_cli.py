"""optbench-plot end to end: files written, paths printed, one-line errors, exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from run_folders import curve_rows, make_config, quadratic_rows, write_multirun, write_run

from optbench.plot.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def sweep(tmp_path):
    jobs = [{"config": make_config(**{"optimizer.alpha": a}), "overrides": [f"optimizer.alpha={a}"]} for a in (0.9, 0.999)]
    return write_multirun(tmp_path / "multirun/2024-06-01/10-00-00-000000", jobs)


def run_main(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, out, err, *words):
    assert status != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("optbench-plot: error: ")
    assert "Traceback" not in err and "Fix:" in lines[0]
    for word in words:
        assert word in lines[0]
    assert out == ""


def test_default_writes_png_next_to_the_input_and_prints_its_path(sweep, capsys):
    status, out, err = run_main(capsys, sweep)
    assert status == 0 and err == ""
    written = Path(out.strip())
    assert written == sweep.parent / "figures" / "10-00-00-000000_loss_vs_epoch.png"
    assert written.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_formats_and_out(sweep, tmp_path, capsys, fmt, magic):
    status, out, _ = run_main(capsys, sweep, "--format", fmt, "--out", tmp_path / "figs", "--x", "step", "--name", "alpha")
    assert status == 0
    written = Path(out.strip())
    assert written == tmp_path / "figs" / f"alpha_loss_vs_step.{fmt}"
    assert written.read_bytes()[: len(magic)] == magic


def test_table_prints_and_writes_summary_csv(sweep, tmp_path, capsys):
    status, out, _ = run_main(capsys, sweep, "--table", "--target", "1.0", "--out", tmp_path / "o")
    assert status == 0
    assert "alpha=0.9" in out and "alpha=0.999" in out
    table = tmp_path / "o/10-00-00-000000_summary.csv"  # named after the sweep: two sweeps never share one
    assert table.read_text().startswith("run,label,status,final_train_loss")
    assert str(table) in out.splitlines()


def test_sensitivity_on_a_multirun_folder(sweep, tmp_path, capsys):
    status, out, _ = run_main(capsys, sweep, "--sensitivity", "alpha", "--out", tmp_path)
    assert status == 0 and out.strip().endswith("_sensitivity_alpha.png")


def test_ewa_subcommand(tmp_path, capsys):
    status, out, _ = run_main(capsys, "ewa", "--beta", "0.98", "0.95", "0.9", "0.8", "--out", tmp_path)
    assert status == 0
    assert Path(out.strip()) == tmp_path / "ewa.png" and (tmp_path / "ewa.png").read_bytes()[:8] == PNG_MAGIC


def test_quadratic_figure(tmp_path, capsys):
    jobs = [{"config": make_config("quadratic", "sgd", **{"optimizer.lr": lr}), "losses": quadratic_rows(lr, 4)}
            for lr in (1.0, 0.2)]
    root = write_multirun(tmp_path / "q", jobs)
    status, out, _ = run_main(capsys, root / "1", "--out", tmp_path / "o")
    assert status == 0 and out.strip().endswith("q-1_loss_vs_step.png")


# --------------------------------------------------------------------------- bad input


def test_missing_path(tmp_path, capsys):
    assert_one_line_error(*run_main(capsys, tmp_path / "nope"), "no such file or folder")


def test_folder_with_no_runs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(*run_main(capsys, tmp_path / "empty"), "no runs found")


def test_empty_csv(tmp_path, capsys):
    write_run(tmp_path / "r")
    (tmp_path / "r/losses.csv").write_text("")
    assert_one_line_error(*run_main(capsys, tmp_path / "r"), "losses.csv is empty")


def test_truncated_csv(tmp_path, capsys):
    write_run(tmp_path / "r")
    text = (tmp_path / "r/losses.csv").read_text()
    (tmp_path / "r/losses.csv").write_text(text[: text.rindex(",")])  # cut mid-row
    assert_one_line_error(*run_main(capsys, tmp_path / "r"), "truncated")


def test_summary_that_is_not_json(tmp_path, capsys):
    write_run(tmp_path / "r")
    (tmp_path / "r/summary.json").write_text("{'status': 'completed'")
    assert_one_line_error(*run_main(capsys, tmp_path / "r"), "summary.json is not valid JSON")


def test_y_that_makes_no_sense_for_the_problem(tmp_path, capsys):
    rows = curve_rows([1.0, 0.5], extra={"full_loss": [1, 0.4], "suboptimality": [1, 0.4]})
    write_run(tmp_path / "r", config=make_config("linreg", "rmsprop"), losses=rows)
    assert_one_line_error(*run_main(capsys, tmp_path / "r", "--y", "test_acc"), "linreg run and has no test_acc")


def test_mixed_problems_skip_the_one_that_cannot_show_y(tmp_path, sweep, capsys):
    rows = curve_rows([1.0, 0.5], extra={"full_loss": [1, 0.4], "suboptimality": [1, 0.4]})
    write_run(tmp_path / "lin", config=make_config("linreg", "rmsprop"), losses=rows)
    status, out, err = run_main(capsys, sweep, tmp_path / "lin", "--y", "test_acc", "--out", tmp_path / "o")
    assert status == 0 and Path(out.strip()).exists()
    assert err.count("\n") == 1 and "warning: skipped run:" in err and "lin is a linreg run" in err


@pytest.mark.parametrize("flag, value, words", [("--x", "iteration", "unknown --x 'iteration'"),
                                                ("--y", "acc", "unknown --y 'acc'"),
                                                ("--format", "jpg", "unknown --format 'jpg'"),
                                                ("--smooth", "0", "argument --smooth")])
def test_unknown_option_values(sweep, capsys, flag, value, words):
    assert_one_line_error(*run_main(capsys, sweep, flag, value), words)


def test_unknown_flag_is_one_line(sweep, capsys):
    assert_one_line_error(*run_main(capsys, sweep, "--colour", "red"), "unrecognized arguments")


def test_one_bad_run_among_good_ones_is_skipped_with_a_warning(sweep, tmp_path, capsys):
    (sweep / "1/summary.json").write_text("garbage")
    status, out, err = run_main(capsys, sweep, "--out", tmp_path / "o")
    assert status == 0 and Path(out.strip()).exists()
    (line,) = err.strip().splitlines()
    assert line.startswith("optbench-plot: warning: skipped run:") and "1/summary.json" in line


def test_nothing_drawable_exits_non_zero(tmp_path, capsys):
    write_run(tmp_path / "r", losses=[float("nan")], status="diverged")
    status, _, err = run_main(capsys, tmp_path / "r")
    assert status != 0 and "no positive finite loss" in err


# --------------------------------------------------------------------------- isolation


def test_plotter_never_imports_the_trainer_or_torch(sweep, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from optbench.plot.cli import main
        assert main([{str(sweep)!r}, "--table", "--out", {str(tmp_path / 'o')!r}]) == 0
        assert main([{str(sweep)!r}, "--sensitivity", "alpha", "--out", {str(tmp_path / 'o')!r}]) == 0
        assert main(["ewa", "--out", {str(tmp_path / 'o')!r}]) == 0
        banned = ("torch", "torchvision", "optbench.train", "optbench.problems", "optbench.optim", "optbench.cli")
        loaded = sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in banned))
        print(loaded)
        sys.exit(1 if loaded else 0)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_console_entry_point_help():
    result = subprocess.run([sys.executable, "-m", "optbench.plot.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for words in ("--sensitivity PARAM", "--smooth K", "trailing rolling mean", "median", "ewa", "--table", "--target LOSS"):
        assert words in result.stdout


def test_summary_written_by_json_with_nan_is_read(tmp_path, capsys):
    write_run(tmp_path / "r")
    summary = json.loads((tmp_path / "r/summary.json").read_text())
    summary["final"]["test_loss"] = float("nan")
    (tmp_path / "r/summary.json").write_text(json.dumps(summary))  # NaN, as the recorder may write
    status, _, _ = run_main(capsys, tmp_path / "r", "--table", "--out", tmp_path / "o")
    assert status == 0


# --------------------------------------------------------------------------- never overwrite unless asked


def test_an_existing_figure_or_table_is_refused_unless_forced(sweep, tmp_path, capsys):
    out = tmp_path / "o"
    status, first, _ = run_main(capsys, sweep, "--table", "--out", out)
    assert status == 0
    figure, table = (Path(line) for line in first.strip().splitlines()[-2:])
    before = {figure: figure.read_bytes(), table: table.read_bytes()}
    status, stdout, err = run_main(capsys, sweep, "--table", "--out", out)
    assert status == 2 and stdout == ""
    assert "already exist" in err and "--force" in err and str(figure) in err and str(table) in err
    assert {p: p.read_bytes() for p in before} == before
    status, again, _ = run_main(capsys, sweep, "--table", "--out", out, "--force")
    assert status == 0 and str(figure) in again
    status, _, err = run_main(capsys, sweep, "--table", "--out", out, "--overwrite")
    assert status == 0, err


def test_only_the_existing_table_is_enough_to_refuse_before_anything_is_written(sweep, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "10-00-00-000000_summary.csv").write_text("mine\n")
    status, _, err = run_main(capsys, sweep, "--table", "--out", out)
    assert status == 2 and "10-00-00-000000_summary.csv already exists" in err
    assert sorted(p.name for p in out.iterdir()) == ["10-00-00-000000_summary.csv"]  # no figure drawn either


def test_two_sweeps_of_one_day_never_share_a_table(tmp_path, capsys):
    day = tmp_path / "multirun/2024-06-01"
    written = []
    for time in ("10-00-00-000000", "11-00-00-000000"):
        write_multirun(day / time, [{"config": make_config(seed=s)} for s in range(2)])
        status, out, err = run_main(capsys, day / time, "--table")
        assert status == 0, err
        written += out.strip().splitlines()[-2:]
    assert len(set(written)) == 4
    assert {Path(p).name for p in written if p.endswith(".csv")} == {"10-00-00-000000_summary.csv",
                                                                     "11-00-00-000000_summary.csv"}
    assert all(Path(p).parent == day / "figures" for p in written)


def test_ewa_refuses_to_overwrite(tmp_path, capsys):
    assert run_main(capsys, "ewa", "--out", tmp_path)[0] == 0
    status, _, err = run_main(capsys, "ewa", "--out", tmp_path)
    assert status == 2 and "--force" in err
    assert run_main(capsys, "ewa", "--out", tmp_path, "--force")[0] == 0


@pytest.mark.parametrize("argv, words", [(["--title", "$\\frac{$"], "--title '$\\\\frac{$' is not valid mathtext"),
                                         (["--label", "a", "$x^$"], "--label '$x^$' is not valid mathtext"),
                                         (["--name", "../x"], "--name '../x' is not a file name stem")])
def test_bad_title_label_or_name_is_one_line_error_and_writes_nothing(sweep, tmp_path, capsys, argv, words):
    assert_one_line_error(*run_main(capsys, sweep, "--out", tmp_path / "o", *argv), words)
    assert not (tmp_path / "o").exists()
