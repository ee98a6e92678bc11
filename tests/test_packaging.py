"""The built wheel carries conf/, and an installed ``optbench`` composes its config anywhere."""

from __future__ import annotations

import site
import subprocess
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, build_wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


def test_wheel_contains_every_yaml(wheel):
    in_repo = {p.relative_to(REPO / "conf").as_posix() for p in (REPO / "conf").rglob("*.yaml")}
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = {n.removeprefix("optbench/conf/") for n in archive.namelist() if n.startswith("optbench/conf/")}
        entry_points = archive.read(next(n for n in archive.namelist() if n.endswith("entry_points.txt"))).decode()
    assert in_repo and in_repo <= in_wheel
    assert "__init__.py" in in_wheel
    assert "optbench = optbench.entry:main" in entry_points
    assert "optbench-plot = optbench.plot.cli:main" in entry_points


def _running_site_dirs() -> list[str]:
    """Where this interpreter finds its packages (a virtual environment's own, or the system's)."""
    paths = sysconfig.get_paths()
    dirs = [*site.getsitepackages(), paths["purelib"], paths["platlib"]]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir()]


def test_installed_wheel_composes_config_outside_the_repo(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    # a venv's system_site_packages are the *base* interpreter's: when the tests run inside a virtual
    # environment, torch & co. live in that environment instead, so a .pth adds its package folders
    # (after the new venv's own, which holds the wheel; .pth files in them, like an editable install's, are not read)
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    site_dir = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
    (Path(site_dir) / "zz_running_interpreter.pth").write_text("\n".join(_running_site_dirs()) + "\n")
    with zipfile.ZipFile(wheel) as archive:  # install = unpack the wheel into the venv (no network, no pip)
        archive.extractall(site_dir)
    script = env_dir / "bin" / "optbench"
    script.write_text(f"#!{python}\nfrom optbench.cli import main\nmain()\n")
    script.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(python), "-c", "import optbench.conf, optbench; print(optbench.__file__)"],
                           check=True, capture_output=True, text=True, cwd=elsewhere).stdout
    assert where.startswith(site_dir), "the venv must import the wheel's optbench, not the repo's"
    composed = subprocess.run([str(script), "--cfg", "job", "dataset=mnist"], capture_output=True, text=True, cwd=elsewhere)
    assert composed.returncode == 0, composed.stderr
    assert "name: mnist" in composed.stdout and "lr: 0.001" in composed.stdout
    run = subprocess.run([str(script), "dataset=quadratic", "quiet=true"], capture_output=True, text=True, cwd=elsewhere)
    assert run.returncode == 0, run.stderr
    assert list((elsewhere / "outputs").rglob("losses.csv"))
