"""Image classification (MNIST, Fashion-MNIST) with the seeds' MLP 784-200-10.

The whole dataset is normalised once, exactly like the tutorial's ``data_tf``
(``(x/255 - 0.5)/0.5``, flattened), and kept as tensors on the run's device;
minibatches are index slices of a seeded permutation (``Problem.batches``), so
there is no per-sample transform and no DataLoader.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from optbench.problems.base import Batch, Problem
from optbench.problems.image_data import (
    DEFAULT_SYSTEM_DIR,
    IMAGE_SIZE,
    NUM_CLASSES,
    check_name,
    load_image_data,
    resolve_root,
)

__all__ = ["ImageClassification", "make_image_problem", "normalise_images", "INPUT_DIM", "HIDDEN"]

INPUT_DIM = IMAGE_SIZE[0] * IMAGE_SIZE[1]  # 784
HIDDEN = 200


def normalise_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x 28 x 28 -> float32 N x 784, ``((x/255) - 0.5)/0.5`` like seed 000's ``data_tf``.

    Computed on the CPU in float32, which gives bit-for-bit the values of the
    seed's numpy code (division, not multiplication by a reciprocal).
    """
    x = images.reshape(images.shape[0], -1).to("cpu", torch.float32)
    return x.div_(255).sub_(0.5).div_(0.5)


class ImageClassification(Problem):
    """MNIST or Fashion-MNIST, MLP 784-200-10, mean cross-entropy; test loss and accuracy per epoch."""

    has_test_set = True
    step_column_names: tuple[str, ...] = ()
    #: images per forward pass in ``evaluate``
    eval_chunk = 2048

    def __init__(
        self,
        name: str,
        device: torch.device,
        root: str | os.PathLike | None,
        download: bool,
        system_dir: str | os.PathLike | None = None,
    ):
        """Load ``name`` (``mnist`` or ``fashion_mnist``) from ``root`` (None: the per-user cache).

        ``system_dir`` (Fashion-MNIST only) is a folder of the four IDX files that is
        read before downloading; None means Debian's ``/usr/share/datasets/fashion-mnist``,
        an empty string turns it off. Raises ``OptbenchError`` when the data is
        missing or corrupt.
        """
        super().__init__(torch.device(device))
        self.name = check_name(name)
        self.root = resolve_root(root)
        self.system_dir = DEFAULT_SYSTEM_DIR if system_dir is None else system_dir
        data = load_image_data(self.name, self.root, bool(download), self.system_dir or None)
        self._train = (
            normalise_images(data.train_images).to(self.device),
            data.train_labels.to(self.device),
        )
        self._test = (
            normalise_images(data.test_images).to(self.device),
            data.test_labels.to(self.device),
        )
        self._criterion = nn.CrossEntropyLoss()

    @property
    def num_train(self) -> int:
        return self._train[0].shape[0]

    @property
    def num_test(self) -> int:
        return self._test[0].shape[0]

    def train_tensors(self) -> Batch:
        return self._train

    def test_tensors(self) -> Batch:
        return self._test

    def make_model(self) -> nn.Module:
        # the seeds' network; torch's default init from the (caller-seeded) global RNG
        model = nn.Sequential(
            nn.Linear(INPUT_DIM, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, NUM_CLASSES),
        )
        return model.to(self.device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        inputs, targets = batch
        return self._criterion(model(inputs), targets)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        inputs, targets = self._test
        n = inputs.shape[0]
        if n == 0:
            return {"test_loss": float("nan"), "test_acc": float("nan")}
        was_training = model.training
        model.eval()
        try:
            total_loss, correct = 0.0, 0  # Python numbers: float64 sums on any device (MPS has none)
            for start in range(0, n, self.eval_chunk):
                x = inputs[start : start + self.eval_chunk]
                y = targets[start : start + self.eval_chunk]
                logits = model(x)
                total_loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
                correct += int((logits.argmax(dim=1) == y).sum())
        finally:
            model.train(was_training)
        return {"test_loss": total_loss / n, "test_acc": correct / n}


def make_image_problem(cfg_dataset: Mapping, device: torch.device | str) -> ImageClassification:
    """Build the problem from the ``dataset`` config group (name, root, download, system_dir)."""
    return ImageClassification(
        name=cfg_dataset["name"],
        device=torch.device(device),
        root=cfg_dataset.get("root"),
        download=bool(cfg_dataset.get("download", True)),
        system_dir=cfg_dataset.get("system_dir"),
    )
