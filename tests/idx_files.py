"""Test helper: small, valid MNIST-format IDX files (uncompressed or gzipped).

``write_raw(root, "MNIST")`` fills ``<root>/MNIST/raw/`` exactly like torchvision's
download would (minus the MD5-matching .gz archives), so the real
``torchvision.datasets.MNIST(root, download=False)`` loads it. The images carry a
learnable pattern: class ``k`` has a bright 6 x 6 square in cell ``k`` of a
4 x 3 grid, on top of dim noise.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FOLDERS = ("MNIST", "FashionMNIST")


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic 0x0000 08 <ndim>, big-endian int32 dims, the data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def make_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28 x 28 uint8 images and their labels 0..9 (every class present when n >= 10)."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 3)  # cell (r, c) of a 4 x 3 grid of 7 x 9 cells
        top, left = 1 + 7 * r, 1 + 9 * c + 1
        images[i, top : top + 6, left : left + 6] = rng.integers(180, 256, size=(6, 6), dtype=np.uint8)
    return images, labels


def make_arrays(n_train: int = 256, n_test: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """The four arrays, keyed by raw file name."""
    train_x, train_y = make_split(n_train, seed)
    test_x, test_y = make_split(n_test, seed + 1)
    return dict(zip(RAW_FILES, (train_x, train_y, test_x, test_y)))


def write_files(
    folder: str | Path,
    gz: bool = False,
    n_train: int = 256,
    n_test: int = 64,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Write the four IDX files into ``folder`` (as ``<name>.gz`` when ``gz``); return the arrays."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = make_arrays(n_train, n_test, seed)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / name).write_bytes(data)
    return arrays


def write_raw(
    root: str | Path,
    dataset: str = "MNIST",
    gz: bool = False,
    n_train: int = 256,
    n_test: int = 64,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Write the files in torchvision's layout ``<root>/<dataset>/raw/``; ``dataset`` is MNIST or FashionMNIST."""
    if dataset not in FOLDERS:
        raise ValueError(f"dataset must be one of {FOLDERS}, not {dataset!r}")
    return write_files(Path(root) / dataset / "raw", gz=gz, n_train=n_train, n_test=n_test, seed=seed)
