"""Seed 003's single parameter x (the quadratic's iterate), starting at the problem's x0."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from optbench.models.base import ModelInputs


class Iterate(nn.Module):
    """The single parameter x."""

    def __init__(self, x0: float):
        super().__init__()
        self.x = nn.Parameter(torch.tensor([float(x0)]))


def build(cfg: Mapping, inputs: ModelInputs) -> nn.Module:
    return Iterate(inputs.initial["x0"])
