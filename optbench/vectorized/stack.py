"""K models of one architecture as one: parameters ``[K, ...]``, a forward over members, per-member losses.

The stacked parameters are the leaves autograd and the optimizer see
(``torch.func.stack_module_state``). Each member's own ``nn.Module`` stays alive, its
parameters re-pointed at slice ``i`` of the stacked leaves (``Parameter.data`` set to
a view), so the problem's ``step_columns``, ``evaluate`` and ``report``, and the
checkpoint writer, read member ``i``'s current weights with no copy.

Two forwards, the same numbers (to float rounding):

* **stacked matmul** for a chain of ``nn.Linear`` layers and elementwise activations
  (the ``mlp`` and ``linear`` models): each layer is one ``baddbmm`` over members,
  ``x[K, B, in] @ W[K, in, out] + b[K, 1, out]``. When every member trains on the same batches (one seed, shared data: a sweep over
  hyperparameters at a fixed seed), the first layer is ONE matrix product of the
  batch with all members' weights side by side, ``x[B, in] @ W[in, K * out]``, and its
  weight gradient one more: wider products run faster than K narrow ones (the
  784-200-10 MLP, K = 8, batch 64, 2 threads, forward + backward + SGD: 6.8 ms per
  step batched, 4.4 ms shared);
* **vmap** for any other model (``cnn``, ``scalar``): ``torch.vmap`` of
  ``torch.func.functional_call`` of ``problem.loss`` over members.

Measured here (2 shared, heavily loaded CPU cores, one thread, eager; CPU time of forward +
backward of the summed loss): linreg's Linear(2, 1), K = 64, batch 10: stacked matmul
0.50 ms, vmap 1.5 ms, one sequential member 0.46 ms (the whole group for about one
member's cost); the 784-200-10 MLP, K = 8, batch 64: stacked matmul 18.5 ms, vmap 25 ms,
eight sequential members 18.4 ms (GEMM-bound on this CPU: stacking saves per-step
overhead, not arithmetic). So the stacked matmul is used wherever it applies.

The loss of member i is the problem's own ``loss`` on member i's output: with the
stacked matmul, ``problem.loss`` is vmapped over members with the model replaced by the
identity on the precomputed outputs (valid when the loss is a function of
``model(inputs)`` and the targets; checked once on member 0's first batch, else the
vmap forward is used). A problem whose ``member_losses`` gives the same per-member losses
in one batched call (cross-entropy over ``[K, C, B]``, linreg's squared loss) is called
instead, once it agreed with the vmapped ``loss`` on that first batch (a subclass that
changes ``loss`` and not ``member_losses`` keeps the vmapped loss): K = 8, batch 64,
forward + backward of the loss, 282 -> 81 us. The step backpropagates the SUM over
members of each member's mean loss, so each member's gradient is exactly its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from optbench.problems.base import Batch, LossModule, Problem

#: modules the stacked matmul applies elementwise to ``[K, B, H]`` activations
ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.Identity)


class _StackedLinear(torch.autograd.Function):
    """``x[K, B, in] @ W[K, out, in]^T + b[K, 1, out]``, with each gradient computed in its leaf's own layout.

    The weight gradient is ``g^T @ x`` (``[K, out, in]``, as ``nn.Linear``'s backward computes
    ``g^T @ x`` for one member), not autograd's ``x^T @ g`` of the transposed view, which
    leaves a ``[K, in, out]`` tensor that ``AccumulateGrad`` then copies, transposing, into
    the leaf's layout. Measured here (2 threads, forward + backward of the 784-200-10 MLP):
    K = 16, batch 1: 6.0 -> 0.68 ms; K = 8, batch 64: 5.3 -> 2.3 ms; K = 64, batch 10: 28.7 ->
    13.2 ms. The backward is made of differentiable operations, so double backward works.
    ``ctx`` is set in ``forward``: the ``setup_context`` form, which ``torch.func`` transforms
    need, cost 0.1 ms more per step (K = 16, batch 1, two layers: 0.73 against 0.63 ms), and
    nothing transforms the stacked forward (the loss alone is vmapped, over its outputs).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        weight_t = weight.transpose(1, 2)
        return torch.bmm(x, weight_t) if bias is None else torch.baddbmm(bias.unsqueeze(1), x, weight_t)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_weight = torch.bmm(grad.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


class _Outputs(nn.Module):
    """The identity: hands precomputed outputs to ``problem.loss`` as if it were the model."""

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """(prefix, module) of a Linear/activation chain, or None when the stacked matmul does not apply."""
    if isinstance(model, nn.Linear):
        return [("", model)]
    if isinstance(model, nn.Sequential) and all(isinstance(m, (nn.Linear, *ELEMENTWISE)) for m in model):
        return [(f"{name}.", m) for name, m in model.named_children()]
    return None


class StackedModel:
    """The members' models as one: ``params`` (name -> ``[K, ...]`` leaf) and ``losses(batch) -> [K]``."""

    def __init__(self, problem: Problem, models: Sequence[nn.Module], probe: Batch | None = None,
                 shared_inputs: bool = False):
        if any(True for m in models for _ in m.buffers()):
            raise ValueError("the vectorized engine stacks parameters only; this model has buffers")
        self.problem, self.models = problem, list(models)
        params, _ = torch.func.stack_module_state(self.models)
        self.params: dict[str, torch.Tensor] = params
        self.names = list(params)
        with torch.no_grad():
            for i, model in enumerate(self.models):
                for name, p in model.named_parameters():
                    p.data = params[name].detach()[i]
        self._chain = _layers(self.models[0])
        if self._chain is not None and probe is not None and not self._loss_reads_outputs_only(probe):
            self._chain = None
        #: every member's inputs are the same batch (``inputs[i]`` equal for all i): a shared first product
        self.shared_inputs = shared_inputs and self._chain is not None and isinstance(self._chain[0][1], nn.Linear)
        self.kind = ("shared-input bmm" if self.shared_inputs else "bmm") if self._chain is not None else "vmap"
        self._loss_module = LossModule(problem, self.models[0])
        self._outputs = _Outputs()
        #: the problem's batched per-member loss is used (it agreed with its ``loss`` on the probe batch)
        self.batched_loss = self._chain is not None and (probe is None or self._member_losses_agree(probe))

    @property
    def leaves(self) -> list[torch.Tensor]:
        return [self.params[n] for n in self.names]

    def _loss_reads_outputs_only(self, batch: Batch) -> bool:
        inputs, targets = batch[0][0], batch[1][0]
        model = self.models[0]
        try:
            with torch.no_grad():
                direct = self.problem.loss(model, (inputs, targets))
                through = self.problem.loss(_Outputs(), (model(inputs), targets))
        except Exception:  # a problem whose loss does not call the model on the inputs (the quadratic)
            return False
        return bool(torch.equal(direct, through))

    def _member_losses_agree(self, batch: Batch) -> bool:
        """``problem.member_losses`` equals ``loss`` vmapped over the members, on ``batch`` (False: None or not)."""
        inputs, targets = batch
        with torch.no_grad():
            outputs = self.forward(inputs)
            try:
                batched = self.problem.member_losses(outputs, targets)
            except Exception:  # a batched loss that does not take these shapes
                return False
            if batched is None:
                return False
            vmapped = self._vmapped_loss(outputs, targets)
        return batched.shape == vmapped.shape and bool(torch.allclose(batched, vmapped, rtol=1e-5, atol=0))

    def _vmapped_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        outputs_module = self._outputs
        return torch.vmap(lambda out, y: self.problem.loss(outputs_module, (out, y)))(outputs, targets)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Stacked matmul forward: ``inputs[K, B, in] -> outputs[K, B, out]``."""
        x = inputs
        chain = self._chain
        if self.shared_inputs:
            x = self._shared_first_layer(inputs[0])
            chain = chain[1:]
        for prefix, module in chain:
            if isinstance(module, nn.Linear):
                x = _StackedLinear.apply(x, self.params[prefix + "weight"], self.params.get(prefix + "bias"))
            else:
                x = module(x)
        return x

    def _shared_first_layer(self, x: torch.Tensor) -> torch.Tensor:
        """``x[B, in]`` through every member's first Linear at once: ``[K, B, out]``."""
        prefix = self._chain[0][0]
        weight = self.params[prefix + "weight"]  # [K, out, in]
        k, out, _ = weight.shape
        bias = self.params.get(prefix + "bias")
        wide = torch.nn.functional.linear(x, weight.reshape(k * out, -1), None if bias is None else bias.reshape(-1))
        return wide.view(x.shape[0], k, out).transpose(0, 1)

    def losses(self, batch: Batch) -> torch.Tensor:
        """Each member's mean loss on its own batch (``batch`` tensors have a leading member dim): ``[K]``."""
        inputs, targets = batch
        if self._chain is not None:
            outputs = self.forward(inputs)
            if self.batched_loss:
                batched = self.problem.member_losses(outputs, targets)
                if batched is not None:
                    return batched
            return self._vmapped_loss(outputs, targets)
        prefixed = {"model." + n: p for n, p in self.params.items()}

        def one(params, x, y):
            return torch.func.functional_call(self._loss_module, params, ((x, y),))

        return torch.vmap(one)(prefixed, inputs, targets)
