"""Dolan–Moré performance profiles over problems × seeds (as AlgoPerf ranks optimizers).

A *case* is one problem (dataset) with one seed. A *solver* is an optimizer with its
implementation (``adam (scratch)``); when a solver has several runs on a case (a
hyperparameter sweep), its best run counts (the fastest to the target), as a tuned
submission would. For each case the cost t(case, solver) is the steps (or seconds) until
the run's logged loss first reaches the problem's target; it is infinite when the run
never does, diverged first, or the solver did not run on that case. The ratio
r = t / min over solvers of t; the profile of a solver is

    rho(tau) = fraction of cases with r <= tau,     tau >= 1,

over the cases that at least one solver solved. Its score is the normalised area under
rho on a log2 tau axis from 1 to tau_max: 1 when the solver is the fastest on every case,
0 when it solves none within tau_max.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: AlgoPerf integrates up to tau = 4; a wider range is used when ratios are larger
TAU_MAX_MIN = 4.0


@dataclass
class Profile:
    """Profiles of every solver for one cost (``steps`` or ``seconds``)."""

    measure: str
    solvers: list[str]
    cases: list[tuple[str, str]]  # (problem, seed) solved by at least one solver
    unsolved: list[tuple[str, str]]  # cases no solver solved
    ratios: dict[str, np.ndarray]  # solver -> ratio per case (inf: not solved)
    tau_max: float
    scores: dict[str, float] = field(default_factory=dict)

    def rho(self, solver: str, taus: np.ndarray) -> np.ndarray:
        r = self.ratios[solver]
        if not len(r):
            return np.zeros_like(taus)
        return (r[None, :] <= taus[:, None]).mean(axis=1)


def score(ratios: np.ndarray, tau_max: float) -> float:
    """Area under rho(tau) for tau in [1, tau_max] on a log axis, divided by log(tau_max)."""
    if not len(ratios) or tau_max <= 1:
        return 0.0
    length = math.log2(tau_max)
    ok = np.isfinite(ratios) & (ratios <= tau_max)
    return float(np.sum(length - np.log2(ratios[ok])) / (len(ratios) * length))


def build(costs: Mapping[tuple[str, str], Mapping[str, float]], solvers: Sequence[str], measure: str,
          floor: float = 1.0) -> Profile:
    """``costs[(problem, seed)][solver]`` = cost (missing or inf: not solved).

    Costs below ``floor`` count as ``floor`` (a run already at the target at step 0 costs
    one step), so that a ratio is always defined.
    """
    cases, unsolved = [], []
    for case in sorted(costs, key=lambda c: (c[0], c[1])):
        best = min((v for v in costs[case].values() if math.isfinite(v)), default=math.inf)
        (cases if math.isfinite(best) else unsolved).append(case)
    ratios: dict[str, np.ndarray] = {}
    for solver in solvers:
        values = []
        for case in cases:
            best = min(v for v in costs[case].values() if math.isfinite(v))
            cost = costs[case].get(solver, math.inf)
            if not math.isfinite(cost):
                values.append(math.inf)
            else:
                values.append(max(cost, floor) / max(best, floor))
        ratios[solver] = np.array(values, dtype=float)
    finite = [r for v in ratios.values() for r in v if math.isfinite(r)]
    tau_max = max([TAU_MAX_MIN] + [2.0 ** math.ceil(math.log2(max(r, 1.0)) - 1e-12) for r in finite])
    profile = Profile(measure=measure, solvers=list(solvers), cases=cases, unsolved=unsolved, ratios=ratios,
                      tau_max=tau_max)
    profile.scores = {solver: score(ratios[solver], tau_max) for solver in solvers}
    return profile


def profile_figure(profiles: Sequence[Profile], colors: Mapping[str, str]):
    """One panel per profile: rho(tau) as a step function on a log2 tau axis."""
    from matplotlib.figure import Figure

    rows = math.ceil(max((len(p.solvers) for p in profiles), default=1) / 2)
    fig = Figure(figsize=(11, 4.0 + 0.22 * rows), layout="constrained")
    for index, profile in enumerate(profiles):
        ax = fig.add_subplot(1, len(profiles), index + 1)
        for solver in profile.solvers:
            r = np.sort(profile.ratios[solver][np.isfinite(profile.ratios[solver])])
            xs = np.concatenate([[1.0], r[r <= profile.tau_max], [profile.tau_max]])
            ys = profile.rho(solver, xs)
            ax.step(xs, ys, where="post", color=colors.get(solver), linewidth=1.6,
                    label=f"{solver} ({profile.scores[solver]:.2f})")
        ax.set_xscale("log", base=2)
        ax.set_xlim(1.0, profile.tau_max)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(f"tau (ratio to the fastest, in {profile.measure})")
        ax.set_ylabel("fraction of cases reaching the target")
        ax.grid(True, alpha=0.3)
        ax.set_title(f"{profile.measure}: {len(profile.cases)} case(s)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize="small", frameon=False,
                  title="solver (score)", title_fontsize="small")
    return fig
