"""The vectorized engine: each member of a stacked group writes exactly its own sequential run.

Every test trains the same configs twice, one by one with ``train.run.execute`` (the
basic launcher's path) and as one group with ``vectorized.engine.train_group``, and
compares the run folders column by column. Kept small: linreg cut to a few dozen steps,
image runs on 256 synthetic 28 x 28 images with a narrow MLP.

"Within rel" means within ``rel`` of the quantity's scale: ``|vectorized - sequential|
<= rel * max |sequential|`` over the column (and for ``final``/``best``, over that
column's rows). Float32 kernels of different shapes round differently: below 400
products torch's ``bmm`` takes its own loop, whose rounding differs by an ulp from the
BLAS ``sgemm`` a member's own ``nn.Linear`` calls (seen on an AVX-512 Xeon; on earlier
machines these tests held at 1e-6 of each value), and linreg's loss near its optimum carries such an ulp of the
weights into a larger relative change of a small loss (9e-8 absolute = 5e-6 of a loss
of 0.019, against 1e-6 of the column's scale).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import yaml
from conftest import compose_config, read_csv, read_summary
from omegaconf import OmegaConf

from optbench import stop_signal
from optbench.config.validate import validate
from optbench.train.console import RunConsole
from optbench.train.run import execute
from optbench.vectorized.engine import Member, train_group
from optbench.vectorized.grouping import group_key, why_alone

#: config groups (chosen by Hydra's composition; every other override is a value)
GROUPS = ("optimizer", "dataset", "model")
SCRATCH = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adadelta")
#: a learning rate per optimizer that trains linreg and the tiny MLP without diverging
LRS = {"sgd": 0.05, "momentum": 0.01, "adagrad": 0.1, "rmsprop": 0.01, "adam": 0.01, "adadelta": 1.0}
#: columns that carry the group's clock, not the member's numbers
TIMING = ("wall_time_s", "epoch_time_s")


@functools.lru_cache(maxsize=None)
def _composed(groups: tuple[str, ...]):
    return OmegaConf.to_container(compose_config("quiet=true", "threads=1", *groups))


def _cfg(*overrides: str):
    """Hydra's composition of the group choices (``key=value`` without a dot), cached; the rest set on top."""
    groups = tuple(o for o in overrides if "." not in o.split("=", 1)[0] and o.split("=", 1)[0] in GROUPS)
    cfg = OmegaConf.create(_composed(groups))
    for override in overrides:
        if override not in groups:
            key, value = override.split("=", 1)
            OmegaConf.update(cfg, key, yaml.safe_load(value), force_add=True)
    return validate(cfg)


def _sequential(root: Path, runs: list[list[str]]) -> list[dict]:
    return [execute(_cfg(*ov), root / f"seq{j}", list(ov), RunConsole(quiet=True)) for j, ov in enumerate(runs)]


def _vectorized(root: Path, runs: list[list[str]], group: str = "g0") -> list[dict]:
    members = [Member(_cfg(*ov), root / f"vec{j}", list(ov)) for j, ov in enumerate(runs)]
    return train_group(members, group=group, console=RunConsole(quiet=True))


def _number(cell: str) -> float:
    return math.nan if cell == "" else float(cell)


def column_scales(*tables: list[dict]) -> dict[str, float]:
    """Per column, the largest finite magnitude in the tables (at least 1e-12)."""
    scales: dict[str, float] = {}
    for table in tables:
        for row in table:
            for column, cell in row.items():
                x = _number(cell)
                if math.isfinite(x):
                    scales[column] = max(scales.get(column, 1e-12), abs(x))
    return scales


def assert_same_table(a_path: Path, b_path: Path, rel: float) -> None:
    """Same header, same rows; numbers within ``rel`` of their column's scale (``a``'s), timing columns aside."""
    a, b = read_csv(a_path), read_csv(b_path)
    assert (a_path.read_text().splitlines()[0]) == (b_path.read_text().splitlines()[0])
    assert len(a) == len(b) > 0, (a_path, len(a), len(b))
    scales = column_scales(a)
    for row_a, row_b in zip(a, b):
        for column, cell in row_a.items():
            if column in TIMING:
                continue
            x, y = _number(cell), _number(row_b[column])
            if math.isnan(x) or math.isinf(x):
                assert repr(x) == repr(y), (a_path.name, column, row_a, row_b)
            else:
                assert y == pytest.approx(x, rel=0, abs=rel * scales[column]), (a_path.name, column,
                                                                                 row_a["step" if "step" in
                                                                                          row_a else "epoch"])


