"""Seed 003's 1-D quadratic: f(x) = 4x^2 (``coef * x^2``) from x0 = 2.

Full-batch gradient descent for ``steps`` iterations, every iterate logged: with
lr 1 the iterates go 2 -> -14 -> 98, and lr 0.125 = 1/8 reaches the minimum x = 0 in
one step. The whole run is one "epoch" of ``steps`` full-batch updates.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import nn

from optbench.models import ModelInputs, build_model
from optbench.models.scalar import Iterate  # noqa: F401  (the model's class, kept importable here)
from optbench.problems.base import LOSSES, Batch, Column, IteratePanel, Outputs, Problem

#: the model the quadratic trains unless the config names one (``model=scalar``)
DEFAULT_MODEL = {"name": "scalar"}


#: full batch: the logged loss is f(x) itself; seed 003 draws it against step on a linear axis, with the
#: iterates on the parabola beside it
OUTPUTS = Outputs(
    columns=(Column("loss", LOSSES, "loss f(x)"), Column("x", LOSSES, "iterate x", log_scale=False, metric=False),
             Column("f_x", LOSSES, "f(x)", metric=False), Column("grad_x", LOSSES, "f'(x)", metric=False),
             Column("suboptimality", LOSSES, "suboptimality f - f*")),
    x="step", linear=True, iterates=IteratePanel("x", "f_x", coef_key="dataset.coef", coef_default=4.0),
    report_lines=("x: {x:.6g}  (minimum at {x_star:g})",),
)


class Quadratic(Problem):
    name = "quadratic"
    outputs = OUTPUTS
    step_column_names = OUTPUTS.problem_columns(LOSSES)

    def __init__(self, cfg: Mapping, steps: int, device: torch.device, model: Mapping | None = None):
        super().__init__(device)
        self.model_cfg = dict(model or DEFAULT_MODEL)
        self.x0, self.coef, self.steps = float(cfg["x0"]), float(cfg["coef"]), int(steps)
        self._batch = (torch.zeros(1, device=device), torch.zeros(1, device=device))

    @property
    def num_train(self) -> int:
        return 1

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.steps

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        for _ in range(self.steps):
            yield self._batch

    def make_model(self) -> nn.Module:
        return build_model(self.model_cfg, ModelInputs(1, 1, initial={"x0": self.x0})).to(self.device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return (self.coef * model.x**2).sum()

    @torch.no_grad()
    def step_columns_before(self, model: nn.Module) -> dict[str, float]:
        x = float(model.x)
        f = self.coef * x * x
        return {"x": x, "f_x": f, "grad_x": 2 * self.coef * x, "suboptimality": f}

    @torch.no_grad()
    def report(self, model: nn.Module) -> dict:
        return {"x": float(model.x), "x_star": 0.0}
