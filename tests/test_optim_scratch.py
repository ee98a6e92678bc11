"""Scratch optimizers behave like torch.optim optimizers: lr schedulers drive them,
state_dict() round trips are exact, foreach and single-tensor paths agree, closures work,
params without a gradient are skipped."""

from __future__ import annotations

import io

import pytest
import torch
from optim_cases import mlp, one_thread, params_of  # noqa: F401  (one_thread: autouse fixture)
from torch import nn

from optbench.optim import SGD, Adadelta, Adagrad, Adam, Momentum, RMSprop

# (class, kwargs): every scratch optimizer at its seed defaults, plus variants that
# switch on the optional branches (momentum, centered, weight decay).
CASES = {
    "sgd": (SGD, {}),
    "momentum": (Momentum, {}),
    "adagrad": (Adagrad, {}),
    "rmsprop": (RMSprop, {}),
    "rmsprop-momentum-centered-wd": (RMSprop, {"momentum": 0.5, "centered": True, "weight_decay": 1e-2}),
    "adam": (Adam, {}),
    "adam-wd": (Adam, {"weight_decay": 1e-2}),
    "adadelta": (Adadelta, {}),
    "adadelta-wd": (Adadelta, {"weight_decay": 1e-2}),
}


def make_model() -> nn.Module:
    return mlp(seed=0)


def batch(t: int):
    g = torch.Generator().manual_seed(1000 + t)
    return torch.randn(32, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (32,), generator=g)


def train_step(model, opt, t: int) -> None:
    x, y = batch(t)
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def make(name, model, **override):
    cls, kwargs = CASES[name]
    return cls(model.parameters(), **{**kwargs, **override})


def velocity(opt) -> list[torch.Tensor] | None:
    """The seed-form velocity v (theta -= v), for optimizers that keep one."""
    states = [opt.state[p] for p in opt.param_groups[0]["params"]]
    if "velocity" not in states[0]:
        return None
    return [s["velocity"].clone() for s in states]


@pytest.mark.parametrize("name", CASES)
def test_steplr_changes_lr_and_the_update_uses_it(name):
    """StepLR(step_size=3, gamma=0.1) sets param_groups[0]['lr'] to lr0/10 after 3 steps,
    and the 4th update is the one for lr0/10: given the same state and gradient, the
    step is linear in lr, i.e. -step = m*v + lr*u (m*v only for momentum forms), so the
    scheduled step dA and the constant-lr step dB satisfy dA - dB = (0.1 - 1) * (dB + m*v)."""
    model_a, model_b = make_model(), make_model()
    opt_a, opt_b = make(name, model_a), make(name, model_b)
    lr0 = opt_a.param_groups[0]["lr"]
    sched = torch.optim.lr_scheduler.StepLR(opt_a, step_size=3, gamma=0.1)
    for t in range(3):
        train_step(model_a, opt_a, t)
        train_step(model_b, opt_b, t)
        sched.step()
    assert opt_a.param_groups[0]["lr"] == pytest.approx(0.1 * lr0, rel=1e-15)
    assert opt_b.param_groups[0]["lr"] == lr0
    before = params_of(model_a)
    assert all(torch.equal(p, q) for p, q in zip(before, params_of(model_b)))
    v = velocity(opt_a)
    m = opt_a.param_groups[0].get("momentum", 0.0)
    train_step(model_a, opt_a, 3)
    train_step(model_b, opt_b, 3)
    for i, (p0, pa, pb) in enumerate(zip(before, params_of(model_a), params_of(model_b))):
        d_a, d_b = pa - p0, pb - p0
        carried = m * v[i] if v is not None else 0.0
        expected = d_b + (0.1 - 1.0) * (d_b + carried)
        torch.testing.assert_close(d_a, expected, rtol=1e-9, atol=1e-15)
        assert not torch.allclose(d_a, d_b)


@pytest.mark.parametrize("name", CASES)
def test_state_dict_round_trip_is_bitwise(name):
    """Save after 5 steps, load into a fresh model + optimizer, 5 more steps: identical
    to 10 uninterrupted steps, bit for bit (params and optimizer state)."""
    model = make_model()
    opt = make(name, model)
    for t in range(5):
        train_step(model, opt, t)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    for t in range(5, 10):
        train_step(model, opt, t)

    buf.seek(0)
    saved = torch.load(buf)
    resumed = make_model()
    resumed.load_state_dict(saved["model"])
    opt2 = make(name, resumed, lr=123.0)  # the loaded param_groups must win over the constructor's
    opt2.load_state_dict(saved["opt"])
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for t in range(5, 10):
        train_step(resumed, opt2, t)

    for p, q in zip(model.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    for p, q in zip(model.parameters(), resumed.parameters()):
        s1, s2 = opt.state[p], opt2.state[q]
        assert s1.keys() == s2.keys()
        for key in s1:
            assert torch.equal(torch.as_tensor(s1[key]), torch.as_tensor(s2[key])), key


@pytest.mark.parametrize("name", CASES)
def test_foreach_matches_single_tensor_path(name):
    """The multi-tensor path computes the readable single-tensor reference update."""
    model_a, model_b = make_model(), make_model()
    opt_a, opt_b = make(name, model_a, foreach=True), make(name, model_b, foreach=False)
    for t in range(50):
        train_step(model_a, opt_a, t)
        train_step(model_b, opt_b, t)
    for p, q in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-13, atol=0)


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("name", CASES)
def test_closure_and_params_without_grad(name, foreach):
    """step(closure) evaluates the closure with grad enabled and returns its loss, and the
    update equals the one after a manual backward; a param whose grad is None is left
    untouched and gets no state."""
    model_a, model_b = make_model(), make_model()
    frozen = nn.Parameter(torch.ones(4, dtype=torch.float64))
    opt_a = CASES[name][0]([*model_a.parameters(), frozen], **CASES[name][1], foreach=foreach)
    opt_b = make(name, model_b, foreach=foreach)
    x, y = batch(0)

    def closure():
        opt_a.zero_grad()
        loss = nn.functional.cross_entropy(model_a(x), y)
        loss.backward()
        return loss

    with torch.no_grad():  # step() must turn grad on for the closure itself
        loss = opt_a.step(closure)
    train_step(model_b, opt_b, 0)
    assert loss.item() == pytest.approx(nn.functional.cross_entropy(make_model()(x), y).item())
    for p, q in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(p, q)
    assert frozen.grad is None and torch.equal(frozen, torch.ones(4, dtype=torch.float64))
    assert frozen not in opt_a.state


@pytest.mark.parametrize("name", CASES)
def test_multiple_param_groups(name):
    """Each param group uses its own lr (a second group with lr 0 does not move)."""
    model = make_model()
    first, second = list(model[0].parameters()), list(model[2].parameters())
    cls, kwargs = CASES[name]
    opt = cls([{"params": first}, {"params": second, "lr": 0.0}], **kwargs)
    frozen = [p.detach().clone() for p in second]
    moving = [p.detach().clone() for p in first]
    train_step(model, opt, 0)
    assert all(torch.equal(p, q) for p, q in zip(second, frozen))
    assert not any(torch.equal(p, q) for p, q in zip(first, moving))
