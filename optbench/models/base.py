"""What a problem tells a model builder: the shape of its inputs and outputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelInputs:
    """The problem's side of the model contract.

    ``in_features``: the width of one input row (the images arrive flattened, N x 784);
    ``out_features``: logits (10 classes) or predictions (1); ``image_shape``: (C, H, W)
    of a flattened image input, for models that need it back (the CNN); ``initial``:
    values the problem fixes (the quadratic's x0).
    """

    in_features: int
    out_features: int
    image_shape: tuple[int, int, int] | None = None
    initial: Mapping[str, float] = field(default_factory=dict)
