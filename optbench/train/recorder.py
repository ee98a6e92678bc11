"""Writes a run's self-describing files: losses.csv, epochs.csv and summary.json.

CSV rows are appended and flushed as soon as they are logged, so a run killed with
SIGKILL keeps every row it logged. summary.json is replaced atomically.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from optbench.csv_cells import csv_cell
LOSS_COLUMNS = ("step", "epoch", "examples_seen", "wall_time_s", "loss", "lr")
EPOCH_COLUMNS = ("epoch", "train_loss", "test_loss", "test_acc", "epoch_time_s")


class CsvLog:
    """An append-only CSV file whose every row reaches the OS before ``append`` returns."""

    def __init__(self, path: Path, columns: tuple[str, ...], resume_rows: int | None = None):
        self.path, self.columns = path, columns
        if resume_rows is not None and path.exists():
            _truncate_to_rows(path, resume_rows)
            self._file = path.open("a", newline="")
        else:
            self._file = path.open("w", newline="")
            self._file.write(",".join(columns) + "\n")
            self._file.flush()
        self._writer = csv.writer(self._file, lineterminator="\n")
        self.rows = resume_rows or 0

    def append(self, row: dict[str, Any]) -> None:
        self._writer.writerow([csv_cell(row.get(c)) for c in self.columns])
        self._file.flush()
        self.rows += 1

    def close(self) -> None:
        self._file.close()


def _truncate_to_rows(path: Path, rows: int) -> None:
    """Keep the header and the first ``rows`` data rows (resume after a checkpoint)."""
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: rows + 1]))


def write_json_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default, allow_nan=True) + "\n")
    os.replace(tmp, path)


def _json_default(value: Any):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class RunRecorder:
    """The run folder's files. ``summary`` is the live summary.json content."""

    def __init__(self, run_dir: Path, step_columns: tuple[str, ...], summary: dict, resume: dict | None = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.losses = CsvLog(self.run_dir / "losses.csv", LOSS_COLUMNS + tuple(step_columns),
                             resume_rows=None if resume is None else resume["loss_rows"])
        self.epochs = CsvLog(self.run_dir / "epochs.csv", EPOCH_COLUMNS,
                             resume_rows=None if resume is None else resume["epoch_rows"])
        self.summary = summary
        self.write_summary()

    def log_step(self, row: dict[str, Any]) -> None:
        self.losses.append(row)

    def log_epoch(self, row: dict[str, Any]) -> None:
        self.epochs.append(row)

    def write_summary(self, **updates: Any) -> None:
        self.summary.update(updates)
        write_json_atomic(self.run_dir / "summary.json", self.summary)

    def close(self) -> None:
        self.losses.close()
        self.epochs.close()
