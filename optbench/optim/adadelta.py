"""Adadelta from scratch (seed 002, ``adadelta``).

    s      = rho * s + (1 - rho) * g^2
    g'     = sqrt(delta + eps) / sqrt(s + eps) * g
    delta  = rho * delta + (1 - rho) * g'^2
    theta -= lr * g'

Defaults (seed 002): rho 0.9, eps 1e-6; ``lr`` 1.0 (not in the seed, which is lr = 1;
torch's default) scales the step. ``weight_decay`` adds ``weight_decay * theta`` to g
first, as torch does. torch.optim.Adadelta computes exactly this update (eps inside
both square roots there too).
"""

from __future__ import annotations

import torch

from optbench.optim.base import ScratchOptimizer


class Adadelta(ScratchOptimizer):
    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, foreach=True):
        if lr < 0 or eps < 0 or weight_decay < 0 or not 0 <= rho <= 1:
            raise ValueError("need lr, eps, weight_decay >= 0 and 0 <= rho <= 1")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, foreach=foreach))

    def init_state(self, state, param, group):
        state.update(square_avg=torch.zeros_like(param), acc_delta=torch.zeros_like(param))

    def update(self, group, params, grads, states):
        sqs = [s["square_avg"] for s in states]
        deltas = [s["acc_delta"] for s in states]
        (_foreach if group["foreach"] else _single)(
            params, grads, sqs, deltas, group["lr"], group["rho"], group["eps"], group["weight_decay"])


def _single(params, grads, sqs, deltas, lr, rho, eps, weight_decay):
    """Reference path: the formulas of the module docstring, one tensor at a time."""
    for p, g, s, d in zip(params, grads, sqs, deltas):
        if weight_decay:
            g = g.add(p, alpha=weight_decay)
        s.mul_(rho).addcmul_(g, g, value=1 - rho)
        step = d.add(eps).sqrt_().div_(s.add(eps).sqrt_()).mul_(g)
        d.mul_(rho).addcmul_(step, step, value=1 - rho)
        p.add_(step, alpha=-lr)


def _foreach(params, grads, sqs, deltas, lr, rho, eps, weight_decay):
    """The same update as ``_single``, with one multi-tensor kernel per operation."""
    if weight_decay:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_mul_(sqs, rho)
    torch._foreach_addcmul_(sqs, grads, grads, value=1 - rho)
    std = torch._foreach_add(sqs, eps)
    torch._foreach_sqrt_(std)
    step = torch._foreach_add(deltas, eps)
    torch._foreach_sqrt_(step)
    torch._foreach_div_(step, std)
    torch._foreach_mul_(step, grads)
    torch._foreach_mul_(deltas, rho)
    torch._foreach_addcmul_(deltas, step, step, value=1 - rho)
    torch._foreach_add_(params, step, alpha=-lr)
