"""Finding run folders and loading them from their files (see docs/run-format.md).

The plotter reads only a run's files: ``summary.json``, ``losses.csv``, ``epochs.csv``
(and a skipped job's ``reused.json``); ``.hydra/`` only for a run whose summary.json
holds no config. It never imports the trainer or torch.

What the run's columns mean and how to show them is its description (``Run.outputs``):
summary.json's ``outputs``, or, for a summary written before that key, the description its
dataset name had then (``run_folder.outputs_of``, the format owner's reader of its old versions).

What ran is summary.json's ``config``: the resolved, validated config, aliases resolved
(``.hydra/config.yaml`` is Hydra's raw composition, which a later command may even have
rewritten). Only when the summary has none is ``.hydra/config.yaml`` read, and its
optimizer aliases are then resolved as the runner resolves them.

Every problem with an input becomes a :class:`PlotError` whose text is one line naming
the problem and its fix. A bad run among good ones is skipped with a
:class:`PlotWarning` naming it; only when nothing is left is the error raised. Two
folders holding the same run (same config hash and seed: a copy, or a skip_finished
job's ``reused.json`` and the run it points at) are drawn once.
"""

from __future__ import annotations

import glob
import io
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

from optbench.errors import OptbenchError
from optbench.optimizer_aliases import resolve_optimizer_aliases
from optbench.run_folder import (  # noqa: F401
    EPOCH_REQUIRED,
    EPOCHS,
    FINISHED,
    HYDRA_CONFIG,
    HYDRA_OVERRIDES,
    LOSS_REQUIRED,
    LOSSES,
    REUSED,
    RUN_MARKERS,
    STATUSES,
    SUMMARY,
    Column,
    Outputs,
    RunFolderError,
    is_run_dir,
    known_column,
    outputs_of,
    read_json,
    read_table,
)

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


def _why(err: OSError) -> str:
    return err.strerror or type(err).__name__


# --------------------------------------------------------------------------- discovery


def _has_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _looks_like_run(path: Path) -> bool:
    """``is_run_dir``, except that a folder that cannot be looked into counts as a run, so that
    loading it reports why (permission denied) instead of it vanishing without a word."""
    try:
        return is_run_dir(path)
    except OSError:
        return os.path.isdir(path)


