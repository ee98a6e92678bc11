"""Synthetic run folders in the documented format (docs/run-format.md), for the plotter's tests.

``write_run(path, ...)`` writes .hydra/config.yaml, .hydra/overrides.yaml, losses.csv,
epochs.csv and summary.json, exactly as a run would, from plain Python values, so
tests need neither torch nor a training run. File names and columns come from
``optbench.run_folder``, the format's one owner. As a real run does, ``.hydra/config.yaml``
holds Hydra's raw composition (alias keys such as rmsprop's ``gamma`` included) and
summary.json's ``config`` the resolved one (aliases moved onto their canonical keys),
with its real ``config_hash``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from optbench.config.hashing import config_hash
from optbench.csv_cells import csv_cell
from optbench.optimizer_aliases import resolve_optimizer_aliases
from optbench.run_folder import (
    EPOCH_COLUMNS,
    EPOCHS,
    HYDRA_CONFIG,
    HYDRA_DIR,
    HYDRA_OVERRIDES,
    HYDRA_SETTINGS,
    LOSS_COLUMNS,
    LOSSES,
    MULTIRUN_YAML,
    SUMMARY,
    write_json_atomic,
)

STEP_COLUMNS = {
    "linreg": ["full_loss", "suboptimality"],
    "quadratic": ["x", "f_x", "grad_x", "suboptimality"],
    "mnist": [],
    "fashion_mnist": [],
}

DATASETS = {
    "mnist": {"name": "mnist", "root": None, "download": True},
    "fashion_mnist": {"name": "fashion_mnist", "root": None, "download": True,
                      "system_dir": "/usr/share/datasets/fashion-mnist"},
    "linreg": {"name": "linreg", "num_examples": 1000, "true_w": [2.0, -3.4], "true_b": 4.2, "noise": 0.01},
    "quadratic": {"name": "quadratic", "x0": 2.0, "coef": 4.0},
}
OPTIMIZERS = {
    "sgd": {"name": "sgd", "impl": "scratch", "lr": 0.01},
    "momentum": {"name": "momentum", "impl": "scratch", "lr": 0.01, "momentum": 0.9, "gamma": None},
    "adagrad": {"name": "adagrad", "impl": "scratch", "lr": 0.01, "eps": 1e-10},
    "rmsprop": {"name": "rmsprop", "impl": "scratch", "lr": 0.001, "alpha": 0.9, "eps": 1e-10, "momentum": 0.0,
                "centered": False, "weight_decay": 0.0, "gamma": None, "rho": None},
    "adam": {"name": "adam", "impl": "scratch", "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
             "weight_decay": 0.0},
    "adadelta": {"name": "adadelta", "impl": "scratch", "lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0},
}


def make_config(dataset: str = "mnist", optimizer: str = "rmsprop", **changes: Any) -> dict:
    """A composed config like Hydra's; ``changes`` use dotted keys: ``{"optimizer.alpha": 0.999}``."""
    config = {
        "seed": 0, "batch_size": 64, "epochs": 5, "steps": None, "device": "auto", "log_every": 30,
        "threads": None, "quiet": False, "compile": False,
        "grad_clip": {"kind": "none", "threshold": 1.0},
        "schedule": {"kind": "constant", "step_size": 1000, "gamma": 0.1, "t_max": None, "eta_min": 0.0},
        "checkpoint_every": None, "resume": None, "skip_finished": False, "results_root": None,
        "optimizer": copy.deepcopy(OPTIMIZERS[optimizer]),
        "dataset": copy.deepcopy(DATASETS[dataset]),
    }
    if dataset == "linreg":
        config.update(batch_size=10, epochs=3, log_every=1)
    if dataset == "quadratic":
        config.update(batch_size=1, epochs=1, steps=20, log_every=1)
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.replace("__", ".").split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return config


def curve_rows(losses: Sequence[float], *, steps_per_epoch: int = 10, log_every: int = 1, batch_size: int = 64,
               step_time: float = 0.01, extra: Mapping[str, Sequence[float]] | None = None) -> list[dict]:
    """losses.csv rows for the given per-log losses (row i is step i*log_every)."""
    rows = []
    for i, loss in enumerate(losses):
        step = i * log_every
        row = {
            "step": step,
            "epoch": (step + 1) / steps_per_epoch,
            "examples_seen": (step + 1) * batch_size,
            "wall_time_s": round((step + 1) * step_time, 6),
            "loss": loss,
            "lr": 0.001,
        }
        for column, values in (extra or {}).items():
            row[column] = values[i]
        rows.append(row)
    return rows


def quadratic_rows(lr: float, steps: int, x0: float = 2.0, coef: float = 4.0) -> list[dict]:
    """Seed 003's gradient descent on f(x) = coef*x^2, every iterate logged."""
    rows, x = [], x0
    for step in range(steps):
        f, g = coef * x * x, 2 * coef * x
        rows.append({"step": step, "epoch": (step + 1) / steps, "examples_seen": step + 1,
                     "wall_time_s": 1e-4 * (step + 1), "loss": f, "lr": lr,
                     "x": x, "f_x": f, "grad_x": g, "suboptimality": f})
        x = x - lr * g
    return rows


