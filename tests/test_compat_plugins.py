"""``compat.register_hydra_plugins``: Hydra's plugin scan finds ``hydra/launcher=vectorized``, installed either way.

Each check runs in a fresh interpreter: Hydra scans for plugins once per process. A
Hydra that changes how it discovers plugins (the ``hydra_plugins`` namespace walked
with ``pkgutil``) fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO, build_wheel

PLUGIN = "hydra_plugins.optbench_vectorized_launcher.VectorizedLauncher"
PLUGIN_FILE = "optbench/_hydra_plugins/hydra_plugins/optbench_vectorized_launcher/__init__.py"

#: what Hydra's scan finds, and where the plugin class comes from
SCAN = """
import json, sys
{before}
from optbench import compat
compat.register_hydra_plugins()
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
found = {{f"{{c.__module__}}.{{c.__name__}}": c for c in Plugins.instance().discover(Launcher)}}
plugin = found.get("{plugin}")
print(json.dumps({{"launchers": sorted(found), "accepted": Plugins.is_in_toplevel_plugins_module("{plugin}"),
                   "file": sys.modules[plugin.__module__].__file__ if plugin else None,
                   "base": plugin.__mro__[1].__module__ if plugin else None}}))
"""


def scan(before: str = "", env: dict | None = None, cwd: Path | None = None) -> dict:
    done = subprocess.run([sys.executable, "-c", SCAN.format(before=before, plugin=PLUGIN)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})}, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_hydra_finds_the_launcher_once_the_shim_ran():
    found = scan()
    assert PLUGIN in found["launchers"] and found["accepted"]
    assert found["base"] == "optbench.vectorized.launcher"
    assert Path(found["file"]).resolve() == (REPO / PLUGIN_FILE).resolve()


def test_the_shim_works_after_hydra_plugins_was_imported():
    assert PLUGIN in scan(before="import hydra_plugins")["launchers"]


def test_off_switch_leaves_the_launcher_undiscovered():
    # without the shim Hydra does not see it: the shim is what makes it work (an editable install included)
    found = scan(env={"OPTBENCH_SHIMS_OFF": "hydra_plugins"})
    assert PLUGIN not in found["launchers"]
    assert "hydra._internal.core_plugins.basic_launcher.BasicLauncher" in found["launchers"]


def test_the_wheel_ships_the_plugin_and_its_hydra_finds_it(tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert PLUGIN_FILE in names
        assert "optbench/vectorized/launcher.py" in names and "optbench/conf/hydra/launcher/vectorized.yaml" in names
        archive.extractall(tmp_path / "site")
    # the unpacked wheel comes first on sys.path (the editable install's finder comes after the path finder)
    found = scan(env={"PYTHONPATH": str(tmp_path / "site")}, cwd=tmp_path)
    assert PLUGIN in found["launchers"]
    assert Path(found["file"]).resolve().is_relative_to((tmp_path / "site").resolve())


# --------------------------------------------------------------------------- compose_sweep_jobs_once


class CountingLoader:
    """A config loader that composes a fresh object per call and counts the calls."""

    def __init__(self):
        self.calls = 0

    def load_sweep_config(self, master_config, sweep_overrides):
        self.calls += 1
        return {"overrides": list(sweep_overrides), "call": self.calls}


def test_the_sweepers_validation_composes_each_job_and_the_launcher_reuses_it(monkeypatch):
    from hydra.plugins.sweeper import Sweeper
    from hydra.types import HydraContext

    from optbench.compat import compose_sweep_jobs_once

    monkeypatch.setenv("OPTBENCH_SHIMS_OFF", "compose_by_shape")  # compose_once alone, over a counting loader
    loader = CountingLoader()
    take = compose_sweep_jobs_once(loader)
    batch = [["seed=0"], ["seed=1"]]

    class Validating:  # what Hydra's own Sweeper.validate_batch_is_legal reads
        hydra_context = HydraContext(config_loader=loader, callbacks=None)
        config = {"hydra": {}}

    Sweeper.validate_batch_is_legal(Validating(), batch)  # Hydra's code: it must go through the remembered loader
    assert loader.calls == 2
    first = [take(Validating.config, job) for job in batch]
    assert loader.calls == 2 and [c["overrides"] for c in first] == batch  # no second composition
    again = take(Validating.config, batch[0])  # handed out once: a later request composes afresh
    assert loader.calls == 3 and again["call"] == 3


def test_compose_once_off_switch_composes_twice(monkeypatch):
    from optbench.compat import compose_sweep_jobs_once

    monkeypatch.setenv("OPTBENCH_SHIMS_OFF", "compose_once,compose_by_shape")
    loader = CountingLoader()
    take = compose_sweep_jobs_once(loader)
    loader.load_sweep_config(master_config=None, sweep_overrides=["seed=0"])
    take(None, ["seed=0"])
    assert loader.calls == 2 and "load_sweep_config" not in vars(loader)


# --------------------------------------------------------------------------- ShapeComposer

#: jobs of one sweep: plain values, group choices before and after values, appends, deletions,
#: hydra overrides, lists, a key set twice, and quoted strings
SHAPE_CASES = [
    ["optimizer.lr=0.01", "seed=3"],
    ["optimizer.lr=0.02", "seed=4"],
    ["optimizer=adam", "optimizer.lr=0.01"],
    ["optimizer.lr=0.02", "optimizer=adam"],
    ["optimizer=adam", "~optimizer.weight_decay", "seed=1"],
    ["dataset=quadratic", "steps=50", "+extra.note=hi"],
    ["hydra.job.name=renamed", "seed=1"],
    ["dataset=fashion_mnist", "model.hidden=[512,256]", "model=mlp"],
    ["seed=1", "seed=2"],
    ["schedule.kind=cosine", "optimizer.lr='1e-3'"],
]


def sweep_loader():
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from optbench import compat

    compat.register_hydra_plugins()
    context = initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None)
    context.__enter__()
    loader = GlobalHydra.instance().config_loader()
    master = loader.load_configuration("config", ["hydra/launcher=vectorized", "hydra.launcher.max_group=4"],
                                       run_mode=RunMode.MULTIRUN)
    return context, loader, master


def test_the_shape_composer_gives_hydras_own_config_for_every_kind_of_override():
    from omegaconf import OmegaConf

    from optbench.compat import ShapeComposer

    context, loader, master = sweep_loader()
    try:
        composer = ShapeComposer(loader)
        shapes = []
        composer.full = lambda **kw: shapes.append(kw["sweep_overrides"]) or loader.load_sweep_config(**kw)
        for case in SHAPE_CASES:
            ours, hydras = composer(master, case), loader.load_sweep_config(master, case)
            assert OmegaConf.to_container(ours) == OmegaConf.to_container(hydras), case
            assert OmegaConf.is_struct(ours) and not OmegaConf.is_readonly(ours.hydra)
            assert ours.hydra.job.override_dirname == hydras.hydra.job.override_dirname, case
        # one composition per set of group choices (and hydra overrides), not one per job
        assert shapes.count([]) == 1 and shapes.count(["optimizer=adam"]) == 1
        assert len(shapes) == 5
    finally:
        context.__exit__(None, None, None)


def test_the_shape_composer_refuses_what_hydra_refuses_with_hydras_message():
    import pytest
    from hydra.errors import ConfigCompositionException

    from optbench.compat import ShapeComposer

    context, loader, master = sweep_loader()
    try:
        composer = ShapeComposer(loader)
        for bad in (["optimizer.nope=1"], ["nope=1", "seed=2"], ["seed=1,2"]):
            with pytest.raises(Exception) as hydras:
                loader.load_sweep_config(master, bad)
            with pytest.raises(type(hydras.value)) as ours:
                composer(master, bad)
            assert str(ours.value) == str(hydras.value), bad
        assert isinstance(hydras.value, ConfigCompositionException)
    finally:
        context.__exit__(None, None, None)


def test_compose_by_shape_off_switch_leaves_hydras_composition(monkeypatch):
    from optbench.compat import ShapeComposer, compose_sweep_jobs_once

    monkeypatch.setenv("OPTBENCH_SHIMS_OFF", "compose_by_shape,compose_once")
    loader = CountingLoader()
    assert compose_sweep_jobs_once(loader) == loader.load_sweep_config
    monkeypatch.setenv("OPTBENCH_SHIMS_OFF", "compose_once")
    assert isinstance(compose_sweep_jobs_once(loader), ShapeComposer)
