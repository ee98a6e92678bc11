"""The experiment presets (conf/experiment/*.yaml) compose, and their sweeps give the seeds' runs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

PRESETS = ("sgd_batch_size", "builtin_twins", "rmsprop_alpha", "all_optimizers", "linreg_rmsprop_gamma",
           "quadratic_lr", "quadratic_lr_sweep", "quadratic_momentum")
CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture(scope="module")
def hydra_conf():
    GlobalHydra.instance().clear()
    with initialize_config_module("optbench.conf", version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


GROUPS = ("optimizer", "dataset")
_parser = OverridesParser.create()
_cache: dict = {}


def sweep_jobs(name: str) -> list[list[str]]:
    """Each job's overrides, as Hydra's basic sweeper forms them (cartesian product, in order)."""
    if ("jobs", name) not in _cache:
        cfg = compose("config", overrides=[f"+experiment={name}"], return_hydra_config=True)
        params = OmegaConf.to_container(cfg.hydra.sweeper.params) or {}
        parsed = _parser.parse_overrides([f"{key}={value}" for key, value in params.items()])
        choices = []
        for override in parsed:
            key = override.get_key_element()
            values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.get_value_element_as_str()]
            choices.append([f"{key}={value}" for value in values])
        _cache[("jobs", name)] = [list(combo) for combo in itertools.product(*choices)]
    return _cache[("jobs", name)]


def job_configs(name: str) -> list[dict]:
    """Each job's composed config. Hydra composes once per group choice (``optimizer=adam``);
    value overrides (``optimizer.lr=0.1``) are then set on the result, as Hydra does (and
    composing ~50 jobs one by one would take ~10 s)."""
    configs = []
    for job in sweep_jobs(name):
        groups = tuple(item for item in job if item.split("=", 1)[0] in GROUPS)
        if ("cfg", name, groups) not in _cache:
            _cache[("cfg", name, groups)] = compose("config", overrides=[f"+experiment={name}", *groups])
        cfg = _cache[("cfg", name, groups)].copy()
        for item in job:
            if item.split("=", 1)[0] not in GROUPS:
                override = _parser.parse_override(item)
                absent = object()
                assert OmegaConf.select(cfg, override.key_or_group, default=absent) is not absent, (
                    f"{name}: {item} sets a key the config does not have")
                OmegaConf.update(cfg, override.key_or_group, override.value(), merge=False)
        configs.append(OmegaConf.to_container(cfg, resolve=True))
    return configs


def test_every_preset_file_is_a_global_package():
    for name in PRESETS:
        assert (CONF / "experiment" / f"{name}.yaml").read_text().startswith("# @package _global_")


@pytest.mark.parametrize("name", PRESETS)
def test_preset_composes_and_every_job_passes_validation(hydra_conf, name):
    from optbench.config.validate import validate  # the runner's own checks (schema incl. `plot`)

    configs = job_configs(name)
    assert len(configs) >= 2
    for config in configs:
        validate(OmegaConf.create(config))


def test_sgd_batch_size(hydra_conf):
    points = {(c["batch_size"], c["optimizer"]["lr"]) for c in job_configs("sgd_batch_size")}
    assert {(1, 0.01), (64, 0.01), (64, 1.0)} <= points  # seed 002, plus lr 1 / batch 1 (cartesian)
    assert all(c["dataset"]["name"] == "mnist" and c["optimizer"]["name"] == "sgd" for c in job_configs("sgd_batch_size"))


def test_builtin_twins(hydra_conf):
    configs = job_configs("builtin_twins")
    pairs = [(c["optimizer"]["name"], c["optimizer"]["impl"]) for c in configs]
    assert pairs == [(n, i) for n in ("momentum", "adagrad", "rmsprop", "adam", "adadelta") for i in ("scratch", "builtin")]
    by_name = {c["optimizer"]["name"]: c["optimizer"] for c in configs}
    assert by_name["momentum"]["momentum"] == 0.9 and by_name["adadelta"]["rho"] == 0.9  # seed 002


def test_rmsprop_alpha(hydra_conf):
    configs = job_configs("rmsprop_alpha")
    points = {(c["optimizer"]["impl"], c["optimizer"]["alpha"]) for c in configs}
    assert {("scratch", 0.9), ("scratch", 0.999), ("builtin", 0.9)} <= points
    assert all(c["optimizer"]["lr"] == 1e-3 and c["optimizer"]["eps"] == 1e-10 and c["dataset"]["name"] == "mnist"
               for c in configs)


def test_all_optimizers(hydra_conf):
    names = [c["optimizer"]["name"] for c in job_configs("all_optimizers")]
    assert names == ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adadelta"]


def test_linreg_rmsprop_gamma(hydra_conf):
    configs = job_configs("linreg_rmsprop_gamma")
    assert [c["optimizer"]["alpha"] for c in configs] == [0.9, 0.999]
    for c in configs:
        assert c["dataset"]["name"] == "linreg" and c["batch_size"] == 10 and c["epochs"] == 3
        assert c["optimizer"]["lr"] == 0.03 and c["optimizer"]["eps"] == 1e-8
        assert c["plot"]["y"] == "full_loss"


def test_quadratic_lr(hydra_conf):
    configs = job_configs("quadratic_lr")
    assert [c["optimizer"]["lr"] for c in configs] == [1.0, 0.5, 0.2, 0.125]
    assert all(c["dataset"]["name"] == "quadratic" and c["steps"] == 4 and c["plot"] == {"x": "step", "linear": True}
               for c in configs)


def test_quadratic_lr_sweep_is_numpy_linspace(hydra_conf):
    configs = job_configs("quadratic_lr_sweep")
    assert [c["optimizer"]["lr"] for c in configs] == np.linspace(0.01, 0.2, 10).tolist()
    assert all(c["steps"] == 100 and c["optimizer"]["name"] == "sgd" for c in configs)


def test_quadratic_momentum(hydra_conf):
    configs = job_configs("quadratic_momentum")
    points = [(c["optimizer"]["lr"], c["optimizer"]["momentum"]) for c in configs]
    assert points == [(0.01, 0.0), (0.01, 0.63), (0.01, 0.9), (0.03, 0.0), (0.03, 0.63), (0.03, 0.9)]
    assert all(c["optimizer"]["name"] == "momentum" and c["optimizer"]["impl"] == "builtin" and c["steps"] == 100
               for c in configs)
