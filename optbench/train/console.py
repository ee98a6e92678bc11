"""What a run prints: a rich progress bar, seed-style epoch lines, and a closing panel.

Every line is printed whole, never wrapped at the terminal's width (``soft_wrap``),
and never read as rich markup (a path or a message may hold ``[...]``). The epoch
lines, the closing lines and errors also go to the ``optbench`` logger, which Hydra's
job logging (conf/hydra/job_logging/optbench.yaml) writes to the run folder's
``optbench.log`` only (the terminal already has them).

What a line shows comes from the problem's description (``Problem.outputs``, summary.json's
``outputs``): an epoch line has each epochs.csv column that declares a ``console`` template,
and the closing lines render its ``report_lines`` over summary.json's ``report``.
"""

from __future__ import annotations

import logging
import math
import string
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.text import Text

from optbench.run_folder import EPOCHS, GENERIC_OUTPUTS, Outputs, known_column, outputs_of

log = logging.getLogger("optbench")


class RunConsole:
    """Progress and per-epoch lines; ``quiet`` prints only the closing line (for sweeps)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.out = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)
        self._progress = None  # a rich.progress.Progress while a run is drawn
        self._task = None
        self.outputs: Outputs | None = None

    def describe(self, outputs: Outputs) -> None:
        """The problem's description, which the epoch and closing lines follow."""
        self.outputs = outputs

    def _line(self, text: str, style: str | None = None, *, logged: bool = True, prefix: Text | None = None) -> None:
        """Print one whole line (no wrapping, no markup); log it too."""
        if logged:
            log.info(text)
        line = Text.assemble(prefix, text) if prefix is not None else Text(text, style=style or "")
        console = self._progress.console if self._progress is not None else self.out
        console.print(line, soft_wrap=True, markup=False, highlight=False)

    def start(self, title: str, total_steps: int, done: int = 0) -> None:
        log.info(f"optbench {title}")
        if self.quiet:
            return
        from rich.progress import (  # not needed by quiet runs (sweeps)
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._line(title, logged=False, prefix=Text("optbench ", style="bold"))
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.out,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("steps", total=total_steps, completed=done, loss="-")

    def advance(self, completed: int, loss: float | None = None) -> None:
        if self._progress is not None:
            fields = {} if loss is None else {"loss": f"{loss:.4g}"}
            self._progress.update(self._task, completed=completed, **fields)

    @staticmethod
    def epoch_line(index: int, row: dict[str, Any], outputs: Outputs | None = None) -> str:
        """The seeds' ``epoch: 0, Train Loss: 0.381906`` line: each epochs.csv column with a ``console``
        template, in the description's order (the problem's metrics, then the time), where it has a value.

        Without ``outputs`` (a caller that did not describe its problem) the row's columns are looked up by name.
        """
        if outputs is None:
            outputs = Outputs(columns=tuple(c for c in map(known_column, row) if c is not None))
        parts = [f"epoch: {index}"]
        for column in outputs.columns:
            if column.file == EPOCHS and column.console and row.get(column.name) is not None:
                parts.append(column.console.format(row[column.name]))
        return ", ".join(parts)

    def epoch(self, index: int, row: dict[str, Any]) -> None:
        line = self.epoch_line(index, row, self.outputs)
        if self.quiet:
            log.info(line)
            return
        self._line(line)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def finish(self, summary: dict, run_dir: str) -> None:
        self.stop()
        status = summary["status"]
        colour = {"completed": "green", "diverged": "red", "interrupted": "yellow"}.get(status, "red")
        lines: list[tuple[str, str | None]] = []
        outputs = self.outputs or outputs_of(summary) or GENERIC_OUTPUTS
        lines.extend((text, None) for text in report_lines(outputs, summary.get("report") or {}))
        final = summary.get("final") or {}
        if status == "diverged":
            lines.append((f"diverged at step {summary.get('diverged_at_step')} (non-finite loss)", colour))
        loss = final.get("train_loss", final.get("loss"))
        if loss is not None and math.isfinite(loss):
            lines.append((f"final train loss: {loss:.6g}", None))
        closing = (f"{status} in {summary['total_time_s']:.2f} s, {summary['steps']} steps. "
                   f"Results: {run_dir}/losses.csv, epochs.csv, summary.json")
        if self.quiet:
            for text, _ in lines:
                log.info(text)
            log.info(closing)
            self._line(f"{status}: {run_dir}", logged=False)
            return
        for text, style in lines:
            self._line(text, style)
        log.info(closing)
        self._line(closing[len(status):], logged=False, prefix=Text(status, style=colour))

    def error(self, message: str, logged: bool = True) -> None:
        """The refusal paragraph on stderr; in a job also in its optbench.log (``logged``)."""
        self.stop()
        if logged and any(isinstance(h, logging.FileHandler) for h in logging.getLogger().handlers):
            log.error(message)  # only to a file: a console handler would print the paragraph twice
        self.err.print(Text.assemble(("optbench:", "bold red"), " ", message), soft_wrap=True, markup=False,
                       highlight=False)


class _ItemFormatter(string.Formatter):
    """``str.format`` where a list value is formatted item by item: ``{w:.2f}`` of [1, 2] is ``1.00, 2.00``."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, (list, tuple)):
            return ", ".join(format(item, format_spec) for item in value)
        return format(value, format_spec)


def report_lines(outputs: Outputs, report: Mapping[str, Any]) -> list[str]:
    """The description's ``report_lines`` rendered over ``report``; a line naming a key the report lacks,
    or whose value its template cannot format, is left out."""
    formatter, lines = _ItemFormatter(), []
    for template in outputs.report_lines:
        try:
            keys = {name.split(".")[0].split("[")[0] for _, name, _, _ in formatter.parse(template) if name}
            if keys <= set(report):
                lines.append(formatter.vformat(template, (), dict(report)))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            continue
    return lines
