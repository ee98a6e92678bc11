"""Learning-rate schedules from torch.optim.lr_scheduler, stepped once per update."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: DictConfig, total_steps: int) -> LRScheduler | None:
    """``step``: lr *= gamma every ``step_size`` updates; ``cosine``: anneal to ``eta_min`` over ``t_max``."""
    if cfg.kind == "constant":
        return None
    if cfg.kind == "step":
        return StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.kind == "cosine":
        return CosineAnnealingLR(optimizer, T_max=cfg.t_max or max(total_steps, 1), eta_min=cfg.eta_min)
    raise ValueError(f"unknown schedule.kind {cfg.kind!r}")
