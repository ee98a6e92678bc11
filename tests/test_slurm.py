"""SLURM for real: sweeps through ``hydra/launcher=slurm`` on a one-node cluster (``slurm_cluster``).

The cluster (tests/slurm_cluster.py) has accounting off, as many small clusters do. Every
job asks for one CPU and 2 GB and trains with ``threads=1``. The tests wait for states
(files, squeue), never for a time.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli, read_csv, read_summary

SLURM = ("hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.mem_gb=2", "threads=1", "quiet=true")
QUAD = ("dataset=quadratic", "optimizer=sgd", "steps=50")
WALL_TIME = {"losses.csv": "wall_time_s", "epochs.csv": "epoch_time_s"}


def need_submitit() -> None:
    import importlib.util

    if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        pytest.fail("hydra-submitit-launcher is not installed. Fix: pip install -e '.[slurm]' (CI installs '.[all]').")


def sweep_cmd(cluster, sweep: Path, *args: str, timeout: float = 600,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    need_submitit()
    return cli("-m", *SLURM, f"hydra.sweep.dir={sweep}", *args, cwd=sweep.parent, timeout=timeout,
               env={**cluster.env, **(env or {})})


def start_sweep(cluster, sweep: Path, *args: str, **env: str) -> subprocess.Popen:
    need_submitit()
    return subprocess.Popen(["optbench", "-m", *SLURM, f"hydra.sweep.dir={sweep}", *args], cwd=sweep.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cluster.environ(PYTHONUNBUFFERED="1", **env))


def files_of(sweep: Path) -> set[str]:
    return {str(p.relative_to(sweep)) for p in sweep.rglob("*")
            if p.is_file() and ".submitit" not in p.parts and p.name != ".optbench.lock"}


def rows_without_wall_time(run: Path, name: str) -> list[dict]:
    return [{k: v for k, v in row.items() if k != WALL_TIME[name]} for row in read_csv(run / name)]


def wait_until(condition, what: str, proc: subprocess.Popen | None = None, limit_s: float = 600):
    """Poll ``condition`` until it holds (a generous safety limit, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the sweep ended ({proc.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what}")


def array_id(sweep: Path) -> str:
    scripts = list((sweep / ".submitit").glob("*/*_submission.sh"))
    assert scripts, "no submission script"
    return scripts[0].parent.name


# --------------------------------------------------------------------------- no cluster needed


def test_signal_delay_fits_the_time_limit():
    from optbench.compat import fit_signal_delay

    assert fit_signal_delay(1, 120) == 15  # a quarter of the limit: 45 s of a 60 s job are left to training
    assert fit_signal_delay(2, 120) == 30
    assert fit_signal_delay(120, 120) == 120  # long limits keep the preset's delay
    assert fit_signal_delay(120, 300) == 300
    assert fit_signal_delay(None, 120) == fit_signal_delay(0, 120) == 120  # no limit
    for minutes in (1, 2, 3, 5, 10, 60, 600):
        assert 0 < fit_signal_delay(minutes, 120) < minutes * 60


def test_the_sacct_filter_says_accounting_is_off_once(caplog):
    from optbench.compat import SacctWarningsOnce

    logger = logging.getLogger("submitit.test-filter")
    logger.addFilter(SacctWarningsOnce())
    with caplog.at_level(logging.WARNING, logger="submitit.test-filter"):
        for call in range(1, 6):
            logger.warning(f"Call #{call} - Bypassing sacct error Command '['sacct', '-j', '1']' returned non-zero "
                           "exit status 1., status may be inaccurate.")
        logger.warning("something else")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and messages[1] == "something else"
    assert "accounting is off" in messages[0] and "Bypassing" not in messages[0]


def test_the_slurm_presets_allow_requeues_and_install_the_callback():
    need_submitit()
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    for preset in ("slurm", "slurm_local"):
        GlobalHydra.instance().clear()
        with initialize_config_module("optbench.conf", version_base="1.3"):
            hydra = compose("config", overrides=[f"hydra/launcher={preset}"], return_hydra_config=True).hydra
        assert hydra.callbacks.optbench_submitit._target_ == "optbench.compat.SubmititShims"
    assert hydra.launcher._target_.endswith("LocalLauncher")
    GlobalHydra.instance().clear()
    with initialize_config_module("optbench.conf", version_base="1.3"):
        slurm = compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True).hydra.launcher
    assert slurm.max_num_timeout >= 3 and slurm.signal_delay_s == 120


def test_forward_gives_a_usr2_that_came_before_a_sigterm_to_the_launcher_last(monkeypatch):
    """SLURM may send SIGTERM after the USR2 (the limit, or the requeue's kill): the requeue still happens."""
    import signal

    from optbench import stop_signal

    calls = []
    monkeypatch.setattr(stop_signal._STATE, "previous", {
        signal.SIGTERM: lambda signum, frame: calls.append(("TERM", frame)),
        signal.SIGUSR2: lambda signum, frame: calls.append(("USR2", frame)),
    })
    stop_signal.reset()
    try:
        monkeypatch.setattr(stop_signal._STATE, "training", True)
        stop_signal._handle(signal.SIGUSR2, None)
        stop_signal._handle(signal.SIGTERM, None)
        stop_signal._handle(signal.SIGUSR2, None)
        assert stop_signal.should_stop()
        stop_signal.forward()
        assert calls == [("TERM", None), ("USR2", None)]  # submitit's handlers accept frame=None
    finally:
        stop_signal.reset()


# --------------------------------------------------------------------------- on the cluster


@pytest.mark.slow
def test_a_slurm_sweep_writes_the_basic_launchers_folders_and_says_once_that_accounting_is_off(slurm_cluster, tmp_path):
    sweep = tmp_path / "slurm"
    result = sweep_cmd(slurm_cluster, sweep, *QUAD, "optimizer.lr=0.1,0.2")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Bypassing sacct error" not in output and "Traceback" not in output
    assert output.count("accounting is off") == 1, output
    basic = tmp_path / "basic"
    local = cli("-m", *QUAD, "threads=1", "quiet=true", "optimizer.lr=0.1,0.2", f"hydra.sweep.dir={basic}",
                cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    assert files_of(sweep) == files_of(basic) and {"0/summary.json", "1/losses.csv", "multirun.yaml"} <= files_of(sweep)
    for job in ("0", "1"):
        assert read_summary(sweep / job)["status"] == "completed"
        assert read_summary(sweep / job)["config_hash"] == read_summary(basic / job)["config_hash"]
        for name in WALL_TIME:
            assert rows_without_wall_time(sweep / job, name) == rows_without_wall_time(basic / job, name)


@pytest.mark.slow
def test_a_cancelled_job_leaves_the_others_and_is_reported_without_a_traceback(slurm_cluster, tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    # jobs 0 and 2 are short (10,000 and 12,000 steps); job 1 (300,000 steps) is still training when cancelled
    proc = start_sweep(slurm_cluster, sweep, "epochs=100,3000,120", "log_every=500")
    try:
        losses = sweep / "1" / "losses.csv"
        wait_until(lambda: losses.exists() and len(losses.read_text().splitlines()) > 5, "job 1 training", proc)
        victim = f"{array_id(sweep)}_1"
        slurm_cluster.run("scancel", victim)
        out, err = proc.communicate(timeout=900)
    finally:
        stop(proc)
    assert proc.returncode == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out, err
    paragraph = [line for line in err.splitlines() if line.startswith("optbench:")]
    assert len(paragraph) == 1, err
    assert f"job 1 (submitit job {victim}" in paragraph[0] and "CANCELLED" in paragraph[0]
    assert "1 of 3 jobs" in paragraph[0] and "skip_finished=true" in paragraph[0]
    assert read_summary(sweep / "0")["status"] == read_summary(sweep / "2")["status"] == "completed"
    # SIGTERM (scancel's first signal) stopped the run at a step: interrupted, with a checkpoint
    stopped = read_summary(sweep / "1")
    assert stopped["status"] == "interrupted" and (sweep / "1" / "checkpoint.pt").exists(), stopped


@pytest.mark.slow
def test_a_job_never_writes_into_a_folder_another_process_is_writing(slurm_cluster, tmp_path):
    """A job that would continue its folder's unfinished run (a requeue, or skip_finished=true) waits its turn:
    while another process holds the folder's lock it writes nothing, and afterwards it continues the run."""
    import signal as signals

    from optbench.run_folder import FolderLock

    sweep = tmp_path / "sweep"
    run_args = ("epochs=30", "optimizer.alpha=0.999")  # linreg, 3,000 steps logged one by one
    first = subprocess.Popen(["optbench", "-m", *run_args, "threads=1", "quiet=true", f"hydra.sweep.dir={sweep}"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    losses = sweep / "0" / "losses.csv"
    wait_until(lambda: losses.exists() and len(losses.read_text().splitlines()) > 500, "the first run training", first)
    first.send_signal(signals.SIGINT)
    first.communicate(timeout=120)
    folder = sweep / "0"
    assert read_summary(folder)["status"] == "interrupted" and (folder / "checkpoint.pt").exists()
    run_files = ("summary.json", "losses.csv", "epochs.csv", "checkpoint.pt")  # (Hydra appends to optbench.log)
    before = {name: (folder / name).read_bytes() for name in run_files}

    with FolderLock(folder):  # another writer (e.g. an earlier attempt of a requeued job, still alive)
        refused = sweep_cmd(slurm_cluster, sweep, *run_args, "skip_finished=true")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert "being written by another optbench process" in refused.stderr, refused.stderr
    assert {name: (folder / name).read_bytes() for name in run_files} == before

    again = sweep_cmd(slurm_cluster, sweep, *run_args, "skip_finished=true")
    assert again.returncode == 0, again.stderr
    summary = read_summary(folder)
    assert summary["status"] == "completed" and summary["resumed_from_step"] > 0
    assert [int(r["step"]) for r in read_csv(losses)] == list(range(summary["steps"]))


# 30,000 linreg updates logged every 500 steps: a few seconds of training, but the first SLURM attempt
# waits 3 ms after each step (tests/slurm_throttle.py, a Hydra callback), so it is always still training
# when its 1-minute limit comes, and the requeued attempt finishes at full speed: two slots, whatever
# the machine's speed
LONG = ("epochs=300", "log_every=500", "optimizer.alpha=0.999")
LONG_STEPS = 30_000
THROTTLED = (*LONG, "+hydra.callbacks.slow_first_attempt._target_=slurm_throttle.SlowFirstAttempt")
THROTTLE_ENV = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
                "OPTBENCH_TEST_STEP_SLEEP_S": "0.003"}


def stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.slow
def test_a_job_past_its_time_limit_checkpoints_requeues_and_resumes_until_it_completes(slurm_cluster, tmp_path):
    from optbench.run_folder import is_locked

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    proc = start_sweep(slurm_cluster, sweep, *THROTTLED, "hydra.launcher.timeout_min=1",
                       "hydra.launcher.max_num_timeout=30", **THROTTLE_ENV)
    reference = subprocess.Popen(["optbench", *LONG, "threads=1", "quiet=true", f"hydra.run.dir={tmp_path / 'ref'}"],
                                 cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = sweep / "0"
    holders, unlocked_between_attempts = set(), []
    try:
        while proc.poll() is None:  # watch the folder's lock across the attempts
            lock = run / ".optbench.lock"
            scripts = list((sweep / ".submitit").glob("*/*_submission.sh"))
            if scripts and (run / "summary.json").exists():
                job = scripts[0].parent.name  # one job: a plain SLURM job, not an array
                states = [j["state"] for j in slurm_cluster.jobs() if j["id"] == job]
                if states == ["PENDING"]:
                    unlocked_between_attempts.append(not is_locked(run))
            if lock.exists() and is_locked(run):
                holders.add(lock.read_text().split(":")[0])
            time.sleep(0.5)
        out, err = proc.communicate()
        ref_out, ref_err = reference.communicate(timeout=900)
    finally:
        stop(proc, reference)
    logs = "\n".join(p.read_text(errors="replace") for p in sorted((sweep / ".submitit").rglob("*_log.*")))
    assert reference.returncode == 0, ref_err
    assert proc.returncode == 0, (out, err, logs[-4000:])
    assert "Traceback" not in err

    assert "Caught signal SIGUSR2" in logs and "this job is timed-out" in logs, logs[-4000:]
    summary = read_summary(run)
    assert summary["status"] == "completed" and summary["resumed_from_step"] > 0, summary
    assert not (run / "checkpoint.pt").exists()
    steps = [int(row["step"]) for row in read_csv(run / "losses.csv")]
    assert steps == sorted(set(steps)) and steps[0] == 0  # every logged step once, in order
    ref = tmp_path / "ref"
    for name in WALL_TIME:
        assert rows_without_wall_time(run, name) == rows_without_wall_time(ref, name), name
    assert summary["steps"] == read_summary(ref)["steps"] == LONG_STEPS
    # one writer at a time: each attempt held the lock, and none was held while the job waited to restart
    assert len(holders) >= 2, holders
    assert unlocked_between_attempts and all(unlocked_between_attempts)


@pytest.mark.slow
def test_a_job_out_of_requeues_ends_interrupted_with_its_checkpoint_and_is_reported(slurm_cluster, tmp_path):
    """max_num_timeout=0 (the plugin's default): submitit refuses to requeue; no traceback, the work is kept."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    result = sweep_cmd(slurm_cluster, sweep, *THROTTLED, "hydra.launcher.timeout_min=1",
                       "hydra.launcher.max_num_timeout=0", env=THROTTLE_ENV)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    (paragraph,) = [line for line in result.stderr.splitlines() if line.startswith("optbench:")]
    assert "job 0" in paragraph and "timed-out too many times" in paragraph, paragraph
    summary = read_summary(sweep / "0")
    assert summary["status"] == "interrupted" and summary["steps"] > 0 and (sweep / "0" / "checkpoint.pt").exists()
    assert "interrupted at step" in paragraph


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