def _walk_runs(top: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, _ in os.walk(top):
        here = Path(dirpath)
        if _looks_like_run(here):
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


def _stat_problem(path: Path, text: str) -> str | None:
    """Why ``path`` cannot be used as an input (None when it exists)."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return f"{text}: no such file or folder. Fix: check the path (runs are under outputs/ and multirun/)."
    except OSError as err:
        return f"{text}: cannot be read ({_why(err)}). Fix: check its permissions, or leave it out."
    except ValueError:  # an embedded NUL byte
        return f"{text!r} is not a valid path. Fix: check the path."
    return None


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
        problem = _stat_problem(path, text)
        if problem is None:
            candidates = [path]
        elif _has_glob(text) and "no such file" in problem:
            candidates = [Path(p) for p in sorted(glob.glob(os.path.expanduser(text), recursive=True), key=natural_key)]
            if not candidates:
                problems.append(f"no path matches {text!r}. Fix: check the pattern (quote it so the shell does not expand it).")
                continue
        else:
            problems.append(problem)
            continue
        found_here: list[Path] = []
        for candidate in candidates:
            if os.path.isfile(candidate) and candidate.name in (SUMMARY, LOSSES, EPOCHS, REUSED):
                candidate = candidate.parent
            if os.path.isdir(candidate):
                found_here.extend([candidate] if _looks_like_run(candidate) else _walk_runs(candidate))
        if not found_here:
            problems.append(
                f"{text}: no runs found (no folder below it holds summary.json or losses.csv). "
                "Fix: point at a run folder (outputs/<date>/<time>) or a multirun folder (multirun/<date>/<time>)."
            )
            continue
        if first_input is None:
            first_input = candidates[0]
        for run_dir in found_here:
            key = Path(os.path.abspath(run_dir))
            try:
                key = run_dir.resolve()
            except (OSError, RuntimeError):
                pass
            if key not in seen:
                seen.add(key)
                runs.append(run_dir)
    if not runs:
        raise PlotError(problems[0])
    for problem in problems:
        warn(f"skipped input: {problem}")
    return Inputs(runs=runs, first_input=first_input)


# --------------------------------------------------------------------------- summary.json's types


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(value: Any) -> bool:
    return isinstance(value, dict) and all(v is None or _is_num(v) for v in value.values())


#: what each summary.json field may hold besides null: (test, the words for it)
SUMMARY_TYPES: dict[str, tuple[Any, str]] = {
    "status": (lambda v: isinstance(v, str), "a string"),
    "dataset": (lambda v: isinstance(v, str), "a string"),
    "optimizer": (lambda v: isinstance(v, str), "a string"),
    "impl": (lambda v: isinstance(v, str), "a string"),
    "seed": (_is_int, "a whole number"),
    "device": (lambda v: isinstance(v, str), "a string"),
    "config": (lambda v: isinstance(v, dict), "an object"),
    "config_hash": (lambda v: isinstance(v, str), "a string"),
    "overrides": (lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v), "a list of strings"),
    "steps": (_is_int, "a whole number"),
    "epochs_completed": (_is_num, "a number"),
    "diverged_at_step": (_is_int, "a whole number"),
    "final": (_numbers, "an object of numbers"),
    "best": (_numbers, "an object of numbers"),
    "total_time_s": (_is_num, "a number"),
    "train_time_s": (_is_num, "a number"),
    "compile_time_s": (_is_num, "a number"),
    "threads": (_is_int, "a whole number"),
    "report": (lambda v: isinstance(v, dict), "an object"),
    "error": (lambda v: isinstance(v, str), "a string"),
    "versions": (lambda v: isinstance(v, dict), "an object"),
    "started_at": (lambda v: isinstance(v, str), "a string"),
    "finished_at": (lambda v: isinstance(v, str), "a string"),
    "resumed_from_step": (_is_int, "a whole number"),
    "engine": (lambda v: isinstance(v, dict), "an object"),
    "outputs": (lambda v: isinstance(v, dict), "an object"),
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_summary(summary: dict, path: Path) -> dict:
    """``summary`` if every documented field holds its type (or null); else a PlotError naming the field."""
    for key, (test, words) in SUMMARY_TYPES.items():
        value = summary.get(key)
        if value is not None and not test(value):
            raise PlotError(
                f"{path}: `{key}` is {_shown(value)}, not {words}, so the file is damaged or was not written by "
                f"optbench. Fix: rerun the run, or repair that field (null where unknown), or leave this folder out."
            )
    return summary


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
        return tuple(sorted(((str(k), _hashable(v)) for k, v in value.items()), key=repr))
    return value


def resolve_config(config: dict) -> dict:
    """``config`` with the optimizer's aliases resolved as the runner resolves them
    (rmsprop ``gamma``/``rho`` -> ``alpha``, momentum ``gamma`` -> ``momentum``); alias keys removed."""
    node = config.get("optimizer")
    if not isinstance(node, dict):
        return config
    rest = {k: v for k, v in node.items() if k not in ("name", "impl")}
    meta = {k: node[k] for k in ("name", "impl") if k in node}
    return {**config, "optimizer": {**meta, **resolve_optimizer_aliases(node.get("name"), rest)}}


@dataclass
class Run:
    """One run folder, loaded. ``epochs`` may be empty (no epoch finished).

    ``config`` is the resolved config (summary.json's, else ``.hydra/config.yaml`` with
    aliases resolved); ``reused_from`` is the folder whose files a skip_finished job shows.
    ``outputs``: the run's description of its columns (None: nothing is known about them).
    """

    path: Path
    config: dict
    overrides: list[str]
    summary: dict
    losses: pd.DataFrame
    epochs_table: pd.DataFrame | None = None
    epochs_problem: str | None = None
    reused_from: Path | None = None
    notes: list[str] = field(default_factory=list)
    outputs: Outputs | None = None

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

    @cached_property
    def config_hash(self) -> str:
        """summary.json's ``config_hash``, else the runner's hash of the resolved config."""
        saved = self.summary.get("config_hash")
        if isinstance(saved, str) and saved:
            return saved
        from optbench.config.hashing import config_hash

        return config_hash(self.config)

    @property
    def identity(self) -> tuple[str, str]:
        """(config hash, seed): two folders with the same identity hold the same run."""
        return self.config_hash, repr(self.seed)

    @property
    def data_dir(self) -> Path:
        """The folder whose files were read (the reused run's, for a skipped job)."""
        return self.reused_from if self.reused_from is not None else self.path

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
        if _is_int(step):
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

    def column(self, name: str) -> Column | None:
        """How this run describes the column ``name``; for a run that describes nothing, the generic
        or a known problem's column of that name."""
        if self.outputs is not None:
            return self.outputs.column(name)
        return known_column(name)

    def final(self, key: str) -> Any:
        node = self.summary.get("final")
        return node.get(key) if isinstance(node, dict) else None

    def best(self, key: str) -> Any:
        node = self.summary.get("best")
        return node.get(key) if isinstance(node, dict) else None


def _read_summary(path: Path) -> dict:
    return check_summary(read_json(path), path)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise PlotError(f"{path}: cannot be read ({_why(err)}). Fix: check its permissions, or leave this folder out.") from None


def _read_hydra_config(folder: Path) -> dict | None:
    """``.hydra/config.yaml`` as a plain dict (no ``hydra`` node), None when absent."""
    path = folder / HYDRA_CONFIG
    if not os.path.lexists(path):
        return None
    text = _read_text(path)
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        node = OmegaConf.load(io.StringIO(text))
    except Exception as err:  # yaml.YAMLError and OmegaConf's own errors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PlotError(
            f"{path} is not valid YAML ({first[:120]}), and summary.json holds no config. "
            "Fix: rerun the run, or restore that file, or leave this folder out."
        ) from None
    try:
        config = OmegaConf.to_container(node, resolve=True)
    except OmegaConfBaseException:
        config = OmegaConf.to_container(node, resolve=False)
    if not isinstance(config, dict):
        raise PlotError(f"{path} holds no mapping, and summary.json holds no config. Fix: rerun the run, or leave it out.")
    config.pop("hydra", None)
    return config


def _read_config(folder: Path, summary: dict) -> dict:
    """The resolved config: summary.json's, else ``.hydra/config.yaml``'s with aliases resolved."""
    config = summary.get("config")
    if not isinstance(config, dict) or not config:
        config = _read_hydra_config(folder)
    if config is None:
        raise PlotError(
            f"{folder} has no .hydra/config.yaml and its summary.json holds no config, so what ran is unknown. "
            "Fix: leave this folder out, or restore its .hydra/ folder."
        )
    try:
        return resolve_config(config)
    except OptbenchError as err:
        raise PlotError(f"{folder}: its config cannot have run: {err}") from None


def _read_overrides(folder: Path, summary: dict) -> list[str]:
    """summary.json's overrides (what this run was given), else ``.hydra/overrides.yaml``'s."""
    overrides = summary.get("overrides")
    if isinstance(overrides, list):
        return [str(item) for item in overrides]
    path = folder / HYDRA_OVERRIDES
    if not os.path.lexists(path):
        return []
    import yaml

    try:
        loaded = yaml.safe_load(_read_text(path))
    except yaml.YAMLError:
        loaded = None
    return [str(item) for item in loaded] if isinstance(loaded, list) else []


def _reused_target(folder: Path) -> tuple[Path, dict]:
    marker_path = folder / REUSED
    marker = read_json(marker_path)
    target = marker.get("reused_run")
    if not target or not isinstance(target, str):
        raise PlotError(f"{marker_path} names no reused_run. Fix: rerun this job without skip_finished, or leave it out.")
    for candidate in (Path(target), folder / target, folder.parent / target):
        try:
            if is_run_dir(candidate) and (candidate / LOSSES).exists():
                return candidate, marker
        except (OSError, ValueError):
            continue
    raise PlotError(
        f"{folder} was skipped as a repeat of {target}, which no longer holds a run. "
        "Fix: rerun the job with skip_finished=false, or leave it out."
    )


def _check_steps(losses: pd.DataFrame, path: Path) -> None:
    steps = losses["step"].to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(steps) | (steps < 0) | (steps != np.round(steps)))
    if len(bad):
        raise PlotError(
            f"{path}, line {bad[0] + 2}: step {float(steps[bad[0]]):g} is not a whole number >= 0. "
            "Fix: rerun the run, or repair that line."
        )


