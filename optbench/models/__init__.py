"""Models: one file per model, one table from ``model.name`` to its builder.

A builder takes the ``model`` config node and the problem's :class:`ModelInputs` and
returns a fresh ``nn.Module`` on the CPU, initialised from torch's global RNG (the
caller seeds it, so every optimizer starts from the same weights). Which model fits
which dataset is ``optbench.config.schema.DATASET_MODELS`` (checked before any data is
loaded). Adding a model: ``optbench/models/<name>.py`` with ``build``, a row here, a
schema dataclass in ``MODEL_SCHEMAS`` and ``conf/model/<name>.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from optbench.models import cnn, linear, mlp, scalar
from optbench.models.base import ModelInputs

__all__ = ["MODELS", "ModelInputs", "build_model"]

Builder = Callable[[Mapping, ModelInputs], nn.Module]

MODELS: dict[str, Builder] = {
    "mlp": mlp.build,
    "cnn": cnn.build,
    "linear": linear.build,
    "scalar": scalar.build,
}


def build_model(cfg: Mapping, inputs: ModelInputs) -> nn.Module:
    """The model ``cfg["name"]`` names, built for ``inputs``."""
    return MODELS[cfg["name"]](cfg, inputs)
