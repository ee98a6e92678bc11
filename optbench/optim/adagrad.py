"""Adagrad from scratch (seed 002, ``sgd_adagrad``).

    s     += g^2
    theta -= lr / sqrt(s + eps) * g                 eps INSIDE the sqrt (seed)

Defaults (seed 002): lr 1e-2, eps 1e-10.

torch.optim.Adagrad(lr, eps, lr_decay=0, initial_accumulator_value=0) divides by
sqrt(s) + eps instead (see docs/parity.md for the size of the difference).
"""

from __future__ import annotations

import torch


class Adagrad(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-2, eps=1e-10, *, foreach=True):
        if lr < 0 or eps < 0:
            raise ValueError("need lr, eps >= 0")
        super().__init__(params, dict(lr=lr, eps=eps, foreach=foreach))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, sums = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["sum"] = torch.zeros_like(p)
                params.append(p)
                grads.append(p.grad)
                sums.append(state["sum"])
            if not params:
                continue
            lr, eps = group["lr"], group["eps"]
            if group["foreach"]:
                torch._foreach_addcmul_(sums, grads, grads)
                denom = torch._foreach_add(sums, eps)
                torch._foreach_sqrt_(denom)
                torch._foreach_addcdiv_(params, grads, denom, value=-lr)
            else:
                for p, g, s in zip(params, grads, sums):
                    s.addcmul_(g, g)
                    p.addcdiv_(g, s.add(eps).sqrt_(), value=-lr)
        return loss
