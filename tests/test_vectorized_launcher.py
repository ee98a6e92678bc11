"""``hydra/launcher=vectorized`` end to end: real ``optbench -m`` subprocesses on tiny linreg/quadratic sweeps.

Each vectorized sweep is compared with the basic launcher running the same sweep: the
same job folders and files, the same CSV columns, values within the issue's tolerance
(1e-6 relative on linreg), the same exit codes and messages for refused and
interrupted sweeps, and ``skip_finished=true`` continuing what a stop signal left.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import compose_config, read_csv, read_summary, wait_for_rows

#: the console script itself (the pyenv shim on PATH is a bash script: a signal would reach bash, not optbench)
OPTBENCH = str(Path(sys.executable).parent / "optbench")
VEC = "hydra/launcher=vectorized"
LINREG = ("dataset=linreg", "quiet=true", "epochs=1")  # 100 steps of batch 10, every step logged
QUAD = ("dataset=quadratic", "optimizer=sgd", "quiet=true")
#: columns that are clocks: a member's are its group's (docs/run-format.md)
TIMES = {"wall_time_s", "epoch_time_s"}


def optbench(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([OPTBENCH, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([OPTBENCH, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def jobs_of(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def listing(job: Path) -> set[str]:
    """The job folder's files, relative (the lock file is the lock's, not the run's)."""
    return {str(p.relative_to(job)) for p in job.rglob("*") if p.is_file() and p.name != ".optbench.lock"}


def close(a: str, b: str, rel: float) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isclose(x, y, rel_tol=rel, abs_tol=1e-12) or (math.isnan(x) and math.isnan(y))


def assert_same_csvs(a: Path, b: Path, rel: float = 1e-6) -> None:
    for name in ("losses.csv", "epochs.csv"):
        left, right = read_csv(a / name), read_csv(b / name)
        assert list(left[0]) == list(right[0]), f"{name}: columns differ"
        assert len(left) == len(right), f"{name}: {len(left)} rows against {len(right)}"
        for number, (x, y) in enumerate(zip(left, right)):
            bad = {k: (x[k], y[k]) for k in x if k not in TIMES and not close(x[k], y[k], rel)}
            assert not bad, f"{a / name} row {number}: {bad}"


def engine(job: Path) -> dict | None:
    return read_summary(job).get("engine")


def runs_alone_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if " runs alone: " in line]


# --------------------------------------------------------------------------- the same sweep, two launchers


def test_a_vectorized_sweep_writes_what_the_basic_launcher_writes(tmp_path):
    sweep = ("optimizer.lr=0.01,0.03", "seed=0,1")
    basic = optbench("-m", *LINREG, *sweep, "hydra.sweep.dir=basic", cwd=tmp_path)
    assert basic.returncode == 0, basic.stderr
    vec = optbench("-m", VEC, *LINREG, *sweep, "hydra.sweep.dir=vec", cwd=tmp_path)
    assert vec.returncode == 0, vec.stderr
    assert "Traceback" not in vec.stderr and not runs_alone_lines(vec.stdout)
    plain, stacked = jobs_of(tmp_path / "basic"), jobs_of(tmp_path / "vec")
    assert [p.name for p in plain] == [p.name for p in stacked] == ["0", "1", "2", "3"]
    for a, b in zip(plain, stacked):
        assert listing(a) == listing(b), a.name
        assert_same_csvs(a, b)
        left, right = read_summary(a), read_summary(b)
        assert left["config_hash"] == right["config_hash"] and left["overrides"] == right["overrides"]
        assert (left["status"], left["steps"]) == (right["status"], right["steps"]) == ("completed", 100)
        assert math.isclose(left["final"]["loss"], right["final"]["loss"], rel_tol=1e-6)
        assert "engine" not in left
    engines = [engine(b) for b in stacked]
    assert [e["member"] for e in engines] == [0, 1, 2, 3]
    assert {(e["kind"], e["group"], e["members"]) for e in engines} == {("vectorized", engines[0]["group"], 4)}
    # the quiet sweep's closing line per job, as the basic launcher prints it
    assert sorted(line for line in vec.stdout.splitlines() if line.startswith("completed: ")) == \
        sorted(f"completed: {b}" for b in stacked)


