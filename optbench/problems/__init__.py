"""Problems: data, model and loss. ``make_problem`` picks one from the run config.

``PROBLEMS`` maps ``dataset.name`` to a factory ``(cfg, device) -> Problem``; each
problem builds its model from ``cfg.model`` through ``optbench.models.MODELS``.
Adding a problem is one module here, a row in the table and ``conf/dataset/<name>.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from omegaconf import DictConfig

from optbench.problems.base import Problem


def _model(cfg: DictConfig):
    return cfg.get("model")  # None: the problem's own default (configs from before the model group)


def _linreg(cfg: DictConfig, device: torch.device) -> Problem:
    from optbench.problems.linreg import LinearRegression

    return LinearRegression(cfg.dataset, seed=cfg.seed, device=device, model=_model(cfg))


def _quadratic(cfg: DictConfig, device: torch.device) -> Problem:
    from optbench.problems.quadratic import Quadratic

    return Quadratic(cfg.dataset, steps=cfg.steps or 1, device=device, model=_model(cfg))


def _images(cfg: DictConfig, device: torch.device) -> Problem:
    from optbench.problems.images import make_image_problem

    return make_image_problem(cfg.dataset, device, model=_model(cfg))


PROBLEMS: dict[str, Callable[[DictConfig, torch.device], Problem]] = {
    "linreg": _linreg,
    "quadratic": _quadratic,
    "mnist": _images,
    "fashion_mnist": _images,
}


#: problems whose data their factory draws from the run's seed (linreg's samples); every other
#: problem's data depends on its dataset config only
SEEDED_DATA = frozenset({"linreg"})


def data_key(cfg: DictConfig) -> tuple:
    """Runs with equal keys build the same problem data, so a stacked group may share one problem."""
    name = cfg.dataset.name
    return (name, cfg.seed if name in SEEDED_DATA else None)


def make_problem(cfg: DictConfig, device: torch.device) -> Problem:
    # an unknown name reaches the image loader, whose message lists the image datasets
    return PROBLEMS.get(cfg.dataset.name, _images)(cfg, device)