def assert_same_runs(root: Path, n: int, rel: float, summaries: list[dict], reference: list[dict],
                     extra: tuple = ()) -> None:
    for j in range(n):
        for name in ("losses.csv", "epochs.csv"):
            assert_same_table(root / f"seq{j}" / name, root / f"vec{j}" / name, rel)
        got, want = summaries[j], reference[j]
        assert repr(read_summary(root / f"vec{j}")) == repr(got)  # repr: a diverged final loss is nan
        assert got["engine"] == {"kind": "vectorized", "group": "g0", "members": n, "member": j}
        for key in ("status", "diverged_at_step", "steps", "epochs_completed", "config_hash", "seed", "optimizer",
                    "impl", "dataset", "overrides"):
            assert got[key] == want[key], key
        seq = root / f"seq{j}"
        scales = column_scales(read_csv(seq / "losses.csv"), read_csv(seq / "epochs.csv"))
        for block in ("final", "best"):
            assert set(got[block]) == set(want[block])
            for key, value in want[block].items():
                if value is None or not math.isfinite(value):
                    assert repr(got[block][key]) == repr(value), (block, key)
                else:
                    scale = scales.get(key, abs(value))
                    assert got[block][key] == pytest.approx(value, rel=0, abs=rel * max(scale, 1e-12)), (block, key)
        assert set(got) - set(want) == {"engine", *extra}
        assert not (root / f"vec{j}" / "checkpoint.pt").exists()


def _linreg_runs(name: str, impl: str = "scratch", extra: tuple = ()) -> list[list[str]]:
    lr = LRS[name]
    lrs = (lr, lr / 3, lr * 1.5) if impl == "scratch" else (lr, lr, lr)
    return [[f"optimizer={name}", f"optimizer.impl={impl}", f"optimizer.lr={r}", f"seed={s}", "steps=60",
             "epochs=1", *extra] for r, s in zip(lrs, (0, 1, 2))]


@pytest.mark.parametrize("name", SCRATCH)
def test_scratch_members_match_their_sequential_runs_on_linreg(tmp_path, name):
    runs = _linreg_runs(name)
    reference = _sequential(tmp_path, runs)
    summaries = _vectorized(tmp_path, runs)
    assert_same_runs(tmp_path, len(runs), 1e-6, summaries, reference)
    for got, want in zip(summaries, reference):
        assert got["report"]["w"] == pytest.approx(want["report"]["w"], rel=1e-6)


def _image_runs(root: Path, name: str, impl: str = "scratch", extra: tuple = ()) -> list[list[str]]:
    lr = LRS[name] / (10 if name in ("sgd", "momentum", "adagrad", "adadelta") else 1) / 5
    lrs = (lr, lr / 2, lr * 2) if impl == "scratch" else (lr, lr, lr)
    return [["dataset=mnist", f"dataset.root={root}", "dataset.download=false", "model.hidden=[16]",
             f"optimizer={name}", f"optimizer.impl={impl}", f"optimizer.lr={r}", f"seed={s}", "batch_size=16",
             "epochs=13", "steps=200", "log_every=7", *extra] for r, s in zip(lrs, (3, 4, 5))]


@pytest.mark.parametrize("name", SCRATCH)
def test_scratch_members_match_their_sequential_runs_on_images(tmp_path, mnist_root, name):
    runs = _image_runs(mnist_root, name)
    reference = _sequential(tmp_path, runs)
    summaries = _vectorized(tmp_path, runs)
    assert all(s["steps"] == 200 for s in summaries)
    assert_same_runs(tmp_path, len(runs), 1e-4, summaries, reference)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "momentum"])
def test_builtin_members_with_equal_hyperparameters_match(tmp_path, mnist_root, name):
    runs = _image_runs(mnist_root, name, impl="builtin", extra=("steps=60",))
    reference = _sequential(tmp_path, runs)
    summaries = _vectorized(tmp_path, runs)
    assert_same_runs(tmp_path, len(runs), 1e-4, summaries, reference)


def test_builtin_linreg_members_match(tmp_path):
    runs = _linreg_runs("adam", impl="builtin")
    assert_same_runs(tmp_path, 3, 1e-6, _vectorized(tmp_path, runs), _sequential(tmp_path, runs))


