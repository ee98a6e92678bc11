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
from torch import Tensor

from optbench.optim.base import ScratchOptimizer
from optbench.optim.functional import Hyper, descend_, div_lists_, ewa_square_, mul_lists_, root, with_weight_decay


def adadelta_update(params: list[Tensor], grads: list[Tensor], square_avgs: list[Tensor], acc_deltas: list[Tensor],
                    *, lr: Hyper, rho: Hyper, eps: Hyper, weight_decay: Hyper = 0.0, foreach: bool = True) -> None:
    """One Adadelta step, in place: g += weight_decay * theta; s = rho*s + (1-rho)*g^2;
    g' = sqrt(delta + eps) / sqrt(s + eps) * g; delta = rho*delta + (1-rho)*g'^2; theta -= lr*g'.
    eps sits inside both roots in seed 002 and in torch.optim.Adadelta alike (no flag)."""
    grads = with_weight_decay(grads, params, weight_decay, foreach)
    ewa_square_(square_avgs, grads, rho, foreach)
    std = root(square_avgs, eps, True, foreach)
    step = root(acc_deltas, eps, True, foreach)
    div_lists_(step, std, foreach)
    mul_lists_(step, grads, foreach)
    ewa_square_(acc_deltas, step, rho, foreach)
    descend_(params, step, None, lr, foreach)


class Adadelta(ScratchOptimizer):
    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, foreach=True):
        if lr < 0 or eps < 0 or weight_decay < 0 or not 0 <= rho <= 1:
            raise ValueError("need lr, eps, weight_decay >= 0 and 0 <= rho <= 1")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, foreach=foreach))

    def init_state(self, state, param, group):
        state.update(square_avg=torch.zeros_like(param), acc_delta=torch.zeros_like(param))

    def update(self, group, params, grads, states):
        adadelta_update(params, grads, [s["square_avg"] for s in states], [s["acc_delta"] for s in states],
                        lr=group["lr"], rho=group["rho"], eps=group["eps"], weight_decay=group["weight_decay"],
                        foreach=group["foreach"])
