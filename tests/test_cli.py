"""The installed ``optbench`` command, run as a user runs it (subprocesses)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import cli, read_csv, read_summary, run_dirs

FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_default_run_prints_w_b_and_where_the_csv_went(tmp_path):
    result = cli(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "(true [2, -3.4])" in out and "(true 4.2)" in out
    assert "epoch: 0, Train Loss:" in out
    (run,) = run_dirs(tmp_path / "outputs")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}/\d{2}-\d{2}-\d{2}-\d{6}", str(run.relative_to(tmp_path / "outputs")))
    assert f"{run}/losses.csv" in result.stdout
    assert (run / ".hydra" / "config.yaml").exists() and (run / "epochs.csv").exists()
    assert read_summary(run)["status"] == "completed"


def test_two_quick_runs_get_two_folders(tmp_path):
    for _ in range(2):
        assert cli("dataset=quadratic", "quiet=true", cwd=tmp_path).returncode == 0
    assert len(run_dirs(tmp_path / "outputs")) == 2


def test_users_example_works_as_written(tmp_path):
    result = cli("optimizer=rmsprop", "optimizer.alpha=0.999", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert read_summary(run)["config"]["optimizer"]["alpha"] == 0.999


@pytest.mark.parametrize(
    "args, needle",
    [
        (["optimizer.lr=-1"], "optimizer.lr"),
        (["+optimizer.foo=1"], "optimizer.foo"),
        (["batch_size=many"], "batch_size"),
        (["optimizer=adamw", "optimizer.impl=scratch"], "impl=builtin"),
        (["optimizer=sparse_adam"], "sparse"),
    ],
)
def test_bad_input_exits_2_with_one_paragraph_and_no_traceback(tmp_path, args, needle):
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    message = " ".join(result.stderr.split())
    assert message.startswith("optbench:") and needle in message and "Fix" in message
    (run,) = run_dirs(tmp_path / "outputs")  # the job folder says why it failed
    assert read_summary(run)["status"] == "failed"


def test_unavailable_device_exits_2(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.fail("this check needs a machine without CUDA; on a GPU machine device=cuda is valid")
    result = cli("device=cuda", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "device=cpu" in " ".join(result.stderr.split())


def test_unknown_optimizer_lists_the_options(tmp_path):
    result = cli("optimizer=nope", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "rmsprop" in result.stderr and "schema/" not in result.stderr


def test_missing_mnist_offline_names_folder_and_files(tmp_path):
    root = tmp_path / "nodata"
    result = cli("dataset=mnist", f"dataset.root={root}", "dataset.download=false", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert str(root / "MNIST" / "raw") in message
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert name in message


def test_diverging_run_ends_cleanly(tmp_path):
    result = cli("dataset=quadratic", "optimizer.lr=10", "steps=500", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert read_summary(run)["status"] == "diverged"
    assert "diverged at step" in result.stdout


def _start(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(["optbench", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_rows(tmp_path: Path, rows: int, proc: subprocess.Popen, timeout: float = 120) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list((tmp_path / "outputs").rglob("losses.csv"))
        if found and len(found[0].read_text().splitlines()) > rows:
            return found[0].parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run logged too few rows in time")


LONG_RUN = ("epochs=200", "quiet=true", "optimizer.alpha=0.999")  # 20,000 linreg steps: seconds, not ms


def test_sigkill_keeps_every_logged_row(tmp_path):
    proc = _start(tmp_path, *LONG_RUN)
    run = _wait_for_rows(tmp_path, 500, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    rows = read_csv(run / "losses.csv")
    assert len(rows) >= 500
    assert [int(r["step"]) for r in rows] == list(range(len(rows)))  # no gap, no torn row
    assert all(r["suboptimality"] not in ("", None) for r in rows)
    assert read_summary(run)["status"] == "running"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_ends_run_as_interrupted(tmp_path, sig):
    proc = _start(tmp_path, *LONG_RUN)
    run = _wait_for_rows(tmp_path, 300, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig and "Traceback" not in err  # 130 for SIGINT, 143 for SIGTERM
    summary = read_summary(run)
    assert summary["status"] == "interrupted" and 300 <= summary["steps"] < 20000
    assert (run / "checkpoint.pt").exists()


def test_resume_continues_to_the_same_csv_as_an_uninterrupted_run(tmp_path):
    args = ("epochs=30", "quiet=true", "optimizer.alpha=0.999", "schedule.kind=step", "schedule.step_size=700")
    proc = _start(tmp_path / "stopped", *args) if (tmp_path / "stopped").mkdir() is None else None
    run = _wait_for_rows(tmp_path / "stopped", 1234, proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    stopped_at = read_summary(run)["steps"]
    assert 0 < stopped_at < 3000 and stopped_at % 100 != 0  # mid-epoch
    resumed = cli(f"resume={run}", cwd=tmp_path / "stopped")
    assert resumed.returncode == 0, resumed.stderr
    assert read_summary(run)["status"] == "completed" and not (run / "checkpoint.pt").exists()
    (tmp_path / "straight").mkdir()
    assert cli(*args, cwd=tmp_path / "straight").returncode == 0
    (straight,) = run_dirs(tmp_path / "straight" / "outputs")
    for name in ("losses.csv", "epochs.csv"):
        drop = {"wall_time_s", "epoch_time_s"}
        a = [{k: v for k, v in r.items() if k not in drop} for r in read_csv(run / name)]
        b = [{k: v for k, v in r.items() if k not in drop} for r in read_csv(straight / name)]
        assert a == b, name


def test_fashion_mnist_sweep_writes_one_folder_per_job(tmp_path):
    assert FASHION.is_dir(), "install Debian's dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist)"
    result = cli("-m", "optimizer.alpha=0.9,0.999", "dataset=fashion_mnist", "epochs=1", "steps=60",
                 f"dataset.root={tmp_path / 'data'}", "quiet=true", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    runs = run_dirs(tmp_path / "multirun")
    assert [r.name for r in runs] == ["0", "1"]
    assert (runs[0].parent / "multirun.yaml").exists()
    assert [read_summary(r)["config"]["optimizer"]["alpha"] for r in runs] == [0.9, 0.999]
    for run in runs:
        epochs = read_csv(run / "epochs.csv")
        assert read_summary(run)["status"] == "completed" and 0.3 < float(epochs[-1]["test_acc"]) <= 1


# ----------------------------------------------------------------------------- the front door


def test_help_describes_optbench_and_lists_only_what_a_user_chooses(tmp_path):
    result = cli("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "compare neural-network optimizers" in text and "Examples:" in text and "optbench -m" in text
    assert "schema" not in text and "per_dataset" not in text
    conf = Path(__file__).resolve().parents[1] / "conf"
    groups = text.split("== Groups")[1].split("== Keys")[0]
    for group in ("optimizer", "dataset", "experiment", "hpo", "hydra/launcher"):
        for option in sorted(p.stem for p in (conf / group).glob("*.yaml")):
            if option != "sparse_adam":  # refused: it needs sparse gradients
                assert re.search(rf"\b{option}\b", groups), f"{group}={option} is not in --help"
    assert not list(tmp_path.iterdir()), "--help wrote files"


@pytest.mark.parametrize("columns", ["40", "200"])
def test_epoch_lines_never_wrap_and_optbench_log_holds_the_runs_lines(tmp_path, columns):
    run_dir = tmp_path / "run[1]"  # brackets: never read as markup
    result = cli("optimizer.lr=0.01", f"hydra.run.dir='{run_dir}'", cwd=tmp_path, env={"COLUMNS": columns})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    epoch_lines = [line for line in lines if line.startswith("epoch:")]
    assert len(epoch_lines) == 3
    for line in epoch_lines:
        assert re.fullmatch(r"epoch: \d, Train Loss: \d+\.\d{6}, Time: \d+\.\d\d s", line), line
    closing = next(line for line in lines if line.startswith("completed in"))
    assert closing.endswith(f"Results: {run_dir}/losses.csv, epochs.csv, summary.json"), closing
    log = (run_dir / "optbench.log").read_text()
    for line in epoch_lines + [closing] + [line for line in lines if line.startswith(("w:", "final train loss"))]:
        assert f"] - {line}\n" in log, f"{line!r} is not in optbench.log:\n{log}"
    assert "optbench linreg: 300 steps, batch 10" in log


def test_quiet_run_still_logs_its_epoch_lines(tmp_path):
    result = cli("quiet=true", "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "epoch:" not in result.stdout
    log = (tmp_path / "run" / "optbench.log").read_text()
    assert log.count("epoch: ") == 3 and "completed in" in log and "final train loss" in log


def test_a_refused_job_names_its_error_in_its_log(tmp_path):
    result = cli("optimizer.lr=-1", "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("optbench:") == 1  # once, not echoed by a log handler
    assert "`optimizer.lr` must be > 0" in (tmp_path / "run" / "optbench.log").read_text()


@pytest.mark.parametrize("args", [["optimizer=nope"], ["-m", "optimizer=nope,adam"], ["--cfg", "job", "optimizer=nope"]])
def test_hydra_errors_exit_2_in_runs_sweeps_and_cfg(tmp_path, args):
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    message = " ".join(result.stderr.split())
    assert message.startswith("optbench: Unknown optimizer 'nope'") and "Fix" in message and message.count("optbench:") == 1