def resolved(config: Mapping) -> dict:
    """What the runner's validation makes of a composed config: the optimizer's aliases resolved."""
    config = copy.deepcopy(dict(config))
    node = config.get("optimizer")
    if isinstance(node, dict):
        rest = {k: v for k, v in node.items() if k not in ("name", "impl")}
        meta = {k: node[k] for k in ("name", "impl") if k in node}
        config["optimizer"] = {**meta, **resolve_optimizer_aliases(node.get("name"), rest)}
    return config


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    lines = [",".join(columns)] + [",".join(csv_cell(row.get(c)) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def write_run(
    path: str | Path,
    *,
    config: dict | None = None,
    overrides: Sequence[str] = (),
    losses: Sequence[Mapping[str, Any]] | Sequence[float] | None = None,
    epochs: Sequence[Mapping[str, Any]] | None = None,
    status: str = "completed",
    summary: Mapping[str, Any] | None = None,
    hydra: bool = True,
) -> Path:
    """Write one run folder; ``losses`` may be rows or plain loss values (see ``curve_rows``).

    ``epochs`` defaults to one row per whole epoch of the losses' mean; ``summary`` updates
    the generated summary.json.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = config or make_config()
    dataset = config["dataset"]["name"]
    if losses is None:
        losses = [2.0 * 0.9**i for i in range(20)]
    rows = [dict(r) for r in losses] if losses and isinstance(losses[0], Mapping) else curve_rows(list(losses))
    columns = list(LOSS_COLUMNS) + STEP_COLUMNS.get(dataset, [])
    if hydra:
        (path / HYDRA_DIR).mkdir(exist_ok=True)
        (path / HYDRA_CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
        (path / HYDRA_OVERRIDES).write_text(yaml.safe_dump(list(overrides)))
        (path / HYDRA_SETTINGS).write_text("hydra:\n  mode: RUN\n")
    write_csv(path / LOSSES, columns, rows)
    if epochs is None:
        epochs = []
        whole = int(max((r["epoch"] for r in rows), default=0))
        for e in range(1, whole + 1):
            inside = [r["loss"] for r in rows if e - 1 < r["epoch"] <= e]
            if inside:
                epochs.append({"epoch": e, "train_loss": sum(inside) / len(inside), "epoch_time_s": 0.1,
                               **({"test_loss": 0.5 / e, "test_acc": 0.8 + 0.01 * e}
                                  if dataset in ("mnist", "fashion_mnist") else {})})
    write_csv(path / EPOCHS, EPOCH_COLUMNS, epochs)
    finite = [r["loss"] for r in rows if isinstance(r["loss"], (int, float)) and math.isfinite(r["loss"])]
    last_epoch = epochs[-1] if epochs else {}
    payload = {
        "status": status,
        "dataset": dataset,
        "optimizer": config["optimizer"]["name"],
        "impl": config["optimizer"]["impl"],
        "seed": config.get("seed", 0),
        "device": "cpu",
        "config": resolved(config),
        "config_hash": config_hash(resolved(config)),
        "overrides": list(overrides),
        "steps": (rows[-1]["step"] + 1) if rows else 0,
        "epochs_completed": float(rows[-1]["epoch"]) if rows else 0.0,
        "diverged_at_step": None,
        "final": {"loss": rows[-1]["loss"] if rows else None, "train_loss": last_epoch.get("train_loss"),
                  "test_loss": last_epoch.get("test_loss"), "test_acc": last_epoch.get("test_acc"),
                  "full_loss": rows[-1].get("full_loss") if rows else None,
                  "suboptimality": rows[-1].get("suboptimality") if rows else None},
        "best": {"loss": min(finite) if finite else None,
                 "train_loss": min((e["train_loss"] for e in epochs), default=None),
                 "test_loss": min((e["test_loss"] for e in epochs if e.get("test_loss") is not None), default=None),
                 "test_acc": max((e["test_acc"] for e in epochs if e.get("test_acc") is not None), default=None)},
        "total_time_s": rows[-1]["wall_time_s"] + 0.5 if rows else 0.0,
        "train_time_s": rows[-1]["wall_time_s"] if rows else 0.0,
        "compile_time_s": None,
        "threads": 2,
        "report": {},
        "error": None,
        "versions": {"optbench": "0.1.0", "torch": "2.x", "python": "3.11"},
        "started_at": "2024-06-01T10:00:00+00:00",
        "finished_at": None if status == "running" else "2024-06-01T10:01:00+00:00",
    }
    if status == "running":
        payload.update(final={}, best={}, total_time_s=0.0, steps=0, epochs_completed=0.0)
    if status == "diverged":
        bad = next((r["step"] for r in rows if not (isinstance(r["loss"], float) and math.isfinite(r["loss"]))
                    and not isinstance(r["loss"], int)), None)
        payload["diverged_at_step"] = bad
    payload.update(summary or {})
    write_json_atomic(path / SUMMARY, payload)
    return path


def write_multirun(root: str | Path, jobs: Sequence[Mapping[str, Any]]) -> Path:
    """A Hydra multirun folder: multirun.yaml and one numbered job folder per ``write_run`` kwargs."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MULTIRUN_YAML).write_text("hydra:\n  mode: MULTIRUN\n")
    for number, job in enumerate(jobs):
        write_run(root / str(number), **job)
    return root
