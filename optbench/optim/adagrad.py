"""Adagrad from scratch (seed 002, ``sgd_adagrad``).

    s     += g^2
    theta -= lr / sqrt(s + eps) * g                 eps INSIDE the sqrt (seed)

Defaults (seed 002): lr 1e-2, eps 1e-10.

torch.optim.Adagrad(lr, eps, lr_decay=0, initial_accumulator_value=0) divides by
sqrt(s) + eps instead (see the README section "Scratch vs torch.optim: parity" for the
size of the difference).
"""

from __future__ import annotations

import torch

from optbench.optim.base import ScratchOptimizer


class Adagrad(ScratchOptimizer):
    def __init__(self, params, lr=1e-2, eps=1e-10, *, foreach=True):
        if lr < 0 or eps < 0:
            raise ValueError("need lr, eps >= 0")
        super().__init__(params, dict(lr=lr, eps=eps, foreach=foreach))

    def init_state(self, state, param, group):
        state["sum"] = torch.zeros_like(param)

    def update(self, group, params, grads, states):
        sums = [s["sum"] for s in states]
        (_foreach if group["foreach"] else _single)(params, grads, sums, group["lr"], group["eps"])


def _single(params, grads, sums, lr, eps):
    """Reference path: the formulas of the module docstring, one tensor at a time."""
    for p, g, s in zip(params, grads, sums):
        s.addcmul_(g, g)
        p.addcdiv_(g, s.add(eps).sqrt_(), value=-lr)


def _foreach(params, grads, sums, lr, eps):
    """The same update as ``_single``, with one multi-tensor kernel per operation."""
    torch._foreach_addcmul_(sums, grads, grads)
    denom = torch._foreach_add(sums, eps)
    torch._foreach_sqrt_(denom)
    torch._foreach_addcdiv_(params, grads, denom, value=-lr)
