"""``diagnostics=true`` per member: ``train/diagnostics.py``'s columns from stacked tensors.

For member i at a logged step: ``grad_norm`` = ||g_i|| over all its parameters (after
clipping), ``update_norm`` = ||theta_i,t - theta_i,t-1||, ``update_ratio`` =
update_norm / ||theta_i,t-1|| (inf when that is 0); L2 norms in float64, each member
over its own slices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def member_norms(tensors: Sequence[Tensor]) -> Tensor:
    """``[K]`` float64: the L2 norm of each member's slices of ``tensors`` together."""
    per_tensor = [torch.linalg.vector_norm(t.double().reshape(t.shape[0], -1), dim=1) for t in tensors]
    return torch.linalg.vector_norm(torch.stack(per_tensor), dim=0)


class StackedDiagnostics:
    def __init__(self, leaves: Sequence[Tensor]):
        self.leaves = list(leaves)
        self._before: list[Tensor] | None = None

    def before_step(self) -> None:
        self._before = [p.detach().clone() for p in self.leaves]

    def after_step(self) -> list[dict[str, float]]:
        """One dict of the three columns per member."""
        before, self._before = self._before, None
        k = self.leaves[0].shape[0]
        grads = [p.grad.detach() for p in self.leaves if p.grad is not None]
        grad = member_norms(grads).tolist() if grads else [math.nan] * k
        update = member_norms([p.detach() - b for p, b in zip(self.leaves, before)]).tolist()
        size = member_norms(before).tolist()
        return [{"grad_norm": g, "update_norm": u, "update_ratio": u / s if s > 0 else math.inf}
                for g, u, s in zip(grad, update, size)]
