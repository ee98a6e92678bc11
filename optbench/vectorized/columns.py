"""The problem's per-step columns (losses.csv) for every member at a logged step.

By default each member's own ``problem.step_columns(model)`` on its own model (whose
parameters are views of its slices): exactly what its sequential run computes.

Linear regression logs every step (``log_every: 1``) and its columns are a full-data
loss per member, so calling it K times per step would cost more than the stacked step
itself. For it the same quantity is evaluated for all members at once, in float64 like
``LinearRegression.full_loss``: with r_in = x_in . w_i + b_i - y_in over member i's own
data (one batched matmul), ``full_loss_i = (r_i . r_i) / (2 N)`` and
``suboptimality_i = full_loss_i - f*_i``. The float64 sums are ordered differently from
``mean((prediction - y)^2 / 2)`` (about 1e-16 relative).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from optbench.problems.base import Problem
from optbench.problems.linreg import LinearRegression


def _stacked_linreg(problems: Sequence[Problem], params: dict[str, torch.Tensor]):
    """The linreg fast path, or None where it does not apply (another problem, another model)."""
    if not all(type(p).step_columns is LinearRegression.step_columns for p in problems):
        return None
    if set(params) != {"weight", "bias"} or any(not hasattr(p, "features") for p in problems):
        return None
    features = torch.stack([p.features.double() for p in problems])  # [K, N, F]
    design = torch.cat([features, torch.ones_like(features[..., :1])], dim=2)  # [K, N, F + 1]: x and 1
    labels = torch.stack([p.labels.double() for p in problems])  # [K, N]
    optimum = [float(p.optimum) for p in problems]
    weight, bias = params["weight"], params["bias"]  # [K, 1, F], [K, 1]
    n = labels.shape[1]

    @torch.no_grad()
    def columns() -> list[dict[str, float]]:
        theta = torch.cat([weight.detach().reshape(weight.shape[0], -1), bias.detach()], dim=1).double()
        residual = torch.bmm(design, theta[:, :, None]).squeeze(2) - labels  # x.w + b - y, [K, N]
        full = (torch.linalg.vecdot(residual, residual) / (2 * n)).tolist()
        return [{"full_loss": f, "suboptimality": f - f_star} for f, f_star in zip(full, optimum)]

    return columns


class StepColumns:
    """``__call__(runs) -> {member index: columns}`` for the members in ``runs`` (``(index, problem, model)``)."""

    def __init__(self, problems: Sequence[Problem], params: dict[str, torch.Tensor]):
        self._stacked = _stacked_linreg(problems, params)
        self._has_before = any(type(p).step_columns_before is not Problem.step_columns_before for p in problems)

    def before(self, runs) -> dict[int, dict[str, float]]:
        """``problem.step_columns_before(model)`` per member (the quadratic's iterate); {} where a problem has none."""
        if not self._has_before:
            return {i: {} for i, _, _ in runs}
        return {i: problem.step_columns_before(model) for i, problem, model in runs}

    def __call__(self, runs) -> dict[int, dict[str, float]]:
        if self._stacked is not None:
            every = self._stacked()
            return {i: every[i] for i, _, _ in runs}
        return {i: problem.step_columns(model) for i, problem, model in runs}
