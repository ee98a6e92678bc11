"""A small conv net for 28 x 28 x 1 images: per block a 3 x 3 conv (padding 1), ReLU, 2 x 2 max-pool; then Linear.

The problem hands over flattened rows (N x 784, like the MLP's input), so the first
module restores N x 1 x 28 x 28. Default ``channels=[16, 32]``: 28 -> 14 -> 7, then
Linear(32 * 7 * 7, 10).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from optbench.models.base import ModelInputs


def _side_after(side: int, blocks: int) -> int:
    for _ in range(blocks):
        side //= 2
    return side


def build(cfg: Mapping, inputs: ModelInputs) -> nn.Module:
    if inputs.image_shape is None:
        raise ValueError("the cnn model needs image inputs (ModelInputs.image_shape)")
    channels, height, width = inputs.image_shape
    layers: list[nn.Module] = [nn.Unflatten(1, (channels, height, width))]
    for out in (int(c) for c in cfg["channels"]):
        layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels = out
    blocks = len(cfg["channels"])
    flat = channels * _side_after(height, blocks) * _side_after(width, blocks)
    layers += [nn.Flatten(), nn.Linear(flat, inputs.out_features)]
    return nn.Sequential(*layers)


def num_parameters(cfg: Mapping, image_shape: tuple[int, int, int], out_features: int) -> int:
    channels, height, width = image_shape
    total = 0
    for out in (int(c) for c in cfg["channels"]):
        total += channels * out * 9 + out
        channels = out
    blocks = len(cfg["channels"])
    return total + channels * _side_after(height, blocks) * _side_after(width, blocks) * out_features + out_features
