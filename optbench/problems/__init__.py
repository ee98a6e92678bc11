"""Problems: data, model and loss. ``make_problem`` picks one from the run config."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from optbench.problems.base import Problem


def make_problem(cfg: DictConfig, device: torch.device) -> Problem:
    name = cfg.dataset.name
    if name == "linreg":
        from optbench.problems.linreg import LinearRegression

        return LinearRegression(cfg.dataset, seed=cfg.seed, device=device)
    if name == "quadratic":
        from optbench.problems.quadratic import Quadratic

        return Quadratic(cfg.dataset, steps=cfg.steps or 1, device=device)
    from optbench.problems.images import make_image_problem

    return make_image_problem(cfg.dataset, device)
