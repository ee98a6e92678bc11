"""``optbench-plot``: figures and tables from run folders (a thin layer over the figure functions).

    optbench-plot [plot] PATH... [options]     loss curves, --sensitivity, --table
    optbench-plot ewa [--beta B ...]           seed 003's EWA weights figure

Reads only run files; never imports the trainer or torch. Problems are reported as one
line on stderr (no traceback); bad runs among good ones are skipped with a warning; the
exit status is non-zero only when nothing could be drawn. It decides, then acts: every
file it would write is named first, and an existing one is refused (exit 2) unless
``--force`` is given; files are written atomically (temp file + rename).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.plot.runs import PlotError, PlotWarning

PROG = "optbench-plot"
FORMATS = ("png", "svg", "pdf")

DESCRIPTION = """\
Draw figures from optbench run folders.

PATH is a run folder (outputs/<date>/<time>), a multirun folder (multirun/<date>/<time>,
every job below it), any folder above runs, or a glob ('multirun/2024-*/*'), in any mix.
The default figure is the loss against epoch on a log y axis, one curve per run, labelled
by what differs between the runs (alpha=0.9, batch_size=1, impl=builtin, optimizer=adam).
Runs that differ only in `seed` are drawn as one curve: the median over seeds, with a band
spanning the interquartile range (4 or more seeds) or min-max (fewer); on a log axis both
are computed on log(y), so the band never crosses zero. Diverged runs end with an X
(their last finite point) and the legend says "diverged"; runs killed (status running)
or interrupted end with an open circle and say "incomplete" / "interrupted".
Each run's summary.json describes its columns (`outputs`: labels, default axes, which value
is best); a problem may ask for another x or a linear axis (seed 003's quadratic: step, linear,
with a second panel showing the iterates on y = 4x^2). A preset's `plot:` config node (x, y,
linear, title) sets defaults that the options below override; a hint that does not fit every
run (y=full_loss with runs of another problem in a mixed glob) is not used, with a warning.
What ran is read from summary.json's resolved config (aliases resolved: an rmsprop
gamma sweep is labelled alpha). Two folders holding one run (same config hash and seed:
a copy, or a skip_finished job's reused.json) are drawn once. An unreadable run among
good ones is skipped with a warning. Files go to --out as STEM_<y>_vs_<x>.FMT and
STEM_summary.csv; one that exists is never replaced without --force.

Subcommand:  optbench-plot ewa --beta 0.98 0.95 0.9 0.8   (the EWA weights (1-beta)*beta^t)
"""

EPILOG = """\
examples:
  optbench-plot multirun/2024-06-01/10-00-00-000000
  optbench-plot outputs/*/* --x time --y loss --smooth 10
  optbench-plot multirun/2024-06-01/10-00-00-000000 --sensitivity lr --best
  optbench-plot multirun/2024-06-01/10-00-00-000000 --table --target 0.2
"""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (raised, then printed by ``main``)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise PlotError(f"{message}. Fix: see {self.prog} --help.")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def plot_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="run folders, multirun folders or globs")
    out = parser.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help="folder for the files (default: figures/ next to the first PATH)")
    out.add_argument("--format", default="png", metavar="FMT", help="png (default), svg or pdf")
    out.add_argument("--name", metavar="STEM", help="file name stem (default: from the first PATH)")
    out.add_argument("--force", "--overwrite", dest="force", action="store_true",
                     help="replace figures and tables that already exist (default: refuse, exit 2)")
    fig = parser.add_argument_group("figure")
    fig.add_argument("--x", metavar="X", help="step | epoch | examples | time (all from losses.csv; default epoch, "
                                              "or the x the runs' problem asks for)")
    fig.add_argument("--y", metavar="Y", help="loss (minibatch train loss, default) | train_loss (epoch mean) | "
                                              "grad_norm | update_norm | update_ratio (runs with diagnostics=true) | "
                                              "any metric column the runs' problem declares in summary.json's "
                                              "outputs (e.g. full_loss, suboptimality, test_loss, test_acc)")
    scale = fig.add_mutually_exclusive_group()
    scale.add_argument("--linear", dest="linear", action="store_const", const=True, default=None,
                       help="linear y axis (default: log, unless the runs' problem or the y column asks for "
                            "linear, e.g. an accuracy)")
    scale.add_argument("--log", dest="linear", action="store_const", const=False,
                       help="log y axis even where the default is linear")
    fig.add_argument("--smooth", type=_positive_int, metavar="K",
                     help="smooth each run with a trailing rolling mean over K logged points (on a log axis, "
                          "the mean of log y, i.e. a geometric mean); applied before the seed median")
    fig.add_argument("--title", help="figure title (default: the dataset and optimizer the runs share)")
    fig.add_argument("--label", action="extend", nargs="+", metavar="LABEL",
                     help="legend labels, one per curve in order (replaces the automatic ones; "
                          "'diverged'/'incomplete' is still appended)")
    sens = parser.add_argument_group("sensitivity")
    sens.add_argument("--sensitivity", metavar="PARAM",
                      help="instead of curves: final train loss against the swept hyperparameter PARAM "
                           "(optimizer.lr, or just lr) on a log x axis, one line per optimizer/impl, seed bands")
    sens.add_argument("--best", action="store_true", help="with --sensitivity: the best loss instead of the final one")
    table = parser.add_argument_group("table")
    table.add_argument("--table", action="store_true",
                       help="also print a table (one row per run) and write STEM_summary.csv to --out")
    table.add_argument("--target", type=float, metavar="LOSS",
                       help="with --table: steps and seconds until the logged loss (or --y full_loss/suboptimality) "
                            "first reaches LOSS")
    return parser


def ewa_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=f"{PROG} ewa", description="Seed 003's exponentially weighted average: the weight "
                     "(1 - beta) * beta^t of the value t steps back, for t = 0 .. points-1. Not a training run.")
    parser.add_argument("--beta", type=float, nargs="+", default=[0.98, 0.95, 0.9, 0.8], metavar="B",
                        help="decay rates in [0, 1) (default: 0.98 0.95 0.9 0.8)")
    parser.add_argument("--points", type=_positive_int, default=100, metavar="N", help="t = 0 .. N-1 (default 100)")
    parser.add_argument("--out", metavar="DIR", default="figures", help="output folder (default: ./figures)")
    parser.add_argument("--format", default="png", metavar="FMT", help="png (default), svg or pdf")
    parser.add_argument("--name", metavar="STEM", default="ewa", help="file name stem (default: ewa)")
    parser.add_argument("--title", help="figure title")
    parser.add_argument("--force", "--overwrite", dest="force", action="store_true",
                        help="replace the figure if it already exists (default: refuse, exit 2)")
    return parser


def _check_format(fmt: str) -> str:
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise PlotError(f"unknown --format {fmt!r}. Fix: use one of {', '.join(FORMATS)}.")
    return fmt


def default_out(first_input: Path | None) -> Path:
    """``figures/`` next to the first input (inside it when the input is the current folder)."""
    cwd = Path.cwd()
    if first_input is None:
        return Path("figures")
    absolute = Path(os.path.abspath(first_input))
    target = absolute / "figures" if absolute == cwd or absolute.parent == absolute else absolute.parent / "figures"
    try:
        return target.relative_to(cwd)
    except ValueError:
        return target


def default_stem(first_input: Path | None) -> str:
    if first_input is None:
        return "runs"
    absolute = Path(os.path.abspath(first_input))
    name = absolute.name or "runs"
    if name.isdigit() and absolute.parent.name:  # a multirun job: <time>-<job>
        name = f"{absolute.parent.name}-{name}"
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", name)


def _check_name(name: str | None) -> str | None:
    if name is not None and (not name.strip() or "/" in name or os.sep in name or "\0" in name):
        raise PlotError(f"--name {name!r} is not a file name stem. Fix: give a plain name such as --name alpha "
                        "(the folder is --out).")
    return name


def refuse_existing(paths: Sequence[Path], force: bool) -> None:
    """Decide before acting: an output file that exists is replaced only with ``--force``."""
    if force:
        return
    existing = [path for path in paths if os.path.lexists(path)]
    if existing:
        shown = ", ".join(str(path) for path in existing)
        raise PlotError(
            f"{shown} already exist{'s' if len(existing) == 1 else ''}, and optbench-plot never overwrites a "
            f"figure or table unless asked. Fix: pass --force to replace {'it' if len(existing) == 1 else 'them'}, "
            "or choose another --out or --name."
        )


def _publish(tmp: Path, path: Path, force: bool) -> None:
    """Move the finished temp file to ``path``; without ``force`` never over a file that appeared meanwhile."""
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path exists: no clobbering, even in a race
    except FileExistsError:
        raise PlotError(f"{path} appeared while it was being drawn. Fix: pass --force to replace it, "
                        "or choose another --out or --name.") from None
    except OSError:  # a file system without hard links
        refuse_existing([path], force)
        os.replace(tmp, path)
        return
    finally:
        if not force:
            _discard(tmp)


def save(fig, path: Path, force: bool = False) -> Path:
    """Draw ``fig`` into ``path`` (format from its suffix), atomically; refuse an existing file unless ``force``."""
    path = Path(path)
    refuse_existing([path], force)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fig.savefig(tmp, dpi=150, format=path.suffix.lstrip(".") or "png")
        except (ValueError, OverflowError, RuntimeError) as err:
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            raise PlotError(f"matplotlib cannot draw this figure ({(lines[-1] if lines else type(err).__name__)[:150]}). "
                            "Fix: check --title and --label (text between $ signs is mathtext), or leave out "
                            "the run whose values cause it.") from None
        _publish(tmp, path, force)
    except OSError as err:
        if os.path.exists(path.parent) and not os.path.isdir(path.parent):
            raise PlotError(f"cannot write {path}: {path.parent} is a file, not a folder. "
                            "Fix: choose a folder with --out.") from None
        raise PlotError(f"cannot write {path} ({err.strerror or err}). Fix: choose a writable folder with --out.") from None
    finally:
        _discard(tmp)
    return path


def _discard(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:  # its folder is not there (or not a folder): nothing was left behind
        pass


def table_width() -> int:
    """The terminal's width (``COLUMNS`` first), else 100: the table is laid out to fit it."""
    return max(shutil.get_terminal_size((100, 24)).columns, 40)


def run_plot(argv: Sequence[str]) -> int:
    from optbench.plot.figures import loss_figure
    from optbench.plot.labels import check_mathtext
    from optbench.plot.runs import find_runs, load_runs_and_failures

    args = plot_parser().parse_args(argv)
    fmt = _check_format(args.format)
    _check_name(args.name)
    if args.target is not None and not args.table:
        raise PlotError("--target only applies to --table. Fix: add --table.")
    if args.best and not args.sensitivity:
        raise PlotError("--best only applies to --sensitivity. Fix: add --sensitivity PARAM.")
    if args.x is not None:
        from optbench.plot.metrics import check_x

        check_x(args.x)
    if args.title is not None:
        check_mathtext(args.title, "--title")
    for label in args.label or ():
        check_mathtext(label, "--label")
    found = find_runs(args.paths)
    runs, failures = load_runs_and_failures(found.runs)
    out_dir = Path(args.out) if args.out else default_out(found.first_input)
    stem = args.name or default_stem(found.first_input)
    # decide: every file this command writes, refused up front if one exists (unless --force)
    if args.sensitivity:
        param = re.sub(r"[^A-Za-z0-9_.-]", "_", args.sensitivity)
        figure_path = out_dir / f"{stem}_sensitivity_{param}{'_best' if args.best else ''}.{fmt}"
    else:
        from optbench.plot.figures import choose_axes

        choice = choose_axes(runs, args.x, args.y, args.linear)
        figure_path = out_dir / f"{stem}_{choice.y}_vs_{choice.x}.{fmt}"
    table_path = out_dir / f"{stem}_summary.csv"
    refuse_existing([figure_path] + ([table_path] if args.table else []), args.force)
    # then act
    if args.sensitivity:
        from optbench.plot.sensitivity import sensitivity_figure

        fig = sensitivity_figure(runs, args.sensitivity, best=args.best, y=args.y, linear=args.linear,
                                 labels=args.label, title=args.title)
    else:
        fig = loss_figure(runs, x=args.x, y=args.y, linear=args.linear, smooth=args.smooth,
                          labels=args.label, title=args.title)
    rows = None
    if args.table:
        from optbench.plot.metrics import y_choices
        from optbench.plot.table import failed_rows, summary_rows
        from optbench.run_folder import LOSSES

        y = args.y if args.y and y_choices(runs)[args.y].file == LOSSES else "loss"
        rows = summary_rows(runs, target=args.target, y=y, smooth=args.smooth) + failed_rows(failures)
    written = [save(fig, figure_path, args.force)]
    if rows is not None:
        from rich.console import Console

        from optbench.plot.table import rich_table, write_summary_csv

        Console(width=table_width(), soft_wrap=False).print(rich_table(rows, args.target))
        try:
            written.append(write_summary_csv(rows, table_path))
        except OSError as err:
            raise PlotError(f"cannot write {table_path} ({err.strerror}). Fix: choose a writable --out.") from None
    for path in written:
        print(path)
    return 0


def run_ewa(argv: Sequence[str]) -> int:
    from optbench.plot.ewa import ewa_figure

    args = ewa_parser().parse_args(argv)
    fmt = _check_format(args.format)
    _check_name(args.name)
    if args.title is not None:
        from optbench.plot.labels import check_mathtext

        check_mathtext(args.title, "--title")
    path = Path(args.out) / f"{args.name}.{fmt}"
    refuse_existing([path], args.force)
    fig = ewa_figure(args.beta, points=args.points, title=args.title)
    print(save(fig, path, args.force))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``optbench-plot``; returns the exit status."""
    import matplotlib

    matplotlib.use("Agg")
    argv = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PlotWarning)
        try:
            if argv and argv[0] == "ewa":
                status = run_ewa(argv[1:])
            else:
                status = run_plot(argv[1:] if argv and argv[0] == "plot" else argv)
        except OptbenchError as err:
            _flush(caught)
            print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr)
            return err.exit_code
        except KeyboardInterrupt:
            _flush(caught)
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # the reader of stdout went away (| head)
            _flush(caught)
            return 1
    _flush(caught)
    return status


def _flush(caught: list) -> None:
    shown: set[str] = set()
    for item in caught:
        if issubclass(item.category, PlotWarning):
            text = str(item.message)
            if text not in shown:  # a check made twice (the axes are chosen before drawing) warns once
                shown.add(text)
                print(f"{PROG}: warning: {text}", file=sys.stderr)
        else:
            warnings.showwarning(item.message, item.category, item.filename, item.lineno)
    caught.clear()


if __name__ == "__main__":
    sys.exit(main())
