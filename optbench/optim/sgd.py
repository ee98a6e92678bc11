"""Plain (minibatch) SGD from scratch (seed 002, ``sgd_update``).

    theta -= lr * g

Default (seed 002): lr 1e-2. torch.optim.SGD(lr) computes the same update.
"""

from __future__ import annotations

import torch


class SGD(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-2, *, foreach=True):
        if lr < 0:
            raise ValueError("need lr >= 0")
        super().__init__(params, dict(lr=lr, foreach=foreach))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["foreach"]:
                torch._foreach_add_(params, grads, alpha=-group["lr"])
            else:
                for p, g in zip(params, grads):
                    p.add_(g, alpha=-group["lr"])
        return loss
