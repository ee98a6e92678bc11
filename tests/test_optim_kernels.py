"""The functional kernels (``<name>_update`` in optbench/optim/<name>.py): hyperparameters as
Python floats or as tensors, including a leading member dimension (K stacked configurations
updated by one call equal K separate calls), and the Optimizer classes as thin callers of them.
"""

from __future__ import annotations

import inspect
import re

import pytest
import torch
from optim_cases import mlp, one_thread  # noqa: F401  (one_thread: autouse fixture)

import optbench.optim as optim_pkg
from optbench.optim import SGD, Adadelta, Adagrad, Adam, Momentum, RMSprop
from optbench.optim.adadelta import adadelta_update
from optbench.optim.adagrad import adagrad_update
from optbench.optim.adam import adam_update
from optbench.optim.momentum import momentum_update
from optbench.optim.rmsprop import rmsprop_update
from optbench.optim.sgd import sgd_update

K = 3
SHAPES = [(4, 5), (5,)]  # a weight and a bias: different ranks
STEPS = 6


# Each case: the kernel, its state buffers per parameter (names), the K members' hyperparameters
# (one dict per member; floats), and fixed keyword flags. Members differ in every hyperparameter.
def _members(**values):
    return [{k: v[m] for k, v in values.items()} for m in range(K)]


CASES = {
    "sgd": (sgd_update, [], _members(lr=[0.1, 0.01, 0.3]), {}),
    "momentum": (momentum_update, ["velocity"], _members(lr=[0.1, 0.01, 0.3], momentum=[0.9, 0.5, 0.0]), {}),
    "adagrad": (adagrad_update, ["sum"], _members(lr=[0.1, 0.01, 0.3], eps=[1e-10, 1e-3, 0.1]), {}),
    "adagrad-eps-outside": (adagrad_update, ["sum"], _members(lr=[0.1, 0.01, 0.3], eps=[1e-10, 1e-3, 0.1]),
                            {"eps_in_sqrt": False}),
    "rmsprop": (rmsprop_update, ["square_avg"],
                _members(lr=[1e-3, 1e-2, 0.1], alpha=[0.9, 0.99, 0.5], eps=[1e-10, 1e-3, 0.1]), {}),
    "rmsprop-all": (rmsprop_update, ["square_avg", "grad_avg", "velocity"],
                    _members(lr=[1e-3, 1e-2, 0.1], alpha=[0.9, 0.99, 0.5], eps=[1e-10, 1e-3, 0.1],
                             momentum=[0.5, 0.9, 0.0], weight_decay=[1e-2, 0.0, 0.1]), {"eps_in_sqrt": False}),
    "adam": (adam_update, ["exp_avg", "exp_avg_sq", "steps"],
             _members(lr=[1e-3, 1e-2, 0.1], beta1=[0.9, 0.5, 0.0], beta2=[0.999, 0.9, 0.5], eps=[1e-8, 1e-3, 0.1],
                      weight_decay=[0.0, 1e-2, 0.1]), {}),
    "adam-eps-outside": (adam_update, ["exp_avg", "exp_avg_sq", "steps"],
                         _members(lr=[1e-3, 1e-2, 0.1], beta1=[0.9, 0.5, 0.0], beta2=[0.999, 0.9, 0.5],
                                  eps=[1e-8, 1e-3, 0.1]), {"eps_in_sqrt": False}),
    "adadelta": (adadelta_update, ["square_avg", "acc_delta"],
                 _members(lr=[1.0, 0.5, 0.1], rho=[0.9, 0.5, 0.99], eps=[1e-6, 1e-3, 0.1],
                          weight_decay=[0.0, 1e-2, 0.1]), {}),
}


def _call(kernel, params, grads, state, buffers, hyper, flags, t):
    lists = [state[b] for b in buffers if b != "steps"]
    if "steps" in buffers:
        lists.append([t] * len(params))
    if kernel is rmsprop_update:  # grad_avgs, velocities are optional positionals
        lists += [None] * (3 - len(lists))
    kernel(params, grads, *lists, **hyper, **flags)


def _grads(t: int, shapes, lead=()):
    g = torch.Generator().manual_seed(100 + t)
    return [torch.randn(*lead, *s, generator=g, dtype=torch.float64) for s in shapes]


def _start(shapes, lead=()):
    g = torch.Generator().manual_seed(7)
    return [torch.randn(*lead, *s, generator=g, dtype=torch.float64) for s in shapes]


def _separate(name, foreach=True):
    """K separate calls per step, one per member, with Python-float hyperparameters."""
    kernel, buffers, members, flags = CASES[name]
    finals = []
    for m, hyper in enumerate(members):
        params = [p[m].clone() for p in _start(SHAPES, (K,))]
        state = {b: [torch.zeros_like(p) for p in params] for b in buffers}
        for t in range(1, STEPS + 1):
            grads = [g[m] for g in _grads(t, SHAPES, (K,))]
            _call(kernel, params, grads, state, buffers, hyper, {**flags, "foreach": foreach}, t)
        finals.append(params)
    return [torch.stack([f[i] for f in finals]) for i in range(len(SHAPES))]


