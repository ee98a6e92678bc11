"""Setup shared by the optimizer tests (test_optim_registry, test_optim_scratch,
test_optim_parity): one torch thread, the optimizer config files, the small MLP."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from optbench.optim.registry import hyperparameters

CONF = Path(__file__).resolve().parents[1] / "conf" / "optimizer"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: torch's intra-op thread pool only adds overhead, and on a busy
    2-core machine its waits made these files ~7x slower. Restored afterwards.
    A test module switches it on with ``from optim_cases import one_thread  # noqa: F401``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load(name: str) -> dict:
    """conf/optimizer/<name>.yaml as written (name, impl, hyperparameters, aliases)."""
    return yaml.safe_load((CONF / f"{name}.yaml").read_text())


def seed_hparams(name: str, **override) -> dict:
    """The seed defaults of conf/optimizer/<name>.yaml (aliases resolved), then ``override``."""
    return {**hyperparameters(load(name)), **override}


def mlp(seed: int) -> nn.Module:
    """The 8-16-3 ReLU MLP in float64, initialised from ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).double()


def params_of(model) -> list[torch.Tensor]:
    """A detached copy of the model's parameters."""
    return [p.detach().clone() for p in model.parameters()]
