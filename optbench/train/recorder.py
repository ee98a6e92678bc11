"""Writes a run's self-describing files: losses.csv, epochs.csv, summary.json and optbench.log.

The format itself (names, columns, atomic writers) is :mod:`optbench.run_folder`'s.
CSV rows are appended whole and reach the OS as soon as they are logged, so a run
killed with SIGKILL keeps every row it logged. summary.json is replaced atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optbench.run_folder import EPOCH_COLUMNS, EPOCHS, LOG, LOSS_COLUMNS, LOSSES, SUMMARY, CsvLog, write_json_atomic


class RunRecorder:
    """The run folder's files. ``summary`` is the live summary.json content.

    ``resume`` (a checked checkpoint payload) keeps the rows the checkpoint counted and
    appends after them; without it the CSVs start afresh with their headers.
    ``step_columns`` and ``epoch_columns``: the problem's own columns after the generic ones
    (``Outputs.problem_columns``).
    """

    def __init__(self, run_dir: Path, step_columns: tuple[str, ...], summary: dict, resume: dict | None = None,
                 epoch_columns: tuple[str, ...] = ()):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.losses = CsvLog(self.run_dir / LOSSES, LOSS_COLUMNS + tuple(step_columns),
                             keep_rows=None if resume is None else resume["loss_rows"])
        self.epochs = CsvLog(self.run_dir / EPOCHS, EPOCH_COLUMNS + tuple(epoch_columns),
                             keep_rows=None if resume is None else resume["epoch_rows"])
        self.summary = summary
        self.log_path = self.run_dir / LOG
        self.write_summary()

    def log_step(self, row: dict[str, Any]) -> None:
        self.losses.append(row)

    def log_epoch(self, row: dict[str, Any]) -> None:
        self.epochs.append(row)

    def write_summary(self, **updates: Any) -> None:
        self.summary.update(updates)
        write_json_atomic(self.run_dir / SUMMARY, self.summary)

    def close(self) -> None:
        self.losses.close()
        self.epochs.close()