def test_jobs_that_cannot_stack_run_alone_after_one_line_each(tmp_path):
    result = optbench("-m", VEC, *LINREG, "optimizer=rmsprop,lbfgs", "seed=0,1", "hydra.sweep.dir=mixed", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    jobs = jobs_of(tmp_path / "mixed")
    lbfgs = [j for j in jobs if read_summary(j)["optimizer"] == "lbfgs"]
    rmsprop = [j for j in jobs if read_summary(j)["optimizer"] == "rmsprop"]
    assert len(lbfgs) == len(rmsprop) == 2
    assert all(read_summary(j)["status"] == "completed" for j in jobs)
    assert [engine(j) for j in lbfgs] == [None, None]
    assert [engine(j)["members"] for j in rmsprop] == [2, 2]
    lines = runs_alone_lines(result.stdout)
    assert sorted(line.split(" runs alone: ")[0] for line in lines) == sorted(f"job {j.name}" for j in lbfgs)
    assert all("lbfgs" in line for line in lines)


def test_different_schedules_never_share_a_group(tmp_path):
    result = optbench("-m", VEC, *LINREG, "schedule.kind=constant,cosine", "seed=0,1", "hydra.sweep.dir=s",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    by_schedule: dict[str, set[str]] = {}
    for job in jobs_of(tmp_path / "s"):
        summary = read_summary(job)
        by_schedule.setdefault(summary["config"]["schedule"]["kind"], set()).add(summary["engine"]["group"])
    assert set(by_schedule) == {"constant", "cosine"}
    assert all(len(groups) == 1 for groups in by_schedule.values())
    assert by_schedule["constant"].isdisjoint(by_schedule["cosine"])


def test_max_group_cuts_a_group_in_order(tmp_path):
    result = optbench("-m", VEC, "hydra.launcher.max_group=2", *QUAD, "steps=20", "seed=0,1,2,3,4",
                      "hydra.sweep.dir=s", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    engines = [engine(j) for j in jobs_of(tmp_path / "s")]
    assert [(e["members"], e["member"]) for e in engines] == [(2, 0), (2, 1), (2, 0), (2, 1), (1, 0)]
    groups = [e["group"] for e in engines]
    assert groups[0] == groups[1] != groups[2] == groups[3] != groups[4] != groups[0]


def test_a_bad_max_group_is_one_paragraph(tmp_path):
    result = optbench("-m", VEC, "hydra.launcher.max_group=0", *QUAD, "seed=0,1", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "max_group" in result.stderr and "Fix:" in result.stderr
    assert not (tmp_path / "multirun").exists() or not list((tmp_path / "multirun").rglob("summary.json"))


# --------------------------------------------------------------------------- refusals, reuse


def test_refused_jobs_end_the_sweep_as_under_the_basic_launcher(tmp_path):
    sweep = (*QUAD, "steps=20", "optimizer.lr=0.1,1e-50,0.2")  # 1e-50 is 0 in float32: refused
    basic = optbench("-m", *sweep, f"hydra.sweep.dir={tmp_path / 'basic'}", cwd=tmp_path)
    vec = optbench("-m", VEC, *sweep, f"hydra.sweep.dir={tmp_path / 'vec'}", cwd=tmp_path)
    assert basic.returncode == vec.returncode == 2
    assert "Traceback" not in vec.stderr
    as_basic = vec.stderr.replace(str(tmp_path / "vec"), str(tmp_path / "basic"))
    paragraphs = [[line for line in text.splitlines() if line.startswith("optbench: ")] for text in (basic.stderr,
                                                                                                     as_basic)]
    assert paragraphs[0] == paragraphs[1] and len(paragraphs[0]) == 2  # the job's paragraph, then the sweep's
    status = {j.name: read_summary(j)["status"] for j in jobs_of(tmp_path / "vec")}
    assert status == {"0": "completed", "1": "failed", "2": "completed"}
    assert engine(tmp_path / "vec" / "0")["members"] == 2

    # the same command into the same folder: every job's folder holds a run, so every job is refused
    from optbench.run_folder import snapshot

    before = snapshot(tmp_path / "vec")
    again = optbench("-m", VEC, *sweep, f"hydra.sweep.dir={tmp_path / 'vec'}", cwd=tmp_path)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    message = " ".join(again.stderr.split())
    assert "3 jobs of the sweep were refused" in message and "already holds a run" in message
    last = message.split("3 jobs of the sweep were refused", 1)[1]  # the sweep's list names each folder once
    assert all(last.count(f"{tmp_path / 'vec' / str(j)} ") + last.count(f"{tmp_path / 'vec' / str(j)})") == 1
               for j in (0, 2)), last
    after = snapshot(tmp_path / "vec")
    runs = [name for name in before if name.split("/")[0] in ("0", "2")]  # job 1 rewrites its refusal record
    assert runs and {name: after[name] for name in runs} == {name: before[name] for name in runs}


def test_skip_finished_reuses_completed_members_and_trains_only_the_new_ones(tmp_path):
    first = optbench("-m", VEC, *QUAD, "steps=20", "optimizer.lr=0.1,0.2", "hydra.sweep.dir=s", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    kept = {j.name: (j / "losses.csv").read_bytes() for j in jobs_of(tmp_path / "s")}
    again = optbench("-m", VEC, *QUAD, "steps=20", "optimizer.lr=0.1,0.2", "hydra.sweep.dir=s2", "skip_finished=true",
                     f"results_root={tmp_path / 's'}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    skipped = [line for line in again.stdout.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 2 and not list((tmp_path / "s2").rglob("losses.csv"))
    assert {j.name: (j / "losses.csv").read_bytes() for j in jobs_of(tmp_path / "s")} == kept


def test_a_member_whose_folder_changed_after_planning_is_refused_and_nothing_is_written(tmp_path):
    from hydra.core.utils import JobReturn, JobStatus

    from optbench import jobs
    from optbench.vectorized.collect import Collected
    from optbench.vectorized.launcher import train_chunk

    sweep = tmp_path / "sweep"
    folder = sweep / "0"
    folder.mkdir(parents=True)
    plan = jobs.plan_job(compose_config(*QUAD, "steps=5"), folder, ["steps=5"], sweep)
    assert plan.action == "fresh"
    (folder / "losses.csv").write_text("step\n")  # another process wrote the folder after the plan looked
    runs = [JobReturn(status=JobStatus.COMPLETED, _return_value=math.nan)]
    train_chunk([Collected(0, 0, folder, plan, ["steps=5"], None, True, key=("k",))], runs, sweep)
    assert runs[0].status == JobStatus.FAILED and isinstance(runs[0]._return_value, jobs.SweepJobRefused)
    assert "changed while this job was deciding" in str(runs[0]._return_value)
    assert sorted(p.name for p in folder.iterdir()) == [".optbench.lock", "losses.csv"]
    assert (folder / "losses.csv").read_text() == "step\n"


# --------------------------------------------------------------------------- a stop signal during a group


LONG = (*LINREG, "epochs=10", "optimizer.alpha=0.999", "optimizer.lr=0.01,0.02", "seed=0,1")  # 1,000 steps


def test_sigint_checkpoints_every_member_and_skip_finished_completes_the_group(tmp_path):
    sweep = tmp_path / "stopped"
    proc = start("-m", VEC, *LONG, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    wait_for_rows(sweep / "3" / "losses.csv", 50, proc, timeout=180)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    message = " ".join(err.split())
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "skip_finished=true" in message and f"hydra.sweep.dir={sweep}" in message
    members = jobs_of(sweep)
    summaries = [read_summary(j) for j in members]
    assert [s["status"] for s in summaries] == ["interrupted"] * 4
    assert all((j / "checkpoint.pt").exists() for j in members)
    assert len({s["steps"] for s in summaries}) == 1 and 50 <= summaries[0]["steps"] < 1000

    again = optbench("-m", VEC, *LONG, f"hydra.sweep.dir={sweep}", "skip_finished=true", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    continuing = [line for line in again.stdout.splitlines() if line.startswith("continuing:")]
    assert len(continuing) == 4
    assert [read_summary(j)["status"] for j in members] == ["completed"] * 4
    assert not any((j / "checkpoint.pt").exists() for j in members)

    straight = optbench("-m", VEC, *LONG, "hydra.sweep.dir=straight", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    for a, b in zip(members, jobs_of(tmp_path / "straight")):
        assert_same_csvs(a, b, rel=0.0)  # a resumed member continues bitwise
        assert read_summary(a)["resumed_from_step"] == summaries[0]["steps"]


# --------------------------------------------------------------------------- the Optuna sweeper


def test_optuna_batches_go_through_the_vectorized_launcher(tmp_path):
    result = optbench("-m", VEC, "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid", "hydra.sweeper.n_jobs=2", *QUAD,
                      "steps=30", "optimizer.lr=choice(10,0.1,0.05,50)", "hydra.sweep.dir=hpo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    import yaml

    jobs = jobs_of(tmp_path / "hpo")
    assert sorted(read_summary(j)["status"] for j in jobs) == ["completed", "completed", "diverged", "diverged"]
    assert {engine(j)["members"] for j in jobs} == {2}  # Optuna asks for two trials at a time
    results = yaml.safe_load((tmp_path / "hpo" / "optimization_results.yaml").read_text())
    assert results["best_params"] == {"optimizer.lr": 0.1} and math.isfinite(results["best_value"])


def test_a_diverging_member_does_not_stop_the_others(tmp_path):
    result = optbench("-m", VEC, *QUAD, "steps=100", "optimizer.lr=0.05,10,0.2", "hydra.sweep.dir=s", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    basic = optbench("-m", *QUAD, "steps=100", "optimizer.lr=0.05,10,0.2", "hydra.sweep.dir=b", cwd=tmp_path)
    assert basic.returncode == 0, basic.stderr
    for a, b in zip(jobs_of(tmp_path / "s"), jobs_of(tmp_path / "b")):
        left, right = read_summary(a), read_summary(b)
        assert (left["status"], left["diverged_at_step"]) == (right["status"], right["diverged_at_step"])
        assert_same_csvs(a, b)
    assert [read_summary(j)["status"] for j in jobs_of(tmp_path / "s")] == ["completed", "diverged", "completed"]
