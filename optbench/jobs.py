"""One Hydra job: validate the config, then skip, resume or train, and report the objective."""

from __future__ import annotations

import json
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from optbench.config.validate import validate
from optbench.errors import OptbenchError
from optbench.train.console import RunConsole


class FolderOccupied(OptbenchError):
    """skip_finished found another config's run in this job's folder (which is left as it is)."""


class SweepInterrupted(OptbenchError):
    """SIGINT/SIGTERM stopped a sweep job: the sweep stops too (a single run just ends ``interrupted``)."""

    exit_code = 130


def run_validated(cfg: DictConfig, run_dir: Path, overrides: list[str], console: RunConsole) -> float:
    """Run one job into ``run_dir``; return the sweep objective (lower is better; inf if not completed).

    With ``skip_finished=true`` a job whose config hash matches a completed run (its own
    folder, the sweep dir, or ``results_root``) reuses it without training, and a job
    whose own folder holds an unfinished run of the same config with a checkpoint
    continues it. In a sweep, an interrupted job raises :class:`SweepInterrupted` so
    that Ctrl-C stops the whole sweep, not just the job that was running.
    """
    sweep_dir = _sweep_dir()
    try:
        run_cfg = validate(cfg)
        if run_cfg.resume:
            run_dir, run_cfg = _resumed(run_cfg)
        elif run_cfg.skip_finished:
            from optbench import sweeps

            _refuse_occupied(run_cfg, run_dir)
            earlier = sweeps.find_finished(run_cfg, run_dir, sweep_dir)
            if earlier is not None:
                return _reuse(earlier, run_dir, run_cfg, overrides, console)
            unfinished = sweeps.continuable(run_cfg, run_dir)
            if unfinished is not None:
                how = (f"was interrupted at step {unfinished.get('steps')}" if unfinished["status"] == "interrupted"
                       else "was left unfinished (its process died)")
                console.out.print(f"continuing: config {unfinished['config_hash']} {how} in {run_dir}; "
                                  "resuming from its checkpoint", soft_wrap=True, markup=False)
                run_dir, run_cfg = _resumed(OmegaConf.merge(run_cfg, {"resume": str(run_dir)}))
        from optbench.train.run import execute

        summary = execute(run_cfg, run_dir, overrides, console)
    except FolderOccupied:
        raise
    except OptbenchError as err:
        from optbench.train.run import write_failure

        write_failure(run_dir, None, overrides, str(err))
        raise
    if summary.get("status") == "interrupted" and sweep_dir is not None:
        raise SweepInterrupted(_stopped_message(run_dir, sweep_dir, summary))
    return objective(summary, run_cfg.objective)


def _stopped_message(run_dir: Path, sweep_dir: Path, summary: dict) -> str:
    stopped = (f"the sweep was stopped: job {run_dir} was interrupted at step {summary.get('steps')} "
               f"(checkpoint saved; `optbench resume={run_dir}` finishes that run alone).")
    if "optuna" in _sweeper_target():
        return (f"{stopped} Fix: to go on with the study, rerun the same command: it loads the study from its "
                "storage and adds new trials (the interrupted trial stays RUNNING there, and Optuna ignores it).")
    return (f"{stopped} Fix: to go on, rerun the same command with hydra.sweep.dir={sweep_dir} skip_finished=true; "
            "it reuses the completed jobs, continues the interrupted one from its checkpoint and runs the rest.")


def _sweeper_target() -> str:
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().sweeper.get("_target_", "")).lower()
    except Exception:  # outside Hydra
        return ""


def objective(summary: dict, name: str) -> float:
    """The value an Optuna sweep minimises (test accuracy is negated); inf unless the run completed.

    inf is what a diverged or failed run scores: Optuna (2.10, with SQLite storage too)
    stores it as a COMPLETE trial with the worst value, so the sampler learns to avoid
    that region and the study goes on (a NaN or an exception would be a FAIL instead).
    """
    if summary.get("status") != "completed":
        return math.inf
    final, best = summary.get("final") or {}, summary.get("best") or {}
    value = {
        "final_train_loss": final.get("loss") if final.get("train_loss") is None else final["train_loss"],
        "best_test_loss": best.get("test_loss"),
        "test_acc": None if best.get("test_acc") is None else -best["test_acc"],
    }[name]
    return math.inf if value is None or not math.isfinite(value) else float(value)


def _sweep_dir() -> Path | None:
    """The sweep dir when Hydra runs this job as part of a multirun, else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return None
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return None
        return Path(str(hydra_cfg.sweep.dir))
    except Exception:  # outside Hydra, or an unresolvable sweep dir: behave like a single run
        return None


def _refuse_occupied(run_cfg: DictConfig, run_dir: Path) -> None:
    """skip_finished never overwrites another config's run that sits in this job's folder."""
    from optbench.sweeps import other_config_in

    other = other_config_in(run_cfg, run_dir)
    if other is not None:
        raise FolderOccupied(
            f"{run_dir} already holds a run of another config ({other.get('config_hash')}, overrides "
            f"{' '.join(other.get('overrides') or []) or 'none'}), which skip_finished=true will not overwrite: the "
            "sweep's values changed since that run, so its jobs are numbered differently. Fix: give this sweep a new "
            f"hydra.sweep.dir and add results_root={Path(run_dir).parent} so that it reuses the completed runs there."
        )


def _resumed(run_cfg: DictConfig) -> tuple[Path, DictConfig]:
    """Continue a stopped run in its own folder, with the config it started with."""
    from optbench.sweeps import read_summary

    folder = Path(run_cfg.resume)
    saved = (read_summary(folder) or {}).get("config")
    if not isinstance(saved, dict):
        raise OptbenchError(
            f"resume={folder} is not a run folder with a readable summary.json. "
            "Fix: point resume= at the folder of a run that was interrupted (it holds summary.json and checkpoint.pt)."
        )
    saved.update(resume=str(folder), quiet=run_cfg.quiet)
    return folder, validate(OmegaConf.create(saved))


def _reuse(earlier: Path, run_dir: Path, run_cfg: DictConfig, overrides: list[str], console: RunConsole) -> float:
    """Point this job at a completed run of the same config, in one line, without training."""
    summary = json.loads((earlier / "summary.json").read_text())
    same_folder = Path(run_dir).resolve() == Path(earlier).resolve()
    where = "this job's folder" if same_folder else str(earlier)
    console.out.print(f"skipped: config {summary['config_hash']} already completed in {where} (skip_finished=true)",
                      soft_wrap=True, markup=False)
    if not same_folder:
        from optbench.sweeps import clear_run_files
        from optbench.train.recorder import write_json_atomic

        marker = {"status": "skipped", "reused_run": str(earlier), "config_hash": summary["config_hash"],
                  "overrides": list(overrides)}
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        clear_run_files(run_dir)  # a stale unfinished attempt of this config would hide the pointer
        write_json_atomic(Path(run_dir) / "reused.json", marker)
    return objective(summary, run_cfg.objective)
