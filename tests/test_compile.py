"""compile=true: the compiled step trains like the eager one (to float tolerance), compile
time is reported on its own, and what cannot be compiled is refused with a clear error.

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
    assert counters["stats"]["unique_graphs"] == graphs


@pytest.mark.parametrize(
    "args, needle",
    [(["optimizer=lbfgs", "optimizer.impl=builtin"], "compile=false"),
     (["schedule.kind=cosine"], "schedule.kind=constant")],
)
def test_what_cannot_be_compiled_is_refused(tmp_path, args, needle):
    with pytest.raises(OptbenchError, match=needle):
        run_config(tmp_path, *args, "compile=true", "steps=3")
