"""The contract between a problem (data, model, loss) and the trainer loop.

A problem also describes its outputs (``Problem.outputs``): which columns it writes, what
they mean and how readers show them. The description's types are torch-free and live with
the run folder's format (``optbench.run_folder``: ``Outputs``, ``Column``, ``IteratePanel``),
so the plotter reads them from summary.json without importing a problem; they are
re-exported here for problem modules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

import torch
from torch import nn

from optbench.run_folder import EPOCHS, GENERIC_OUTPUTS, LOSSES, Column, IteratePanel, Outputs

__all__ = ["Batch", "Column", "EPOCHS", "IteratePanel", "LOSSES", "Outputs", "Problem"]

Batch = tuple[torch.Tensor, torch.Tensor]


class Problem(ABC):
    """Data, model and loss for one benchmark problem.

    All data lives in tensors on ``self.device``; an epoch is a sequence of index
    slices into a seeded permutation, so every optimizer sees the same batches for
    the same seed.
    """

    name: str
    #: what the problem writes and how readers show it (summary.json's ``outputs``)
    outputs: ClassVar[Outputs] = GENERIC_OUTPUTS
    #: extra per-step CSV columns, written after ``loss`` and ``lr`` (see ``step_columns``):
    #: ``outputs.problem_columns(LOSSES)``
    step_column_names: tuple[str, ...] = ()
    #: epochs.csv columns this problem fills besides ``train_loss`` (test_loss, test_acc)
    has_test_set: bool = False

    def __init__(self, device: torch.device):
        self.device = device

    @property
    @abstractmethod
    def num_train(self) -> int:
        """Number of training examples in one epoch."""

    @abstractmethod
    def make_model(self) -> nn.Module:
        """A freshly initialised model. The caller seeds torch's global RNG first."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Mean loss of ``model`` on ``batch`` (a 0-dim tensor with grad)."""

    def member_losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
        """Each member's ``loss`` from stacked model outputs ``[K, B, ...]`` and targets ``[K, B, ...]``: ``[K]``.

        For the vectorized engine, when ``loss`` is a function of ``model(inputs)`` and the
        targets: one batched call instead of ``loss`` vmapped over members (whose
        decompositions run in Python each step). None (the default): the engine vmaps ``loss``.
        """
        return None

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """One epoch of minibatches, in an order drawn from ``generator``."""
        inputs, targets = self.train_tensors()
        n = inputs.shape[0]
        order = torch.randperm(n, generator=generator).to(inputs.device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            yield inputs.index_select(0, idx), targets.index_select(0, idx)

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-self.num_train // batch_size)

    def train_tensors(self) -> Batch:
        """All training inputs and targets (used by the default ``batches``)."""
        raise NotImplementedError

    @torch.no_grad()
    def step_columns_before(self, model: nn.Module) -> dict[str, float]:
        """Columns read before the logged step's update (the quadratic's iterate)."""
        return {}

    @torch.no_grad()
    def step_columns(self, model: nn.Module) -> dict[str, float]:
        """Columns read after the logged step's update (linreg's full-data loss)."""
        return {}

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """End-of-epoch metrics besides the train loss: ``test_loss``, ``test_acc``."""
        return {}

    @torch.no_grad()
    def report(self, model: nn.Module) -> dict:
        """What the problem tells the user at the end (for linreg: learned w and b)."""
        return {}


class LossModule(nn.Module):
    """``problem.loss(model, batch)`` as a module, for ``torch.func.functional_call``."""

    def __init__(self, problem: Problem, model: nn.Module):
        super().__init__()
        self.problem = problem
        self.model = model

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.problem.loss(self.model, batch)
