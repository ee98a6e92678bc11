"""Image classification (MNIST, Fashion-MNIST); the model comes from the ``model`` group (default: the seeds' MLP 784-200-10).

The whole dataset is normalised once, exactly like the tutorial's ``data_tf``
(``(x/255 - 0.5)/0.5``, flattened), and kept as tensors on the run's device;
minibatches are index slices of a seeded permutation (``Problem.batches``), so
there is no per-sample transform and no DataLoader. After the first load the
normalised tensors are cached beside the raw files (``image_cache``), and later runs
read that file without importing torchvision.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from optbench.models import ModelInputs, build_model
from optbench.problems import image_cache
from optbench.problems.base import EPOCHS, Batch, Column, Outputs, Problem
from optbench.problems.image_data import (
    DEFAULT_SYSTEM_DIR,
    IMAGE_SIZE,
    NUM_CLASSES,
    RAW_FILES,
    check_name,
    fill_missing_raw_files,
    load_image_data,
    raw_folder,
    resolve_root,
)

__all__ = ["ImageClassification", "make_image_problem", "normalise_images", "INPUT_DIM", "HIDDEN"]

INPUT_DIM = IMAGE_SIZE[0] * IMAGE_SIZE[1]  # 784
HIDDEN = 200
#: ``((x / SCALE) - MEAN) / STD``: seed 000's data_tf (part of the data cache's key)
NORMALISATION = {"scale": 255.0, "mean": 0.5, "std": 0.5}
#: the model an image problem trains unless the config names one (``model=mlp``, seed 000's)
DEFAULT_MODEL = {"name": "mlp", "hidden": [HIDDEN], "activation": "relu"}


def normalise_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x 28 x 28 -> float32 N x 784, ``((x/255) - 0.5)/0.5`` like seed 000's ``data_tf``.

    Computed on the CPU in float32, which gives bit-for-bit the values of the
    seed's numpy code (division, not multiplication by a reciprocal).
    """
    x = images.reshape(images.shape[0], -1).to("cpu", torch.float32)
    return x.div_(NORMALISATION["scale"]).sub_(NORMALISATION["mean"]).div_(NORMALISATION["std"])


#: test loss and accuracy per epoch (the seeds' epoch line); accuracy: higher is better, on a linear axis
OUTPUTS = Outputs(columns=(
    Column("test_loss", EPOCHS, "test loss", console="Test Loss: {:.6f}"),
    Column("test_acc", EPOCHS, "test accuracy", log_scale=False, higher_is_better=True, console="Test Acc: {:.4f}"),
))


class ImageClassification(Problem):
    """MNIST or Fashion-MNIST, a ``model`` group model (default MLP 784-200-10), mean cross-entropy; test loss and accuracy per epoch."""

    has_test_set = True
    outputs = OUTPUTS
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
        model: Mapping | None = None,
        cache: bool = False,
    ):
        """Load ``name`` (``mnist`` or ``fashion_mnist``) from ``root`` (None: the per-user cache).

        ``system_dir`` (Fashion-MNIST only) is a folder of the four IDX files that is
        read before downloading; None means Debian's ``/usr/share/datasets/fashion-mnist``,
        an empty string turns it off. ``model`` is the ``model`` config node (None: the
        seeds' MLP). ``cache``: read and write the normalised tensors beside the raw
        files (``image_cache``; the run path, ``make_image_problem``, turns it on).
        Raises ``OptbenchError`` when the data is missing or corrupt.
        """
        super().__init__(torch.device(device))
        self.name = check_name(name)
        self.root = resolve_root(root)
        self.system_dir = DEFAULT_SYSTEM_DIR if system_dir is None else system_dir
        self.model_cfg = dict(model or DEFAULT_MODEL)
        tensors = self._load(bool(download), cache)
        self._train = (tensors[0].to(self.device), tensors[1].to(self.device))
        self._test = (tensors[2].to(self.device), tensors[3].to(self.device))
        self._criterion = nn.CrossEntropyLoss()

    def _load(self, download: bool, cache: bool) -> tuple[torch.Tensor, ...]:
        """(train images, train labels, test images, test labels) on the CPU, normalised."""
        raw = raw_folder(self.name, self.root)
        records = None
        if cache and image_cache.enabled() and not fill_missing_raw_files(self.name, self.root, self.system_dir or None):
            cached = image_cache.load(self.name, raw, RAW_FILES, NORMALISATION, INPUT_DIM)
            if cached is not None:
                return cached
            if image_cache.writable(raw):
                try:
                    records = image_cache.file_records(raw, RAW_FILES)  # hashed before torchvision reads them
                except OSError:
                    records = None
        data = load_image_data(self.name, self.root, download, self.system_dir or None)
        tensors = (
            normalise_images(data.train_images), data.train_labels,
            normalise_images(data.test_images), data.test_labels,
        )
        if cache and image_cache.writable(raw):
            try:
                unchanged = records is not None and image_cache.file_stats(raw, RAW_FILES) == {
                    f: {"size": r["size"], "mtime_ns": r["mtime_ns"]} for f, r in records.items()}
                if not unchanged:  # downloaded just now, or changed while torchvision read them
                    records = image_cache.file_records(raw, RAW_FILES)
            except OSError:
                records = None
            if records is not None:
                image_cache.store(self.name, raw, tensors, NORMALISATION, records)
        return tensors

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
        # the model group's network (default: the seeds'); torch's default init from the caller-seeded RNG
        inputs = ModelInputs(INPUT_DIM, NUM_CLASSES, image_shape=(1, *IMAGE_SIZE))
        return build_model(self.model_cfg, inputs).to(self.device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        inputs, targets = batch
        return self._criterion(model(inputs), targets)

    def member_losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # logits [K, B, C]: cross-entropy's class dimension is dim 1
        return nn.functional.cross_entropy(outputs.transpose(1, 2), targets, reduction="none").mean(1)

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


def make_image_problem(cfg_dataset: Mapping, device: torch.device | str, model: Mapping | None = None,
                       cache: bool = True) -> ImageClassification:
    """Build the problem from the ``dataset`` config group (name, root, download, system_dir) and ``model``.

    The run path: the normalised tensors are cached beside the raw files (``cache``).
    """
    return ImageClassification(
        name=cfg_dataset["name"],
        device=torch.device(device),
        root=cfg_dataset.get("root"),
        download=bool(cfg_dataset.get("download", True)),
        system_dir=cfg_dataset.get("system_dir"),
        model=model,
        cache=cache,
    )
