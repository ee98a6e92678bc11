"""Finding an earlier completed run with the same config hash (``skip_finished=true``)."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from optbench.config.hashing import config_hash


def find_finished(run_cfg: DictConfig, run_dir: Path) -> Path | None:
    """A completed run under the sweep dir's parent (or ``results_root``) with this config's hash."""
    wanted = config_hash(OmegaConf.to_container(run_cfg, resolve=True))
    roots = [Path(run_cfg.results_root)] if run_cfg.results_root else []
    roots.append(Path(run_dir).parent)
    for root in roots:
        for summary_path in sorted(root.rglob("summary.json")):
            try:
                summary = json.loads(summary_path.read_text())
            except (OSError, ValueError):
                continue
            if summary.get("status") == "completed" and summary.get("config_hash") == wanted:
                return summary_path.parent
    return None
