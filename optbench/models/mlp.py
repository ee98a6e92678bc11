"""The seeds' multilayer perceptron: Linear -> activation -> ... -> Linear (default 784-200-10, ReLU)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from optbench.models.base import ModelInputs

#: ``model.activation`` -> the module between two linear layers
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


def build(cfg: Mapping, inputs: ModelInputs) -> nn.Module:
    """``Sequential(Linear, act, ..., Linear)``; torch's default init from the caller-seeded global RNG.

    With ``hidden=[200]`` and ReLU this is exactly seed 000's network (same modules, same
    order of random draws, same state_dict keys ``0.*`` and ``2.*``).
    """
    widths = [inputs.in_features, *(int(h) for h in cfg["hidden"])]
    activation = ACTIVATIONS[cfg["activation"]]
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths, widths[1:]):
        layers += [nn.Linear(fan_in, fan_out), activation()]
    layers.append(nn.Linear(widths[-1], inputs.out_features))
    return nn.Sequential(*layers)


def num_parameters(cfg: Mapping, in_features: int, out_features: int) -> int:
    widths = [in_features, *(int(h) for h in cfg["hidden"]), out_features]
    return sum(a * b + b for a, b in zip(widths, widths[1:]))
