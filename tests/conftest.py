"""Shared helpers: compose a config in-process, run it into a temp folder, run the CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from optbench.config.validate import validate
from optbench.train.console import RunConsole

REPO = Path(__file__).resolve().parents[1]


def compose_config(*overrides: str):
    """Hydra's composition of conf/ with ``overrides``, untyped (as the CLI gets it)."""
    GlobalHydra.instance().clear()
    with initialize_config_module("optbench.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


def run_config(run_dir: Path, *overrides: str) -> dict:
    """Validate and train in-process; return summary.json's content."""
    from optbench.train.run import execute

    cfg = validate(compose_config(*overrides))
    return execute(cfg, run_dir, list(overrides), RunConsole(quiet=True))


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def read_summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())


def cli(*args: str, cwd: Path, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed ``optbench`` console script."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(["optbench", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)


def build_wheel(out: Path, timeout: float = 300) -> Path:
    """Build optbench's wheel into ``out`` from a copy of the source tree, so that concurrent builds (xdist
    workers, a developer's own ``pip install``) never share setuptools' ``build/`` and ``*.egg-info`` folders."""
    import shutil

    source = Path(out) / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "outputs", "multirun",
                                                                  "__pycache__", ".pytest_cache", ".ruff_cache"))
    # --no-build-isolation: the build backend (setuptools) is already installed and there is no internet
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(source)], check=True, capture_output=True, text=True, cwd=out, timeout=timeout)
    (wheel,) = Path(out).glob("optbench-*.whl")
    return wheel


def run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in Path(root).rglob("summary.json"))


@pytest.fixture
def mnist_root(tmp_path):
    """A data root holding small valid MNIST IDX files in torchvision's raw layout."""
    from idx_files import write_raw

    root = tmp_path / "data"
    write_raw(root, "MNIST")
    return root


sys.path.insert(0, str(REPO / "tests"))

from slurm_cluster import slurm_cluster  # noqa: E402,F401  (session fixture: a real one-node SLURM cluster)


def wait_for_rows(path: Path, rows: int, proc, timeout: float = 120) -> None:
    """Wait until ``path`` has more than ``rows`` lines while ``proc`` (a subprocess.Popen) keeps running."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) > rows:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"{path} did not reach {rows} rows in time")


@pytest.fixture
def small_disk(tmp_path):
    """A 96 KiB tmpfs (the tests run as root, as CI does)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)], capture_output=True)
    assert done.returncode == 0, f"mounting a tmpfs needs root: {done.stderr!r}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)])


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items):
    """Every test that uses the session's SLURM cluster runs on one xdist worker, so one cluster starts."""
    for item in items:
        if "slurm_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("slurm"))
