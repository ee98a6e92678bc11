"""The stacked model's pieces: its Linear layer's gradients, and each problem's batched per-member loss."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_config

from optbench.config.validate import validate
from optbench.problems import make_problem
from optbench.vectorized.stack import StackedModel, _Outputs, _StackedLinear

CPU = torch.device("cpu")


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("input_grad", [True, False])
def test_stacked_linear_has_exact_first_and_second_derivatives(with_bias, input_grad):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=input_grad)
    weight = torch.randn(3, 2, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, 2, dtype=torch.float64, requires_grad=True) if with_bias else None
    inputs = (x, weight, bias)
    assert torch.autograd.gradcheck(_StackedLinear.apply, inputs)
    assert torch.autograd.gradgradcheck(_StackedLinear.apply, inputs)


def test_stacked_linear_is_each_members_own_linear_and_its_gradients_have_the_leaves_layout():
    torch.manual_seed(1)
    k, batch, n_in, n_out = 4, 3, 7, 5
    x = torch.randn(k, batch, n_in, requires_grad=True)
    weight = torch.randn(k, n_out, n_in, requires_grad=True)
    bias = torch.randn(k, n_out, requires_grad=True)
    upstream = torch.randn(k, batch, n_out)
    out = _StackedLinear.apply(x, weight, bias)
    (out * upstream).sum().backward()
    for i in range(k):
        xi, wi, bi = (t.detach()[i].clone().requires_grad_() for t in (x, weight, bias))
        own = torch.nn.functional.linear(xi, wi, bi)
        (own * upstream[i]).sum().backward()
        torch.testing.assert_close(out[i], own, rtol=1e-6, atol=1e-6)
        for stacked, single in ((x, xi), (weight, wi), (bias, bi)):
            torch.testing.assert_close(stacked.grad[i], single.grad, rtol=1e-6, atol=1e-6)
    assert weight.grad.is_contiguous() and weight.grad.stride() == weight.stride()


def _problem(*overrides: str):
    cfg = validate(compose_config("quiet=true", *overrides))
    return make_problem(cfg, CPU)


def _members(problem, k: int, batch: int, seed: int):
    """``k`` models of ``problem`` (seeded), one batch, and that batch stacked for the ``k`` members."""
    torch.manual_seed(seed)
    models = [problem.make_model() for _ in range(k)]
    one = next(problem.batches(batch, torch.Generator().manual_seed(0)))
    return models, one, tuple(t.expand(k, *t.shape) for t in one)


def _stacked_outputs(problem, k: int, batch: int):
    models, (inputs, _), (_, targets) = _members(problem, k, batch, seed=2)
    outputs = torch.stack([m(inputs) for m in models]).detach().requires_grad_()
    return outputs, targets.contiguous()


@pytest.mark.parametrize("dataset", ["linreg", "mnist"])
def test_member_losses_are_each_members_own_loss_with_its_own_gradient(dataset, mnist_root):
    extra = [f"dataset.root={mnist_root}", "dataset.download=false", "model.hidden=[8]"] if dataset == "mnist" else []
    problem = _problem(f"dataset={dataset}", *extra)
    outputs, targets = _stacked_outputs(problem, k=3, batch=16)
    batched = problem.member_losses(outputs, targets)
    (grad_batched,) = torch.autograd.grad(batched.sum(), outputs)
    own = torch.stack([problem.loss(_Outputs(), (outputs[i], targets[i])) for i in range(3)])
    (grad_own,) = torch.autograd.grad(own.sum(), outputs)
    assert batched.shape == (3,)
    torch.testing.assert_close(batched, own, rtol=1e-6, atol=0)
    torch.testing.assert_close(grad_batched, grad_own, rtol=1e-6, atol=1e-9)
    assert len(set(batched.tolist())) == 3  # each member's own outputs, not one member's loss repeated


def test_a_problem_without_member_losses_is_vmapped_and_one_with_them_is_not(mnist_root, monkeypatch):
    quadratic = _problem("dataset=quadratic")
    assert quadratic.member_losses(torch.zeros(2, 1, 1), torch.zeros(2, 1)) is None

    problem = _problem("dataset=linreg")
    models, _, stacked_batch = _members(problem, k=2, batch=10, seed=3)
    stacked = StackedModel(problem, models)
    vmapped_calls = []
    real_vmap = torch.vmap
    monkeypatch.setattr(torch, "vmap", lambda *a, **kw: vmapped_calls.append(1) or real_vmap(*a, **kw))
    direct = stacked.losses(stacked_batch)
    assert vmapped_calls == []
    monkeypatch.setattr(type(problem), "member_losses", lambda self, outputs, targets: None)
    vmapped = stacked.losses(stacked_batch)
    assert vmapped_calls == [1]
    torch.testing.assert_close(direct, vmapped, rtol=1e-6, atol=0)


def test_a_loss_changed_without_its_batched_twin_is_vmapped(mnist_root, monkeypatch):
    problem = _problem("dataset=mnist", f"dataset.root={mnist_root}", "dataset.download=false", "model.hidden=[8]")
    models, batch, stacked_batch = _members(problem, k=3, batch=16, seed=5)
    assert StackedModel(problem, models, probe=stacked_batch).batched_loss

    def smoothed(self, model, batch):  # a variant's loss; member_losses stays the plain cross-entropy
        inputs, targets = batch
        return torch.nn.functional.cross_entropy(model(inputs), targets, label_smoothing=0.1)

    monkeypatch.setattr(type(problem), "loss", smoothed)
    stacked = StackedModel(problem, models, probe=stacked_batch)
    assert stacked.kind == "bmm" and not stacked.batched_loss
    own = torch.stack([smoothed(problem, m, batch) for m in models])
    torch.testing.assert_close(stacked.losses(stacked_batch), own, rtol=1e-5, atol=0)
