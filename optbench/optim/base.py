"""The ``step()`` every scratch optimizer shares; each subclass supplies only its state and update.

A subclass defines

* ``init_state(self, state, param, group)``: fills the empty ``state`` dict of ``param``
  (its buffers, under torch's key names) the first time ``param`` has a gradient;
* ``update(self, group, params, grads, states)``: applies one step to the group's
  params that have a gradient (``states[i]`` is ``self.state[params[i]]``) by picking its
  buffers out of ``states`` and calling its module's kernel (``<name>_update``, a pure
  function over lists of tensors, see ``optbench.optim.functional``) with the group's
  hyperparameters.

A subclass without per-parameter state (SGD) sets ``stateful = False``: ``self.state``
then stays empty, as in torch.optim.SGD without momentum, and ``states`` is empty.

A group's hyperparameters may be tensors as well as floats (the kernels take both): the
compiled step puts a 0-dim tensor ``lr`` into each group for the duration of its call
(``optbench.train.compiled``), so that a schedule's new lr is a new value of a graph
input, not a new constant that would recompile the graph.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


class ScratchOptimizer(torch.optim.Optimizer):
    stateful = True

    def init_state(self, state: dict, param: torch.Tensor, group: dict) -> None:
        raise NotImplementedError

    def update(self, group: Mapping, params: list, grads: list, states: list) -> None:
        raise NotImplementedError

    def __setstate__(self, state: dict) -> None:
        # load_state_dict() of a state saved before a hyperparameter existed (eps_in_sqrt):
        # the constructor's default, as torch.optim does for its own new keys
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient."""
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
