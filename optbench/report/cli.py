"""``optbench-report``: one self-contained HTML report of a study.

    optbench-report PATH... [--out report.html] [--target [DATASET=]LOSS ...] [--title TEXT] [--force]

Reads only run files (like ``optbench-plot``) and never imports torch or the trainer.
Bad input is one paragraph on stderr and exit code 2, with no traceback; an existing
``--out`` file is never replaced unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.plot.runs import PlotError, PlotWarning

PROG = "optbench-report"

DESCRIPTION = """\
Write one self-contained HTML report (inline SVG figures and scripts, no network request)
of optbench runs: an overview (problems, optimizers, seeds, statuses, compute time,
commands, versions), the loss curves of each problem (median and band over seeds; x axis
step/epoch/examples/time and linear/log y switchable), a sortable results table per
problem (final and best loss, test accuracy, time, status, steps and seconds to the
target), sensitivity to each swept hyperparameter, Dolan-More performance profiles over
problems x seeds (in steps and in seconds, with the area under each as a score), the
largest gap between scratch and builtin twins beside the README's parity table, and every
failed, diverged, interrupted or incomplete run with its reason.

PATH is a run folder, a multirun folder, any folder above runs, or a glob, in any mix.
"""

EPILOG = """\
examples:
  optbench-report multirun/2026-12-01/10-00-00-000000
  optbench-report 'multirun/gallery/*' --out study.html --target fashion_mnist=0.35 --target quadratic=1e-6
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # noqa: D401 - argparse API
        raise PlotError(f"{message}. Fix: see {self.prog} --help.")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="run folders, multirun folders or globs")
    p.add_argument("--out", default="report.html", metavar="FILE", help="the HTML file to write (default: report.html)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--target", action="append", default=[], metavar="[DATASET=]LOSS",
                   help="the loss a run must reach for steps/time to target and the profiles; DATASET=LOSS for one "
                        "problem (repeat the option), a bare LOSS for every other (default: each problem's median "
                        "final value of its objective: the loss, or the column its runs' description names, e.g. the "
                        "full-data loss)")
    p.add_argument("--title", help="the report's title (default: the problems it covers)")
    return p


def parse_targets(items: Sequence[str]) -> dict[str | None, float]:
    targets: dict[str | None, float] = {}
    for item in items:
        name, _, text = item.rpartition("=")
        key = name.strip() or None
        try:
            value = float(text)
        except ValueError:
            raise PlotError(f"--target {item!r}: {text!r} is not a number. Fix: give a loss such as --target 0.3 "
                            "or --target fashion_mnist=0.3.") from None
        if not math.isfinite(value) or value <= 0:
            raise PlotError(f"--target {item!r}: the target loss must be a finite number above 0, got {text}. "
                            "Fix: give a positive loss such as --target 0.3.")
        if key in targets:
            which = f"problem {key}" if key else "every problem"
            raise PlotError(f"--target is given twice for {which}. Fix: keep one of them.")
        targets[key] = value
    return targets


def check_out(out: Path, force: bool) -> Path:
    """Refuse an --out that would overwrite something (unless --force) or cannot be an HTML file."""
    if os.path.isdir(out):
        raise PlotError(f"--out {out} is a folder. Fix: name a file inside it, e.g. --out {out / 'report.html'}.")
    if out.suffix.lower() not in (".html", ".htm"):
        raise PlotError(f"--out {out}: the report is an HTML file, so its name must end in .html. "
                        f"Fix: e.g. --out {out.with_suffix('.html').name}.")
    if os.path.lexists(out) and not force:
        raise PlotError(f"--out {out} already exists and is left as it is. Fix: pass --force to replace it, "
                        "or choose another --out.")
    parent = out.parent if str(out.parent) else Path(".")
    for ancestor in [parent, *parent.parents]:
        if os.path.lexists(ancestor):
            if not os.path.isdir(ancestor):
                raise PlotError(f"--out {out}: {ancestor} is a file, not a folder. Fix: choose another --out.")
            if not os.access(ancestor, os.W_OK | os.X_OK) and ancestor == parent:
                raise PlotError(f"--out {out}: the folder {parent} is not writable. Fix: choose a writable folder.")
            break
    return out


def write(out: Path, text: str) -> None:
    from optbench.run_folder import write_bytes_atomic

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(out, text.encode("utf-8"))
    except OSError as err:
        raise PlotError(f"cannot write {out} ({err.strerror or type(err).__name__}). "
                        "Fix: choose a writable --out.") from None


def run(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    targets = parse_targets(args.target)
    out = check_out(Path(args.out).expanduser(), args.force)
    from optbench.plot.runs import find_runs, load_runs_and_failures
    from optbench.report.build import render

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PlotWarning)
        found = find_runs(args.paths)
        runs, failures = load_runs_and_failures(found.runs)
    loading = [str(item.message) for item in caught if issubclass(item.category, PlotWarning)]
    for note in loading:
        warnings.warn(note, PlotWarning, stacklevel=1)
    present = sorted({run.dataset for run in runs})
    unknown = [name for name in targets if name is not None and name not in present]
    if unknown:
        raise PlotError(f"--target {unknown[0]}=...: no run here is on the problem {unknown[0]!r} "
                        f"(the problems here: {', '.join(present)}). Fix: name one of those, or give a bare --target LOSS.")
    page, notes = render(runs, failures, inputs=[str(p) for p in args.paths], targets=targets, title=args.title,
                         notes=loading)
    for note in notes:
        warnings.warn(note, PlotWarning, stacklevel=1)
    write(out, page)
    size = len(page.encode("utf-8"))
    print(f"{out}  ({len(runs)} runs{f', {len(failures)} unreadable' if failures else ''}, {size / 1e6:.2f} MB)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``optbench-report``; returns the exit status."""
    import matplotlib

    matplotlib.use("Agg")
    argv = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PlotWarning)
        try:
            status = run(argv)
        except OptbenchError as err:
            _flush(caught)
            print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr)
            return err.exit_code
        except KeyboardInterrupt:
            _flush(caught)
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
    _flush(caught)
    return status


def _flush(caught: list) -> None:
    for item in dict.fromkeys(str(i.message) for i in caught if issubclass(i.category, PlotWarning)):
        print(f"{PROG}: warning: {item}", file=sys.stderr)
    caught.clear()


if __name__ == "__main__":
    sys.exit(main())
