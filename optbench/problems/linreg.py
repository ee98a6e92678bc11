"""Seed 001's synthetic linear regression.

Data: X ~ N(0, 1) of shape (num_examples, 2), y = X w + b + noise * N(0, 1) with
w = [2, -3.4], b = 4.2, drawn from a generator seeded with the run's seed. Model:
Linear(2, 1) with w ~ N(0, 1) and b = 0, as seed 001's ``init_params``.

Loss: seed 001's ``squared_loss`` is (y_hat - y)^2 / 2 per example. MXNet's
``loss.backward()`` on that vector sums the per-example gradients, and its
``rmsprop`` then divides by ``batch_size``; the resulting g is exactly the gradient
of the *mean* of (y_hat - y)^2 / 2 over the batch, which is what ``loss`` returns.
The full-data loss the seed plots is the same mean over all examples.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from optbench.models import ModelInputs, build_model
from optbench.problems.base import LOSSES, Batch, Column, Outputs, Problem

#: the model linreg trains unless the config names one (``model=linear``)
DEFAULT_MODEL = {"name": "linear"}


def squared_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((prediction.reshape(target.shape) - target) ** 2 / 2).mean()


#: seed 001's curve is the full-data loss, exact (no minibatch noise); the console shows the learned w and b
OUTPUTS = Outputs(
    columns=(Column("full_loss", LOSSES, "full-data loss"), Column("suboptimality", LOSSES, "suboptimality f - f*")),
    objective="full_loss",
    report_lines=("w: [{w:.4f}]  (true [{true_w:g}])   b: {b:.4f}  (true {true_b:g})",),
)


class LinearRegression(Problem):
    name = "linreg"
    outputs = OUTPUTS
    step_column_names = OUTPUTS.problem_columns(LOSSES)

    def __init__(self, cfg: Mapping, seed: int, device: torch.device, model: Mapping | None = None):
        super().__init__(device)
        self.model_cfg = dict(model or DEFAULT_MODEL)
        self.true_w = [float(v) for v in cfg["true_w"]]
        self.true_b = float(cfg["true_b"])
        data_rng = torch.Generator().manual_seed(seed)
        n = int(cfg["num_examples"])
        features = torch.randn(n, len(self.true_w), generator=data_rng)
        labels = features @ torch.tensor(self.true_w) + self.true_b
        labels += float(cfg["noise"]) * torch.randn(n, generator=data_rng)
        self.features, self.labels = features.to(device), labels.to(device)
        self.optimum = self._least_squares_optimum()

    @property
    def num_train(self) -> int:
        return self.features.shape[0]

    def train_tensors(self) -> Batch:
        return self.features, self.labels

    def make_model(self) -> nn.Module:
        # seed 001's init_params (optbench/models/linear.py), from the caller-seeded global RNG
        return build_model(self.model_cfg, ModelInputs(len(self.true_w), 1)).to(self.device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        features, labels = batch
        return squared_loss(model(features), labels)

    def member_losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return ((outputs.reshape(targets.shape) - targets) ** 2 / 2).flatten(1).mean(1)

    def _least_squares_optimum(self) -> float:
        """f* of the full-data loss, from the closed-form least-squares solution (float64)."""
        design = torch.cat([self.features.double(), torch.ones_like(self.labels.double())[:, None]], dim=1)
        solution = torch.linalg.lstsq(design.cpu(), self.labels.double().cpu()[:, None]).solution
        residual = design.cpu() @ solution - self.labels.double().cpu()[:, None]
        return float((residual**2 / 2).mean())

    @torch.no_grad()
    def full_loss(self, model: nn.Module) -> float:
        """Loss on every example, computed in float64 so that loss - f* stays >= 0."""
        prediction = self.features.double() @ model.weight.double().T + model.bias.double()
        return float(squared_loss(prediction, self.labels.double()))

    @torch.no_grad()
    def step_columns(self, model: nn.Module) -> dict[str, float]:
        full = self.full_loss(model)
        return {"full_loss": full, "suboptimality": full - self.optimum}

    @torch.no_grad()
    def report(self, model: nn.Module) -> dict:
        return {
            "w": [round(float(v), 6) for v in model.weight.flatten()],
            "b": round(float(model.bias), 6),
            "true_w": self.true_w,
            "true_b": self.true_b,
            "f_star": self.optimum,
        }
