"""Shims over other libraries' behaviour, each in one place, each with a test that fails when the library changes."""

from __future__ import annotations

import os


def slurm_requeued() -> bool:
    """Whether this process is a SLURM job that was requeued (after a time-out or preemption)."""
    return os.environ.get("SLURM_RESTART_COUNT", "0").strip() not in ("", "0")
