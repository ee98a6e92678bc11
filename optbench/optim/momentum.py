"""SGD with momentum from scratch, in the seed's form (seed 002, ``sgd_momentum``).

    v      = gamma * v + lr * g
    theta -= v

Defaults (seed 002): lr 1e-2, momentum (the seed's gamma) 0.9.

torch.optim.SGD(momentum=m) uses seed 003's form b = m*b + g; theta -= lr*b. Both
start from zero velocity, so by induction v = lr * b at every step while lr is
constant, and the two give the same trajectory. Once lr changes (a schedule) they
differ: the seed's v still holds the old lr inside it (v = m*v_old + lr_new*g, with
v_old = lr_old*b), whereas torch rescales the whole buffer by the new lr
(lr_new*b = m*lr_new*b_old + lr_new*g). The first step after a change from lr_old to
lr_new therefore differs by m*(lr_old - lr_new)*b_old, and the gap decays as m^k.
"""

from __future__ import annotations

import torch
from torch import Tensor

from optbench.optim.base import ScratchOptimizer
from optbench.optim.functional import Hyper, descend_


def momentum_update(params: list[Tensor], grads: list[Tensor], velocities: list[Tensor], *, lr: Hyper,
                    momentum: Hyper, foreach: bool = True) -> None:
    """v = momentum * v + lr * g; theta -= v, in place (the momentum step of
    ``optbench.optim.functional.descend_``, shared with RMSProp)."""
    descend_(params, grads, None, lr, foreach, velocities, momentum)


class Momentum(ScratchOptimizer):
    def __init__(self, params, lr=1e-2, momentum=0.9, *, foreach=True):
        if lr < 0 or not 0 <= momentum < 1:
            raise ValueError("need lr >= 0 and 0 <= momentum < 1")
        super().__init__(params, dict(lr=lr, momentum=momentum, foreach=foreach))

    def init_state(self, state, param, group):
        state["velocity"] = torch.zeros_like(param)

    def update(self, group, params, grads, states):
        momentum_update(params, grads, [s["velocity"] for s in states], lr=group["lr"],
                        momentum=group["momentum"], foreach=group["foreach"])
