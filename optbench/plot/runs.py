"""Finding run folders and loading them from their files (see docs/run-format.md).

The plotter reads only a run's files: ``summary.json``, ``losses.csv``, ``epochs.csv``,
``.hydra/config.yaml`` and ``.hydra/overrides.yaml`` (and a skipped job's
``reused.json``). It never imports the trainer or torch.

Every problem with an input becomes a :class:`PlotError` whose text is one line naming
the problem and its fix. A bad run among good ones is skipped with a
:class:`PlotWarning` naming it; only when nothing is left is the error raised.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optbench.run_folder import (EPOCH_REQUIRED, LOSS_REQUIRED, RUN_MARKERS, STATUSES, RunFolderError,  # noqa: F401
                                 is_run_dir, read_json, read_table)

#: how an unfinished status is shown in a legend
STATUS_MARKS = {"running": "incomplete", "interrupted": "interrupted", "failed": "failed", "unknown": "incomplete"}


#: a bad input: ``str(err)`` is one line naming the problem and its fix
PlotError = RunFolderError


class PlotWarning(UserWarning):
    """A bad run that was skipped, or a detail the figure cannot show."""


def warn(message: str) -> None:
    warnings.warn(" ".join(message.split()), PlotWarning, stacklevel=2)


def natural_key(text: str) -> list:
    """Sort ``2`` before ``10`` (Hydra's job folders)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


# --------------------------------------------------------------------------- discovery


def _has_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _walk_runs(top: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, _ in os.walk(top):
        here = Path(dirpath)
        if is_run_dir(here):
            found.append(here)
            dirnames[:] = []
            continue
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=natural_key)
    return found


@dataclass
class Inputs:
    """The run folders an argument list names, in order, and where each came from."""

    runs: list[Path]
    first_input: Path | None


def find_runs(inputs: Sequence[str | os.PathLike]) -> Inputs:
    """Expand paths and globs (single runs, multirun folders, any parent) into run folders.

    A missing path or a folder without runs among good inputs is skipped with a warning;
    when nothing is found at all, the first problem is raised.
    """
    if not inputs:
        raise PlotError("no input given. Fix: name one or more run folders, multirun folders or globs.")
    runs: list[Path] = []
    seen: set[Path] = set()
    problems: list[str] = []
    first_input: Path | None = None
    for raw in inputs:
        text = os.fspath(raw)
        path = Path(text).expanduser()
        if path.exists():
            candidates = [path]
        elif _has_glob(text):
            candidates = [Path(p) for p in sorted(glob.glob(os.path.expanduser(text), recursive=True), key=natural_key)]
            if not candidates:
                problems.append(f"no path matches {text!r}. Fix: check the pattern (quote it so the shell does not expand it).")
                continue
        else:
            problems.append(f"{text}: no such file or folder. Fix: check the path (runs are under outputs/ and multirun/).")
            continue
        found_here: list[Path] = []
        for candidate in candidates:
            if candidate.is_file() and candidate.name in ("summary.json", "losses.csv", "epochs.csv", "reused.json"):
                candidate = candidate.parent
            if candidate.is_dir():
                found_here.extend([candidate] if is_run_dir(candidate) else _walk_runs(candidate))
        if not found_here:
            problems.append(
                f"{text}: no runs found (no folder below it holds summary.json or losses.csv). "
                "Fix: point at a run folder (outputs/<date>/<time>) or a multirun folder (multirun/<date>/<time>)."
            )
            continue
        if first_input is None:
            first_input = candidates[0]
        for run_dir in found_here:
            key = run_dir.resolve()
            if key not in seen:
                seen.add(key)
                runs.append(run_dir)
    if not runs:
        raise PlotError(problems[0])
    for problem in problems:
        warn(f"skipped input: {problem}")
    return Inputs(runs=runs, first_input=first_input)


# --------------------------------------------------------------------------- runs


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"lr": 0.1}}`` -> ``{"optimizer.lr": 0.1}``; lists become tuples."""
    flat: dict[str, Any] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                flat.update(flatten(value, name))
            else:
                flat[name] = _hashable(value)
    return flat


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


@dataclass
class Run:
    """One run folder, loaded. ``epochs`` may be empty (no epoch finished)."""

    path: Path
    config: dict
    overrides: list[str]
    summary: dict
    losses: pd.DataFrame
    epochs_table: pd.DataFrame | None = None
    epochs_problem: str | None = None
    reused_from: Path | None = None
    notes: list[str] = field(default_factory=list)

    # ---- identity
    @property
    def name(self) -> str:
        return str(self.path)

    @cached_property
    def flat(self) -> dict[str, Any]:
        return flatten(self.config)

    def get(self, key: str, default: Any = None) -> Any:
        return self.flat.get(key, default)

    @property
    def dataset(self) -> str:
        return str(self.get("dataset.name") or self.summary.get("dataset") or "?")

    @property
    def optimizer(self) -> str:
        return str(self.get("optimizer.name") or self.summary.get("optimizer") or "?")

    @property
    def impl(self) -> str:
        return str(self.get("optimizer.impl") or self.summary.get("impl") or "?")

    @property
    def seed(self) -> Any:
        return self.get("seed", self.summary.get("seed"))

    # ---- state
    @property
    def status(self) -> str:
        status = self.summary.get("status")
        return status if isinstance(status, str) and status else "unknown"

    @property
    def diverged(self) -> bool:
        if self.status == "diverged" or self.summary.get("diverged_at_step") is not None:
            return True
        loss = self.losses["loss"].to_numpy()
        return bool(len(loss)) and not np.isfinite(loss).all()

    @property
    def diverged_at_step(self) -> int | None:
        step = self.summary.get("diverged_at_step")
        if step is not None:
            return int(step)
        loss = self.losses["loss"].to_numpy()
        bad = np.flatnonzero(~np.isfinite(loss))
        return int(self.losses["step"].iloc[bad[0]]) if len(bad) else None

    @property
    def mark(self) -> str | None:
        """What the legend says about this run's end: diverged, incomplete, interrupted, failed."""
        if self.diverged:
            return "diverged"
        return STATUS_MARKS.get(self.status)

    @property
    def epochs(self) -> pd.DataFrame:
        if self.epochs_problem is not None:
            raise PlotError(self.epochs_problem)
        return self.epochs_table if self.epochs_table is not None else pd.DataFrame(columns=list(EPOCH_REQUIRED))

    def final(self, key: str) -> Any:
        return (self.summary.get("final") or {}).get(key)

    def best(self, key: str) -> Any:
        return (self.summary.get("best") or {}).get(key)


