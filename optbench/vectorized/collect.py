"""The vectorized launcher's collection phase: a sweep job hands its plan over instead of training.

The launcher (``optbench.vectorized.launcher``) runs every job of a batch through Hydra
as the basic launcher does (its folder, its config, its logging, the task function).
While it collects, :func:`optbench.jobs.run_validated` plans the job as always and then
offers the plan here: a ``fresh`` or ``resume`` plan whose config
:func:`~optbench.vectorized.grouping.why_alone` accepts is kept for a stacked group,
and the job returns at once; every other plan (a refusal, a reuse, an lbfgs job...) is
declined and carried out by the job itself, the ordinary way, with one line saying why
when it is a job that trains alone.

Torch-free: it is imported by every sweep job's planning.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path

#: what a collected job returns to Hydra until its group has trained (the launcher then sets the objective)
PENDING = math.nan


@dataclass
class Collected:
    """One job whose plan waits for its group."""

    position: int  # index in the launcher's batch
    num: int  # Hydra's job number (the folder's name under the sweep dir)
    run_dir: Path  # the folder Hydra gave the job (a resume plan may write elsewhere: ``plan.folder``)
    plan: object  # optbench.jobs.Plan, action fresh or resume
    overrides: list[str]
    hydra_files: dict[str, str] | None
    quiet: bool
    key: tuple = field(default_factory=tuple)  # grouping.group_key: equal keys may share one stacked model


class Collector:
    """The plans of one launch call's groupable jobs, in job order."""

    def __init__(self):
        self.jobs: list[Collected] = []
        self.position = 0  # the job being collected now (the launcher sets it)
        self.num = 0

    def offer(self, plan, run_dir: Path, overrides: list[str], console, hydra_files: dict[str, str] | None) -> bool:
        """Keep ``plan`` for a group (True), or decline it (False: the job carries it out itself)."""
        if plan.action not in ("fresh", "resume"):
            return False
        from optbench.vectorized.grouping import group_key, why_alone

        reason = why_alone(plan.run_cfg)
        if reason is not None:
            console.out.print(f"job {self.num} runs alone: {reason}", soft_wrap=True, markup=False)
            return False
        self.jobs.append(Collected(self.position, self.num, Path(run_dir), plan, list(overrides), hydra_files,
                                   bool(plan.run_cfg.quiet), key=group_key(plan.run_cfg, plan.payload)))
        return True


_ACTIVE: list[Collector] = []


def current() -> Collector | None:
    """The collector of the launch call in progress, or None (every other launcher, a single run)."""
    return _ACTIVE[-1] if _ACTIVE else None


@contextlib.contextmanager
def collecting(collector: Collector):
    """While the block runs, sweep jobs offer their plans to ``collector``."""
    _ACTIVE.append(collector)
    try:
        yield collector
    finally:
        _ACTIVE.remove(collector)
