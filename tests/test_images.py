"""The image-classification problem: torchvision loading, extraction, errors, normalisation, training."""

from __future__ import annotations

import gzip
import os
import socket
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from idx_files import RAW_FILES, idx_bytes, write_files, write_raw
from torchvision.datasets.utils import extract_archive

from optbench.errors import OptbenchError
from optbench.problems import image_data
from optbench.problems.image_data import DEFAULT_SYSTEM_DIR, default_data_root
from optbench.problems.images import ImageClassification, make_image_problem, normalise_images

CPU = torch.device("cpu")
FOLDER = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
TV_CLASS = {"MNIST": torchvision.datasets.MNIST, "FashionMNIST": torchvision.datasets.FashionMNIST}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a connection fails at once (and loudly) instead of reaching the network."""

    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def data_tf(x):
    """Seed 000's transform, verbatim."""
    x = np.array(x, dtype="float32") / 255
    x = (x - 0.5) / 0.5  # 标准化，这个技巧之后会讲到
    x = x.reshape((-1,))  # 拉平
    x = torch.from_numpy(x)
    return x


def problem(name: str, root: Path, system_dir="", download=False) -> ImageClassification:
    # system_dir="" keeps the machine's /usr/share/datasets/fashion-mnist out of the synthetic tests
    return ImageClassification(name, CPU, str(root), download=download, system_dir=system_dir)


# ----------------------------------------------------------------------------- the IDX helper


@pytest.mark.parametrize("folder", ["MNIST", "FashionMNIST"])
def test_helper_files_load_with_real_torchvision(tmp_path, folder):
    arrays = write_raw(tmp_path, folder)
    for train, prefix in ((True, "train"), (False, "t10k")):
        ds = TV_CLASS[folder](str(tmp_path), train=train, download=False)
        assert ds.data.dtype == torch.uint8
        assert torch.equal(ds.data, torch.from_numpy(arrays[f"{prefix}-images-idx3-ubyte"]))
        assert torch.equal(ds.targets, torch.from_numpy(arrays[f"{prefix}-labels-idx1-ubyte"]).long())
    assert len(TV_CLASS[folder](str(tmp_path), train=True)) == 256
    assert len(TV_CLASS[folder](str(tmp_path), train=False)) == 64
    assert sorted(ds.targets.unique().tolist()) == list(range(10))


@pytest.mark.parametrize("folder", ["MNIST", "FashionMNIST"])
def test_helper_gz_files_load_with_real_torchvision(tmp_path, folder):
    arrays = write_raw(tmp_path, folder, gz=True)
    raw = tmp_path / folder / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(f"{f}.gz" for f in RAW_FILES)
    for f in RAW_FILES:
        assert gzip.decompress((raw / f"{f}.gz").read_bytes()) == idx_bytes(arrays[f])
        extract_archive(str(raw / f"{f}.gz"))  # what torchvision's download does with a fetched .gz
    ds = TV_CLASS[folder](str(tmp_path), train=True, download=False)
    assert torch.equal(ds.data, torch.from_numpy(arrays["train-images-idx3-ubyte"]))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_problem_reads_gz_files_put_in_raw_folder(tmp_path, name):
    arrays = write_raw(tmp_path, FOLDER[name], gz=True)
    p = problem(name, tmp_path)
    assert p.num_train == 256 and p.num_test == 64
    assert torch.equal(p.train_tensors()[1], torch.from_numpy(arrays["train-labels-idx1-ubyte"]).long())
    raw = tmp_path / FOLDER[name] / "raw"
    assert all((raw / f).is_file() for f in RAW_FILES)
    assert not list(raw.glob("*.part"))


# ----------------------------------------------------------------------------- normalisation


def test_normalisation_matches_seed_data_tf(tmp_path):
    write_raw(tmp_path, "MNIST")
    p = problem("mnist", tmp_path)
    seed_set = torchvision.datasets.MNIST(str(tmp_path), train=True, transform=data_tf, download=False)
    seed_test = torchvision.datasets.MNIST(str(tmp_path), train=False, transform=data_tf, download=False)
    inputs, targets = p.train_tensors()
    assert inputs.shape == (256, 784) and inputs.dtype == torch.float32 and inputs.device == CPU
    for i in (0, 1, 17, 128, 255):
        x, y = seed_set[i]  # PIL image -> data_tf
        assert torch.equal(inputs[i], x)
        assert int(targets[i]) == y
    for i in (0, 63):
        x, y = seed_test[i]
        assert torch.equal(p.test_tensors()[0][i], x)
        assert int(p.test_tensors()[1][i]) == y


def test_normalisation_is_exact_for_every_byte_value():
    values = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16)
    expected = data_tf(values.numpy()[0])
    assert torch.equal(normalise_images(values)[0], expected)
    assert float(normalise_images(values).min()) == -1.0 and float(normalise_images(values).max()) == 1.0