def test_a_diverging_member_stops_at_its_own_step_and_the_others_go_on(tmp_path):
    # log_every=7: the first non-finite loss falls between log points, as in its sequential run
    runs = [["optimizer=sgd", f"optimizer.lr={lr}", f"seed={s}", "steps=120", "epochs=2", "log_every=7"]
            for lr, s in ((0.05, 0), (3.5, 1), (0.02, 2))]
    reference = _sequential(tmp_path, runs)
    summaries = _vectorized(tmp_path, runs)
    assert reference[1]["status"] == "diverged" and reference[1]["diverged_at_step"] % 7 != 0
    assert [s["status"] for s in summaries] == ["completed", "diverged", "completed"]
    assert summaries[1]["steps"] < summaries[0]["steps"] == 120
    assert_same_runs(tmp_path, 3, 1e-6, summaries, reference)


def test_a_member_whose_folder_fills_up_fails_alone_and_the_others_finish_their_own_runs(tmp_path, small_disk):
    from optbench.train.run import WriteError

    runs = [["optimizer=sgd", "optimizer.lr=0.05", f"seed={s}", "steps=3000", "epochs=30"] for s in range(3)]
    reference = _sequential(tmp_path, runs)
    dirs = [tmp_path / "vec0", small_disk / "vec1", tmp_path / "vec2"]  # member 1's disk is 96 KiB
    members = [Member(_cfg(*ov), d, list(ov)) for ov, d in zip(runs, dirs)]
    with pytest.raises(WriteError) as raised:
        train_group(members, group="g0", console=RunConsole(quiet=True))
    message = " ".join(str(raised.value).split())
    assert "No space left on device" in message and str(dirs[1]) in message and "Fix:" in message
    assert "other members trained on to their own end" in message
    failed = read_summary(dirs[1])
    assert failed["status"] == "failed" and "No space left" in failed["error"]
    data = (dirs[1] / "losses.csv").read_bytes()
    assert data.endswith(b"\n")  # its CSV ends on a whole row, every step once, in order
    steps = [int(r["step"]) for r in read_csv(dirs[1] / "losses.csv")]
    assert 0 < len(steps) < 3000 and steps == list(range(len(steps)))
    for j in (0, 2):  # the others: completed, exactly their sequential runs
        assert read_summary(dirs[j])["status"] == "completed" == reference[j]["status"]
        for name in ("losses.csv", "epochs.csv"):
            assert_same_table(tmp_path / f"seq{j}" / name, dirs[j] / name, 1e-6)


@pytest.mark.parametrize("kind", ["global_norm", "norm", "value"])
def test_clipped_members_match_with_their_own_thresholds(tmp_path, kind):
    runs = [["optimizer=adam", f"optimizer.lr={lr}", f"seed={s}", "steps=40", "epochs=1", f"grad_clip.kind={kind}",
             f"grad_clip.threshold={t}"] for lr, s, t in ((0.05, 0, 0.5), (0.1, 1, 0.05), (0.05, 2, 2.0))]
    assert_same_runs(tmp_path, 3, 1e-6, _vectorized(tmp_path, runs), _sequential(tmp_path, runs))


def test_diagnostics_and_a_schedule_match(tmp_path):
    runs = [["optimizer=momentum", f"optimizer.lr={lr}", f"seed={s}", "steps=50", "epochs=1", "diagnostics=true",
             "schedule.kind=step", "schedule.step_size=9", "schedule.gamma=0.5"] for lr, s in ((0.02, 0), (0.01, 1))]
    reference = _sequential(tmp_path, runs)
    summaries = _vectorized(tmp_path, runs)
    lrs = [float(r["lr"]) for r in read_csv(tmp_path / "vec0" / "losses.csv")]
    assert lrs[0] == 0.02 and lrs[-1] < 0.02 / 16
    assert "grad_norm" in read_csv(tmp_path / "vec1" / "losses.csv")[0]
    assert_same_runs(tmp_path, 2, 1e-6, summaries, reference)


def test_models_without_a_matmul_chain_are_vmapped(tmp_path, mnist_root):
    runs = [["dataset=mnist", f"dataset.root={mnist_root}", "dataset.download=false", "model=cnn",
             "model.channels=[2]", "optimizer=rmsprop", f"optimizer.lr={lr}", f"seed={s}", "batch_size=32",
             "steps=24", "epochs=3", "log_every=5"] for lr, s in ((1e-3, 0), (3e-3, 1))]
    reference = _sequential(tmp_path, runs)
    summaries = _vectorized(tmp_path, runs)
    assert "vmap forward" in (tmp_path / "vec0" / "optbench.log").read_text()
    assert_same_runs(tmp_path, 2, 1e-4, summaries, reference)


