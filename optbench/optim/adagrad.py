"""Adagrad from scratch (seed 002, ``sgd_adagrad``).

    s     += g^2
    theta -= lr / sqrt(s + eps) * g                 eps INSIDE the sqrt (seed)

Defaults (seed 002): lr 1e-2, eps 1e-10.

torch.optim.Adagrad(lr, eps, lr_decay=0, initial_accumulator_value=0) divides by
sqrt(s) + eps instead (see the README section "Scratch vs torch.optim: parity" for the
size of the difference); ``eps_in_sqrt=False`` does the same.
"""

from __future__ import annotations

import torch
from torch import Tensor

from optbench.optim.base import ScratchOptimizer
from optbench.optim.functional import Hyper, add_product_, descend_, root


def adagrad_update(params: list[Tensor], grads: list[Tensor], sums: list[Tensor], *, lr: Hyper, eps: Hyper,
                   eps_in_sqrt: bool = True, foreach: bool = True) -> None:
    """s += g^2; theta -= lr * g / sqrt(s + eps), in place.

    ``eps_in_sqrt``: True (default) adds eps inside the square root, as seed 002 writes it;
    False divides by sqrt(s) + eps, as torch.optim.Adagrad does."""
    add_product_(sums, grads, grads, 1, foreach)
    descend_(params, grads, root(sums, eps, eps_in_sqrt, foreach), lr, foreach)


class Adagrad(ScratchOptimizer):
    def __init__(self, params, lr=1e-2, eps=1e-10, *, eps_in_sqrt=True, foreach=True):
        if lr < 0 or eps < 0:
            raise ValueError("need lr, eps >= 0")
        super().__init__(params, dict(lr=lr, eps=eps, eps_in_sqrt=eps_in_sqrt, foreach=foreach))

    def init_state(self, state, param, group):
        state["sum"] = torch.zeros_like(param)

    def update(self, group, params, grads, states):
        adagrad_update(params, grads, [s["sum"] for s in states], lr=group["lr"], eps=group["eps"],
                       eps_in_sqrt=group["eps_in_sqrt"], foreach=group["foreach"])
