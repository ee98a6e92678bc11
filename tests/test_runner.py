"""The trainer and the files it writes (in-process runs on small problems)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import compose_config, read_csv, read_summary, run_config

from optbench.config.validate import validate
from optbench.train.device import resolve_device
from optbench.train.run import prepare
from optbench.train.trainer import epoch_generator

LOSS_HEAD = ["step", "epoch", "examples_seen", "wall_time_s", "loss", "lr"]


def test_default_run_reproduces_seed_001(tmp_path):
    summary = run_config(tmp_path)
    rows = read_csv(tmp_path / "losses.csv")
    assert list(rows[0]) == LOSS_HEAD + ["full_loss", "suboptimality"]
    assert len(rows) == 300  # 3 epochs x 100 batches of 10, every step logged
    assert float(rows[-1]["epoch"]) == pytest.approx(3.0)
    assert int(rows[-1]["examples_seen"]) == 3000
    assert summary["status"] == "completed" and summary["steps"] == 300
    report = summary["report"]
    assert report["w"] == pytest.approx([2, -3.4], abs=0.1) and report["b"] == pytest.approx(4.2, abs=0.1)
    assert summary["final"]["full_loss"] < 0.05
    subopt = [float(r["suboptimality"]) for r in rows]
    assert min(subopt) >= -1e-9 and subopt[-1] < subopt[0] / 100
    epochs = read_csv(tmp_path / "epochs.csv")
    assert [int(e["epoch"]) for e in epochs] == [1, 2, 3]
    assert float(epochs[-1]["train_loss"]) < float(epochs[0]["train_loss"])
    for key in ("config", "config_hash", "seed", "device", "versions", "total_time_s", "threads"):
        assert key in summary
    assert summary["versions"]["torch"] == torch.__version__


def test_same_seed_same_losses_and_other_seed_differs(tmp_path):
    columns = ("step", "epoch", "examples_seen", "loss", "lr", "full_loss")

    def losses(folder, *overrides):
        run_config(tmp_path / folder, "epochs=1", *overrides)
        return [tuple(r[c] for c in columns) for r in read_csv(tmp_path / folder / "losses.csv")]

    assert losses("a") == losses("b")
    assert losses("a") != losses("c", "seed=1")


def test_scratch_and_builtin_start_from_the_same_weights_and_batches():
    device = torch.device("cpu")
    runs = []
    for impl in ("scratch", "builtin"):
        cfg = validate(compose_config("optimizer=sgd", f"optimizer.impl={impl}"))
        problem, model, optimizer = prepare(cfg, device)
        first_batch = next(problem.batches(cfg.batch_size, epoch_generator(cfg.seed, 0)))
        runs.append(([p.detach().clone() for p in model.parameters()], first_batch, type(optimizer)))
    (params_a, batch_a, type_a), (params_b, batch_b, type_b) = runs
    assert type_a is not type_b  # really two implementations
    assert all(torch.equal(a, b) for a, b in zip(params_a, params_b))
    assert all(torch.equal(a, b) for a, b in zip(batch_a, batch_b))


def test_scratch_and_builtin_sgd_runs_log_identical_first_loss(tmp_path):
    first = []
    for impl in ("scratch", "builtin"):
        run_config(tmp_path / impl, "optimizer=sgd", f"optimizer.impl={impl}", "steps=5")
        first.append(read_csv(tmp_path / impl / "losses.csv")[0]["loss"])
    assert first[0] == first[1]


def test_quadratic_lr_1_explodes_2_to_minus_14_to_98(tmp_path):
    run_config(tmp_path, "dataset=quadratic", "optimizer.lr=1", "steps=3")
    rows = read_csv(tmp_path / "losses.csv")
    assert [float(r["x"]) for r in rows] == [2.0, -14.0, 98.0]
    assert [float(r["f_x"]) for r in rows] == [16.0, 784.0, 38416.0]
    assert [float(r["grad_x"]) for r in rows] == [16.0, -112.0, 784.0]
    assert list(rows[0])[-4:] == ["x", "f_x", "grad_x", "suboptimality"]


def test_quadratic_lr_one_eighth_reaches_zero_in_one_step(tmp_path):
    summary = run_config(tmp_path, "dataset=quadratic", "optimizer.lr=0.125", "steps=2")
    rows = read_csv(tmp_path / "losses.csv")
    assert float(rows[1]["x"]) == 0.0 and float(rows[1]["f_x"]) == 0.0
    assert summary["report"]["x"] == 0.0


def test_divergence_is_recorded_and_does_not_raise(tmp_path):
    summary = run_config(tmp_path, "dataset=quadratic", "optimizer.lr=10", "steps=400")
    assert summary["status"] == "diverged"
    rows = read_csv(tmp_path / "losses.csv")
    assert not math.isfinite(float(rows[-1]["loss"]))
    assert summary["diverged_at_step"] == int(rows[-1]["step"])
    assert all(math.isfinite(float(r["loss"])) for r in rows[:-1])
    assert read_summary(tmp_path)["status"] == "diverged"


def test_log_every_controls_rows(tmp_path):
    run_config(tmp_path, "log_every=30", "epochs=1")
    steps = [int(r["step"]) for r in read_csv(tmp_path / "losses.csv")]
    assert steps == [0, 30, 60, 90, 99]  # every 30 steps as the seeds, plus the last


def test_step_schedule_shows_in_lr_column(tmp_path):
    run_config(tmp_path, "schedule.kind=step", "schedule.step_size=10", "schedule.gamma=0.5", "steps=25")
    lrs = [float(r["lr"]) for r in read_csv(tmp_path / "losses.csv")]
    assert lrs[0] == lrs[9] == 0.03 and lrs[10] == lrs[19] == 0.015 and lrs[20] == pytest.approx(0.0075)


def test_cosine_schedule_decays_to_eta_min(tmp_path):
    run_config(tmp_path, "schedule.kind=cosine", "steps=50", "optimizer=sgd", "optimizer.impl=builtin")
    lrs = [float(r["lr"]) for r in read_csv(tmp_path / "losses.csv")]
    assert lrs[0] == 0.01 and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.0001


@pytest.mark.parametrize("impl", ["scratch", "builtin"])
@pytest.mark.parametrize("kind", ["value", "norm", "global_norm"])
def test_grad_clip_limits_the_first_update(tmp_path, impl, kind):
    # sgd on the quadratic: x1 = x0 - lr * clip(16); with threshold 1 the step is lr * 1.
    run_config(tmp_path, "dataset=quadratic", f"optimizer.impl={impl}", "optimizer.lr=0.1", "steps=2",
               f"grad_clip.kind={kind}", "grad_clip.threshold=1.0")
    rows = read_csv(tmp_path / "losses.csv")
    assert float(rows[1]["x"]) == pytest.approx(2.0 - 0.1 * 1.0)


def test_lbfgs_trains_with_a_closure(tmp_path):
    summary = run_config(tmp_path, "optimizer=lbfgs", "steps=20", "batch_size=1000")
    rows = read_csv(tmp_path / "losses.csv")
    assert summary["status"] == "completed"
    assert float(rows[-1]["full_loss"]) < float(rows[0]["loss"]) / 100


def test_auto_device_is_cpu_without_accelerators():
    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"
    else:
        assert resolve_device("auto").type in ("cpu", "mps")


def test_mnist_format_run_reports_test_metrics(tmp_path, mnist_root):
    summary = run_config(tmp_path / "run", "dataset=mnist", f"dataset.root={mnist_root}",
                         "dataset.download=false", "epochs=2", "batch_size=32")
    epochs = read_csv(tmp_path / "run" / "epochs.csv")
    assert [int(e["epoch"]) for e in epochs] == [1, 2]
    for row in epochs:
        assert 0.0 <= float(row["test_acc"]) <= 1.0 and float(row["test_loss"]) > 0
        assert float(row["epoch_time_s"]) > 0
    assert summary["final"]["test_acc"] == float(epochs[-1]["test_acc"])
    steps = [int(r["step"]) for r in read_csv(tmp_path / "run" / "losses.csv")]
    assert steps == [0, 15]  # 256 images / 32 = 8 steps per epoch; log_every 30, plus the last step
    assert summary["device"] == "cpu" and summary["dataset"] == "mnist"


SCRATCH_AND_BUILTIN = ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adadelta"]
BUILTIN_ONLY = ["adamax", "asgd", "rprop", "lbfgs", "adamw", "nadam", "radam"]


@pytest.mark.parametrize(
    "name, impl",
    [(n, i) for n in SCRATCH_AND_BUILTIN for i in ("scratch", "builtin")] + [(n, "builtin") for n in BUILTIN_ONLY],
)
def test_every_optimizer_trains_through_the_runner(tmp_path, name, impl):
    summary = run_config(tmp_path, f"optimizer={name}", f"optimizer.impl={impl}", "epochs=1", "log_every=10")
    rows = read_csv(tmp_path / "losses.csv")
    assert summary["status"] == "completed" and (summary["optimizer"], summary["impl"]) == (name, impl)
    assert float(rows[-1]["full_loss"]) < float(rows[0]["full_loss"])  # it learned something
