"""Adam from scratch (seed 002, ``adam``), bias-corrected.

    v      = beta1 * v + (1 - beta1) * g
    s      = beta2 * s + (1 - beta2) * g^2
    v_hat  = v / (1 - beta1^t);   s_hat = s / (1 - beta2^t)
    theta -= lr * v_hat / sqrt(s_hat + eps)         eps INSIDE the sqrt (seed)

Defaults (seed 002): lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-8.
``weight_decay`` adds ``weight_decay * theta`` to g first (L2, as torch.optim.Adam).

torch.optim.Adam(lr, betas=(beta1, beta2), eps, weight_decay) divides by
sqrt(s_hat) + eps instead (see the README section "Scratch vs torch.optim: parity").
"""

from __future__ import annotations

import torch

from optbench.optim.base import ScratchOptimizer


class Adam(ScratchOptimizer):
    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, *,
                 foreach=True):
        if lr < 0 or eps < 0 or weight_decay < 0 or not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError("need lr, eps, weight_decay >= 0 and 0 <= beta1, beta2 < 1")
        defaults = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                        foreach=foreach)
        super().__init__(params, defaults)

    def init_state(self, state, param, group):
        state.update(step=0, exp_avg=torch.zeros_like(param), exp_avg_sq=torch.zeros_like(param))

    def update(self, group, params, grads, states):
        for s in states:
            s["step"] += 1
        steps = [s["step"] for s in states]
        avgs = [s["exp_avg"] for s in states]
        sqs = [s["exp_avg_sq"] for s in states]
        (_foreach if group["foreach"] else _single)(
            params, grads, avgs, sqs, steps, group["lr"], group["beta1"], group["beta2"], group["eps"],
            group["weight_decay"])


def _single(params, grads, avgs, sqs, steps, lr, beta1, beta2, eps, weight_decay):
    """Reference path: the formulas of the module docstring, one tensor at a time."""
    for p, g, v, s, t in zip(params, grads, avgs, sqs, steps):
        if weight_decay:
            g = g.add(p, alpha=weight_decay)
        v.mul_(beta1).add_(g, alpha=1 - beta1)
        s.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        v_hat = v.div(1 - beta1**t)
        denom = s.div(1 - beta2**t).add_(eps).sqrt_()
        p.addcdiv_(v_hat, denom, value=-lr)


def _foreach(params, grads, avgs, sqs, steps, lr, beta1, beta2, eps, weight_decay):
    """The same update as ``_single``, with one multi-tensor kernel per operation."""
    if weight_decay:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_mul_(avgs, beta1)
    torch._foreach_add_(avgs, grads, alpha=1 - beta1)
    torch._foreach_mul_(sqs, beta2)
    torch._foreach_addcmul_(sqs, grads, grads, value=1 - beta2)
    v_hat = torch._foreach_div(avgs, [1 - beta1**t for t in steps])
    denom = torch._foreach_div(sqs, [1 - beta2**t for t in steps])
    torch._foreach_add_(denom, eps)
    torch._foreach_sqrt_(denom)
    torch._foreach_addcdiv_(params, v_hat, denom, value=-lr)
