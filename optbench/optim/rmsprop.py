"""RMSProp from scratch (seeds 000, 001, 002; momentum and centered from seed 004).

    s      = alpha * s + (1 - alpha) * g^2
    theta -= lr / sqrt(s + eps) * g                 eps INSIDE the sqrt (seeds)

Seed 004 (Paddle's RMSProp) adds, with beta = ``momentum``:

    v      = beta * v + lr / sqrt(s + eps) * g;   theta -= v
    centered: m = alpha * m + (1 - alpha) * g;   denominator sqrt(s - m^2 + eps)

``weight_decay`` adds ``weight_decay * theta`` to g first, as torch does.
Defaults (seeds 000/002): lr 1e-3, alpha 0.9, eps 1e-10; momentum 0, not centered.
Names: seed 001 calls alpha ``gamma``, seed 004 calls it ``rho`` (config aliases).

torch.optim.RMSprop differs in two ways (see the README section "Scratch vs torch.optim:
parity"): it puts eps outside the sqrt (sqrt(s) + eps), and its momentum buffer excludes
lr (b = beta*b + g/denom; theta -= lr*b), so v = lr*b only while lr is constant.
"""

from __future__ import annotations

import torch

from optbench.optim.base import ScratchOptimizer


class RMSprop(ScratchOptimizer):
    def __init__(self, params, lr=1e-3, alpha=0.9, eps=1e-10, momentum=0.0, centered=False,
                 weight_decay=0.0, *, foreach=True):
        if lr < 0 or eps < 0 or weight_decay < 0 or not 0 <= alpha < 1 or not 0 <= momentum < 1:
            raise ValueError("need lr, eps, weight_decay >= 0 and 0 <= alpha, momentum < 1")
        defaults = dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum, centered=centered,
                        weight_decay=weight_decay, foreach=foreach)
        super().__init__(params, defaults)

    def init_state(self, state, param, group):
        state["square_avg"] = torch.zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = torch.zeros_like(param)
        if group["momentum"] > 0:
            state["velocity"] = torch.zeros_like(param)

    def update(self, group, params, grads, states):
        sq = [s["square_avg"] for s in states]
        gavg = [s.get("grad_avg") for s in states]
        vel = [s.get("velocity") for s in states]
        (_foreach if group["foreach"] else _single)(
            params, grads, sq, gavg, vel, group["lr"], group["alpha"], group["eps"], group["momentum"],
            group["centered"], group["weight_decay"])


def _single(params, grads, sq, gavg, vel, lr, alpha, eps, momentum, centered, weight_decay):
    """Reference path: the formulas of the module docstring, one tensor at a time."""
    for p, g, s, m, v in zip(params, grads, sq, gavg, vel):
        if weight_decay:
            g = g.add(p, alpha=weight_decay)
        s.mul_(alpha).addcmul_(g, g, value=1 - alpha)
        if centered:
            m.mul_(alpha).add_(g, alpha=1 - alpha)
            denom = s.addcmul(m, m, value=-1).add_(eps).sqrt_()
        else:
            denom = s.add(eps).sqrt_()
        if momentum > 0:
            v.mul_(momentum).addcdiv_(g, denom, value=lr)
            p.sub_(v)
        else:
            p.addcdiv_(g, denom, value=-lr)


def _foreach(params, grads, sq, gavg, vel, lr, alpha, eps, momentum, centered, weight_decay):
    """The same update as ``_single``, with one multi-tensor kernel per operation."""
    if weight_decay:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_mul_(sq, alpha)
    torch._foreach_addcmul_(sq, grads, grads, value=1 - alpha)
    if centered:
        torch._foreach_mul_(gavg, alpha)
        torch._foreach_add_(gavg, grads, alpha=1 - alpha)
        denom = torch._foreach_addcmul(sq, gavg, gavg, value=-1)
        torch._foreach_add_(denom, eps)
    else:
        denom = torch._foreach_add(sq, eps)
    torch._foreach_sqrt_(denom)
    if momentum > 0:
        torch._foreach_mul_(vel, momentum)
        torch._foreach_addcdiv_(vel, grads, denom, value=lr)
        torch._foreach_sub_(params, vel)
    else:
        torch._foreach_addcdiv_(params, grads, denom, value=-lr)
