"""Finding, extracting, checking and loading MNIST / Fashion-MNIST through torchvision.

torchvision's ``MNIST`` and ``FashionMNIST`` read the four uncompressed IDX files
in ``<root>/<ClassName>/raw/`` and only download (or gunzip) when they are missing.
Before handing over to torchvision this module

* gunzips ``<file>.gz`` that the user dropped into the raw folder (torchvision
  would only extract them when their MD5 matches its list, and only with
  ``download=True``; otherwise it tries to download over them);
* for Fashion-MNIST, copies Debian's ``dataset-fashion-mnist`` files from
  ``system_dir`` (their .gz MD5s differ from torchvision's, so torchvision alone
  would try to download);
* checks every IDX header and size, so a truncated or foreign file is reported
  by name instead of as an assertion deep inside torchvision.

Every failure a user can fix becomes an :class:`~optbench.errors.OptbenchError`.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import shutil
import tempfile
import zlib
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import torch

from optbench.errors import OptbenchError

#: config name -> torchvision class name (also the folder under ``root``)
DATASETS: dict[str, str] = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
#: human-readable names for messages
TITLES: dict[str, str] = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
#: the four files torchvision reads, in its order
RAW_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
#: where Debian's ``dataset-fashion-mnist`` package puts the four .gz files
DEFAULT_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
IMAGE_SIZE = (28, 28)
NUM_CLASSES = 10

_MAGIC = {"images": b"\x00\x00\x08\x03", "labels": b"\x00\x00\x08\x01"}  # uint8, 3 or 1 dims


@dataclass(frozen=True)
class ImageData:
    """Raw tensors as torchvision loads them (CPU, untransformed)."""

    train_images: torch.Tensor  # uint8, N x 28 x 28
    train_labels: torch.Tensor  # int64, N
    test_images: torch.Tensor
    test_labels: torch.Tensor


def default_data_root() -> Path:
    """``$XDG_CACHE_HOME/optbench/data``, else ``~/.cache/optbench/data``."""
    cache = os.environ.get("XDG_CACHE_HOME", "")
    # the XDG spec says to ignore a relative (or empty) value
    base = Path(cache) if cache and os.path.isabs(cache) else Path.home() / ".cache"
    return base / "optbench" / "data"


def resolve_root(root: str | os.PathLike | None) -> Path:
    """The data root: the config value (``~`` expanded, made absolute) or the per-user cache."""
    if root is None or str(root) == "":
        return default_data_root()
    return Path(os.path.abspath(os.path.expanduser(os.fspath(root))))


def raw_folder(name: str, root: str | os.PathLike) -> Path:
    """``<root>/MNIST/raw`` or ``<root>/FashionMNIST/raw``: where torchvision reads the files."""
    return Path(root) / DATASETS[check_name(name)] / "raw"


def check_name(name: str) -> str:
    if name not in DATASETS:
        raise OptbenchError(
            f"Unknown image dataset {name!r}: the image-classification problem knows "
            f"{', '.join(sorted(DATASETS))}. Set dataset=mnist or dataset=fashion_mnist."
        )
    return name


# ----------------------------------------------------------------------------- IDX checks


def _kind(filename: str) -> str:
    return "images" if "-images-" in filename else "labels"


def read_idx_header(path: Path, kind: str) -> tuple[int, ...]:
    """Validate an uncompressed IDX file's header and size; return its dimensions.

    Raises ``ValueError`` with the reason (the caller names the file).
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            magic = f.read(4)
            if magic != _MAGIC[kind]:
                if magic[:2] == b"\x1f\x8b":
                    raise ValueError("it is gzip-compressed but has no .gz suffix")
                raise ValueError(
                    f"its header is {magic.hex() or 'empty'}, not the IDX {kind} header "
                    f"{_MAGIC[kind].hex()} (unsigned bytes, {3 if kind == 'images' else 1} dimensions)"
                )
            ndim = _MAGIC[kind][3]
            header = f.read(4 * ndim)
    except OSError as exc:
        raise ValueError(f"it cannot be read ({exc.strerror or exc})") from None
    if len(header) < 4 * ndim:
        raise ValueError("it is truncated inside its header")
    dims = tuple(int.from_bytes(header[4 * i : 4 * i + 4], "big") for i in range(ndim))
    expected = 4 + 4 * ndim + math.prod(dims)
    if size != expected:
        shape = " x ".join(map(str, dims))
        how = "truncated" if size < expected else "too long"
        raise ValueError(f"it is {how}: {size} bytes, but its header ({shape}) implies {expected}")
    if kind == "images" and dims[1:] != IMAGE_SIZE:
        raise ValueError(f"its images are {dims[1]} x {dims[2]}, not 28 x 28")
    return dims