def _stacked(name, foreach=True):
    """One call per step on [K, ...] parameters, each hyperparameter a per-parameter list of
    member-shaped tensors ([K, 1, 1] for the weight, [K, 1] for the bias)."""
    kernel, buffers, members, flags = CASES[name]
    params = _start(SHAPES, (K,))
    state = {b: [torch.zeros_like(p) for p in params] for b in buffers}
    hyper = {}
    for key in members[0]:
        values = torch.tensor([h[key] for h in members], dtype=torch.float64)
        hyper[key] = [values.view(K, *[1] * len(s)) for s in SHAPES]
    for t in range(1, STEPS + 1):
        _call(kernel, params, _grads(t, SHAPES, (K,)), state, buffers, hyper, {**flags, "foreach": foreach}, t)
    return params


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("name", CASES)
def test_k_stacked_members_in_one_call_equal_k_separate_calls(name, foreach):
    for a, b in zip(_stacked(name, foreach), _separate(name)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", CASES)
def test_one_stacked_parameter_with_a_k11_lr(name):
    """A single parameter of shape [K, 4, 5] takes a plain tensor hyperparameter of shape
    [K, 1, 1] (no per-parameter list), as the brief's vectorized engine will pass it."""
    kernel, buffers, members, flags = CASES[name]
    param = _start([(4, 5)], (K,))[0]
    state = {b: [torch.zeros_like(param)] for b in buffers}
    hyper = {k: torch.tensor([h[k] for h in members], dtype=torch.float64).view(K, 1, 1) for k in members[0]}
    separate = []
    for m, h in enumerate(members):
        p = [param[m].clone()]
        st = {b: [torch.zeros_like(p[0])] for b in buffers}
        for t in range(1, STEPS + 1):
            _call(kernel, p, [_grads(t, [(4, 5)], (K,))[0][m]], st, buffers, h, flags, t)
        separate.append(p[0])
    for t in range(1, STEPS + 1):
        _call(kernel, [param], _grads(t, [(4, 5)], (K,)), state, buffers, hyper, flags, t)
    torch.testing.assert_close(param, torch.stack(separate), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", CASES)
def test_0_dim_tensor_hyperparameters_equal_floats(name):
    """What the compiled step passes (a 0-dim lr) computes what the float does."""
    kernel, buffers, members, flags = CASES[name]
    results = []
    for as_tensor in (False, True):
        hyper = {k: torch.tensor(v, dtype=torch.float64) if as_tensor else v for k, v in members[0].items()}
        params = _start(SHAPES)
        state = {b: [torch.zeros_like(p) for p in params] for b in buffers}
        for t in range(1, STEPS + 1):
            _call(kernel, params, _grads(t, SHAPES), state, buffers, hyper, flags, t)
        results.append(params)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


def test_a_per_parameter_list_of_the_wrong_length_is_refused():
    params = _start(SHAPES)
    with pytest.raises(ValueError, match="needs 2 values, got 1"):
        sgd_update(params, _grads(1, SHAPES), lr=[torch.tensor(0.1)])


CLASSES = [(SGD, "sgd", {}), (Momentum, "momentum", {}), (Adagrad, "adagrad", {}), (RMSprop, "rmsprop", {}),
           (RMSprop, "rmsprop", {"momentum": 0.5, "centered": True, "weight_decay": 1e-2}), (Adam, "adam", {}),
           (Adadelta, "adadelta", {})]


@pytest.mark.parametrize("cls, module, kwargs", CLASSES)
def test_the_optimizer_class_calls_its_kernel(monkeypatch, cls, module, kwargs):
    """The class has no formula of its own: replacing its module's kernel replaces its update."""
    mod = __import__(f"optbench.optim.{module}", fromlist=["_"])
    kernel = getattr(mod, f"{module}_update")
    calls = []

    def spy(*args, **kw):
        calls.append(kw)
        return kernel(*args, **kw)

    monkeypatch.setattr(mod, f"{module}_update", spy)
    model = mlp(seed=0)
    opt = cls(model.parameters(), **kwargs)
    model(torch.randn(4, 8, dtype=torch.float64)).sum().backward()
    opt.step()
    assert len(calls) == 1 and calls[0]["lr"] == opt.param_groups[0]["lr"]
    monkeypatch.setattr(mod, f"{module}_update", lambda *a, **k: None)
    before = [p.detach().clone() for p in model.parameters()]
    opt.step()
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))


def test_each_formula_is_written_once():
    """One kernel per optimizer file, and no tensor arithmetic of its own beyond it: the
    list operations, weight decay and momentum live in optbench/optim/functional.py."""
    for module in ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adadelta"):
        source = re.sub(r'""".*?"""', "", inspect.getsource(getattr(optim_pkg, module)), flags=re.S)
        assert source.count("_update(") >= 2  # the definition and the class's call
        assert [line for line in source.splitlines() if line.startswith("def ")] == [
            next(line for line in source.splitlines() if line.startswith(f"def {module}_update"))]
        for banned in ("_foreach", ".addcdiv", ".addcmul", ".sqrt", "momentum *", "weight_decay *"):
            assert banned not in source, (module, banned)


def test_a_tensor_lr_in_the_group_steps_like_the_float():
    """The compiled step's way of passing lr (a 0-dim tensor in param_groups) through step()."""
    finals = []
    for lr in (1e-2, torch.tensor(1e-2, dtype=torch.float64)):
        model = mlp(seed=0)
        opt = RMSprop(model.parameters(), lr=1e-2, momentum=0.5)
        opt.param_groups[0]["lr"] = lr
        for t in range(5):
            opt.zero_grad()
            model(_grads(t, [(16, 8)])[0]).pow(2).sum().backward()
            opt.step()
        finals.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*finals):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
