"""The optimizer registry: configs match schemas and the source documents, every name
builds, refusals are OptbenchErrors naming the fix, aliases resolve."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest
import torch
from omegaconf import OmegaConf
from optim_cases import CONF, load, one_thread  # noqa: F401  (one_thread: autouse fixture)
from torch import nn

from optbench.errors import OptbenchError
from optbench.optim.registry import OPTIMIZERS, build_optimizer, hyperparameters, resolve_aliases

SCRATCH = ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adadelta"]
BUILTIN_ONLY = ["adamax", "asgd", "rprop", "lbfgs", "adamw", "nadam", "radam", "sparse_adam"]


# The source documents' defaults (seed 002 unless noted).
SEED_DEFAULTS = {
    "sgd": {"lr": 1e-2},
    "momentum": {"lr": 1e-2, "momentum": 0.9},
    "adagrad": {"lr": 1e-2, "eps": 1e-10},
    "rmsprop": {"lr": 1e-3, "alpha": 0.9, "eps": 1e-10,  # seeds 000/002
                "momentum": 0.0, "centered": False, "weight_decay": 0.0},  # seed 004's off switches
    "adam": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
    "adadelta": {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0},  # lr: torch's 1.0 (seed: none)
}


def test_the_registry_lists_every_optimizer_and_every_config_file_has_an_entry():
    assert sorted(OPTIMIZERS) == sorted(SCRATCH + BUILTIN_ONLY)
    assert sorted(p.stem for p in CONF.glob("*.yaml")) == sorted(OPTIMIZERS)
    assert all(OPTIMIZERS[n].scratch is not None for n in SCRATCH)
    assert all(OPTIMIZERS[n].scratch is None for n in BUILTIN_ONLY)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_yaml_keys_equal_schema_fields(name):
    spec, node = OPTIMIZERS[name], load(name)
    fields = dataclasses.fields(spec.schema)
    assert list(node) == [f.name for f in fields]
    assert node["name"] == name
    assert node["impl"] == ("scratch" if spec.scratch else "builtin")
    for f in fields:
        if f.name in spec.aliases or f.name == "eps_in_sqrt":
            # aliases and the scratch-only eps_in_sqrt: Optional, default None
            assert f.default is None and node[f.name] is None
        else:
            assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    typed = OmegaConf.merge(OmegaConf.structured(spec.schema), node)  # the YAML fits the types
    assert pickle.loads(pickle.dumps(typed)) == typed  # the generated schema is importable


EPS_IN_SQRT = ["rmsprop", "adagrad", "adam"]


@pytest.mark.parametrize("name", SCRATCH)
def test_yaml_defaults_are_the_source_documents(name):
    hp = hyperparameters(load(name))
    if name in EPS_IN_SQRT:  # null: each implementation's own eps placement (scratch: the seeds')
        assert hp.pop("eps_in_sqrt") is None
        assert inspect.signature(OPTIMIZERS[name].scratch).parameters["eps_in_sqrt"].default is True
    assert hp == SEED_DEFAULTS[name]
    # the scratch constructor's defaults say the same
    sig = inspect.signature(OPTIMIZERS[name].scratch).parameters
    assert {k: sig[k].default for k in SEED_DEFAULTS[name]} == SEED_DEFAULTS[name]


@pytest.mark.parametrize("name", BUILTIN_ONLY)
def test_builtin_only_yaml_defaults_are_torchs(name):
    spec = OPTIMIZERS[name]
    kwargs = spec.to_torch(hyperparameters(load(name)))
    kwargs.pop("foreach", None)
    sig = inspect.signature(spec.builtin).parameters
    assert kwargs == {k: sig[k].default for k in kwargs}


def test_to_torch_maps_split_keys_back_to_torch_tuples():
    adam = hyperparameters(load("adam"))
    assert OPTIMIZERS["adam"].to_torch(adam) == {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                                                 "weight_decay": 0.0, "foreach": True}
    rprop = OPTIMIZERS["rprop"].to_torch(hyperparameters(load("rprop")))
    assert rprop["etas"] == (0.5, 1.2) and rprop["step_sizes"] == (1e-6, 50.0)
    adagrad = OPTIMIZERS["adagrad"].to_torch(hyperparameters(load("adagrad")))
    assert adagrad["initial_accumulator_value"] == 0 and adagrad["lr_decay"] == 0
    assert "foreach" not in OPTIMIZERS["lbfgs"].to_torch(hyperparameters(load("lbfgs")))


def problem():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    return model, lambda: ((model(x) - y) ** 2).mean()


RUNNABLE = [(n, "scratch") for n in SCRATCH] + [(n, "builtin") for n in OPTIMIZERS if n != "sparse_adam"]


@pytest.mark.parametrize("name, impl", RUNNABLE)
def test_build_and_one_step_reduces_the_loss(name, impl):
    model, loss_fn = problem()
    opt = build_optimizer(model.parameters(), name, impl, hyperparameters(load(name)))
    assert isinstance(opt, OPTIMIZERS[name].scratch if impl == "scratch" else OPTIMIZERS[name].builtin)
    before = loss_fn().item()

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    if OPTIMIZERS[name].needs_closure:
        opt.step(closure)
    else:
        closure()
        opt.step()
    assert loss_fn().item() < before


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adam", "adamw", "rprop"])
def test_builtins_take_the_foreach_path(name):
    model, _ = problem()
    opt = build_optimizer(model.parameters(), name, "builtin", hyperparameters(load(name)))
    assert opt.param_groups[0]["foreach"] is True


def test_sparse_adam_is_refused_with_the_fix():
    model, _ = problem()
    with pytest.raises(OptbenchError, match="sparse gradients") as err:
        build_optimizer(model.parameters(), "sparse_adam", "builtin", hyperparameters(load("sparse_adam")))
    assert "optimizer=adam" in str(err.value)
    assert OPTIMIZERS["sparse_adam"].refusal == str(err.value)


@pytest.mark.parametrize("name", [n for n in BUILTIN_ONLY if n != "sparse_adam"])
def test_scratch_on_builtin_only_is_refused(name):
    model, _ = problem()
    with pytest.raises(OptbenchError, match="optimizer.impl=builtin") as err:
        build_optimizer(model.parameters(), name, "scratch", hyperparameters(load(name)))
    assert all(n in str(err.value) for n in SCRATCH)


def test_unknown_name_and_bad_impl_are_refused():
    model, _ = problem()
    with pytest.raises(OptbenchError) as err:
        build_optimizer(model.parameters(), "adamm", "scratch", {})
    assert "adamm" in str(err.value) and all(n in str(err.value) for n in OPTIMIZERS)
    with pytest.raises(OptbenchError, match="scratch.*builtin"):
        build_optimizer(model.parameters(), "sgd", "torch", {"lr": 0.1})


def test_wrong_keys_and_bad_values_are_refused():
    model, _ = problem()
    with pytest.raises(OptbenchError, match="lr, alpha, eps"):
        build_optimizer(model.parameters(), "rmsprop", "scratch", {"lr": 0.1})
    for impl in ("scratch", "builtin"):
        with pytest.raises(OptbenchError, match="rejected"):
            build_optimizer(model.parameters(), "sgd", impl, {"lr": -1.0})


def test_aliases():
    rms = load("rmsprop")
    assert hyperparameters({**rms, "gamma": 0.999})["alpha"] == 0.999  # seed 001's name
    assert hyperparameters({**rms, "rho": 0.95})["alpha"] == 0.95  # seed 004's name
    assert resolve_aliases("rmsprop", {"alpha": 0.9, "gamma": 0.999}) == {"alpha": 0.999}
    assert resolve_aliases("rmsprop", {"alpha": 0.9, "gamma": None, "rho": None}) == {"alpha": 0.9}
    assert resolve_aliases("rmsprop", {"alpha": 0.9, "gamma": 0.99, "rho": 0.99}) == {"alpha": 0.99}
    with pytest.raises(OptbenchError, match="gamma.*rho|rho.*gamma"):
        resolve_aliases("rmsprop", {"alpha": 0.9, "gamma": 0.99, "rho": 0.95})
    assert hyperparameters({**load("momentum"), "gamma": 0.5}) == {"lr": 1e-2, "momentum": 0.5}
    assert set(hyperparameters(rms)) == {*SEED_DEFAULTS["rmsprop"], "eps_in_sqrt"}  # no name/impl/alias keys
    model, _ = problem()  # build_optimizer resolves aliases too
    opt = build_optimizer(model.parameters(), "rmsprop", "builtin", {**hyperparameters(rms), "gamma": 0.999})
    assert opt.param_groups[0]["alpha"] == 0.999


@pytest.mark.parametrize("name", EPS_IN_SQRT)
def test_eps_in_sqrt_is_scratch_only(name):
    """null (the YAML default): scratch puts eps inside the root (group flag True), builtin
    outside; false: both outside (builtin accepts it: that is what torch does); true with
    impl=builtin is refused, naming the fix. Missing altogether: as null."""
    model, _ = problem()
    hp = hyperparameters(load(name))
    assert build_optimizer(model.parameters(), name, "scratch", hp).param_groups[0]["eps_in_sqrt"] is True
    off = {**hp, "eps_in_sqrt": False}
    assert build_optimizer(model.parameters(), name, "scratch", off).param_groups[0]["eps_in_sqrt"] is False
    assert "eps_in_sqrt" not in OPTIMIZERS[name].to_torch(off)
    for value in (None, False):
        build_optimizer(model.parameters(), name, "builtin", {**hp, "eps_in_sqrt": value})
    with pytest.raises(OptbenchError, match="eps_in_sqrt=true has no torch.optim equivalent.*Fix:.*impl=scratch"):
        build_optimizer(model.parameters(), name, "builtin", {**hp, "eps_in_sqrt": True})
    legacy = {k: v for k, v in hp.items() if k != "eps_in_sqrt"}
    assert build_optimizer(model.parameters(), name, "scratch", legacy).param_groups[0]["eps_in_sqrt"] is True


def test_eps_in_sqrt_true_with_builtin_is_refused_by_validation():
    from conftest import compose_config

    from optbench.config.validate import validate

    with pytest.raises(OptbenchError, match="eps_in_sqrt") as err:
        validate(compose_config("optimizer=adam", "optimizer.impl=builtin", "optimizer.eps_in_sqrt=true"))
    message = str(err.value)
    assert message.count("Fix") == 1 and "\n" not in message and "impl=scratch" in message
    for extra in ("optimizer.eps_in_sqrt=false", "optimizer.impl=scratch"):
        validate(compose_config("optimizer=adam", "optimizer.impl=builtin", extra))
    assert validate(compose_config("optimizer=adam")).optimizer.eps_in_sqrt is None
    with pytest.raises(OptbenchError, match="true or false"):
        validate(compose_config("optimizer.eps_in_sqrt=1"))


def test_old_state_dicts_without_eps_in_sqrt_load_with_the_default():
    model, _ = problem()
    opt = build_optimizer(model.parameters(), "adam", "scratch", hyperparameters(load("adam")))
    saved = opt.state_dict()
    for group in saved["param_groups"]:
        del group["eps_in_sqrt"]
    opt2 = build_optimizer(model.parameters(), "adam", "scratch", hyperparameters(load("adam")))
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["eps_in_sqrt"] is True
