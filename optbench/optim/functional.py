"""The list-of-tensor operations every scratch kernel is written in, and the two pieces
of update every optimizer shares: weight decay and the (seed-form) momentum step.

Each optimizer's formula is one pure function over lists of tensors in its own file
(``sgd_update``, ``momentum_update``, ``adagrad_update``, ``rmsprop_update``,
``adam_update``, ``adadelta_update``), in the style of torch's ``_single_tensor_*`` /
``_multi_tensor_*`` functions and optax: it updates the parameters and the state
buffers it is given in place and returns nothing; it keeps no state of its own. The
Optimizer classes (``optbench.optim.<name>``) and the compiled step
(``optbench.train.compiled``) call these functions; nothing else writes a formula.

**Hyperparameters** (``lr``, ``alpha``, ``eps``, ``momentum``, ...) may each be

* a Python number: the fast path, one ``torch._foreach_*`` kernel per operation (or a
  per-tensor loop with ``foreach=False``, the readable reference; both agree bitwise on CPU);
* a tensor that broadcasts against every parameter: a 0-dim tensor (``compile=true``
  passes ``lr`` so, so that a schedule changes a graph input instead of a constant baked
  into the graph), or a member dimension: parameters of shape ``[K, ...]`` (K stacked
  configurations) with ``lr`` of shape ``[K, 1, ...]`` update each member with its own lr;
* a list or tuple with one number or tensor per parameter (for parameters of different
  ranks: ``[lr.view(K, 1, 1), lr.view(K, 1)]`` for a weight ``[K, m, n]`` and a bias ``[K, m]``).

Tensor hyperparameters take a per-tensor loop of ordinary broadcasting ops (Inductor
fuses them under ``torch.compile``). A hyperparameter's broadcast must not change a
parameter's shape: the updates are in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch
from torch import Tensor

#: a hyperparameter: a number, a tensor broadcasting against each parameter, or one of those per parameter
Hyper = Union[float, Tensor, Sequence[Union[float, Tensor]]]


def is_number(h) -> bool:
    """A plain Python number (not a tensor, not a per-parameter sequence)."""
    return not isinstance(h, (Tensor, list, tuple))


def per_param(h: Hyper, n: int) -> list:
    """``h`` as one value per parameter."""
    if isinstance(h, (list, tuple)):
        if len(h) != n:
            raise ValueError(f"a per-parameter hyperparameter needs {n} values, got {len(h)}")
        return list(h)
    return [h] * n


def _numbers(hs: list) -> bool:
    return all(is_number(h) for h in hs)


def complement(h: Hyper) -> Hyper:
    """1 - h, elementwise for a per-parameter sequence."""
    if isinstance(h, (list, tuple)):
        return [1 - x for x in h]
    return 1 - h


# ---- the operations (in place unless the name says "new") ------------------------------
def mul_(xs: list[Tensor], h: Hyper, foreach: bool) -> None:
    """x *= h"""
    if is_number(h):
        if foreach:
            torch._foreach_mul_(xs, h)
        else:
            for x in xs:
                x.mul_(h)
        return
    for x, hi in zip(xs, per_param(h, len(xs))):
        x.mul_(hi)


def add_(xs: list[Tensor], h: Hyper, foreach: bool) -> None:
    """x += h"""
    if is_number(h):
        if foreach:
            torch._foreach_add_(xs, h)
        else:
            for x in xs:
                x.add_(h)
        return
    for x, hi in zip(xs, per_param(h, len(xs))):
        x.add_(hi)


def add_scaled_(xs: list[Tensor], ys: list[Tensor], h: Hyper, foreach: bool) -> None:
    """x += h * y"""
    if is_number(h):
        if foreach:
            torch._foreach_add_(xs, ys, alpha=h)
        else:
            for x, y in zip(xs, ys):
                x.add_(y, alpha=h)
        return
    for x, y, hi in zip(xs, ys, per_param(h, len(xs))):
        if is_number(hi):
            x.add_(y, alpha=hi)
        else:
            x.addcmul_(y, hi)  # one rounding, as the number path's alpha= (hi * y then add_ rounds twice)


def add_product_(xs: list[Tensor], a: list[Tensor], b: list[Tensor], h: Hyper, foreach: bool) -> None:
    """x += h * a * b"""
    if is_number(h):
        if foreach:
            torch._foreach_addcmul_(xs, a, b, value=h)
        else:
            for x, ai, bi in zip(xs, a, b):
                x.addcmul_(ai, bi, value=h)
        return
    for x, ai, bi, hi in zip(xs, a, b, per_param(h, len(xs))):
        x.addcmul_(hi * ai, bi)


def add_quotient_(xs: list[Tensor], a: list[Tensor], b: list[Tensor], h: Hyper, foreach: bool) -> None:
    """x += h * a / b"""
    if is_number(h):
        if foreach:
            torch._foreach_addcdiv_(xs, a, b, value=h)
        else:
            for x, ai, bi in zip(xs, a, b):
                x.addcdiv_(ai, bi, value=h)
        return
    for x, ai, bi, hi in zip(xs, a, b, per_param(h, len(xs))):
        x.addcdiv_(hi * ai, bi)


def div_new(xs: list[Tensor], hs: list, foreach: bool) -> list[Tensor]:
    """new x / h, one h per tensor"""
    if foreach and _numbers(hs):
        return list(torch._foreach_div(xs, hs))
    return [x / h for x, h in zip(xs, hs)]


def minus_square_new(xs: list[Tensor], ms: list[Tensor], foreach: bool) -> list[Tensor]:
    """new x - m^2"""
    if foreach:
        return list(torch._foreach_addcmul(xs, ms, ms, value=-1))
    return [x.addcmul(m, m, value=-1) for x, m in zip(xs, ms)]


def mul_lists_(xs: list[Tensor], ys: list[Tensor], foreach: bool) -> None:
    """x *= y"""
    if foreach:
        torch._foreach_mul_(xs, ys)
    else:
        for x, y in zip(xs, ys):
            x.mul_(y)


def div_lists_(xs: list[Tensor], ys: list[Tensor], foreach: bool) -> None:
    """x /= y"""
    if foreach:
        torch._foreach_div_(xs, ys)
    else:
        for x, y in zip(xs, ys):
            x.div_(y)


def ewa_(avgs: list[Tensor], xs: list[Tensor], decay: Hyper, foreach: bool) -> None:
    """avg = decay * avg + (1 - decay) * x"""
    mul_(avgs, decay, foreach)
    add_scaled_(avgs, xs, complement(decay), foreach)


def ewa_square_(avgs: list[Tensor], xs: list[Tensor], decay: Hyper, foreach: bool) -> None:
    """avg = decay * avg + (1 - decay) * x^2"""
    mul_(avgs, decay, foreach)
    add_product_(avgs, xs, xs, complement(decay), foreach)


def root(xs: list[Tensor], eps: Hyper, eps_in_sqrt: bool, foreach: bool, *, fresh: bool = True) -> list[Tensor]:
    """sqrt(x + eps) with ``eps_in_sqrt`` (the seeds), sqrt(x) + eps without (torch.optim).

    A new list (``fresh``), or ``xs`` itself updated in place (for a temporary).
    """
    if eps_in_sqrt:
        if fresh:
            out = list(torch._foreach_add(xs, eps)) if foreach and is_number(eps) else [
                x + e for x, e in zip(xs, per_param(eps, len(xs)))]
        else:
            out = xs
            add_(out, eps, foreach)
        _sqrt_(out, foreach)
        return out
    if fresh:
        out = list(torch._foreach_sqrt(xs)) if foreach else [x.sqrt() for x in xs]
    else:
        out = xs
        _sqrt_(out, foreach)
    add_(out, eps, foreach)
    return out


def _sqrt_(xs: list[Tensor], foreach: bool) -> None:
    if foreach:
        torch._foreach_sqrt_(xs)
    else:
        for x in xs:
            x.sqrt_()


# ---- written once: weight decay and the momentum step ------------------------------------
def with_weight_decay(grads: list[Tensor], params: list[Tensor], weight_decay: Hyper,
                      foreach: bool) -> list[Tensor]:
    """g + weight_decay * theta (the L2 penalty's gradient, as torch.optim adds it), as new
    tensors; ``grads`` itself (untouched) when ``weight_decay`` is the number 0."""
    if is_number(weight_decay):
        if not weight_decay:
            return grads
        if foreach:
            return list(torch._foreach_add(grads, params, alpha=weight_decay))
        return [g.add(p, alpha=weight_decay) for g, p in zip(grads, params)]
    return [g + wd * p for g, p, wd in zip(grads, params, per_param(weight_decay, len(params)))]


def descend_(params: list[Tensor], directions: list[Tensor], denoms: list[Tensor] | None, lr: Hyper,
             foreach: bool, velocities: list[Tensor] | None = None, momentum: Hyper = 0.0) -> None:
    """The step u = lr * d / denom (u = lr * d without ``denoms``), then

    * without ``velocities``: theta -= u;
    * with them, seed 002's / seed 004's momentum form: v = momentum * v + u; theta -= v
      (the velocity includes lr; torch.optim's buffer does not, see the README).
    """
    if velocities is None:
        if denoms is None:
            add_scaled_(params, directions, _negated(lr), foreach)
        else:
            add_quotient_(params, directions, denoms, _negated(lr), foreach)
        return
    mul_(velocities, momentum, foreach)
    if denoms is None:
        add_scaled_(velocities, directions, lr, foreach)
    else:
        add_quotient_(velocities, directions, denoms, lr, foreach)
    if foreach:
        torch._foreach_sub_(params, velocities)
    else:
        for p, v in zip(params, velocities):
            p.sub_(v)


def _negated(h: Hyper) -> Hyper:
    if isinstance(h, (list, tuple)):
        return [-x for x in h]
    return -h
