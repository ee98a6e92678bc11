"""``--table``: one row per run, printed with rich and written as summary.csv.

Besides the fixed :data:`COLUMNS`, a column the runs' descriptions mark for the table
(``Column.table``) gets ``final_<name>`` and ``best_<name>`` columns of its own; best is the
maximum where its description says higher is better.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.table import Table
from rich.text import Text

from optbench.csv_cells import csv_cell
from optbench.plot.labels import make_labels
from optbench.plot.metrics import best_value, final_value, target_hit, total_time
from optbench.plot.runs import Run
from optbench.run_folder import Column

COLUMNS = (
    "run", "label", "status", "final_train_loss", "best_train_loss", "test_loss", "test_acc",
    "total_time_s", "steps_to_target", "time_to_target_s",
)


def summary_rows(runs: Sequence[Run], *, target: float | None = None, y: str = "loss",
                 smooth: int | None = None, labels: Sequence[str] | None = None) -> list[dict]:
    """One dict per run, keys :data:`COLUMNS` (then each table column's final and best); None where
    a value does not exist.

    ``final_train_loss``/``best_train_loss``: the last/best finished epoch's mean
    minibatch loss (where the run's loss is the objective itself: its last/least logged value). ``steps_to_target`` and
    ``time_to_target_s``: the first logged step whose ``y`` (loss, full_loss or
    suboptimality; trailing mean with ``smooth``) is <= ``target``; None if never.
    """
    names = list(labels) if labels else make_labels([r.flat for r in runs], [r.overrides for r in runs])
    extras = table_metrics(runs)
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
        for column in extras:
            owned = run.outputs is not None and column.name in run.outputs
            rows[-1][f"final_{column.name}"] = final_value(run, column.name) if owned else None
            rows[-1][f"best_{column.name}"] = best_value(run, column.name) if owned else None
    return rows


def table_metrics(runs: Sequence[Run]) -> list[Column]:
    """The columns some run's description marks for the table, in first-seen order."""
    found: dict[str, Column] = {}
    for run in runs:
        for column in run.outputs.columns if run.outputs is not None else ():
            if column.table and column.metric:
                found.setdefault(column.name, column)
    return list(found.values())


def row_columns(rows: Sequence[dict]) -> list[str]:
    """:data:`COLUMNS`, then the other keys the rows hold, in first-seen order."""
    columns = list(COLUMNS)
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def failed_rows(failures: Sequence[tuple[Path, str]]) -> list[dict]:
    """Rows for job folders that hold nothing to draw (a hard crash leaves only .hydra/)."""
    return [{**dict.fromkeys(COLUMNS), "run": str(folder), "label": "", "status": "failed"} for folder, _ in failures]


def write_summary_csv(rows: Sequence[dict], path: Path) -> Path:
    """Write the rows as CSV at ``path``, atomically (a reader never sees half a table)."""
    from optbench.run_folder import write_bytes_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = row_columns(rows)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(column), ".8g") for column in columns])
    write_bytes_atomic(path, buffer.getvalue().encode())
    return path


def _short(value, digits: int = 4) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.{digits}g}"
    return csv_cell(value)


def short_run_names(names: Sequence[str]) -> tuple[str, list[str]]:
    """(the folder the runs share, each run's path below it): ``/x/multirun/d/t/3`` -> ``3``."""
    if not names:
        return "", []
    absolute = [os.path.abspath(name) for name in names]
    try:
        common = os.path.commonpath(absolute)
    except ValueError:
        return "", list(names)
    if len(absolute) == 1:
        common = os.path.dirname(absolute[0])
    short = [os.path.relpath(name, common) for name in absolute]
    if any(part in (".", "") for part in short):  # one run is the shared folder itself
        common = os.path.dirname(common)
        short = [os.path.relpath(name, common) for name in absolute]
    try:
        shown = os.path.relpath(common)
        common = "" if shown == "." else shown if not shown.startswith("..") else common
    except ValueError:
        pass
    return common, short


#: (header, row key, formatter): the number columns; they never wrap, the run and label cells fold
def _seconds(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return csv_cell(value)


_NUMBER_COLUMNS = (
    ("final\nloss", "final_train_loss", _short), ("best\nloss", "best_train_loss", _short),
    ("test\nloss", "test_loss", _short), ("test\nacc", "test_acc", _short), ("time\ns", "total_time_s", _seconds),
)
_STATUS_COLOURS = {"completed": "green", "diverged": "red", "failed": "red", "interrupted": "yellow",
                   "running": "yellow"}


def rich_table(rows: Sequence[dict], target: float | None = None) -> Table:
    """The terminal table, laid out to fit 100 columns: only the run and label cells fold (onto more
    lines, never cut); a number is never wrapped or cropped.

    The run column shows each run's path below the folder the runs share, which the title
    names; summary.csv keeps the full paths. A number column no row has a value for (test
    loss and accuracy of runs without a test set) is left out, as are the target columns without
    ``target``. Cells are plain text: a ``[`` in a folder name or label is no rich markup.
    """
    common, names = short_run_names([str(row["run"]) for row in rows])
    title = "runs" + (f" in {common}" if common else "") + (f", target loss {target:g}" if target is not None else "")
    table = Table(title=Text(title, overflow="fold"), box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True)
    columns: list[tuple[str, list[str], dict]] = [
        ("run", list(names), {"overflow": "fold", "min_width": 3}),
        ("label", [str(row.get("label") or "") for row in rows], {"overflow": "fold", "min_width": 12}),
        ("status", [str(row.get("status") or "") for row in rows], {"overflow": "fold", "min_width": 11}),
    ]
    extra = [(key.replace("_", "\n", 1), key, _short) for key in row_columns(rows) if key not in COLUMNS]
    for header, key, shown in _NUMBER_COLUMNS[:-1] + tuple(extra) + _NUMBER_COLUMNS[-1:]:
        if any(row.get(key) is not None for row in rows):
            columns.append((header, [shown(row.get(key)) for row in rows], {"justify": "right", "no_wrap": True}))
    if target is not None:
        columns.append(("steps to\ntarget", [csv_cell(row.get("steps_to_target")) or "-" for row in rows],
                        {"justify": "right", "no_wrap": True}))
        columns.append(("s to\ntarget", [_seconds(row.get("time_to_target_s")) or "-" for row in rows],
                        {"justify": "right", "no_wrap": True}))
    for header, cells, options in columns:
        if options.get("no_wrap"):
            widest = max([len(cell) for cell in cells] + [len(word) for word in header.split("\n")])
            options = {**options, "min_width": widest}
        table.add_column(header, **options)
    for index, row in enumerate(rows):
        status = str(row.get("status") or "")
        colour = _STATUS_COLOURS.get(status.split()[0] if status.split() else "", "white")
        cells = [Text(cells[index], style=colour if header == "status" else "") for header, cells, _ in columns]
        table.add_row(*cells)
    return table
