"""Structured-config schema: the types and keys every run config must have.

The dataclasses are registered in Hydra's ConfigStore under the group ``schema`` (so
they never show up among the ``optimizer`` or ``dataset`` options). Hydra composes
the YAML files untyped; ``optbench.config.validate`` then merges the result into
these schemas, which refuses wrong types and unknown keys with a message of ours.
Optimizer hyperparameter schemas live beside each optimizer in
``optbench.optim.registry``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class LinregConfig:
    name: str = "linreg"
    num_examples: int = MISSING
    true_w: list[float] = MISSING
    true_b: float = MISSING
    noise: float = MISSING


@dataclass
class ImageDatasetConfig:
    name: str = MISSING
    root: Optional[str] = None
    download: bool = True
    system_dir: Optional[str] = None


@dataclass
class QuadraticConfig:
    name: str = "quadratic"
    x0: float = MISSING
    coef: float = MISSING


DATASET_SCHEMAS: dict[str, type] = {
    "linreg": LinregConfig,
    "mnist": ImageDatasetConfig,
    "fashion_mnist": ImageDatasetConfig,
    "quadratic": QuadraticConfig,
}


@dataclass
class MLPModelConfig:
    name: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [200])  # the seeds' 784-200-10
    activation: str = "relu"  # a key of optbench.models.mlp.ACTIVATIONS


@dataclass
class CNNModelConfig:
    name: str = "cnn"
    channels: list[int] = field(default_factory=lambda: [16, 32])  # one 3x3 conv + ReLU + 2x2 pool per entry


@dataclass
class LinearModelConfig:
    name: str = "linear"


@dataclass
class ScalarModelConfig:
    name: str = "scalar"


MODEL_SCHEMAS: dict[str, type] = {
    "mlp": MLPModelConfig,
    "cnn": CNNModelConfig,
    "linear": LinearModelConfig,
    "scalar": ScalarModelConfig,
}
#: dataset -> the models it can train (the first is its default, conf/dataset/<name>.yaml's ``/model``)
DATASET_MODELS: dict[str, tuple[str, ...]] = {
    "linreg": ("linear",),
    "mnist": ("mlp", "cnn"),
    "fashion_mnist": ("mlp", "cnn"),
    "quadratic": ("scalar",),
}
#: the datasets whose problem has a test set (``Problem.has_test_set``): test_loss, test_acc
TEST_SET_DATASETS = ("mnist", "fashion_mnist")


@dataclass
class GradClipConfig:
    kind: str = "none"  # none | norm | value | global_norm
    threshold: float = 1.0


@dataclass
class ScheduleConfig:
    kind: str = "constant"  # constant | step | cosine
    step_size: int = 1000
    gamma: float = 0.1
    t_max: Optional[int] = None
    eta_min: float = 0.0


@dataclass
class PlotHints:
    """Read by optbench-plot from a run's config; never by the trainer."""

    x: Optional[str] = None
    y: Optional[str] = None
    linear: bool = False
    title: Optional[str] = None


@dataclass
class RunConfig:
    dataset: Any = MISSING
    model: Any = MISSING
    optimizer: Any = MISSING
    seed: int = 0
    batch_size: int = 64
    epochs: int = 5
    steps: Optional[int] = None
    device: str = "auto"
    log_every: int = 30
    threads: Optional[int] = None
    quiet: bool = False
    compile: bool = False
    diagnostics: bool = False
    grad_clip: GradClipConfig = field(default_factory=GradClipConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    checkpoint_every: Optional[int] = None
    resume: Optional[str] = None
    skip_finished: bool = False
    results_root: Optional[str] = None
    objective: str = "final_train_loss"
    plot: PlotHints = field(default_factory=PlotHints)


CHOICES = {
    "device": ("auto", "cpu", "cuda", "mps"),
    "grad_clip.kind": ("none", "norm", "value", "global_norm"),
    "schedule.kind": ("constant", "step", "cosine"),
    "objective": ("final_train_loss", "best_test_loss", "test_acc"),
}


def register() -> None:
    store = ConfigStore.instance()
    store.store(group="schema", name="run", node=RunConfig)
    for name, node in DATASET_SCHEMAS.items():
        store.store(group="schema/dataset", name=name, node=node)
    for name, node in MODEL_SCHEMAS.items():
        store.store(group="schema/model", name=name, node=node)
