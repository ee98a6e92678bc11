"""Plain (minibatch) SGD from scratch (seed 002, ``sgd_update``).

    theta -= lr * g

Default (seed 002): lr 1e-2. torch.optim.SGD(lr) computes the same update.
"""

from __future__ import annotations

from torch import Tensor

from optbench.optim.base import ScratchOptimizer
from optbench.optim.functional import Hyper, descend_


def sgd_update(params: list[Tensor], grads: list[Tensor], *, lr: Hyper, foreach: bool = True) -> None:
    """theta -= lr * g, in place (hyperparameters: see ``optbench.optim.functional``)."""
    descend_(params, grads, None, lr, foreach)


class SGD(ScratchOptimizer):
    stateful = False

    def __init__(self, params, lr=1e-2, *, foreach=True):
        if lr < 0:
            raise ValueError("need lr >= 0")
        super().__init__(params, dict(lr=lr, foreach=foreach))

    def update(self, group, params, grads, states):
        sgd_update(params, grads, lr=group["lr"], foreach=group["foreach"])