def test_a_problem_with_its_own_batches_and_model(tmp_path):
    runs = [["dataset=quadratic", "optimizer=sgd", f"optimizer.lr={lr}"] for lr in (0.01, 0.1, 0.3)]
    assert_same_runs(tmp_path, 3, 1e-6, _vectorized(tmp_path, runs), _sequential(tmp_path, runs))


def _stop_after(monkeypatch, calls: int) -> None:
    """The stop flag goes up at the ``calls``-th step boundary (as SIGINT would)."""
    seen = iter(range(10**9))
    monkeypatch.setattr(stop_signal, "should_stop", lambda: next(seen) >= calls)


def _resume_group(tmp_path: Path, runs: list[list[str]]) -> list[dict]:
    from optbench.train.checkpoint import check_payload, load_checkpoint

    members = []
    for j, ov in enumerate(runs):
        folder = tmp_path / f"vec{j}"
        payload = load_checkpoint(folder)
        cfg = _cfg(*ov, f"resume={folder}")
        check_payload(payload, folder, read_summary(folder)["config_hash"], cfg.optimizer.name)
        members.append(Member(cfg, folder, list(ov), resume=payload))
    return train_group(members, group="g0", console=RunConsole(quiet=True))


def test_an_interrupted_group_checkpoints_each_member_and_resumes_exactly(tmp_path, monkeypatch):
    from optbench.train.checkpoint import load_checkpoint

    runs = [["optimizer=adam", f"optimizer.lr={lr}", f"seed={s}", "steps=150", "epochs=2", "log_every=7",
             "schedule.kind=cosine"] for lr, s in ((0.05, 0), (0.02, 1), (0.1, 2))]
    reference = _sequential(tmp_path, runs)
    _stop_after(monkeypatch, 60)
    stopped = _vectorized(tmp_path, runs)
    monkeypatch.undo()
    assert [s["status"] for s in stopped] == ["interrupted"] * 3 and {s["steps"] for s in stopped} == {60}
    assert all((tmp_path / f"vec{j}" / "checkpoint.pt").exists() for j in range(3))
    payloads = [load_checkpoint(tmp_path / f"vec{j}") for j in range(3)]
    assert len({group_key(_cfg(*ov), p) for ov, p in zip(runs, payloads)}) == 1
    assert group_key(_cfg(*runs[0]), payloads[0]) != group_key(_cfg(*runs[0]))
    resumed = _resume_group(tmp_path, runs)
    assert [s["resumed_from_step"] for s in resumed] == [60] * 3
    assert_same_runs(tmp_path, 3, 1e-6, resumed, reference, extra=("resumed_from_step",))


def test_a_member_checkpoint_resumes_with_the_basic_launcher(tmp_path, monkeypatch):
    from optbench.train.checkpoint import load_checkpoint

    runs = [["optimizer=rmsprop", f"optimizer.lr={lr}", f"seed={s}", "steps=90", "epochs=1", "log_every=4",
             "schedule.kind=cosine"] for lr, s in ((0.03, 0), (0.01, 1))]
    _sequential(tmp_path, runs)
    _stop_after(monkeypatch, 33)
    _vectorized(tmp_path, runs)
    monkeypatch.undo()
    folder = tmp_path / "vec1"
    size = (folder / "checkpoint.pt").stat().st_size
    assert size < 100_000  # the member's own tensors, not the stack's storage
    summary = execute(_cfg(*runs[1], f"resume={folder}"), folder, runs[1], RunConsole(quiet=True),
                      resume=load_checkpoint(folder))
    assert summary["status"] == "completed" and summary["resumed_from_step"] == 33
    for name in ("losses.csv", "epochs.csv"):
        assert_same_table(tmp_path / "seq1" / name, folder / name, 1e-6)