def _read_summary(path: Path) -> dict:
    return read_json(path)


def _read_config(folder: Path, summary: dict) -> dict:
    path = folder / ".hydra" / "config.yaml"
    if path.exists():
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        try:
            node = OmegaConf.load(path)
        except Exception as err:  # yaml.YAMLError and OmegaConf's own errors
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise PlotError(
                f"{path} is not valid YAML ({first}). Fix: restore it, or delete .hydra/ so the config saved in summary.json is used."
            ) from None
        try:
            config = OmegaConf.to_container(node, resolve=True)
        except OmegaConfBaseException:
            config = OmegaConf.to_container(node, resolve=False)
        if isinstance(config, dict):
            config.pop("hydra", None)
            return config
    config = summary.get("config")
    if isinstance(config, dict):
        return config
    raise PlotError(
        f"{folder} has no .hydra/config.yaml and its summary.json holds no config, so what ran is unknown. "
        "Fix: leave this folder out, or restore its .hydra/ folder."
    )


def _read_overrides(folder: Path, summary: dict) -> list[str]:
    path = folder / ".hydra" / "overrides.yaml"
    if path.exists():
        import yaml

        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
        except yaml.YAMLError:
            loaded = None
        if isinstance(loaded, list):
            return [str(item) for item in loaded]
    overrides = summary.get("overrides")
    return [str(item) for item in overrides] if isinstance(overrides, list) else []


def _reused_target(folder: Path) -> tuple[Path, dict]:
    marker_path = folder / "reused.json"
    marker = _read_summary(marker_path)
    target = marker.get("reused_run")
    if not target:
        raise PlotError(f"{marker_path} names no reused_run. Fix: rerun this job without skip_finished, or leave it out.")
    for candidate in (Path(target), folder / target, folder.parent / target):
        if is_run_dir(candidate) and (candidate / "losses.csv").exists():
            return candidate, marker
    raise PlotError(
        f"{folder} was skipped as a repeat of {target}, which no longer holds a run. "
        "Fix: rerun the job with skip_finished=false, or leave it out."
    )