def _corrupt(path: Path, reason: str, name: str, fix: str | None = None) -> OptbenchError:
    fix = fix or (
        f"Delete it and put a good copy of {path.name} (or {path.name}.gz) in {path.parent}, "
        "or run with dataset.download=true to fetch it again"
    )
    return OptbenchError(f"The {TITLES[name]} file {path} is not a valid IDX file: {reason}. {fix}.")


# ----------------------------------------------------------------------------- extraction


def _install(src: Path, dest: Path, name: str) -> None:
    """Gunzip (or copy) ``src`` to ``dest`` atomically: a temp file in dest's folder, checked, renamed."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise OptbenchError(
            f"Cannot write the {TITLES[name]} files into {dest.parent} ({exc.strerror or exc}). "
            "Point dataset.root=... at a writable folder (it gets a "
            f"{DATASETS[name]}/raw subfolder)."
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                opener = gzip.open if src.suffix == ".gz" else open
                with opener(src, "rb") as inp:
                    shutil.copyfileobj(inp, out, 1 << 20)
            except (OSError, EOFError, zlib.error) as exc:
                if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
                    raise  # a write error (disk full...): reported below
                raise _corrupt(
                    src,
                    f"it cannot be {'decompressed' if src.suffix == '.gz' else 'read'} ({exc})",
                    name,
                    fix=f"Replace or delete it (torchvision reads {dest} once it exists)",
                ) from None
        try:
            read_idx_header(tmp, _kind(dest.name))
        except ValueError as exc:
            raise _corrupt(src, f"after decompression, {exc}", name, fix="Replace or delete it") from None
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except OSError as exc:
        raise OptbenchError(
            f"Cannot write {dest} ({exc.strerror or exc}). Free some space or point "
            "dataset.root=... at another folder."
        ) from None
    finally:
        with suppress(OSError):
            tmp.unlink()


def fill_missing_raw_files(name: str, root: Path, system_dir: str | os.PathLike | None) -> list[str]:
    """Extract every missing raw file from a local copy; return the names still missing.

    Sources, in order: ``<raw>/<file>.gz``; for Fashion-MNIST also
    ``<system_dir>/<file>.gz`` and ``<system_dir>/<file>``. Files already present
    are never touched.
    """
    raw = raw_folder(name, root)
    sources = [raw]
    if name == "fashion_mnist" and system_dir:
        sources.append(Path(os.path.expanduser(os.fspath(system_dir))))
    missing = []
    for filename in RAW_FILES:
        dest = raw / filename
        if dest.is_file():
            continue
        candidates = [folder / f"{filename}.gz" for folder in sources]
        candidates += [folder / filename for folder in sources[1:]]
        src = next((c for c in candidates if c.is_file()), None)
        if src is None:
            missing.append(filename)
        else:
            _install(src, dest, name)
    return missing


# ----------------------------------------------------------------------------- messages


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def missing_data_error(
    name: str,
    root: Path,
    missing: list[str],
    system_dir: str | os.PathLike | None,
    download_error: BaseException | None = None,
) -> OptbenchError:
    title, raw = TITLES[name], raw_folder(name, root)
    if download_error is None:
        why = f"{title} is not in {raw} and downloading is off (dataset.download=false)"
    else:
        why = f"{title} is not in {raw} and downloading it failed ({_one_line(download_error)})"
    files = ", ".join(RAW_FILES)
    lacking = "" if len(missing) == len(RAW_FILES) else f" (missing: {', '.join(missing)})"
    text = (
        f"{why}. Put these four files in {raw}, either gzipped (.gz) or uncompressed: "
        f"{files}{lacking}. Or point dataset.root=/path/to/data at a folder whose "
        f"{DATASETS[name]}/raw subfolder holds them"
    )
    if download_error is None:
        text += ", or run with dataset.download=true on a machine with internet access"
    if name == "fashion_mnist":
        where = Path(os.path.expanduser(os.fspath(system_dir))) if system_dir else None
        text += (
            ". On Debian or Ubuntu, `apt-get install dataset-fashion-mnist` installs them in "
            f"{DEFAULT_SYSTEM_DIR}, which optbench reads offline (dataset.system_dir"
            + (f", now {where}" if where and str(where) != DEFAULT_SYSTEM_DIR else "")
            + (")" if where else ", which is now off)")
        )
    return OptbenchError(text + ".")


# ----------------------------------------------------------------------------- loading


def load_image_data(
    name: str,
    root: str | os.PathLike | None,
    download: bool,
    system_dir: str | os.PathLike | None = DEFAULT_SYSTEM_DIR,
) -> ImageData:
    """Load the train and test splits with torchvision's own dataset class.

    Returns torchvision's ``.data`` (uint8 N x 28 x 28) and ``.targets`` (int64)
    untouched. ``system_dir`` is only used for ``fashion_mnist``; a false value
    turns it off.
    """
    check_name(name)
    root = resolve_root(root)
    raw = raw_folder(name, root)
    missing = fill_missing_raw_files(name, root, system_dir)

    from torchvision import datasets  # slow import: only when an image problem is built

    cls = getattr(datasets, DATASETS[name])
    if missing:
        if not download:
            raise missing_data_error(name, root, missing, system_dir)
        try:
            # fetches, MD5-checks and gunzips all four files (and reads the train split)
            cls(str(root), train=True, download=True)
        except Exception as exc:  # URLError, RuntimeError, OSError, ... : never a traceback
            still = [f for f in RAW_FILES if not (raw / f).is_file()]
            raise missing_data_error(name, root, still or missing, system_dir, exc) from None

    counts = {}
    for filename in RAW_FILES:
        path = raw / filename
        if not path.is_file():  # deleted or never written by a "successful" download
            raise missing_data_error(name, root, [filename], system_dir)
        try:
            counts[filename] = read_idx_header(path, _kind(filename))[0]
        except ValueError as exc:
            raise _corrupt(path, str(exc), name) from None
    for split in ("train", "t10k"):
        n_img, n_lab = counts[f"{split}-images-idx3-ubyte"], counts[f"{split}-labels-idx1-ubyte"]
        if n_img != n_lab:
            raise _corrupt(
                raw / f"{split}-labels-idx1-ubyte",
                f"it has {n_lab} labels but {split}-images-idx3-ubyte has {n_img} images",
                name,
            )

    try:
        train = cls(str(root), train=True, download=False)
        test = cls(str(root), train=False, download=False)
    except Exception as exc:
        raise OptbenchError(
            f"torchvision could not read {TITLES[name]} from {raw} ({_one_line(exc)}). "
            "Delete the four files there and put fresh copies in (or run with dataset.download=true)."
        ) from None

    tensors = []
    for split, ds in (("train", train), ("t10k", test)):
        images, labels = ds.data, ds.targets
        # torchvision prefers legacy processed/*.pt caches when present; check what it returned
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != IMAGE_SIZE:
            raise _corrupt(raw / f"{split}-images-idx3-ubyte", "torchvision did not load N x 28 x 28 bytes", name)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= NUM_CLASSES):
            raise _corrupt(
                raw / f"{split}-labels-idx1-ubyte",
                f"its labels run from {int(labels.min())} to {int(labels.max())}, not 0..9",
                name,
            )
        tensors += [images, labels.long()]
    return ImageData(*tensors)
