"""The optimizers' alias keys, torch-free: seed 001's ``gamma`` (and ``rho``) for RMSProp's
``alpha``, ``gamma`` for momentum's ``momentum``.

An alias that is set (not null) replaces its canonical key's value; two aliases of one
key set to different values are refused. The runner's validation (through
``optbench.optim.registry``) and the plotter, which must not import torch, read the same
table here. ``tests/test_plot_labels.py`` checks it against the registry's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optbench.errors import OptbenchError

#: optimizer name -> {alias key: canonical key}
OPTIMIZER_ALIASES: dict[str, dict[str, str]] = {
    "momentum": {"gamma": "momentum"},
    "rmsprop": {"gamma": "alpha", "rho": "alpha"},
}


def aliases_of(name: Any) -> Mapping[str, str]:
    """``{alias: canonical}`` for optimizer ``name`` (empty for one without aliases or an unknown name)."""
    return OPTIMIZER_ALIASES.get(name, {}) if isinstance(name, str) else {}


def resolve_optimizer_aliases(name: Any, hparams: Mapping[str, Any]) -> dict:
    """``hparams`` with each set alias moved onto its canonical key and every alias key removed.

    Raises OptbenchError (one paragraph naming the fix) when two aliases of one key disagree.
    """
    aliases = aliases_of(name)
    out = {k: v for k, v in hparams.items() if k not in aliases}
    chosen: dict[str, str] = {}
    for alias, canonical in aliases.items():
        value = hparams.get(alias)
        if value is None:
            continue
        if canonical in chosen and out[canonical] != value:
            raise OptbenchError(
                f"optimizer.{chosen[canonical]}={out[canonical]} and optimizer.{alias}={value} are both "
                f"names for {name}'s `{canonical}` but disagree. Fix: set only one of them (or `{canonical}`)."
            )
        out[canonical], chosen[canonical] = value, alias
    return out
