"""Gradient clipping (seed 004's grad_clip), applied between backward and step.

- ``norm``: each parameter's gradient is scaled to L2 norm <= threshold on its own
  (Paddle's ClipGradByNorm);
- ``global_norm``: all gradients together are scaled to total L2 norm <= threshold
  (ClipGradByGlobalNorm, torch's ``clip_grad_norm_``);
- ``value``: every element is clamped to [-threshold, threshold] (ClipGradByValue).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn.utils import clip_grad_norm_, clip_grad_value_


def make_clipper(kind: str, threshold: float) -> Callable[[Sequence[torch.Tensor]], None] | None:
    if kind == "none":
        return None
    if kind == "global_norm":
        return lambda params: clip_grad_norm_(params, threshold, foreach=True)
    if kind == "norm":
        return lambda params: [clip_grad_norm_([p], threshold) for p in params if p.grad is not None]
    if kind == "value":
        return lambda params: clip_grad_value_(params, threshold, foreach=True)
    raise ValueError(f"unknown grad_clip.kind {kind!r}")