def test_grouping_keys_and_reasons():
    base = ("optimizer=adam", "steps=10")
    assert why_alone(_cfg("optimizer=lbfgs")) is not None and "closure" in why_alone(_cfg("optimizer=lbfgs"))
    assert why_alone(_cfg(*base)) is None and why_alone(_cfg(*base, "optimizer.impl=builtin")) is None
    assert why_alone(_cfg("optimizer=adamw")) is None  # builtin-only, elementwise
    key = group_key(_cfg(*base))
    assert group_key(_cfg(*base, "optimizer.lr=0.5", "seed=3", "grad_clip.threshold=2.0")) == key
    for other in ("batch_size=5", "optimizer.eps_in_sqrt=false", "schedule.kind=cosine", "log_every=3",
                  "grad_clip.kind=value", "device=cpu"):
        assert group_key(_cfg(*base, other)) != key, other
    builtin = group_key(_cfg(*base, "optimizer.impl=builtin"))
    assert group_key(_cfg(*base, "optimizer.impl=builtin", "seed=4")) == builtin
    assert group_key(_cfg(*base, "optimizer.impl=builtin", "optimizer.lr=0.5")) != builtin
    with pytest.raises(ValueError, match="group_key"):
        train_group([Member(_cfg(*base), Path("a"), []), Member(_cfg(*base, "batch_size=5"), Path("b"), [])],
                    group="x", console=RunConsole(quiet=True))


def test_an_interrupted_builtin_group_resumes_exactly(tmp_path, monkeypatch):
    runs = [["optimizer=rmsprop", "optimizer.impl=builtin", "optimizer.momentum=0.5", "optimizer.lr=0.01",
             f"seed={s}", "steps=70", "epochs=1", "log_every=3", "schedule.kind=step", "schedule.step_size=20"]
            for s in (0, 1)]
    reference = _sequential(tmp_path, runs)
    _stop_after(monkeypatch, 25)
    assert {s["status"] for s in _vectorized(tmp_path, runs)} == {"interrupted"}
    monkeypatch.undo()
    resumed = _resume_group(tmp_path, runs)
    assert_same_runs(tmp_path, 2, 1e-6, resumed, reference, extra=("resumed_from_step",))


def _member_by_member(monkeypatch) -> list[tuple]:
    """Every CPU group steps member by member; returns the leading shapes each kernel call saw."""
    from optbench.vectorized import optimizers

    calls: list[tuple] = []
    kernel = optimizers._scratch_update

    def spy(name, group, params, grads, states, h):
        calls.append(tuple(params[0].shape))
        return kernel(name, group, params, grads, states, h)

    monkeypatch.setattr(optimizers, "MEMBER_LOOP_MIN_NUMEL", 0)
    monkeypatch.setattr(optimizers, "_scratch_update", spy)
    return calls


@pytest.mark.parametrize("name", SCRATCH)
def test_members_stepped_one_by_one_match_their_sequential_runs(tmp_path, mnist_root, monkeypatch, name):
    calls = _member_by_member(monkeypatch)
    runs = _image_runs(mnist_root, name)
    reference = _sequential(tmp_path, runs)
    summaries = _vectorized(tmp_path, runs)
    stacked = [shape for shape in calls if len(shape) == 3]
    assert calls and not stacked, stacked  # every kernel call got one member's [16, 784] weight, never [3, 16, 784]
    assert len(calls) == 3 * 200
    assert_same_runs(tmp_path, len(runs), 1e-4, summaries, reference)


def test_an_interrupted_group_stepped_one_by_one_resumes_exactly(tmp_path, mnist_root, monkeypatch):
    """Adam's step counter lives in the stack; member by member each member's kernel reads this step's count."""
    _member_by_member(monkeypatch)
    runs = [[*ov[:-3], "steps=90", "log_every=7", "schedule.kind=cosine"] for ov in _image_runs(mnist_root, "adam")]
    reference = _sequential(tmp_path, runs)
    seen = iter(range(10**9))
    monkeypatch.setattr(stop_signal, "should_stop", lambda: next(seen) >= 40)
    stopped = _vectorized(tmp_path, runs)
    assert {s["steps"] for s in stopped} == {40} and {s["status"] for s in stopped} == {"interrupted"}
    monkeypatch.setattr(stop_signal, "should_stop", lambda: False)
    resumed = _resume_group(tmp_path, runs)
    assert_same_runs(tmp_path, 3, 1e-4, resumed, reference, extra=("resumed_from_step",))


