"""The ``step()`` every scratch optimizer shares; each subclass supplies only its state and update.

A subclass defines

* ``init_state(self, state, param, group)``: fills the empty ``state`` dict of ``param``
  (its buffers, under torch's key names) the first time ``param`` has a gradient;
* ``update(self, group, params, grads, states)``: applies one step to the group's
  params that have a gradient (``states[i]`` is ``self.state[params[i]]``), usually by
  picking its buffers out of ``states`` and calling the module's ``_foreach`` (multi-tensor)
  or ``_single`` (reference) function according to ``group["foreach"]``.

A subclass without per-parameter state (SGD) sets ``stateful = False``: ``self.state``
then stays empty, as in torch.optim.SGD without momentum, and ``states`` is empty.
"""

from __future__ import annotations

import torch


class ScratchOptimizer(torch.optim.Optimizer):
    stateful = True

    def init_state(self, state: dict, param: torch.Tensor, group: dict) -> None:
        raise NotImplementedError

    def update(self, group: dict, params: list, grads: list, states: list) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        stateful = self.stateful
        for group in self.param_groups:
            params, grads, states = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                params.append(p)
                grads.append(p.grad)
                if stateful:
                    state = self.state[p]
                    if not state:
                        self.init_state(state, p, group)
                    states.append(state)
            if params:
                self.update(group, params, grads, states)
        return loss
