"""What a run prints: a rich progress bar, seed-style epoch lines, and a closing panel."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console


class RunConsole:
    """Progress and per-epoch lines; ``quiet`` prints only the closing line (for sweeps)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.out = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)
        self._progress = None  # a rich.progress.Progress while a run is drawn
        self._task = None

    def start(self, title: str, total_steps: int, done: int = 0) -> None:
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

        self.out.print(f"[bold]optbench[/bold] {title}")
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

    def epoch(self, index: int, row: dict[str, Any]) -> None:
        """The seeds' ``epoch: 0, Train Loss: 0.381906`` line, plus test metrics and time."""
        if self.quiet:
            return
        parts = [f"epoch: {index}, Train Loss: {row['train_loss']:.6f}"]
        if row.get("test_loss") is not None:
            parts.append(f"Test Loss: {row['test_loss']:.6f}, Test Acc: {row['test_acc']:.4f}")
        parts.append(f"Time: {row['epoch_time_s']:.2f} s")
        line = ", ".join(parts)
        if self._progress is not None:
            self._progress.console.print(line)
        else:
            self.out.print(line)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def finish(self, summary: dict, run_dir: str) -> None:
        self.stop()
        status = summary["status"]
        colour = {"completed": "green", "diverged": "red", "interrupted": "yellow"}.get(status, "red")
        if self.quiet:
            self.out.print(f"{status}: {run_dir}", soft_wrap=True)
            return
        report = summary.get("report") or {}
        if "w" in report:
            learned = ", ".join(f"{v:.4f}" for v in report["w"])
            true = ", ".join(f"{v:g}" for v in report["true_w"])
            self.out.print(f"w: [{learned}]  (true [{true}])   b: {report['b']:.4f}  (true {report['true_b']:g})")
        if "x" in report:
            self.out.print(f"x: {report['x']:.6g}  (minimum at {report['x_star']:g})")
        final = summary.get("final") or {}
        if status == "diverged":
            self.out.print(f"[{colour}]diverged[/{colour}] at step {summary.get('diverged_at_step')} (non-finite loss)")
        loss = final.get("train_loss", final.get("loss"))
        if loss is not None and math.isfinite(loss):
            self.out.print(f"final train loss: {loss:.6g}")
        self.out.print(
            f"[{colour}]{status}[/{colour}] in {summary['total_time_s']:.2f} s, "
            f"{summary['steps']} steps. Results: {run_dir}/losses.csv, epochs.csv, summary.json",
            soft_wrap=True,
        )

    def error(self, message: str) -> None:
        self.stop()
        self.err.print(f"[bold red]optbench:[/bold red] {message}", soft_wrap=True)
