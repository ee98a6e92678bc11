"""The cached data path: normalised image tensors beside the raw files, loaded without torchvision."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import REPO, read_csv, run_config
from idx_files import idx_bytes, write_raw

from optbench.problems import image_cache, images
from optbench.problems.images import NORMALISATION, ImageClassification, make_image_problem

CPU = torch.device("cpu")


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "data"
    write_raw(root, "FashionMNIST")
    return root


def raw(root):
    return root / "FashionMNIST" / "raw"


def load(root, **kwargs):
    return ImageClassification("fashion_mnist", CPU, str(root), download=False, system_dir="", cache=True, **kwargs)


def tensors(p):
    return (*p.train_tensors(), *p.test_tensors())


def no_torchvision(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torchvision's loader ran although the cache is valid")

    monkeypatch.setattr(images, "load_image_data", refuse)


def test_first_load_writes_the_cache_and_the_second_reads_it(root, monkeypatch, capfd):
    first = load(root)
    path = raw(root) / image_cache.CACHE_NAME
    assert path.is_file()
    assert sorted(x.name for x in raw(root).iterdir() if x.name.startswith(image_cache.CACHE_NAME)) == [path.name]
    payload = torch.load(path, weights_only=True)
    header = payload["header"]
    assert header["normalisation"] == NORMALISATION and header["dataset"] == "fashion_mnist"
    for name, record in header["files"].items():
        assert record["size"] == (raw(root) / name).stat().st_size
        assert record["sha256"] == image_cache.sha256(raw(root) / name)
    no_torchvision(monkeypatch)
    second = load(root)
    assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(tensors(first), tensors(second)))
    assert capfd.readouterr().err == ""


def test_direct_construction_does_not_cache_but_the_run_factory_does(root):
    ImageClassification("fashion_mnist", CPU, str(root), download=False, system_dir="")
    assert not (raw(root) / image_cache.CACHE_NAME).exists()
    make_image_problem({"name": "fashion_mnist", "root": str(root), "download": False, "system_dir": ""}, "cpu")
    assert (raw(root) / image_cache.CACHE_NAME).is_file()


def test_cached_run_does_not_import_torchvision(root):
    load(root)  # writes the cache
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO / "tests")!r})
        from conftest import compose_config
        from optbench.config.validate import validate
        from optbench.problems import make_problem
        import torch
        cfg = validate(compose_config("dataset=fashion_mnist", "dataset.root={root}", "dataset.download=false",
                                      "dataset.system_dir=", "model=cnn"))
        problem = make_problem(cfg, torch.device("cpu"))
        assert problem.num_train == 256, problem.num_train
        problem.make_model()
        print("torchvision" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", out.stderr
    assert out.stderr == ""


def test_changed_raw_file_makes_the_cache_stale(root, capfd):
    load(root)
    capfd.readouterr()
    labels = raw(root) / "train-labels-idx1-ubyte"
    new = np.full(256, 3, dtype=np.uint8)  # same size, other bytes
    labels.write_bytes(idx_bytes(new))
    os.utime(labels, ns=(1, 1))
    p = load(root)
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "stale" in err and "train-labels-idx1-ubyte" in err
    assert torch.equal(p.train_tensors()[1], torch.full((256,), 3))
    header = torch.load(raw(root) / image_cache.CACHE_NAME, weights_only=True)["header"]
    assert header["files"]["train-labels-idx1-ubyte"]["sha256"] == image_cache.sha256(labels)
    load(root)
    assert capfd.readouterr().err == ""  # rebuilt: fresh again


def test_touched_but_equal_raw_file_keeps_the_cache(root, monkeypatch, capfd):
    first = load(root)
    capfd.readouterr()
    images_file = raw(root) / "train-images-idx3-ubyte"
    os.utime(images_file, ns=(10**18, 10**18))
    no_torchvision(monkeypatch)
    hashed = []
    real_sha = image_cache.sha256
    monkeypatch.setattr(image_cache, "sha256", lambda path: hashed.append(path.name) or real_sha(path))
    second = load(root)
    assert capfd.readouterr().err == ""
    assert all(torch.equal(a, b) for a, b in zip(tensors(first), tensors(second)))
    assert hashed  # mtimes differed: the files were hashed again
    header = torch.load(raw(root) / image_cache.CACHE_NAME, weights_only=True)["header"]
    assert header["files"]["train-images-idx3-ubyte"]["mtime_ns"] == 10**18  # refreshed
    hashed.clear()
    load(root)
    assert hashed == []  # sizes and mtimes match now: no hashing


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "foreign"])
def test_corrupt_cache_is_rebuilt_with_a_notice(root, capfd, damage):
    first = load(root)
    capfd.readouterr()
    path = raw(root) / image_cache.CACHE_NAME
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a tensor file" * 100)
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # loads, but holds the wrong things
        torch.save({"header": {"format": 1, "dataset": "fashion_mnist", "counts": {"train": 256, "test": 64},
                               "files": {}}, "train_images": torch.zeros(3)}, path)
    p = load(root)
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "corrupt" in err and str(path) in err
    assert all(torch.equal(a, b) for a, b in zip(tensors(first), tensors(p)))
    load(root)
    assert capfd.readouterr().err == ""


def test_other_normalisation_rebuilds(root, capfd):
    load(root)
    capfd.readouterr()
    path = raw(root) / image_cache.CACHE_NAME
    payload = torch.load(path, weights_only=True)
    payload["header"]["normalisation"] = {"scale": 255.0, "mean": 0.1307, "std": 0.3081}
    torch.save(payload, path)
    load(root)
    assert "another normalisation" in capfd.readouterr().err
    assert torch.load(path, weights_only=True)["header"]["normalisation"] == NORMALISATION


def test_read_only_folder_runs_uncached_without_error(root, monkeypatch, capfd):
    folder = raw(root)
    os.chmod(folder, 0o555)
    try:
        if os.geteuid() == 0:  # root writes anyway: make the write fail the way a read-only mount does
            def read_only(*args, **kwargs):
                raise OSError(30, "Read-only file system")

            monkeypatch.setattr(image_cache.tempfile, "mkstemp", read_only)
        p = load(root)
    finally:
        os.chmod(folder, 0o755)
    assert p.num_train == 256
    assert not (folder / image_cache.CACHE_NAME).exists()
    assert sorted(x.name for x in folder.iterdir()) == sorted(
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
    assert capfd.readouterr().err == ""


def test_failed_write_keeps_the_old_cache_and_leaves_no_temp_file(root, monkeypatch):
    load(root)
    path = raw(root) / image_cache.CACHE_NAME
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(image_cache.torch, "save", disk_full)
    p = load(root)
    assert not image_cache.store("fashion_mnist", raw(root), tensors(p), NORMALISATION,
                                 image_cache.file_records(raw(root), list(image_cache_files())))
    assert path.read_bytes() == before
    assert not [x for x in raw(root).iterdir() if x.name.endswith(".part")]


def image_cache_files():
    from optbench.problems.image_data import RAW_FILES

    return RAW_FILES


def test_cache_can_be_turned_off(root, monkeypatch):
    monkeypatch.setenv("OPTBENCH_DATA_CACHE", "0")
    load(root)
    assert not (raw(root) / image_cache.CACHE_NAME).exists()


def test_cold_and_warm_runs_record_the_same_losses(tmp_path, root):
    args = ("dataset=fashion_mnist", f"dataset.root={root}", "dataset.download=false", "dataset.system_dir=",
            "steps=8", "log_every=2", "batch_size=32", "threads=1")
    cold = run_config(tmp_path / "cold", *args)
    assert (raw(root) / image_cache.CACHE_NAME).is_file()
    warm = run_config(tmp_path / "warm", *args)
    assert cold["status"] == warm["status"] == "completed"

    def losses(name):
        return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in read_csv(tmp_path / name / "losses.csv")]

    assert losses("cold") == losses("warm") and losses("cold")
    assert cold["final"] == warm["final"] and cold["config_hash"] == warm["config_hash"]
