"""What a run prints: a rich progress bar, seed-style epoch lines, and a closing panel.

Every line is printed whole, never wrapped at the terminal's width (``soft_wrap``),
and never read as rich markup (a path or a message may hold ``[...]``). The epoch
lines, the closing lines and errors also go to the ``optbench`` logger, which Hydra's
job logging (conf/hydra/job_logging/optbench.yaml) writes to the run folder's
``optbench.log`` only (the terminal already has them).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from rich.console import Console
from rich.text import Text

log = logging.getLogger("optbench")


class RunConsole:
    """Progress and per-epoch lines; ``quiet`` prints only the closing line (for sweeps)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.out = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)
        self._progress = None  # a rich.progress.Progress while a run is drawn
        self._task = None

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
    def epoch_line(index: int, row: dict[str, Any]) -> str:
        """The seeds' ``epoch: 0, Train Loss: 0.381906`` line, plus test metrics and time."""
        parts = [f"epoch: {index}, Train Loss: {row['train_loss']:.6f}"]
        if row.get("test_loss") is not None:
            parts.append(f"Test Loss: {row['test_loss']:.6f}, Test Acc: {row['test_acc']:.4f}")
        parts.append(f"Time: {row['epoch_time_s']:.2f} s")
        return ", ".join(parts)

    def epoch(self, index: int, row: dict[str, Any]) -> None:
        line = self.epoch_line(index, row)
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
        report = summary.get("report") or {}
        if "w" in report:
            learned = ", ".join(f"{v:.4f}" for v in report["w"])
            true = ", ".join(f"{v:g}" for v in report["true_w"])
            lines.append((f"w: [{learned}]  (true [{true}])   b: {report['b']:.4f}  (true {report['true_b']:g})", None))
        if "x" in report:
            lines.append((f"x: {report['x']:.6g}  (minimum at {report['x_star']:g})", None))
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
