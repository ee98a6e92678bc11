"""``diagnostics=true``: the gradient's and the update's size at each logged step.

At a logged step only, the weights are copied before the update; afterwards
``grad_norm`` is the L2 norm of the gradients the optimizer received (after clipping),
``update_norm`` the L2 norm of theta_t - theta_(t-1) over all parameters, and
``update_ratio`` = update_norm / ||theta_(t-1)||. Unlogged steps do nothing extra, and
with the flag off nothing is built at all. It reads ``p.grad``, so it works for scratch
and builtin optimizers alike (and LBFGS, whose grads are those of its last closure call).
"""

from __future__ import annotations

import math

import torch

from optbench.run_folder import DIAGNOSTIC_COLUMNS

COLUMNS = tuple(DIAGNOSTIC_COLUMNS)


def _norm(tensors: list[torch.Tensor]) -> float:
    if not tensors:
        return math.nan
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.double()) for t in tensors])))


class Diagnostics:
    def __init__(self, params: list[torch.Tensor]):
        self.params = params
        self._before: list[torch.Tensor] | None = None

    def before_step(self) -> None:
        self._before = [p.detach().clone() for p in self.params]

    def after_step(self) -> dict[str, float]:
        before, self._before = self._before, None
        grads = [p.grad.detach() for p in self.params if p.grad is not None]
        update = _norm([p.detach() - b for p, b in zip(self.params, before, strict=True)])
        size = _norm(before)
        return {"grad_norm": _norm(grads), "update_norm": update,
                "update_ratio": update / size if size > 0 else math.inf}
