"""Scaling out: launcher presets, crashes, divergence, Optuna studies, skip_finished, checkpoints.

Every sweep here is a real ``optbench -m`` subprocess on tiny quadratic/linreg runs. The
launchers and the sweeper are extras: a missing one fails its test with the install
command (CI installs ``.[all]``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import cli, compose_config, read_csv, read_summary, run_dirs, wait_for_rows

from optbench.config.hashing import config_hash
from optbench.config.validate import validate

TESTS = Path(__file__).resolve().parent
QUAD = ("dataset=quadratic", "optimizer=sgd", "quiet=true")
CRASH = ("+hydra.callbacks.crash._target_=crash_callback.CrashJob",)


def need(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"{module} is not installed. Fix: pip install -e '.[{extra}]' (CI installs '.[all]').")


def statuses(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): read_summary(p)["status"] for p in run_dirs(root)}


def start(cwd: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(["optbench", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


def plot_table(*paths: Path, cwd: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    out = cwd / "plots"
    result = subprocess.run(["optbench-plot", *map(str, paths), "--table", "--out", str(out)],
                            cwd=cwd, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "250"})
    tables = sorted(out.glob("*_summary.csv"))
    rows = read_csv(tables[0]) if tables else []
    return result, rows


# --------------------------------------------------------------------------- presets


def test_presets_compose_from_the_installed_package():
    need("hydra_plugins.hydra_submitit_launcher", "slurm")
    need("hydra_plugins.hydra_joblib_launcher", "joblib")
    need("hydra_plugins.hydra_optuna_sweeper", "optuna")
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    def hydra_node(*overrides):
        GlobalHydra.instance().clear()
        with initialize_config_module("optbench.conf", version_base="1.3"):
            return compose("config", overrides=list(overrides), return_hydra_config=True)

    slurm = hydra_node("hydra/launcher=slurm", "hydra.launcher.partition=cpu").hydra.launcher
    assert slurm._target_.endswith("SlurmLauncher") and slurm.partition == "cpu"
    assert (slurm.timeout_min, slurm.cpus_per_task) == (60, 4)
    assert hydra_node("hydra/launcher=slurm_local").hydra.launcher._target_.endswith("submitit_launcher.LocalLauncher")
    assert hydra_node("hydra/launcher=parallel").hydra.launcher._target_.endswith("JoblibLauncher")
    hpo = hydra_node("+hpo=rmsprop")
    assert hpo.optimizer.name == "rmsprop"
    assert hpo.hydra.sweeper.params["optimizer.lr"] == "tag(log, interval(1e-5, 1.0))"
    assert "optimizer.alpha" in hpo.hydra.sweeper.params
    assert hpo.hydra.sweeper.storage == "sqlite:///multirun/hpo/rmsprop_linreg_final_train_loss/optuna.db"


@pytest.mark.slow
@pytest.mark.parametrize("minutes, signal_at", [(1, 15), (120, 120)])
def test_slurm_preset_writes_the_sbatch_flags_of_the_readme_example(slurm_cluster, tmp_path, minutes, signal_at):
    """The README's SLURM example on a real one-node cluster (tests/slurm_cluster.py): the #SBATCH lines it
    submits, and a signal delay that fits the time limit (never longer than it)."""
    need("hydra_plugins.hydra_submitit_launcher", "slurm")
    sweep = tmp_path / "shared" / "sweep"
    result = cli("-m", "hydra/launcher=slurm", f"hydra.launcher.partition={slurm_cluster.partition}",
                 f"hydra.launcher.timeout_min={minutes}", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2",
                 "threads=1", f"hydra.sweep.dir={sweep}", *QUAD, "optimizer.lr=0.1,0.2", cwd=tmp_path,
                 env=slurm_cluster.env)
    assert result.returncode == 0, result.stderr
    (script,) = (sweep / ".submitit").glob("*/*_submission.sh")
    lines = script.read_text().splitlines()
    for flag in (f"--partition={slurm_cluster.partition}", f"--time={minutes}", "--cpus-per-task=1", "--mem=2GB",
                 "--array=0-1%2", f"--signal=USR2@{signal_at}", f"--output={sweep}/.submitit/%A_%a/%A_%a_0_log.out"):
        assert f"#SBATCH {flag}" in lines, flag
    assert signal_at < minutes * 60
    assert statuses(sweep) == {"0": "completed", "1": "completed"}


def test_config_hash_leaves_out_output_paths_and_launcher_settings():
    base = validate(compose_config(*QUAD))
    moved = validate(compose_config(*QUAD, "quiet=false", "skip_finished=true", "results_root=/elsewhere",
                                    "checkpoint_every=7", "hydra.sweep.dir=/x",
                                    "hydra/launcher=parallel"))
    changed = validate(compose_config(*QUAD, "optimizer.lr=0.3"))
    digest = [config_hash(dict(c)) for c in (base, moved, changed)]
    assert digest[0] == digest[1] != digest[2]


# --------------------------------------------------------------------------- launchers


def test_joblib_sweep_runs_four_jobs_two_at_a_time(tmp_path):
    need("hydra_plugins.hydra_joblib_launcher", "joblib")
    result = cli("-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *QUAD, "steps=50",
                 "optimizer.lr=0.01,0.02,0.05,0.1", "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sweep = tmp_path / "sweep"
    assert statuses(sweep) == {str(i): "completed" for i in range(4)}
    assert (sweep / "multirun.yaml").exists()
    # loky caps each worker's torch threads at cores // n_jobs
    assert {read_summary(r)["threads"] for r in run_dirs(sweep)} == {max(1, os.cpu_count() // 2)}


def test_submitit_local_sweep_keeps_the_other_jobs_when_one_dies(tmp_path):
    need("hydra_plugins.hydra_submitit_launcher", "slurm")
    sweep = tmp_path / "sweep"
    result = cli("-m", "hydra/launcher=slurm_local", "threads=1", *QUAD, "steps=50", "optimizer.lr=0.01,0.02,0.05,0.1",
                 f"hydra.sweep.dir={sweep}", *CRASH, "+hydra.callbacks.crash.job=2", cwd=tmp_path,
                 env={"PYTHONPATH": str(TESTS)})
    # the presets' callback waits for every job, then names the dead one in one paragraph (optbench.compat)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (paragraph,) = [line for line in result.stderr.splitlines() if line.startswith("optbench: ")]
    assert "1 of 4 jobs" in paragraph and "job 2 (" in paragraph and "has not produced any output" in paragraph
    deadline = time.time() + 60
    while time.time() < deadline and statuses(sweep) != {"0": "completed", "1": "completed", "3": "completed"}:
        time.sleep(0.2)
    assert statuses(sweep) == {"0": "completed", "1": "completed", "3": "completed"}
    dead = sweep / "2"
    assert dead.is_dir() and not (dead / "summary.json").exists()  # it died before optbench wrote anything
    table, rows = plot_table(sweep, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    by_run = {Path(r["run"]).name: r["status"] for r in rows}
    assert by_run == {"0": "completed", "1": "completed", "2": "failed", "3": "completed"}, table.stderr


def test_a_diverging_lr_is_recorded_as_diverged_and_the_others_complete(tmp_path):
    result = cli("-m", *QUAD, "steps=100", "optimizer.lr=0.05,10,0.2", "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert statuses(tmp_path / "sweep") == {"0": "completed", "1": "diverged", "2": "completed"}
    diverged = read_summary(tmp_path / "sweep" / "1")
    assert diverged["diverged_at_step"] is not None
    from optbench.jobs import objective

    assert objective(diverged, "final_train_loss") == math.inf


# --------------------------------------------------------------------------- Optuna


def _trials(storage: Path, study: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=study, storage=f"sqlite:///{storage}").get_trials(deepcopy=False)


def test_optuna_study_interrupted_then_rerun_continues_in_sqlite(tmp_path):
    need("hydra_plugins.hydra_optuna_sweeper", "optuna")
    args = ("-m", "+hpo=rmsprop", "hydra.sweeper.n_trials=6", "epochs=3")
    study = "rmsprop_linreg_final_train_loss"
    sweep = tmp_path / "multirun" / "hpo" / study
    proc = start(tmp_path, *args)
    deadline = time.time() + 120
    while not list(sweep.glob("*/5/losses.csv")):  # the sixth trial is training
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.02)
    wait_for_rows(next(sweep.glob("*/5/losses.csv")), 20, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and "rerun the same command" in " ".join(err.split())
    first = _trials(sweep / "optuna.db", study)
    assert [t.state.name for t in first] == ["COMPLETE"] * 5 + ["RUNNING"]
    assert not (sweep / "optimization_results.yaml").exists()

    again = cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    trials = _trials(sweep / "optuna.db", study)
    assert len(trials) == 12 and sum(t.state.name == "COMPLETE" for t in trials) == 11
    import yaml

    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    best = min((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert results["best_params"] == best.params and set(best.params) == {"optimizer.lr", "optimizer.alpha"}
    assert 1e-5 <= best.params["optimizer.lr"] <= 1.0 and results["best_value"] == pytest.approx(best.value)
    assert (sweep / "multirun.yaml").exists()
    # two commands, two trial folders each numbered 0..5: nothing overwritten
    found = statuses(sweep)
    assert len(found) == 12 and sorted(found.values()) == ["completed"] * 11 + ["interrupted"]
    assert len({Path(k).parent for k in found}) == 2


def test_optuna_counts_a_diverged_trial_as_worst_and_goes_on(tmp_path):
    need("hydra_plugins.hydra_optuna_sweeper", "optuna")
    result = cli("-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid", *QUAD, "steps=100",
                 "optimizer.lr=choice(10,0.1,50)", "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(statuses(tmp_path / "sweep").values()) == ["completed", "diverged", "diverged"]
    import yaml

    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["best_params"] == {"optimizer.lr": 0.1} and math.isfinite(results["best_value"])


# --------------------------------------------------------------------------- skip_finished


LINREG = ("epochs=10", "quiet=true", "optimizer.alpha=0.999")  # 1,000 linreg steps: about a second each


def test_ctrl_c_stops_a_sweep_and_skip_finished_reruns_only_what_is_missing(tmp_path):
    sweep = tmp_path / "sweep"
    args = ("-m", *LINREG, "seed=0,1,2", f"hydra.sweep.dir={sweep}")
    proc = start(tmp_path, *args)
    wait_for_rows(sweep / "1" / "losses.csv", 200, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and "skip_finished=true" in " ".join(err.split()), err
    assert statuses(sweep) == {"0": "completed", "1": "interrupted"}  # job 2 never started
    assert (sweep / "1" / "checkpoint.pt").exists()
    done_at = read_summary(sweep / "0")["finished_at"], (sweep / "0" / "losses.csv").read_text()

    again = cli(*args, "skip_finished=true", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    skipped = [line for line in lines if line.startswith("skipped:")]
    assert len(skipped) == 1 and "this job's folder" in skipped[0]
    assert any(line.startswith("continuing:") and "resuming from its checkpoint" in line for line in lines)
    assert statuses(sweep) == {"0": "completed", "1": "completed", "2": "completed"}
    assert (read_summary(sweep / "0")["finished_at"], (sweep / "0" / "losses.csv").read_text()) == done_at
    assert read_summary(sweep / "1")["resumed_from_step"] >= 200
    steps = [int(r["step"]) for r in read_csv(sweep / "1" / "losses.csv")]
    assert steps == list(range(1000))  # the resumed job's log is whole: no gap, no repeat


def test_skip_finished_reuses_runs_under_results_root_and_never_overwrites_another_config(tmp_path):
    first = cli("-m", *QUAD, "steps=50", "optimizer.lr=0.1,0.2", "hydra.sweep.dir=old", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = cli("-m", *QUAD, "steps=50", "optimizer.lr=0.2,0.3", "hydra.sweep.dir=new", "skip_finished=true",
                f"results_root={tmp_path / 'old'}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    (line,) = [line for line in again.stdout.splitlines() if line.startswith("skipped:")]
    assert line.endswith(f"already completed in {tmp_path / 'old' / '1'} (skip_finished=true)")
    reused = json.loads((tmp_path / "new" / "0" / "reused.json").read_text())
    assert reused["reused_run"] == str(tmp_path / "old" / "1")
    assert not (tmp_path / "new" / "0" / "losses.csv").exists()  # nothing trained
    assert read_summary(tmp_path / "new" / "1")["status"] == "completed"

    # the same sweep dir with other values: job 0 would be another config, so nothing is overwritten
    from optbench.run_folder import snapshot

    before = snapshot(tmp_path / "old")
    changed = cli("-m", *QUAD, "steps=50", "optimizer.lr=0.3,0.1", "hydra.sweep.dir=old", "skip_finished=true",
                  cwd=tmp_path)
    assert changed.returncode == 2 and "Traceback" not in changed.stderr
    message = " ".join(changed.stderr.split())
    assert "already holds a run" in message and "results_root=" in message and "2 jobs of the sweep were refused" in message
    after = snapshot(tmp_path / "old")
    runs = {name for name in before if name != "multirun.yaml"}  # Hydra's sweep record is the command's, not a run's
    assert {name: after[name] for name in runs} == {name: before[name] for name in runs}  # no run's byte changed


# --------------------------------------------------------------------------- checkpoints, SIGKILL


def test_checkpoint_every_survives_kill_9_and_the_plot_marks_it_incomplete(tmp_path):
    from optbench.plot.runs import load_run

    proc = start(tmp_path, *LINREG, "checkpoint_every=100")
    wait_for_rows(_first_losses(tmp_path, proc), 450, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    (run,) = run_dirs(tmp_path / "outputs")
    rows = read_csv(run / "losses.csv")
    assert len(rows) >= 450 and [int(r["step"]) for r in rows] == list(range(len(rows)))
    assert read_summary(run)["status"] == "running" and (run / "checkpoint.pt").exists()

    table, table_rows = plot_table(run, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert [r["status"] for r in table_rows] == ["running"] and list((tmp_path / "plots").glob("*.png"))
    assert load_run(run).mark == "incomplete"

    resumed = cli(f"resume={run}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    summary = read_summary(run)
    assert summary["status"] == "completed" and summary["resumed_from_step"] % 100 == 0
    assert summary["resumed_from_step"] >= 400  # the last checkpoint before the kill, not the start
    assert [int(r["step"]) for r in read_csv(run / "losses.csv")] == list(range(1000))


def _first_losses(root: Path, proc: subprocess.Popen, timeout: float = 60) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list((root / "outputs").rglob("losses.csv"))
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("no losses.csv appeared")