def test_large_cpu_members_step_one_by_one_and_small_ones_as_one_stack():
    import torch

    from optbench.vectorized.optimizers import MEMBER_LOOP_MIN_NUMEL, StackedOptimizer

    def stacked(k: int, shapes: list[tuple], name: str = "rmsprop", lr=lambda i: 0.1 * (i + 1)) -> StackedOptimizer:
        leaves = [torch.zeros(k, *s, requires_grad=True) for s in shapes]
        templates = [torch.optim.SGD([torch.zeros(s) for s in shapes], lr=lr(i)) for i in range(k)]
        for t in templates:
            t.param_groups[0].update(eps=1e-8, alpha=0.99, momentum=0.0, weight_decay=0.0, centered=False,
                                     eps_in_sqrt=True)
        return StackedOptimizer(name, "scratch", {}, templates, leaves, _cfg().schedule, 10)

    mlp = [(200, 784), (200,), (10, 200), (10,)]
    assert 200 * 784 + 200 + 2010 >= MEMBER_LOOP_MIN_NUMEL
    assert stacked(8, mlp).member_by_member
    assert not stacked(64, [(1, 2), (1,)]).member_by_member  # linreg: one call for the whole stack
    assert stacked(8, mlp, "sgd").member_by_member  # SGD at each member's own lr
    assert not stacked(8, mlp, "sgd", lr=lambda i: 0.01).member_by_member  # one lr, no buffers: one call
    assert stacked(8, mlp, "rmsprop", lr=lambda i: 0.01).member_by_member  # buffers stay in cache


def _one_seed(runs: list[list[str]]) -> list[list[str]]:
    """The same runs, all at seed 7 (a sweep over hyperparameters at a fixed seed)."""
    return [[o for o in ov if not o.startswith("seed=")] + ["seed=7"] for ov in runs]


@pytest.mark.parametrize("name", SCRATCH)
def test_members_of_one_seed_share_their_first_product_and_match(tmp_path, mnist_root, name):
    runs = _one_seed(_image_runs(mnist_root, name))
    reference = _sequential(tmp_path, runs)
    summaries = _vectorized(tmp_path, runs)
    assert "(shared-input bmm forward" in (tmp_path / "vec0" / "optbench.log").read_text()
    assert_same_runs(tmp_path, len(runs), 1e-4, summaries, reference)


@pytest.mark.parametrize("impl", ["scratch", "builtin"])
def test_linreg_members_of_one_seed_share_their_first_product_and_match(tmp_path, impl):
    runs = _one_seed(_linreg_runs("adam", impl=impl))
    reference = _sequential(tmp_path, runs)
    summaries = _vectorized(tmp_path, runs)
    assert "(shared-input bmm forward" in (tmp_path / "vec0" / "optbench.log").read_text()
    assert_same_runs(tmp_path, len(runs), 1e-6, summaries, reference)


def test_members_of_different_seeds_get_their_own_batches(tmp_path, mnist_root):
    runs = _image_runs(mnist_root, "sgd")
    _vectorized(tmp_path, runs)
    log = (tmp_path / "vec0" / "optbench.log").read_text()
    assert "(bmm forward" in log and "shared-input" not in log


def test_a_diverging_member_of_one_seed_leaves_the_shared_product_of_the_others_alone(tmp_path, mnist_root):
    lr = LRS["sgd"] / 50
    runs = _one_seed([[*ov[:6], f"optimizer.lr={r}", *ov[7:]] for ov, r in
                      zip(_image_runs(mnist_root, "sgd"), (lr, 1e36, lr * 2))])
    reference = _sequential(tmp_path, runs)
    summaries = _vectorized(tmp_path, runs)
    assert [s["status"] for s in reference] == ["completed", "diverged", "completed"]
    assert [s["status"] for s in summaries] == ["completed", "diverged", "completed"]
    assert "(shared-input bmm forward" in (tmp_path / "vec0" / "optbench.log").read_text()
    assert_same_runs(tmp_path, 3, 1e-4, summaries, reference)


def test_an_interrupted_group_of_one_seed_resumes_exactly(tmp_path, monkeypatch):
    runs = _one_seed([["optimizer=adam", f"optimizer.lr={lr}", "steps=150", "epochs=2", "log_every=7"]
                      for lr in (0.05, 0.02, 0.1)])
    reference = _sequential(tmp_path, runs)
    _stop_after(monkeypatch, 55)
    stopped = _vectorized(tmp_path, runs)
    monkeypatch.undo()
    assert {s["status"] for s in stopped} == {"interrupted"} and {s["steps"] for s in stopped} == {55}
    resumed = _resume_group(tmp_path, runs)
    assert_same_runs(tmp_path, 3, 1e-6, resumed, reference, extra=("resumed_from_step",))