def load_run(folder: str | os.PathLike) -> Run:
    """Load one run folder; raise PlotError (one line) if it cannot be plotted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PlotError(f"{folder}: no such folder. Fix: check the path.")
    data_dir, reused_from, marker = folder, None, None
    if not (folder / "losses.csv").exists() and (folder / "reused.json").exists():
        data_dir, marker = _reused_target(folder)
        reused_from = data_dir
    summary_path = data_dir / "summary.json"
    notes: list[str] = []
    if summary_path.exists():
        summary = _read_summary(summary_path)
    else:
        summary = {}
        if (data_dir / "losses.csv").exists():
            notes.append(f"{folder} has no summary.json; drawn as incomplete")
    if not (data_dir / "losses.csv").exists():
        status = summary.get("status")
        if status == "failed":
            error = " ".join(str(summary.get("error") or "no error message").split())
            raise PlotError(f"{folder} failed before logging a step: {error[:300]} Fix: correct that and rerun it.")
        if summary:
            raise PlotError(
                f"{folder} has summary.json (status {status}) but no losses.csv. "
                "Fix: rerun it (or wait for it to log its first step), or leave it out."
            )
        raise PlotError(
            f"{folder} has no losses.csv and no summary.json: the job never started training. "
            "Fix: see the job's log next to .hydra/, rerun it, or leave it out."
        )
    config = _read_config(folder, summary)
    overrides = _read_overrides(folder, summary)
    if marker and not overrides:
        overrides = [str(o) for o in marker.get("overrides") or []]
    live = notes if summary.get("status", "running") == "running" else None
    losses = read_table(data_dir / "losses.csv", LOSS_REQUIRED, notes=live)
    losses = losses.sort_values("step", kind="stable").reset_index(drop=True)
    epochs_table, epochs_problem = None, None
    epochs_path = data_dir / "epochs.csv"
    if epochs_path.exists():
        try:
            epochs_table = read_table(epochs_path, EPOCH_REQUIRED, allow_no_rows=True, notes=live)
        except PlotError as err:
            epochs_problem = str(err)
    status = summary.get("status")
    if status is not None and status not in STATUSES:
        notes.append(f"{folder}: unknown status {status!r} in summary.json")
    return Run(
        path=folder, config=config, overrides=overrides, summary=summary, losses=losses,
        epochs_table=epochs_table, epochs_problem=epochs_problem, reused_from=reused_from, notes=notes,
    )


def load_runs(folders: Iterable[str | os.PathLike]) -> list[Run]:
    """Load every folder; skip bad ones with a warning; raise if none could be loaded."""
    return load_runs_and_failures(folders)[0]


def load_runs_and_failures(folders: Iterable[str | os.PathLike]) -> tuple[list[Run], list[tuple[Path, str]]]:
    """As ``load_runs``, and also the folders that could not be drawn, with the reason.

    ``--table`` lists those as failed: a job that crashed hard (``os._exit``, OOM kill)
    leaves only ``.hydra/``, and a sweep's table must still show it.
    """
    runs: list[Run] = []
    problems: list[str] = []
    failures: list[tuple[Path, str]] = []
    for folder in folders:
        try:
            run = load_run(folder)
        except PlotError as err:
            problems.append(str(err))
            failures.append((Path(folder), str(err)))
            continue
        runs.append(run)
    if not runs:
        if len(problems) == 1:
            raise PlotError(problems[0])
        raise PlotError(f"none of the {len(problems)} runs could be loaded; the first: {problems[0]}")
    # a job skipped with skip_finished=true shows the run it reuses; never count that run twice
    loaded = {run.path.resolve() for run in runs if run.reused_from is None}
    runs = [run for run in runs if run.reused_from is None or run.reused_from.resolve() not in loaded]
    for problem in problems:
        warn(f"skipped run: {problem}")
    for run in runs:
        for note in run.notes:
            warn(note)
    return runs, failures


def finite(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not (
        isinstance(value, float) and math.isnan(value)
    )