def load_run(folder: str | os.PathLike) -> Run:
    """Load one run folder; raise PlotError (one line) if it cannot be plotted."""
    folder = Path(folder)
    try:
        return _load_run(folder)
    except OSError as err:  # a file that vanished or turned unreadable while being read
        raise PlotError(f"{folder}: cannot be read ({_why(err)}). Fix: check that it exists and its permissions, "
                        "or leave it out.") from None


def _load_run(folder: Path) -> Run:
    try:
        folder.stat()
        entries = set(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        raise PlotError(f"{folder}: no such folder (it may have been moved or deleted). Fix: check the path.") from None
    except OSError as err:
        raise PlotError(f"{folder}: cannot be read ({_why(err)}). Fix: check its permissions, or leave it out.") from None
    data_dir, reused_from, marker = folder, None, None
    if LOSSES not in entries and REUSED in entries:
        data_dir, marker = _reused_target(folder)
        reused_from = data_dir
        entries = set(os.listdir(data_dir))
    summary_path = data_dir / SUMMARY
    notes: list[str] = []
    if SUMMARY in entries:
        summary = _read_summary(summary_path)
    else:
        summary = {}
        if LOSSES in entries:
            notes.append(f"{folder} has no summary.json; drawn as incomplete")
    if marker is not None:
        said, holds = marker.get("config_hash"), summary.get("config_hash")
        if isinstance(said, str) and isinstance(holds, str) and said != holds:
            raise PlotError(
                f"{folder} was skipped as a repeat of {data_dir} (config hash {said}), but that folder now holds a "
                f"different run (config hash {holds}). Fix: rerun the job with skip_finished=false, or leave it out."
            )
    if LOSSES not in entries:
        status = summary.get("status")
        if status == "failed":
            error = " ".join(str(summary.get("error") or "no error message").split())
            fix = "" if "fix" in error.lower() else " Fix: correct that and rerun it."
            raise PlotError(f"{folder} failed before logging a step: {error[:300]}{fix}")
        if summary:
            raise PlotError(
                f"{folder} has summary.json (status {status}) but no losses.csv. "
                "Fix: rerun it (or wait for it to log its first step), or leave it out."
            )
        raise PlotError(
            f"{folder} has no losses.csv and no summary.json: the job never started training. "
            "Fix: see the job's log next to .hydra/, rerun it, or leave it out."
        )
    config = _read_config(data_dir, summary)
    overrides = _read_overrides(data_dir, summary)
    if marker and not overrides and isinstance(marker.get("overrides"), list):
        overrides = [str(o) for o in marker["overrides"]]
    live = notes if summary.get("status", "running") == "running" else None
    losses = read_table(data_dir / LOSSES, LOSS_REQUIRED, notes=live)
    _check_steps(losses, data_dir / LOSSES)
    losses = losses.sort_values("step", kind="stable").reset_index(drop=True)
    epochs_table, epochs_problem = None, None
    if EPOCHS in entries:
        try:
            epochs_table = read_table(data_dir / EPOCHS, EPOCH_REQUIRED, allow_no_rows=True, notes=live)
        except PlotError as err:
            epochs_problem = str(err)
    status = summary.get("status")
    if status is not None and status not in STATUSES:
        notes.append(f"{folder}: unknown status {status!r} in summary.json")
    dataset = ((config.get("dataset") or {}) if isinstance(config.get("dataset"), dict) else {}).get("name")
    outputs = outputs_of(summary, str(dataset) if dataset else None, str(summary_path))
    return Run(
        path=folder, config=config, overrides=overrides, summary=summary, losses=losses,
        epochs_table=epochs_table, epochs_problem=epochs_problem, reused_from=reused_from, notes=notes,
        outputs=outputs,
    )


def load_runs(folders: Iterable[str | os.PathLike]) -> list[Run]:
    """Load every folder; skip bad ones with a warning; raise if none could be loaded."""
    return load_runs_and_failures(folders)[0]


def _keep_rank(run: Run, order: int) -> tuple:
    """Which of two folders holding the same run is drawn: its own files over a reused.json,
    a finished run over an unfinished one, more logged rows, then the first given."""
    return (run.reused_from is not None, run.status not in FINISHED, -len(run.losses), order)


def drop_repeats(runs: Sequence[Run]) -> list[Run]:
    """One run per identity (config hash and seed), in input order; a warning names each repeat left out."""
    by_identity: dict[tuple, list[tuple[int, Run]]] = {}
    for order, run in enumerate(runs):
        by_identity.setdefault(run.identity, []).append((order, run))
    keep: set[int] = set()
    for identity, members in by_identity.items():
        order, kept = min(members, key=lambda item: _keep_rank(item[1], item[0]))
        keep.add(order)
        for _, other in members:
            if other is kept:
                continue
            how = (f"a skip_finished job whose reused.json points at {other.reused_from}"
                   if other.reused_from is not None else "a copy of it")
            warn(f"{other.name} holds the same run as {kept.name} (config hash {identity[0]}, seed {identity[1]}; "
                 f"{how}): drawn once, from {kept.data_dir}, not as two seeds")
    return [run for order, run in enumerate(runs) if order in keep]


def load_runs_and_failures(folders: Iterable[str | os.PathLike]) -> tuple[list[Run], list[tuple[Path, str]]]:
    """As ``load_runs``, and also the folders that could not be drawn, with the reason.

    ``--table`` lists those as failed: a job that crashed hard (``os._exit``, OOM kill)
    leaves only ``.hydra/``, and a sweep's table must still show it. Folders holding the
    same run (same config hash and seed) are kept once (see ``drop_repeats``).
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
    for problem in problems:
        warn(f"skipped run: {problem}")
    runs = drop_repeats(runs)
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
