"""Adam from scratch (seed 002, ``adam``), bias-corrected.

    v      = beta1 * v + (1 - beta1) * g
    s      = beta2 * s + (1 - beta2) * g^2
    v_hat  = v / (1 - beta1^t);   s_hat = s / (1 - beta2^t)
    theta -= lr * v_hat / sqrt(s_hat + eps)         eps INSIDE the sqrt (seed)

Defaults (seed 002): lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-8.
``weight_decay`` adds ``weight_decay * theta`` to g first (L2, as torch.optim.Adam).

torch.optim.Adam(lr, betas=(beta1, beta2), eps, weight_decay) divides by
sqrt(s_hat) + eps instead (see the README section "Scratch vs torch.optim: parity");
``eps_in_sqrt=False`` does the same.
"""

from __future__ import annotations

import torch
from torch import Tensor

from optbench.optim.base import ScratchOptimizer
from optbench.optim.functional import Hyper, descend_, div_new, ewa_, ewa_square_, per_param, root, with_weight_decay


def adam_update(params: list[Tensor], grads: list[Tensor], exp_avgs: list[Tensor], exp_avg_sqs: list[Tensor],
                steps: list, *, lr: Hyper, beta1: Hyper, beta2: Hyper, eps: Hyper, weight_decay: Hyper = 0.0,
                eps_in_sqrt: bool = True, foreach: bool = True) -> None:
    """One bias-corrected Adam step, in place: g += weight_decay * theta;
    v = beta1*v + (1-beta1)*g; s = beta2*s + (1-beta2)*g^2;
    theta -= lr * v_hat / sqrt(s_hat + eps), v_hat = v/(1-beta1^t), s_hat = s/(1-beta2^t).

    ``steps[i]``: t for parameter i, counting this step (an int or a tensor).
    ``eps_in_sqrt``: True (default) adds eps inside the square root, as seed 002 writes it;
    False divides by sqrt(s_hat) + eps, as torch.optim.Adam does."""
    grads = with_weight_decay(grads, params, weight_decay, foreach)
    ewa_(exp_avgs, grads, beta1, foreach)
    ewa_square_(exp_avg_sqs, grads, beta2, foreach)
    n = len(params)
    v_hat = div_new(exp_avgs, [1 - b**t for b, t in zip(per_param(beta1, n), steps)], foreach)
    s_hat = div_new(exp_avg_sqs, [1 - b**t for b, t in zip(per_param(beta2, n), steps)], foreach)
    descend_(params, v_hat, root(s_hat, eps, eps_in_sqrt, foreach, fresh=False), lr, foreach)


class Adam(ScratchOptimizer):
    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, *,
                 eps_in_sqrt=True, foreach=True):
        if lr < 0 or eps < 0 or weight_decay < 0 or not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError("need lr, eps, weight_decay >= 0 and 0 <= beta1, beta2 < 1")
        defaults = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                        eps_in_sqrt=eps_in_sqrt, foreach=foreach)
        super().__init__(params, defaults)

    def init_state(self, state, param, group):
        state.update(step=0, exp_avg=torch.zeros_like(param), exp_avg_sq=torch.zeros_like(param))

    def update(self, group, params, grads, states):
        for s in states:
            s["step"] += 1
        adam_update(params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                    [s["step"] for s in states], lr=group["lr"], beta1=group["beta1"], beta2=group["beta2"],
                    eps=group["eps"], weight_decay=group["weight_decay"], eps_in_sqrt=group["eps_in_sqrt"],
                    foreach=group["foreach"])
