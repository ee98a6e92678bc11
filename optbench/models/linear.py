"""Seed 001's linear model: Linear(in_features, 1) with w ~ N(0, 1) and b = 0 (its ``init_params``)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from optbench.models.base import ModelInputs


def build(cfg: Mapping, inputs: ModelInputs) -> nn.Module:
    model = nn.Linear(inputs.in_features, inputs.out_features)
    with torch.no_grad():
        model.weight.normal_(0.0, 1.0)
        model.bias.zero_()
    return model
