"""compile=true: the compiled step trains like the eager one (to float tolerance), compile
time is reported on its own, a learning-rate schedule changes no graph, and what cannot be
compiled (LBFGS) is refused with a clear error.

Kept small: linear regression (a 2-3 parameter graph) for a few dozen steps. Each compile
of that graph takes a few seconds (torch.compile's fixed cost; Inductor's on-disk cache
makes repeats faster).
"""

from __future__ import annotations

import pytest
import torch
from conftest import compose_config, read_csv, run_config

from optbench.config.validate import validate
from optbench.errors import OptbenchError
from optbench.optim.registry import OPTIMIZERS
from optbench.train.compiled import compile_step
from optbench.train.run import prepare
from optbench.train.trainer import epoch_generator

pytestmark = pytest.mark.slow


def _losses(run_dir) -> list[float]:
    return [float(r["loss"]) for r in read_csv(run_dir / "losses.csv")]


@pytest.mark.parametrize("impl", ["scratch", "builtin"])
def test_compiled_run_matches_eager_run(tmp_path, impl):
    # batch 64 over 1000 examples: 15 full batches and a last one of 40, so both compiled
    # shapes are exercised; 40 steps cross an epoch boundary
    args = ("optimizer=adam", f"optimizer.impl={impl}", "batch_size=64", "steps=40", "epochs=3")
    eager = run_config(tmp_path / "eager", *args)
    compiled = run_config(tmp_path / "compiled", *args, "compile=true")
    assert eager["compile_time_s"] is None
    assert compiled["status"] == "completed" and compiled["steps"] == 40
    assert compiled["compile_time_s"] > 0
    assert compiled["train_time_s"] < compiled["total_time_s"] - compiled["compile_time_s"] + 1e-6
    a, b = _losses(tmp_path / "eager"), _losses(tmp_path / "compiled")
    assert len(a) == len(b) == 40
    assert b == pytest.approx(a, rel=1e-4, abs=1e-6)
    assert compiled["report"]["w"] == pytest.approx(eager["report"]["w"], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("impl", ["scratch", "builtin"])
def test_training_never_recompiles_and_state_is_restored_after_warm_up(impl):
    from torch._dynamo.utils import counters

    cfg = validate(compose_config("batch_size=64", f"optimizer.impl={impl}"))
    problem, model, optimizer = prepare(cfg, torch.device("cpu"))
    before = [p.detach().clone() for p in model.parameters()]
    step_fn, seconds = compile_step(problem, model, optimizer, None, OPTIMIZERS["rmsprop"], batch_size=64)
    assert seconds > 0
    # warm-up left no trace: same weights, no gradients, no optimizer state
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters()) and not optimizer.state
    # the reduced guard check only where the step is one graph per shape (no graph breaks)
    assert step_fn.skip_guards == (impl == "scratch")
    step_fn.skip_guards = False  # check every guard, so that a needed recompile would happen
    graphs = counters["stats"]["unique_graphs"]
    for epoch in range(2):  # full batches and the short last one, twice
        for batch in problem.batches(64, epoch_generator(0, epoch)):
            loss = step_fn(batch)
            assert loss.dim() == 0 and not loss.requires_grad
            optimizer.param_groups[0]["lr"] *= 0.9  # as a schedule would: a new value, no new graph
            assert isinstance(optimizer.param_groups[0]["lr"], float)  # the step put the float back
    assert counters["stats"]["unique_graphs"] == graphs


def test_what_cannot_be_compiled_is_refused(tmp_path):
    with pytest.raises(OptbenchError, match="compile=false"):
        run_config(tmp_path, "optimizer=lbfgs", "optimizer.impl=builtin", "compile=true", "steps=3")


@pytest.mark.parametrize("impl", ["scratch", "builtin"])
def test_a_cosine_schedule_compiles_once_and_trains_like_eager(tmp_path, monkeypatch, impl):
    """`optbench dataset=fashion_mnist compile=true schedule.kind=cosine` on small IDX files
    (256 images, batch 48: 5 full batches and one of 16 per epoch): the lr changes at every
    update, yet no graph is compiled after warm-up, and the losses and lrs match the eager run's."""
    from idx_files import write_raw
    from torch._dynamo.utils import counters

    from optbench.train import compiled

    root = tmp_path / "data"
    write_raw(root, "FashionMNIST")
    args = ("dataset=fashion_mnist", f"dataset.root={root}", "dataset.download=false", "dataset.system_dir=",
            f"optimizer.impl={impl}", "schedule.kind=cosine", "batch_size=48", "epochs=2", "log_every=1")
    after_warm_up = []
    warm_up = compiled.CompiledStep.warm_up

    def counting(self, *batches):
        warm_up(self, *batches)
        after_warm_up.append(counters["stats"]["unique_graphs"])

    monkeypatch.setattr(compiled.CompiledStep, "warm_up", counting)
    eager = run_config(tmp_path / "eager", *args)
    run = run_config(tmp_path / "compiled", *args, "compile=true")
    assert after_warm_up and counters["stats"]["unique_graphs"] == after_warm_up[0]  # no recompile
    assert run["status"] == eager["status"] == "completed" and run["steps"] == 12
    rows_e, rows_c = read_csv(tmp_path / "eager" / "losses.csv"), read_csv(tmp_path / "compiled" / "losses.csv")
    lrs = [float(r["lr"]) for r in rows_c]
    assert lrs == [float(r["lr"]) for r in rows_e] and len(set(lrs)) == len(lrs) == 12  # a new lr every step
    losses_e, losses_c = [float(r["loss"]) for r in rows_e], [float(r["loss"]) for r in rows_c]
    assert losses_c == pytest.approx(losses_e, rel=1e-4, abs=1e-4)
