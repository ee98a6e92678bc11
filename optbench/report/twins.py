"""Scratch vs builtin: the largest relative gap between twin curves, beside the parity table.

Twins are two runs whose resolved configs differ only in ``optimizer.impl`` (scratch and
builtin), with the same seed, so they start from the same weights and see the same
batches. The gap at a logged step is |scratch - builtin| / |builtin| of the logged loss;
the table shows its largest value over the steps both logged (finite values only) and
the gap of the final train loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optbench.plot.aggregate import group_key
from optbench.plot.metrics import final_value
from optbench.plot.runs import Run

#: README "Scratch vs torch.optim: parity": what the tests prove (200 steps, float64), per optimizer.
#: ``exact``: the formulas coincide at the seed defaults, so twin curves should match to float rounding.
PARITY = {
    "sgd": ("bitwise equal", True),
    "momentum": ("constant lr: elementwise 1e-6 (measured <= 3.9e-15); with a schedule they differ", True),
    "adagrad": ("eps = 0: bitwise; seed eps: rel < 2e-2 on the MLP (4.7e-3), < 1e-10 on linreg", False),
    "rmsprop": ("eps = 0: bitwise; seed eps: rel < 1e-3 on the MLP (1.0e-4), < 5e-10 on linreg (eps inside vs "
                "outside the sqrt)", False),
    "adam": ("eps = 0: elementwise 1e-6; seed eps: rel < 2e-3 on the MLP (2.6e-4), < 5e-8 on linreg", False),
    "adadelta": ("bitwise equal at the seed's eps", True),
}
NOTE = ("The parity tests compare parameters after 200 float64 steps; these runs train in float32 for many "
        "more steps, so a loss gap can grow from rounding alone. A gap at the percent level on a minibatch "
        "loss is expected where eps sits differently; a large gap where the formulas coincide is worth a look.")


@dataclass
class Twin:
    problem: str
    label: str
    seed: object
    scratch: Run
    builtin: Run
    max_gap: float | None
    max_gap_step: int | None
    final_gap: float | None
    points: int

    @property
    def expectation(self) -> str:
        return PARITY.get(self.scratch.optimizer, ("builtin only: no scratch twin in the parity table", False))[0]

    @property
    def exact(self) -> bool:
        return PARITY.get(self.scratch.optimizer, ("", False))[1]


def relative_gap(a: Run, b: Run, column: str = "loss") -> tuple[float | None, int | None, int]:
    """Largest |a - b| / |b| over the steps both logged with finite values; (gap, at step, points compared)."""
    if column not in a.losses.columns or column not in b.losses.columns:
        column = "loss"
    left = a.losses[["step", column]].dropna()
    right = b.losses[["step", column]].dropna()
    both = left.merge(right, on="step", suffixes=("_a", "_b"))
    va, vb = both[f"{column}_a"].to_numpy(float), both[f"{column}_b"].to_numpy(float)
    ok = np.isfinite(va) & np.isfinite(vb)
    if not ok.any():
        return None, None, 0
    va, vb, steps = va[ok], vb[ok], both["step"].to_numpy()[ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(vb != 0, np.abs(va - vb) / np.abs(vb), np.where(va == vb, 0.0, np.inf))
    index = int(np.argmax(gap))
    return float(gap[index]), int(steps[index]), int(ok.sum())


def _final_gap(a: Run, b: Run) -> float | None:
    fa, fb = final_value(a, "loss"), final_value(b, "loss")
    if fa is None or fb is None or not np.isfinite(fa) or not np.isfinite(fb):
        return None
    if fb == 0:
        return 0.0 if fa == 0 else None
    return abs(fa - fb) / abs(fb)


def find_twins(runs: Sequence[Run], labels: dict[int, str], column_of) -> list[Twin]:
    """Every (scratch, builtin) pair with otherwise equal configs and the same seed."""
    pairs: dict[tuple, dict[str, Run]] = {}
    for run in runs:
        if run.impl not in ("scratch", "builtin"):
            continue
        key = (group_key(run, drop=("optimizer.impl",)), repr(run.seed))
        pairs.setdefault(key, {}).setdefault(run.impl, run)
    twins = []
    for found in pairs.values():
        if "scratch" in found and "builtin" in found:
            scratch, builtin = found["scratch"], found["builtin"]
            gap, step, points = relative_gap(scratch, builtin, column_of(scratch))
            twins.append(Twin(problem=scratch.dataset, label=labels.get(id(scratch), scratch.optimizer),
                              seed=scratch.seed, scratch=scratch, builtin=builtin, max_gap=gap, max_gap_step=step,
                              final_gap=_final_gap(scratch, builtin), points=points))
    return twins