# ----------------------------------------------------------------------------- missing / corrupt data


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_missing_files_offline_name_folder_and_files(tmp_path, name):
    empty_system = tmp_path / "no-system-copy"
    with pytest.raises(OptbenchError) as err:
        problem(name, tmp_path / "data", system_dir=str(empty_system))
    msg = str(err.value)
    raw = tmp_path / "data" / FOLDER[name] / "raw"
    assert str(raw) in msg
    for f in RAW_FILES:
        assert f in msg
    assert ".gz" in msg and "dataset.root=" in msg and "dataset.download=true" in msg
    assert "\n" not in msg
    assert ("apt-get install dataset-fashion-mnist" in msg) == (name == "fashion_mnist")


def test_partly_missing_files_say_which(tmp_path):
    write_raw(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(OptbenchError, match=r"missing: t10k-labels-idx1-ubyte\)"):
        problem("mnist", tmp_path)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_failed_download_is_a_message(tmp_path, monkeypatch, name):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)
    with pytest.raises(OptbenchError) as err:
        problem(name, tmp_path, download=True)
    msg = str(err.value)
    assert "downloading it failed" in msg and "name resolution" in msg
    assert str(tmp_path / FOLDER[name] / "raw") in msg and all(f in msg for f in RAW_FILES)
    assert "\n" not in msg and err.value.__suppress_context__


def test_truncated_idx_file_is_named(tmp_path):
    write_raw(tmp_path, "MNIST")
    bad = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(OptbenchError, match="truncated") as err:
        problem("mnist", tmp_path)
    assert str(bad) in str(err.value)


def test_idx_file_with_wrong_header_is_named(tmp_path):
    write_raw(tmp_path, "MNIST")
    bad = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    bad.write_bytes(b"<html>not found</html>")
    with pytest.raises(OptbenchError, match="not a valid IDX file") as err:
        problem("mnist", tmp_path)
    assert str(bad) in str(err.value)


def test_label_count_mismatch_and_range_are_named(tmp_path):
    arrays = write_raw(tmp_path, "MNIST")
    labels = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(arrays["train-labels-idx1-ubyte"][:-1]))
    with pytest.raises(OptbenchError, match="255 labels but train-images-idx3-ubyte has 256"):
        problem("mnist", tmp_path)
    labels.write_bytes(idx_bytes(np.full(256, 12, dtype=np.uint8)))
    with pytest.raises(OptbenchError, match="not 0..9") as err:
        problem("mnist", tmp_path)
    assert str(labels) in str(err.value)


def test_corrupt_gz_is_named_and_leaves_nothing_behind(tmp_path):
    system = tmp_path / "system"
    write_files(system, gz=True)
    bad = system / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:500])
    with pytest.raises(OptbenchError) as err:
        problem("fashion_mnist", tmp_path / "data", system_dir=str(system))
    assert str(bad) in str(err.value)
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    assert not (raw / "train-images-idx3-ubyte").exists()
    assert not list(raw.glob(".*"))  # no temp file left


# ----------------------------------------------------------------------------- Fashion-MNIST system copy


def test_fashion_extracts_system_dir_once_and_loads_offline(tmp_path, monkeypatch):
    system = tmp_path / "usr-share"
    arrays = write_files(system, gz=True)
    root = tmp_path / "data"
    p = problem("fashion_mnist", root, system_dir=str(system))
    raw = root / "FashionMNIST" / "raw"
    assert sorted(x.name for x in raw.iterdir()) == sorted(RAW_FILES)  # no .part, no .gz copies
    for f in RAW_FILES:
        assert (raw / f).read_bytes() == idx_bytes(arrays[f])
    assert p.num_train == 256 and p.num_test == 64
    stamps = {f: ((raw / f).stat().st_ino, (raw / f).stat().st_mtime_ns) for f in RAW_FILES}

    def no_extraction(*args, **kwargs):
        raise AssertionError("extracted again although the raw files exist")

    monkeypatch.setattr(image_data, "_install", no_extraction)
    again = problem("fashion_mnist", root, system_dir=str(system))
    assert torch.equal(again.train_tensors()[0], p.train_tensors()[0])
    assert stamps == {f: ((raw / f).stat().st_ino, (raw / f).stat().st_mtime_ns) for f in RAW_FILES}


def test_existing_raw_files_win_over_system_dir(tmp_path):
    system = tmp_path / "system"
    write_files(system, gz=True, seed=5)
    mine = write_raw(tmp_path / "data", "FashionMNIST", seed=0)
    p = problem("fashion_mnist", tmp_path / "data", system_dir=str(system))
    assert torch.equal(p.train_tensors()[1], torch.from_numpy(mine["train-labels-idx1-ubyte"]).long())


def test_mnist_ignores_system_dir(tmp_path):
    system = tmp_path / "system"
    write_files(system, gz=True)
    with pytest.raises(OptbenchError, match="MNIST is not in"):
        problem("mnist", tmp_path / "data", system_dir=str(system))


