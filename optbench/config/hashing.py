"""The config hash that identifies a run (for skip_finished and the plotter)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

#: keys that change where or how a run reports, not what it computes
NOT_HASHED = ("quiet", "resume", "skip_finished", "results_root", "checkpoint_every", "plot", "objective")
#: dataset keys that say where the data comes from, not what it is
NOT_HASHED_DATASET = ("root", "download", "system_dir")


def config_hash(config: Mapping) -> str:
    """sha256 (16 hex digits) of the run config without output, console and launcher settings."""
    payload = {k: v for k, v in config.items() if k not in NOT_HASHED and k != "hydra"}
    if isinstance(payload.get("dataset"), Mapping):
        payload["dataset"] = {k: v for k, v in payload["dataset"].items() if k not in NOT_HASHED_DATASET}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
