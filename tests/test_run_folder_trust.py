"""Run folders you can trust (issue 9, points 1-4, 7, 8): one writer, checkpoints as data,
signals from the first line, OS errors, sweeps that go on, divergence at its step.

Each hostile case asserts the exit code, no traceback, and that every file that was in
the folder before has the same bytes after (``tests/hostile.py``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli, read_csv, read_summary, run_dirs
from hostile import assert_no_traceback, assert_unchanged, battery_case, optbench

from optbench.run_folder import CHECKPOINT, LOSSES, SUMMARY, FolderLock, RunFolderError, snapshot

LONG = ("epochs=200", "quiet=true", "optimizer.alpha=0.999")  # 20,000 linreg steps: seconds
RESUMABLE = ("epochs=20", "quiet=true", "optimizer.alpha=0.999", "checkpoint_every=500")


def start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(["optbench", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for(predicate, proc: subprocess.Popen | None = None, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(proc.communicate())
        assert time.time() < deadline, "timed out"
        time.sleep(0.02)


def rows_in(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n") - 1
    except OSError:
        return -1


def stop_run(cwd: Path, *args: str, rows: int = 400, sig=signal.SIGINT) -> Path:
    """A run of ``args`` stopped by ``sig`` after ``rows`` logged rows; its folder."""
    proc = start(cwd, *args)
    wait_for(lambda: any(rows_in(p) >= rows for p in cwd.rglob(LOSSES)), proc)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    (run,) = [p.parent for p in cwd.rglob(SUMMARY) if read_summary(p.parent).get("status") == "interrupted"]
    return run


def csv_without_times(path: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("wall_time_s", "epoch_time_s")} for row in read_csv(path)]


@pytest.fixture(scope="module")
def completed_run(tmp_path_factory) -> Path:
    """A completed linreg run (the default job), made once."""
    cwd = tmp_path_factory.mktemp("completed")
    done = cli("quiet=true", cwd=cwd)
    assert done.returncode == 0, done.stderr
    (run,) = run_dirs(cwd / "outputs")
    return run


@pytest.fixture(scope="module")
def interrupted_runs(tmp_path_factory) -> dict[str, Path]:
    """An interrupted rmsprop run and an interrupted adam run, each with its checkpoint."""
    cwd = tmp_path_factory.mktemp("interrupted")
    (cwd / "r").mkdir()
    (cwd / "a").mkdir()
    return {"rmsprop": stop_run(cwd / "r", *LONG), "adam": stop_run(cwd / "a", "epochs=200", "quiet=true", "optimizer=adam")}


def copy_run(run: Path, where: Path) -> Path:
    target = where / "run"
    shutil.copytree(run, target)
    return target


# --------------------------------------------------------------------------- 1. one writer per folder


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    folder = tmp_path / "shared"
    first = start(tmp_path, *LONG, f"hydra.run.dir={folder}")
    wait_for(lambda: rows_in(folder / LOSSES) > 100, first)
    second = cli(*LONG, f"hydra.run.dir={folder}", cwd=tmp_path)
    assert second.returncode == 2, second.stderr
    message = " ".join(second.stderr.split())
    assert f"pid {first.pid}" in message and "Fix:" in message
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    rows = read_csv(folder / LOSSES)
    assert [int(r["step"]) for r in rows] == list(range(len(rows)))  # one writer: no interleaved rows


def test_folder_lock_is_exclusive_and_dies_with_its_process(tmp_path):
    with FolderLock(tmp_path):
        child = subprocess.run([sys.executable, "-c", "import sys; from optbench.run_folder import FolderLock\n"
                                f"FolderLock({str(tmp_path)!r}).acquire()"], capture_output=True, text=True)
        assert child.returncode != 0 and "being written by another optbench process" in child.stderr
    holder = subprocess.Popen([sys.executable, "-c", "import time; from optbench.run_folder import FolderLock\n"
                               f"FolderLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunFolderError, match=f"pid {holder.pid}"):
        FolderLock(tmp_path).acquire()
    holder.kill()
    holder.wait()
    FolderLock(tmp_path).acquire().release()  # the kernel dropped the dead holder's lock


def completed_cases():
    yield "resume a completed run", lambda run: (f"resume={run}",), "nothing to continue"
    yield "rerun into its folder", lambda run: ("quiet=true", f"hydra.run.dir={run}"), "already holds a run"
    yield "changed rerun into its folder", lambda run: ("quiet=true", "optimizer.lr=0.01", f"hydra.run.dir={run}"), \
        "already holds a run"
    yield "skip_finished rerun with a changed value", lambda run: (
        "quiet=true", "skip_finished=true", "optimizer.lr=0.01", f"hydra.run.dir={run}"), "already holds a run"
    yield "resume with a changed value", lambda run: (f"resume={run}", "optimizer.lr=0.5"), "nothing to continue"
    yield "sweep into its parent", lambda run: ("-m", "quiet=true", "optimizer.lr=0.01,0.02",
                                                f"hydra.sweep.dir={run.parent}", f"hydra.sweep.subdir={run.name}"), \
        "already holds a run"


@pytest.mark.parametrize("case", list(completed_cases()), ids=lambda c: c[0])
def test_no_command_changes_a_completed_run(case, completed_run, tmp_path):
    _, args, mention = case
    run = copy_run(completed_run, tmp_path)
    assert (run / ".hydra" / "config.yaml").exists()
    battery_case(optbench(*args(run)), tmp_path, mentions=[mention], keep=[run])


def test_skip_finished_rerun_of_the_same_config_leaves_the_run_as_it_was(completed_run, tmp_path):
    run = copy_run(completed_run, tmp_path)
    outcome = battery_case(optbench("quiet=true", "skip_finished=true", f"hydra.run.dir={run}"), tmp_path, code=0,
                           keep=[run])
    assert "skipped: config" in outcome.stdout
    assert set(snapshot(run)) == set(snapshot(completed_run))  # not even a new file


# --------------------------------------------------------------------------- 2. a checkpoint is data, never code


def evil_checkpoint(path: Path, marker: Path) -> None:
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": 2, "evil": Evil()}, path)


CHECKPOINT_CASES = {
    "crafted pickle": lambda run, other, marker: evil_checkpoint(run / CHECKPOINT, marker),
    "truncated": lambda run, other, marker: (run / CHECKPOINT).write_bytes((run / CHECKPOINT).read_bytes()[:999]),
    "garbage": lambda run, other, marker: (run / CHECKPOINT).write_bytes(b"not a checkpoint at all\n" * 10),
    "empty": lambda run, other, marker: (run / CHECKPOINT).write_bytes(b""),
    "another optimizer's": lambda run, other, marker: shutil.copy(other / CHECKPOINT, run / CHECKPOINT),
    "plain tensor dict": lambda run, other, marker: __import__("torch").save({"w": __import__("torch").ones(2)},
                                                                              run / CHECKPOINT),
    "missing": lambda run, other, marker: (run / CHECKPOINT).unlink(),
    "rows the CSV lacks": lambda run, other, marker: (run / LOSSES).write_bytes(
        b"".join((run / LOSSES).read_bytes().splitlines(keepends=True)[:50])),
    "summary not JSON": lambda run, other, marker: (run / SUMMARY).write_text("{not json"),
}


@pytest.mark.parametrize("name", list(CHECKPOINT_CASES))
def test_a_bad_checkpoint_is_refused_before_any_file_changes(name, interrupted_runs, tmp_path):
    run = copy_run(interrupted_runs["rmsprop"], tmp_path)
    marker = tmp_path / "PWNED"
    CHECKPOINT_CASES[name](run, interrupted_runs["adam"], marker)
    battery_case(optbench(f"resume={run}"), tmp_path, keep=[run])
    assert not marker.exists(), "loading the checkpoint ran code"


def test_loading_a_crafted_checkpoint_runs_no_code_in_skip_finished_either(interrupted_runs, tmp_path):
    run = copy_run(interrupted_runs["rmsprop"], tmp_path)
    marker = tmp_path / "PWNED"
    evil_checkpoint(run / CHECKPOINT, marker)
    config = read_summary(run)["config"]
    battery_case(optbench(*LONG, "skip_finished=true", f"hydra.run.dir={run}"), tmp_path, keep=[run])
    assert not marker.exists() and config["optimizer"]["alpha"] == 0.999


def test_overrides_beside_resume_are_refused_not_recorded(interrupted_runs, tmp_path):
    run = copy_run(interrupted_runs["rmsprop"], tmp_path)
    battery_case(optbench(f"resume={run}", "optimizer.lr=0.5"), tmp_path, mentions=["optimizer.lr=0.5"], keep=[run])
    allowed = cli(f"resume={run}", "quiet=true", "checkpoint_every=5000", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    summary = read_summary(run)
    assert summary["status"] == "completed" and summary["config"]["checkpoint_every"] == 5000
    assert not any(p.is_dir() and not any(p.iterdir()) for p in (tmp_path / "outputs").rglob("*"))


def test_kill_9_at_any_moment_of_a_resume_leaves_a_folder_that_resumes_to_the_same_csvs(tmp_path):
    (tmp_path / "stopped").mkdir()
    run = stop_run(tmp_path / "stopped", *RESUMABLE, rows=700)
    chance = random.Random(7)
    for _ in range(4):  # kill -9 each resume at a random moment: start-up, truncation, training
        proc = start(tmp_path, f"resume={run}", "quiet=true")
        time.sleep(chance.uniform(0.5, 4.0))
        proc.kill()
        proc.communicate(timeout=60)
        rows = read_csv(run / LOSSES)
        assert [int(r["step"]) for r in rows] == list(range(len(rows)))
        if read_summary(run)["status"] == "completed":
            break
    if read_summary(run)["status"] != "completed":
        finished = cli(f"resume={run}", "quiet=true", cwd=tmp_path)
        assert finished.returncode == 0, finished.stderr
    (tmp_path / "straight").mkdir()
    assert cli(*RESUMABLE, cwd=tmp_path / "straight").returncode == 0
    (straight,) = run_dirs(tmp_path / "straight" / "outputs")
    for name in ("losses.csv", "epochs.csv"):
        assert csv_without_times(run / name) == csv_without_times(straight / name), name


# --------------------------------------------------------------------------- 3. signals from the first line


#: the console script itself (not a version manager's shell shim in front of it, which a signal would kill)
SCRIPT = str(Path(sys.executable).parent / "optbench") if (Path(sys.executable).parent / "optbench").exists() \
    else "optbench"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("delay", [0.3, 0.6, 1.0, 1.6])
def test_a_signal_during_start_up_ends_cleanly_with_its_exit_code(tmp_path, sig, delay):
    proc = subprocess.Popen([SCRIPT, "quiet=true", "dataset=fashion_mnist", f"dataset.root={tmp_path / 'data'}",
                             "epochs=1"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)  # imports (Hydra, torch, numpy), data loading, or (fast machines) training
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, (proc.returncode, err[-2000:])
    assert "Traceback" not in out + err
    for run in run_dirs(tmp_path / "outputs") if (tmp_path / "outputs").exists() else []:
        summary = read_summary(run)
        assert summary["status"] == "interrupted"
        if "before training began" in summary["error"]:
            assert not (run / CHECKPOINT).exists()
        else:  # it got as far as training: stopped at a step, with its checkpoint
            assert summary["error"] == f"stopped by {signal.Signals(sig).name}" and (run / CHECKPOINT).exists()


def test_a_signal_during_data_loading_leaves_an_interrupted_summary(tmp_path):
    proc = start(tmp_path, "quiet=true", "dataset=fashion_mnist", f"dataset.root={tmp_path / 'data'}", "epochs=1")
    # the job holds its folder and has written .hydra/: it is past planning, in start-up or data loading
    wait_for(lambda: any((tmp_path / "outputs").rglob("config.yaml")) if (tmp_path / "outputs").exists()
             else False, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in out + err, err[-2000:]
    (run,) = run_dirs(tmp_path / "outputs")
    assert read_summary(run)["status"] == "interrupted"


def test_a_signal_during_compile_warm_up_ends_interrupted(tmp_path):
    proc = start(tmp_path, "quiet=true", "compile=true", "threads=1")
    wait_for(lambda: any(p for p in (tmp_path / "outputs").rglob(SUMMARY)) if (tmp_path / "outputs").exists()
             else False, proc)
    time.sleep(1.0)  # inside torch.compile's warm-up (tens of seconds cold)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130 and "Traceback" not in out + err, err[-3000:]
    (run,) = run_dirs(tmp_path / "outputs")
    assert read_summary(run)["status"] == "interrupted"


# --------------------------------------------------------------------------- 4. OS errors while writing


def assert_whole_rows(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the CSV ends inside a row"
    header = data.splitlines()[0].split(b",")
    assert all(len(line.split(b",")) == len(header) for line in data.splitlines())
    return read_csv(path)


def test_a_full_disk_ends_the_run_failed_on_a_whole_row(small_disk, tmp_path):
    run = small_disk / "run"
    outcome = battery_case(optbench(*LONG, f"hydra.run.dir={run}"), tmp_path, code=1)
    message = " ".join(outcome.stderr.split())
    assert "No space left on device" in message and "Fix:" in message and "\n\n" not in outcome.stderr.strip()
    rows = assert_whole_rows(run / LOSSES)
    assert 0 < len(rows) < 20000 and [int(r["step"]) for r in rows] == list(range(len(rows)))
    summary = json.loads((run / SUMMARY).read_text())
    assert summary["status"] == "failed" and "No space left" in summary["error"]


def test_a_file_size_limit_mid_run_is_one_paragraph_and_whole_rows(tmp_path):
    import resource

    def limit_file_size():  # like a quota: writes past 150 kB fail with EFBIG ("File too large")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    run = tmp_path / "run"
    done = subprocess.run(["optbench", *LONG, f"hydra.run.dir={run}"], cwd=tmp_path, capture_output=True, text=True,
                          preexec_fn=limit_file_size, timeout=180)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "File too large" in " ".join(done.stderr.split())
    rows = assert_whole_rows(run / LOSSES)
    assert 100 < len(rows) < 20000
    assert read_summary(run)["status"] == "failed"


# --------------------------------------------------------------------------- 7. sweeps go on


SWEEP = ("dataset=quadratic", "optimizer=sgd", "quiet=true", "steps=30", "optimizer.lr=0.1,-1,0.2")


@pytest.mark.parametrize("launcher", ["basic", "hydra/launcher=parallel", "hydra/launcher=slurm_local"])
def test_a_refused_job_is_failed_and_the_others_run(launcher, tmp_path):
    extra = () if launcher == "basic" else (launcher, "threads=1")
    outcome = battery_case(optbench("-m", *SWEEP, *extra, f"hydra.sweep.dir={tmp_path / 'sweep'}"), tmp_path,
                           mentions=["job 1", "optimizer.lr"], timeout=300)
    statuses = {run.name: read_summary(run)["status"] for run in run_dirs(tmp_path / "sweep")}
    assert statuses == {"0": "completed", "1": "failed", "2": "completed"}
    message = " ".join(outcome.stderr.split())
    assert ("1 job of the sweep was refused" in message or "1 of 3 jobs of the sweep did not complete" in message)
    assert "must be > 0" in message


@pytest.mark.parametrize("launcher", ["basic", "hydra/launcher=vectorized"])
def test_the_refusal_list_names_each_job_once_when_the_sweep_dir_is_relative(launcher, tmp_path):
    extra = () if launcher == "basic" else (launcher,)
    outcome = battery_case(optbench("-m", "dataset=quadratic", "optimizer=sgd", "quiet=true", "steps=5",
                                    "optimizer.lr=0.1,-1,-2", *extra, "hydra.sweep.dir=sweep"), tmp_path,
                           mentions=["job 1", "job 2"], timeout=300)
    last = " ".join(outcome.stderr.split()).split("2 jobs of the sweep were refused (every other job ran): ")[1]
    assert [part.split(")")[0] for part in last.split(" | ")] == [
        f"job 1 ({tmp_path / 'sweep' / '1'}", f"job 2 ({tmp_path / 'sweep' / '2'}"]  # absolute, each once


def _trials(storage: Path):
    import optuna

    (summary,) = optuna.get_all_study_summaries(storage=f"sqlite:///{storage}")
    return optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{storage}").trials


def test_optuna_stores_a_refused_trial_as_failed_and_goes_on(tmp_path):
    outcome = battery_case(optbench("-m", "+hpo=rmsprop", "hydra.sweeper.n_trials=4", "epochs=1", "optimizer.eps=-1"),
                           tmp_path, mentions=["no trial"], timeout=300)
    (storage,) = tmp_path.rglob("optuna.db")
    trials = _trials(storage)
    assert [t.state.name for t in trials] == ["FAIL"] * 4  # all refused, none left RUNNING
    assert not list(tmp_path.rglob("optimization_results.yaml")) and "Best parameters" not in outcome.output


def test_optuna_claims_no_best_parameters_when_every_trial_diverged(tmp_path):
    outcome = battery_case(optbench("-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid",
                                    "+hydra.callbacks.prepare._target_=optbench.sweeps.PrepareSweep",
                                    "hydra.sweeper.max_failure_rate=1.0", "dataset=quadratic", "optimizer=sgd",
                                    "quiet=true", "steps=100", "optimizer.lr=choice(10,50)",
                                    f"hydra.sweep.dir={tmp_path / 'sweep'}"), tmp_path, mentions=["no trial"])
    assert "Best parameters" not in outcome.output
    assert not (tmp_path / "sweep" / "optimization_results.yaml").exists()
    assert sorted(read_summary(r)["status"] for r in run_dirs(tmp_path / "sweep")) == ["diverged", "diverged"]


def test_optuna_marks_trials_left_running_as_failed(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=storage)
    study.ask()  # a trial a stopped command left RUNNING
    from optbench.compat import fail_stale_optuna_trials

    assert fail_stale_optuna_trials(storage, "s") == 1
    assert [t.state.name for t in optuna.load_study(study_name="s", storage=storage).trials] == ["FAIL"]


# --------------------------------------------------------------------------- 8. divergence at its step


@pytest.mark.parametrize("log_every", [1, 7, 1000])
def test_divergence_is_recorded_at_the_first_non_finite_step_whatever_log_every(tmp_path, log_every):
    args = ("optimizer=sgd", "optimizer.lr=3e15", "quiet=true", f"log_every={log_every}")
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    summary = read_summary(run)
    rows = read_csv(run / LOSSES)
    assert summary["status"] == "diverged"
    first_bad = summary["diverged_at_step"]
    assert rows[-1]["step"] == str(first_bad) and rows[-1]["loss"] in ("nan", "inf")
    assert all(r["loss"] not in ("nan", "inf") for r in rows[:-1])
    if log_every == 1:
        assert first_bad == 2  # the reference: every step logged
    else:
        reference = cli(*args[:-1], "log_every=1", cwd=tmp_path / "outputs")
        assert reference.returncode == 0
        (ref,) = run_dirs(tmp_path / "outputs" / "outputs")
        assert read_summary(ref)["diverged_at_step"] == first_bad


def test_battery_helper_sees_a_changed_byte(tmp_path):
    (tmp_path / "f").write_bytes(b"a")
    before = snapshot(tmp_path)
    (tmp_path / "f").write_bytes(b"b")
    with pytest.raises(AssertionError, match="changed"):
        assert_unchanged(before, tmp_path)
    with pytest.raises(AssertionError):
        from hostile import Outcome

        assert_no_traceback(Outcome(1, "", 'Traceback (most recent call last):\n  File "x"'))


def test_a_requeued_job_continues_its_checkpoint_or_restarts_without_one(interrupted_runs, tmp_path):
    from conftest import compose_config

    from optbench.jobs import plan_job

    run = copy_run(interrupted_runs["rmsprop"], tmp_path)
    cfg = compose_config(*LONG)
    assert plan_job(cfg, run, list(LONG), requeued=True).action == "resume"
    assert plan_job(cfg, run, list(LONG), requeued=False).action == "refuse"  # a plain rerun never writes over it
    (run / CHECKPOINT).unlink()
    plan = plan_job(cfg, run, list(LONG), requeued=True)
    assert plan.action == "fresh" and "requeued" in plan.message
    other = compose_config(*LONG, "optimizer.lr=0.5")
    assert plan_job(other, run, list(LONG), requeued=True).action == "refuse"  # another config's run: never
