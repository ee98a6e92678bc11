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
parity"): it puts eps outside the sqrt (sqrt(s) + eps; ``eps_in_sqrt=False`` does the
same), and its momentum buffer excludes lr (b = beta*b + g/denom; theta -= lr*b), so
v = lr*b only while lr is constant.
"""

from __future__ import annotations

import torch
from torch import Tensor

from optbench.optim.base import ScratchOptimizer
from optbench.optim.functional import Hyper, descend_, ewa_, ewa_square_, minus_square_new, root, with_weight_decay


def rmsprop_update(params: list[Tensor], grads: list[Tensor], square_avgs: list[Tensor],
                   grad_avgs: list[Tensor] | None = None, velocities: list[Tensor] | None = None, *,
                   lr: Hyper, alpha: Hyper, eps: Hyper, momentum: Hyper = 0.0, weight_decay: Hyper = 0.0,
                   eps_in_sqrt: bool = True, foreach: bool = True) -> None:
    """One RMSProp step, in place: g += weight_decay * theta; s = alpha*s + (1-alpha)*g^2;
    theta -= lr * g / sqrt(s + eps). Centered when ``grad_avgs`` is given (m = EWA of g,
    denominator sqrt(s - m^2 + eps)); with ``velocities``, seed 004's momentum
    v = momentum*v + lr*g/denom; theta -= v.

    ``eps_in_sqrt``: True (default) adds eps inside the square root, as seeds 000-002 and
    Paddle (seed 004) write it; False adds it after the root, sqrt(s [- m^2]) + eps, as
    torch.optim.RMSprop does."""
    grads = with_weight_decay(grads, params, weight_decay, foreach)
    ewa_square_(square_avgs, grads, alpha, foreach)
    if grad_avgs is not None:
        ewa_(grad_avgs, grads, alpha, foreach)
        denom = root(minus_square_new(square_avgs, grad_avgs, foreach), eps, eps_in_sqrt, foreach, fresh=False)
    else:
        denom = root(square_avgs, eps, eps_in_sqrt, foreach)
    descend_(params, grads, denom, lr, foreach, velocities, momentum)


class RMSprop(ScratchOptimizer):
    def __init__(self, params, lr=1e-3, alpha=0.9, eps=1e-10, momentum=0.0, centered=False,
                 weight_decay=0.0, *, eps_in_sqrt=True, foreach=True):
        if lr < 0 or eps < 0 or weight_decay < 0 or not 0 <= alpha < 1 or not 0 <= momentum < 1:
            raise ValueError("need lr, eps, weight_decay >= 0 and 0 <= alpha, momentum < 1")
        defaults = dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum, centered=centered,
                        weight_decay=weight_decay, eps_in_sqrt=eps_in_sqrt, foreach=foreach)
        super().__init__(params, defaults)

    def init_state(self, state, param, group):
        state["square_avg"] = torch.zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = torch.zeros_like(param)
        if group["momentum"] > 0:
            state["velocity"] = torch.zeros_like(param)

    def update(self, group, params, grads, states):
        rmsprop_update(
            params, grads, [s["square_avg"] for s in states],
            [s["grad_avg"] for s in states] if group["centered"] else None,
            [s["velocity"] for s in states] if group["momentum"] > 0 else None,
            lr=group["lr"], alpha=group["alpha"], eps=group["eps"], momentum=group["momentum"],
            weight_decay=group["weight_decay"], eps_in_sqrt=group["eps_in_sqrt"], foreach=group["foreach"])
