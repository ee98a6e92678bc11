"""One Hydra job: validate the config, then skip, resume or train, and report the objective."""

from __future__ import annotations

import json
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from optbench.config.validate import validate
from optbench.errors import OptbenchError
from optbench.train.console import RunConsole


def run_validated(cfg: DictConfig, run_dir: Path, overrides: list[str], console: RunConsole) -> float:
    """Run one job into ``run_dir``; return the sweep objective (lower is better; inf if diverged)."""
    try:
        run_cfg = validate(cfg)
        if run_cfg.resume:
            run_dir, run_cfg = _resumed(run_cfg)
        if run_cfg.skip_finished:
            from optbench.sweeps import find_finished

            earlier = find_finished(run_cfg, run_dir)
            if earlier is not None:
                return _reuse(earlier, run_dir, run_cfg, overrides, console)
        from optbench.train.run import execute

        summary = execute(run_cfg, run_dir, overrides, console)
    except OptbenchError as err:
        from optbench.train.run import write_failure

        write_failure(run_dir, None, overrides, str(err))
        raise
    return objective(summary, run_cfg.objective)


def objective(summary: dict, name: str) -> float:
    """The value an Optuna sweep minimises (test accuracy is negated); inf for a failed run."""
    if summary.get("status") != "completed":
        return math.inf
    final, best = summary.get("final") or {}, summary.get("best") or {}
    value = {
        "final_train_loss": final.get("train_loss", final.get("loss")),
        "best_test_loss": best.get("test_loss"),
        "test_acc": None if best.get("test_acc") is None else -best["test_acc"],
    }[name]
    return math.inf if value is None or not math.isfinite(value) else float(value)


def _resumed(run_cfg: DictConfig) -> tuple[Path, DictConfig]:
    """Continue a stopped run in its own folder, with the config it started with."""
    folder = Path(run_cfg.resume)
    summary_path = folder / "summary.json"
    try:
        saved = json.loads(summary_path.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise OptbenchError(
            f"resume={folder} is not a run folder with a readable summary.json. "
            "Fix: point resume= at the folder of a run that was interrupted (it holds summary.json and checkpoint.pt)."
        ) from None
    saved.update(resume=str(folder), quiet=run_cfg.quiet)
    return folder, validate(OmegaConf.create(saved))


def _reuse(earlier: Path, run_dir: Path, run_cfg: DictConfig, overrides: list[str], console: RunConsole) -> float:
    summary = json.loads((earlier / "summary.json").read_text())
    console.out.print(f"skipped: config {summary['config_hash']} already completed in {earlier}")
    marker = {"status": "skipped", "reused_run": str(earlier), "config_hash": summary["config_hash"],
              "overrides": list(overrides)}
    from optbench.train.recorder import write_json_atomic

    if Path(run_dir).resolve() != Path(earlier).resolve():
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        write_json_atomic(Path(run_dir) / "reused.json", marker)
    return objective(summary, run_cfg.objective)
