"""``--table``: one row per run, printed with rich and written as summary.csv."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from optbench.csv_cells import csv_cell
from optbench.plot.labels import make_labels
from optbench.plot.metrics import best_value, final_value, target_hit, total_time
from optbench.plot.runs import Run

COLUMNS = (
    "run", "label", "status", "final_train_loss", "best_train_loss", "test_loss", "test_acc",
    "total_time_s", "steps_to_target", "time_to_target_s",
)


def summary_rows(runs: Sequence[Run], *, target: float | None = None, y: str = "loss",
                 smooth: int | None = None, labels: Sequence[str] | None = None) -> list[dict]:
    """One dict per run, keys :data:`COLUMNS`; None where a value does not exist.

    ``final_train_loss``/``best_train_loss``: the last/best finished epoch's mean
    minibatch loss (the quadratic: last/least f(x)). ``steps_to_target`` and
    ``time_to_target_s``: the first logged step whose ``y`` (loss, full_loss or
    suboptimality; trailing mean with ``smooth``) is <= ``target``; None if never.
    """
    names = list(labels) if labels else make_labels([r.flat for r in runs], [r.overrides for r in runs])
    rows = []
    for run, name in zip(runs, names):
        hit = target_hit(run, target, y, smooth) if target is not None else None
        mark = run.mark
        rows.append({
            "run": run.name,
            "label": name,
            "status": run.status + (f" ({mark})" if mark == "diverged" and run.status != "diverged" else ""),
            "final_train_loss": final_value(run, "loss"),
            "best_train_loss": best_value(run, "loss"),
            "test_loss": final_value(run, "test_loss"),
            "test_acc": final_value(run, "test_acc"),
            "total_time_s": total_time(run),
            "steps_to_target": hit[0] if hit else None,
            "time_to_target_s": hit[1] if hit else None,
        })
    return rows


def failed_rows(failures: Sequence[tuple[Path, str]]) -> list[dict]:
    """Rows for job folders that hold nothing to draw (a hard crash leaves only .hydra/)."""
    return [{**dict.fromkeys(COLUMNS), "run": str(folder), "label": "", "status": "failed"} for folder, _ in failures]


def write_summary_csv(rows: Sequence[dict], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([csv_cell(row.get(column), ".8g") for column in COLUMNS])
    return path


def _short(value, digits: int = 4) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.{digits}g}"
    return csv_cell(value)


def rich_table(rows: Sequence[dict], target: float | None = None) -> Table:
    table = Table(title="runs" + (f" (target loss {target:g})" if target is not None else ""))
    for header, justify in (("run", "left"), ("label", "left"), ("status", "left"), ("final loss", "right"),
                            ("best loss", "right"), ("test loss", "right"), ("test acc", "right"),
                            ("time s", "right"), ("steps to target", "right"), ("s to target", "right")):
        table.add_column(header, justify=justify, overflow="fold")
    colours = {"completed": "green", "diverged": "red", "failed": "red", "interrupted": "yellow", "running": "yellow"}
    for row in rows:
        status = row["status"]
        colour = colours.get(status.split()[0], "white")
        table.add_row(
            row["run"], row["label"], f"[{colour}]{status}[/{colour}]",
            _short(row["final_train_loss"]), _short(row["best_train_loss"]), _short(row["test_loss"]),
            _short(row["test_acc"]), _short(row["total_time_s"], 3),
            csv_cell(row["steps_to_target"]) or "-" if target is not None else "",
            _short(row["time_to_target_s"], 3) or "-" if target is not None else "",
        )
    return table