def test_real_debian_fashion_mnist(tmp_path):
    system = Path(DEFAULT_SYSTEM_DIR)
    present = system.is_dir() and all((system / f"{f}.gz").is_file() for f in RAW_FILES)
    assert present, (
        f"Debian's Fashion-MNIST is not in {system}: run `sudo apt-get install dataset-fashion-mnist` "
        "(CI installs it; this test must not be skipped)"
    )
    p = ImageClassification("fashion_mnist", CPU, str(tmp_path), download=False)  # default system_dir
    x, y = p.train_tensors()
    tx, ty = p.test_tensors()
    assert x.shape == (60000, 784) and tx.shape == (10000, 784)
    assert y.shape == (60000,) and ty.shape == (10000,)
    assert y.dtype == ty.dtype == torch.int64
    assert torch.equal(torch.bincount(y), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(ty), torch.full((10,), 1000))
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert sorted(f.name for f in (tmp_path / "FashionMNIST" / "raw").iterdir()) == sorted(RAW_FILES)


# ----------------------------------------------------------------------------- the problem contract


def test_training_reduces_loss_and_evaluate(tmp_path):
    write_raw(tmp_path, "MNIST")
    p = problem("mnist", tmp_path)
    assert p.has_test_set and p.step_column_names == ()
    torch.manual_seed(0)
    model = p.make_model()
    assert [tuple(m.weight.shape) for m in model if isinstance(m, torch.nn.Linear)] == [(200, 784), (10, 200)]
    full = p.train_tensors()
    before = p.loss(model, full).item()
    first = p.evaluate(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(0)
    steps = 0
    for _ in range(3):
        for batch in p.batches(32, gen):
            opt.zero_grad()
            loss = p.loss(model, batch)
            assert loss.ndim == 0
            loss.backward()
            opt.step()
            steps += 1
    assert steps == 3 * p.steps_per_epoch(32) == 24
    after = p.loss(model, full).item()
    assert after < 0.5 * before
    metrics = p.evaluate(model)
    assert set(metrics) == {"test_loss", "test_acc"}
    assert 0.0 <= metrics["test_acc"] <= 1.0 and 0.0 <= first["test_acc"] <= 1.0
    assert metrics["test_loss"] < first["test_loss"]
    assert metrics["test_acc"] > 0.8  # the pattern is easy
    assert model.training  # evaluate restores the mode


def test_evaluate_chunks_agree_with_one_pass(tmp_path):
    write_raw(tmp_path, "MNIST", n_test=100)
    p = problem("mnist", tmp_path)
    torch.manual_seed(1)
    model = p.make_model()
    x, y = p.test_tensors()
    with torch.no_grad():
        logits = model(x)
    p.eval_chunk = 7
    metrics = p.evaluate(model)
    assert metrics["test_loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-6)
    assert metrics["test_acc"] == pytest.approx((logits.argmax(1) == y).float().mean().item())


def test_make_model_uses_callers_seed(tmp_path):
    write_raw(tmp_path, "MNIST")
    p = problem("mnist", tmp_path)
    torch.manual_seed(3)
    a = p.make_model()
    torch.manual_seed(3)
    b = p.make_model()
    assert all(torch.equal(u, v) for u, v in zip(a.parameters(), b.parameters()))


def test_batches_are_a_seeded_permutation(tmp_path):
    write_raw(tmp_path, "MNIST")
    p = problem("mnist", tmp_path)
    x, y = p.train_tensors()
    batches = list(p.batches(64, torch.Generator().manual_seed(4)))
    assert [b[0].shape for b in batches] == [(64, 784)] * 4
    seen = torch.cat([b[0] for b in batches])
    again = torch.cat([b[0] for b in p.batches(64, torch.Generator().manual_seed(4))])
    assert torch.equal(seen, again) and not torch.equal(seen, x)
    assert torch.allclose(seen.sum(0), x.sum(0))
    assert torch.equal(torch.bincount(torch.cat([b[1] for b in batches])), torch.bincount(y))


# ----------------------------------------------------------------------------- factory and root


def test_factory_and_default_root(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_data_root() == tmp_path / "cache" / "optbench" / "data"
    write_raw(tmp_path / "cache" / "optbench" / "data", "MNIST")
    p = make_image_problem({"name": "mnist", "root": None, "download": False}, "cpu")
    assert p.root == tmp_path / "cache" / "optbench" / "data" and p.num_train == 256
    assert isinstance(p.device, torch.device)

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_root() == tmp_path / "home" / ".cache" / "optbench" / "data"


def test_factory_accepts_omegaconf_and_system_dir(tmp_path):
    from omegaconf import OmegaConf

    system = tmp_path / "system"
    write_files(system, gz=True)
    cfg = OmegaConf.create(
        {"dataset": {"name": "fashion_mnist", "root": str(tmp_path / "d"), "download": False, "system_dir": str(system)}}
    )
    p = make_image_problem(cfg.dataset, torch.device("cpu"))
    assert p.name == "fashion_mnist" and p.num_test == 64


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(OptbenchError, match="dataset=mnist or dataset=fashion_mnist"):
        problem("cifar10", tmp_path)


def test_root_expands_user(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_raw(tmp_path / "d", "MNIST")
    assert problem("mnist", "~/d").root == tmp_path / "d"


def test_no_stray_files_written(tmp_path):
    write_raw(tmp_path, "MNIST")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    problem("mnist", tmp_path)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert os.listdir(tmp_path) == ["MNIST"]
