"""The cached data path: an image dataset's normalised tensors in one file beside its raw files.

The first load goes through torchvision (download, first parse, see ``image_data``);
afterwards ``<root>/<ClassName>/raw/optbench-normalised.pt`` holds the four tensors the
problem keeps (float32 N x 784 images, already normalised, and int64 labels), so later
runs neither import torchvision (about 3 s) nor normalise again.

The file is ``torch.save`` of a dict of tensors plus a header of plain values, read back
with ``weights_only=True``. Its key is the header: the format, the dataset, the
normalisation constants, and for each raw file its size and sha256 (hashed once, when the
cache is written), with its mtime. A read compares sizes and mtimes only; when they
differ the raw files are hashed again: equal hashes keep the cache (its header is
refreshed), different ones make it stale. A stale, corrupt or foreign cache is rebuilt
from the raw files, with a one-line notice on stderr. Writing is atomic (a temp file in
the same folder, then ``os.replace``), so concurrent jobs never see half a file, and a
folder that cannot be written (read-only, full) just goes uncached, without an error.
``OPTBENCH_DATA_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path

import torch

CACHE_NAME = "optbench-normalised.pt"
#: bump when the stored tensors' layout or meaning changes
CACHE_FORMAT = 1
TENSOR_KEYS = ("train_images", "train_labels", "test_images", "test_labels")
NUM_CLASSES = 10


def enabled() -> bool:
    return os.environ.get("OPTBENCH_DATA_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def cache_path(raw: Path) -> Path:
    return Path(raw) / CACHE_NAME


def notice(text: str) -> None:
    """One line on stderr (the run's console owns stdout)."""
    print(f"optbench: {text}", file=sys.stderr, flush=True)


def file_stats(raw: Path, files: Sequence[str]) -> dict[str, dict]:
    out = {}
    for name in files:
        st = (Path(raw) / name).stat()
        out[name] = {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}
    return out


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_records(raw: Path, files: Sequence[str]) -> dict[str, dict]:
    """Size, mtime and sha256 of each raw file: the cache's key."""
    records = file_stats(raw, files)
    for name, record in records.items():
        record["sha256"] = sha256(Path(raw) / name)
    return records


def _header(dataset: str, normalisation: Mapping, records: Mapping) -> dict:
    return {"format": CACHE_FORMAT, "dataset": dataset, "normalisation": dict(normalisation), "files": dict(records)}


def _check_tensors(payload: Mapping, counts: Mapping[str, int], features: int) -> tuple[torch.Tensor, ...]:
    tensors = tuple(payload[k] for k in TENSOR_KEYS)
    for split in ("train", "test"):
        images, labels = payload[f"{split}_images"], payload[f"{split}_labels"]
        n = counts[split]
        if not (isinstance(images, torch.Tensor) and images.dtype == torch.float32 and tuple(images.shape) == (n, features)):
            raise ValueError(f"its {split} images are not float32 {n} x {features}")
        if not (isinstance(labels, torch.Tensor) and labels.dtype == torch.int64 and tuple(labels.shape) == (n,)):
            raise ValueError(f"its {split} labels are not int64 of length {n}")
        if n and (int(labels.min()) < 0 or int(labels.max()) >= NUM_CLASSES):
            raise ValueError(f"its {split} labels are not 0..9")
    return tensors


def load(dataset: str, raw: Path, files: Sequence[str], normalisation: Mapping, features: int):
    """The cached tensors (train images, train labels, test images, test labels), or None to rebuild.

    None without a word when there is no cache; with a one-line notice when it is
    corrupt, from another format or normalisation, or stale (the raw files changed).
    """
    path = cache_path(raw)
    if not enabled() or not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        header = payload["header"]
        if header.get("format") != CACHE_FORMAT or header.get("dataset") != dataset:
            raise ValueError(f"it is format {header.get('format')!r} for {header.get('dataset')!r}")
        counts = {"train": int(header["counts"]["train"]), "test": int(header["counts"]["test"])}
        tensors = _check_tensors(payload, counts, features)
        recorded = header["files"]
        if sorted(recorded) != sorted(files):
            raise ValueError("it names other raw files")
    except Exception as exc:  # truncated, not a zip, foreign pickle, missing keys, wrong shapes...
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        notice(f"the data cache {path} is unreadable or corrupt ({reason}); rebuilding it from the raw files.")
        return None
    if dict(header.get("normalisation", {})) != dict(normalisation):
        notice(f"the data cache {path} was made with another normalisation; rebuilding it from the raw files.")
        return None
    try:
        now = file_stats(raw, files)
    except OSError:
        return None
    same_stats = all(now[f]["size"] == recorded[f]["size"] and now[f]["mtime_ns"] == recorded[f]["mtime_ns"]
                     for f in files)
    if same_stats:
        return tensors
    changed = [f for f in files if now[f]["size"] != recorded[f]["size"]]
    if not changed:
        try:
            changed = [f for f in files if sha256(Path(raw) / f) != recorded[f]["sha256"]]
        except OSError:
            return None
    if changed:
        notice(f"the data cache {path} is stale ({', '.join(changed)} changed); rebuilding it from the raw files.")
        return None
    # touched but equal: keep the tensors, and record the new mtimes so the next run need not hash
    tensors = tuple(t.clone() for t in tensors)  # detach from the mapped file before replacing it
    records = {f: {**now[f], "sha256": recorded[f]["sha256"]} for f in files}
    store(dataset, raw, tensors, normalisation, records)
    return tensors


def writable(raw: Path) -> bool:
    return enabled() and os.access(raw, os.W_OK | os.X_OK)


def store(dataset: str, raw: Path, tensors: Sequence[torch.Tensor], normalisation: Mapping,
          records: Mapping[str, dict]) -> bool:
    """Write the cache atomically; False (and nothing left behind) when the folder cannot take it."""
    path = cache_path(raw)
    header = _header(dataset, normalisation, records)
    header["counts"] = {"train": int(tensors[0].shape[0]), "test": int(tensors[2].shape[0])}
    payload = {"header": header, **{k: t.detach().cpu().contiguous() for k, t in zip(TENSOR_KEYS, tensors)}}
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{CACHE_NAME}.", suffix=".part", dir=raw)
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
        return True
    except (OSError, RuntimeError):  # read-only, disk full, too large: run uncached
        return False
    finally:
        if tmp is not None:
            with suppress(OSError):
                os.unlink(tmp)
