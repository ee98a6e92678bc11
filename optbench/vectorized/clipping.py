"""Gradient clipping per member, on stacked ``[K, ...]`` gradients (``train/clipping.py``'s meanings).

Each member's gradient is clipped over its own slices only, so one member's norm (or a
non-finite gradient) never scales another's:

* ``global_norm``: n_i = ||(g_i over all parameters)||_2; every g_i *= min(1, t_i / (n_i + 1e-6))
  (``torch.nn.utils.clip_grad_norm_``'s coefficient);
* ``norm``: per parameter p, n_ip = ||g_ip||_2; g_ip *= min(1, t_i / (n_ip + 1e-6));
* ``value``: g_i clamped to [-t_i, t_i].

``t_i`` is member i's ``grad_clip.threshold`` (a number when all are equal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from optbench.vectorized.optimizers import member_views


def _norms(grad: Tensor) -> Tensor:
    """||g_i||_2 of each member's slice: ``[K]``."""
    return torch.linalg.vector_norm(grad.reshape(grad.shape[0], -1), dim=1)


def _scale(grads: Sequence[Tensor], norm: Tensor, threshold) -> None:
    # clip_grad_norm_'s ``max_norm / (total_norm + 1e-6)`` with a float max_norm is Tensor.__rtruediv__:
    # reciprocal, then product; the same two roundings for a per-member threshold tensor
    coef = torch.clamp((norm + 1e-6).reciprocal() * threshold, max=1.0)
    for g, c in zip(grads, member_views(coef, grads)):
        g.mul_(c)


def make_stacked_clipper(kind: str, thresholds: Sequence[float], like: Tensor
                         ) -> Callable[[Sequence[Tensor]], None] | None:
    """The per-member clipper of ``kind`` for gradients shaped like ``like``'s leaves; None for ``none``."""
    if kind == "none":
        return None
    same = all(t == thresholds[0] for t in thresholds)
    per_member = torch.tensor(list(thresholds), dtype=like.dtype, device=like.device)
    threshold = float(thresholds[0]) if same else per_member

    @torch.no_grad()
    def clip(params: Sequence[Tensor]) -> None:
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        if kind == "global_norm":
            _scale(grads, torch.linalg.vector_norm(torch.stack([_norms(g) for g in grads]), dim=0), threshold)
        elif kind == "norm":
            for g in grads:
                _scale([g], _norms(g), threshold)
        elif kind == "value":
            if same:
                for g in grads:
                    g.clamp_(-threshold, threshold)
            else:
                for g, t in zip(grads, member_views(per_member, grads)):
                    torch.clamp(g, -t, t, out=g)
        else:
            raise ValueError(f"unknown grad_clip.kind {kind!r}")

    return clip
