"""Plain (minibatch) SGD from scratch (seed 002, ``sgd_update``).

    theta -= lr * g

Default (seed 002): lr 1e-2. torch.optim.SGD(lr) computes the same update.
"""

from __future__ import annotations

import torch

from optbench.optim.base import ScratchOptimizer


class SGD(ScratchOptimizer):
    stateful = False

    def __init__(self, params, lr=1e-2, *, foreach=True):
        if lr < 0:
            raise ValueError("need lr >= 0")
        super().__init__(params, dict(lr=lr, foreach=foreach))

    def update(self, group, params, grads, states):
        (_foreach if group["foreach"] else _single)(params, grads, group["lr"])


def _single(params, grads, lr):
    """Reference path: the formula of the module docstring, one tensor at a time."""
    for p, g in zip(params, grads):
        p.add_(g, alpha=-lr)


def _foreach(params, grads, lr):
    """The same update as ``_single``, with one multi-tensor kernel."""
    torch._foreach_add_(params, grads, alpha=-lr)
