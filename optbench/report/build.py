"""The report's HTML: sections built from loaded runs with the plotter's own code.

Curves come from :func:`optbench.plot.figures.draw_group` (seed groups: median and band
from :mod:`optbench.plot.aggregate`), the results tables from
:func:`optbench.plot.table.summary_rows`, the sensitivity figures from
:func:`optbench.plot.sensitivity.sensitivity_figure`, labels from
:mod:`optbench.plot.labels` and every value from :mod:`optbench.plot.metrics`, so the
report shows exactly what ``optbench-plot`` shows. Figures are matplotlib SVG, inlined.
How a problem is measured (its curve's column, whether it is smoothed, its default x axis)
comes from its runs' descriptions (``Run.outputs``), never from the dataset's name.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import re
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from optbench import __version__
from optbench.plot.aggregate import group_runs
from optbench.plot.figures import AxesChoice, curve_labels, draw_group, legend_title, usable_runs
from optbench.plot.labels import format_value, is_ignored, make_labels, override_keys
from optbench.plot.metrics import (
    X_COLUMNS,
    X_LABELS,
    column_of,
    default_x,
    final_value,
    rolling,
    target_hit,
    y_label,
    y_name,
)
from optbench.plot.runs import PlotError, PlotWarning, Run, is_number
from optbench.plot.table import summary_rows
from optbench.report import assets
from optbench.report.profiles import build as build_profile
from optbench.report.profiles import profile_figure
from optbench.report.svg import color, figure_svg
from optbench.report.twins import NOTE as TWIN_NOTE
from optbench.report.twins import Twin, find_twins
from optbench.results import failure_record
from optbench.run_folder import GENERIC_OUTPUTS, Outputs

#: the report's sections, in order: (id, heading)
SECTIONS = (
    ("overview", "Overview"),
    ("curves", "Curves per problem"),
    ("results", "Results table per problem"),
    ("sensitivity", "Sensitivity"),
    ("profiles", "Performance profiles"),
    ("twins", "Scratch vs builtin"),
    ("failures", "Failures"),
)
#: x axes offered for the curves (the plotter's --x names)
X_CHOICES = tuple(X_COLUMNS)
#: minibatch losses are noisy: a target counts as reached when the trailing mean of this many logged points is
NOISY_SMOOTH = 5

CLOSING_NOTE = (
    "Why inline SVG and not plotly: the figures are drawn by the plotter's own matplotlib code "
    "(the same medians, bands, labels and markers as optbench-plot), so the report needs no extra "
    "dependency and never disagrees with the PNGs; plotly's JavaScript alone is about 3.5 MB, which every "
    "report would have to inline to stay offline. The interactive parts a study needs are small: the "
    "x axis and linear/log y of each curve figure switch between pre-rendered SVGs (kept in <template> "
    "elements, so the browser lays out only the one shown), and every table sorts on a click, with a few "
    "lines of plain JavaScript. The page requests nothing from the network: its Content-Security-Policy "
    "forbids it."
)


@dataclass
class Problem:
    """One dataset's runs and how they are measured."""

    name: str
    runs: list[Run]
    y: str
    smooth: int | None
    target: float | None
    target_auto: bool
    failures: list[tuple[Path, str]] = field(default_factory=list)
    outputs: Outputs = GENERIC_OUTPUTS

    @property
    def slug(self) -> str:
        return slug(self.name)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-") or "x"


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{digits}g}"
    return str(value)


def sort_value(value: Any) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return ""
    value = float(value)
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def num_cell(value: Any, digits: int = 4) -> str:
    return f'<td class="num" data-v="{sort_value(value)}">{esc(fmt(value, digits))}</td>'


def status_badge(status: str) -> str:
    word = str(status).split()[0] if status else "unknown"
    return f'<span class="status s-{slug(word)}">{esc(status)}</span>'


def table(headers: Sequence[tuple[str, bool]], rows: Sequence[Sequence[str]], *, sortable: bool = True,
          cls: str = "") -> str:
    """``headers``: (title, numeric); ``rows``: ready-made ``<td>`` strings."""
    head = "".join(f'<th{" class=num" if numeric else ""}>{esc(title)}</th>' for title, numeric in headers)
    body = "\n".join(f"<tr>{''.join(cells)}</tr>" for cells in rows)
    classes = " ".join(c for c in ("sortable" if sortable else "", cls) if c)
    return (f'<div class="wrap"><table class="{classes}"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>")


def td(value: Any) -> str:
    return f"<td>{esc(value)}</td>"


# --------------------------------------------------------------------------- problems


def problem_outputs(runs: Sequence[Run]) -> Outputs:
    """The description of a problem's runs: its first run's (they share a dataset), else the generic one."""
    return next((run.outputs for run in runs if run.outputs is not None), GENERIC_OUTPUTS)


def problem_y(runs: Sequence[Run], outputs: Outputs) -> str:
    """The problem's objective column (seed 001's full-data loss) where every run logged it, else the loss."""
    if outputs.objective != "loss" and all(outputs.objective in run.losses.columns for run in runs):
        return outputs.objective
    return "loss"


def problem_smooth(runs: Sequence[Run], outputs: Outputs) -> int | None:
    """No smoothing where the objective is measured exactly (its column is no minibatch estimate)."""
    objective = outputs.column(outputs.objective) or column_of(runs[0], outputs.objective)
    return NOISY_SMOOTH if objective.noisy else None


def _final_smoothed(run: Run, y: str, smooth: int | None) -> float | None:
    column = y if y in run.losses.columns else "loss"
    values = run.losses[column].to_numpy(dtype=float)
    if smooth and smooth > 1:
        values = rolling(values, smooth, log=False)
    values = values[np.isfinite(values)]
    return float(values[-1]) if len(values) and not run.diverged else None


def make_problems(runs: Sequence[Run], failures: Sequence[tuple[Path, str]],
                  targets: Mapping[str | None, float]) -> list[Problem]:
    by_name: dict[str, list[Run]] = {}
    for run in runs:
        by_name.setdefault(run.dataset, []).append(run)
    problems = []
    for name, members in by_name.items():
        outputs = problem_outputs(members)
        y = problem_y(members, outputs)
        smooth = problem_smooth(members, outputs)
        if name in targets:
            target, auto = targets[name], False
        elif None in targets:
            target, auto = targets[None], False
        else:
            finals = [v for v in (_final_smoothed(r, y, smooth) for r in members) if v is not None]
            target, auto = (float(np.median(finals)) if finals else None), True
        problems.append(Problem(name=name, runs=members, y=y, smooth=smooth, target=target, target_auto=auto,
                                outputs=outputs))
    for folder, reason in failures:
        dataset = failure_record(folder, reason).get("dataset")
        for problem in problems:
            if problem.name == dataset:
                problem.failures.append((folder, reason))
    return problems


# --------------------------------------------------------------------------- sections


def overview(problems: Sequence[Problem], runs: Sequence[Run], failures: Sequence[tuple[Path, str]],
             inputs: Sequence[str]) -> str:
    optimizers = list(dict.fromkeys(f"{run.optimizer} ({run.impl})" for run in runs))
    seeds = list(dict.fromkeys(format_value(run.seed) for run in runs))
    compute = sum(float(run.summary.get("total_time_s") or 0.0) for run in runs
                  if is_number(run.summary.get("total_time_s")))
    statuses = Counter(run.status + (" (diverged)" if run.mark == "diverged" and run.status != "diverged" else "")
                       for run in runs)
    for folder, reason in failures:
        statuses[failure_record(folder, reason)["status"] + " (unreadable)"] += 1
    cards = [(len(runs) + len(failures), "run folders"), (len(problems), "problems"), (len(optimizers), "optimizers"),
             (len(seeds), "seeds"), (f"{compute:.1f} s", "total compute (sum of run times)"),
             (sum(n for s, n in statuses.items() if not s.startswith("completed")), "not completed")]
    out = ['<div class="cards">' + "".join(f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>'
                                           for v, k in cards) + "</div>"]
    rows = []
    for problem in problems:
        names = list(dict.fromkeys(f"{r.optimizer} ({r.impl})" for r in problem.runs))
        problem_seeds = list(dict.fromkeys(format_value(r.seed) for r in problem.runs))
        target = fmt(problem.target) + (" (auto: median final value)" if problem.target_auto else "")
        rows.append([td(problem.name), num_cell(len(problem.runs)), td(", ".join(names)),
                     td(", ".join(problem_seeds)), td(y_name(problem.y, problem.runs)), td(target)])
    out.append("<h3>Problems</h3>")
    out.append(table([("problem", False), ("runs", True), ("optimizers", False), ("seed values", False),
                      ("curve and target measure", False), ("target", False)], rows))
    out.append("<h3>Statuses</h3>")
    out.append(table([("status", False), ("runs", True)],
                     [[f"<td>{status_badge(s)}</td>", num_cell(n)] for s, n in sorted(statuses.items())]))
    commands = Counter("optbench " + " ".join(run.overrides) if run.overrides else "optbench" for run in runs)
    out.append(f"<h3>Commands</h3><p class=note>Each run's command-line overrides "
               f"({len(commands)} distinct, from .hydra/overrides.yaml or summary.json).</p>")
    lines = "\n".join(f"{esc(cmd)}{f'   # x{n}' if n > 1 else ''}" for cmd, n in commands.items())
    if len(commands) > 12:
        out.append(f"<details><summary>show all {len(commands)}</summary><pre>{lines}</pre></details>")
    else:
        out.append(f"<pre>{lines}</pre>")
    versions = Counter(tuple(sorted((str(k), str(v)) for k, v in (run.summary.get("versions") or {}).items()))
                       for run in runs)
    out.append("<h3>Versions</h3>")
    out.append(table([("versions", False), ("runs", True)],
                     [[td(", ".join(f"{k} {v}" for k, v in key) or "unknown"), num_cell(n)]
                      for key, n in versions.items()], sortable=False))
    out.append(f"<p class=note>Inputs: {esc(' '.join(inputs))}</p>")
    return "\n".join(out)


def curve_figure(runs: Sequence[Run], x: str, y: str, log: bool, title: str, ident: str,
                 smooth: int | None = None) -> str:
    choice = AxesChoice(x=x, y=y, log=log, title=title)
    kept = usable_runs(runs, y, log)
    groups = group_runs(kept)
    names = curve_labels(groups)
    fig = Figure(figsize=(10.5, 4.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for index, (group, name) in enumerate(zip(groups, names)):
        draw_group(ax, group, name, color(index), choice, smooth)
    if log:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel(X_LABELS[x])
    ylabel = y_label(kept, y)
    ax.set_ylabel(ylabel + (f", trailing mean of {smooth} points" if smooth and smooth > 1 else ""))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small" if len(groups) > 8 else "medium",
              title=legend_title(groups), title_fontsize="small", frameon=False)
    ax.set_title(title)
    return figure_svg(fig, ident)


def curves(problems: Sequence[Problem]) -> str:
    out = ['<p class=note>One curve per configuration; runs that differ only in seed are drawn as their median '
           'with a band (interquartile range from 4 seeds, min-max below; on a log axis computed on log y). '
           'A diverged run ends with an &#x2715;, an incomplete or interrupted one with an open circle. '
           f'Minibatch losses are drawn as a trailing mean of {NOISY_SMOOTH} logged points (of log y on a log axis), '
           'as optbench-plot --smooth draws them. '
           'Switch the x axis and the y scale above each figure.</p>']
    for problem in problems:
        first_x = default_x(problem.runs)
        ident = f"curves-{problem.slug}"
        options = "".join(f'<option value="{x}"{" selected" if x == first_x else ""}>{esc(X_LABELS[x])}</option>'
                          for x in X_CHOICES)
        parts = [f'<div class="curves" id="{ident}"><h3>{esc(problem.name)}</h3>',
                 f'<div class="controls"><label>x axis <select data-role="x">{options}</select></label>'
                 f'<label><input type="checkbox" data-role="log" checked> log y</label></div>']
        shown, templates = None, []
        for x in X_CHOICES:
            for log in (True, False):
                name = f"{x}-{'log' if log else 'linear'}"
                try:
                    svg = curve_figure(problem.runs, x, problem.y, log,
                                       f"{problem.name}: {y_name(problem.y, problem.runs)}", f"{ident}-{name}",
                                       problem.smooth)
                except PlotError as err:
                    svg = f"<p class=note>Nothing to draw on this axis: {esc(err)}</p>"
                if x == first_x and log:
                    shown = (name, svg)
                else:
                    templates.append(f'<template data-variant="{name}">{svg}</template>')
        parts.append(f'<div class="figure" data-variant="{shown[0]}">{shown[1]}</div>')
        parts.extend(templates)
        parts.append("</div>")
        out.append("\n".join(parts))
    return "\n".join(out)


RESULT_HEADERS = [("configuration", False), ("seed", True), ("status", False), ("final train loss", True),
                  ("best train loss", True), ("test loss", True), ("test acc", True), ("time s", True),
                  ("steps to target", True), ("s to target", True), ("run folder", False)]


def results(problems: Sequence[Problem]) -> str:
    exact = [f"{p.name}: the last and least logged {y_label(p.runs, 'loss')}" for p in problems
             if p.outputs.loss_is_objective]
    where = f" ({'; '.join(exact)})" if exact else ""
    out = ['<p class=note>Final and best train loss: the last and best finished epoch\'s mean minibatch loss'
           f'{esc(where)}; test values from the last epoch; time: the whole job. Steps and seconds to '
           'target: the first logged step at which the measure (a trailing mean of 5 logged points for '
           'minibatch losses) is at or below the target; empty when never reached. Click a header to sort.</p>']
    for problem in problems:
        rows = summary_rows(problem.runs, target=problem.target, y=problem.y, smooth=problem.smooth)
        cells = []
        for run, row in zip(problem.runs, rows):
            cells.append([td(row["label"]), num_cell(run.seed if is_number(run.seed) else None),
                          f"<td>{status_badge(row['status'])}</td>", num_cell(row["final_train_loss"]),
                          num_cell(row["best_train_loss"]), num_cell(row["test_loss"]), num_cell(row["test_acc"]),
                          num_cell(row["total_time_s"], 3), num_cell(row["steps_to_target"]),
                          num_cell(row["time_to_target_s"], 3), f"<td><code>{esc(run.name)}</code></td>"])
        for folder, reason in problem.failures:
            record = failure_record(folder, reason)
            cells.append([td("(could not be read)"), num_cell(record.get("seed") if is_number(record.get("seed"))
                                                              else None),
                          f"<td>{status_badge(record['status'])}</td>", *[num_cell(None)] * 7,
                          f"<td><code>{esc(folder)}</code></td>"])
        target = (f"target {fmt(problem.target)} on {y_name(problem.y, problem.runs)}"
                  f"{' (auto: the median of the runs’ final values; set it with --target)' if problem.target_auto else ''}")
        out.append(f'<h3 id="results-{problem.slug}">{esc(problem.name)}</h3><p class=note>{esc(target)}</p>')
        out.append(table(RESULT_HEADERS, cells, cls="results"))
    return "\n".join(out)


def swept_keys(runs: Sequence[Run]) -> list[str]:
    """Numeric config keys that the runs' overrides set and that take 2 or more values."""
    keys: list[str] = []
    for run in runs:
        for key in override_keys(run.overrides, run.flat):
            if key not in keys and key in run.flat and key != "seed" and not is_ignored(key):
                keys.append(key)
    found = []
    for key in keys:
        values = {float(run.get(key)) for run in runs if is_number(run.get(key))}
        if len(values) >= 2:
            found.append(key)
    return found


def _spans_decades(values: Sequence[float]) -> bool:
    values = [v for v in values if np.isfinite(v)]
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 10


def sensitivity(problems: Sequence[Problem]) -> str:
    from optbench.plot.sensitivity import sensitivity_figure

    measured = "; ".join(f"{p.name}: final {y_name(p.y, p.runs)}" for p in problems if p.y != "loss")
    out = [f'<p class=note>Final train loss{esc(f" ({measured})" if measured else "")} against '
           'each hyperparameter the runs\' overrides sweep, one line per optimizer and other setting; a point '
           'with several seeds is their median with a band. Each axis is logarithmic where its values span a decade or more. A diverged run has no '
           'value and is marked with an X at the top.</p>']
    drawn = 0
    for problem in problems:
        for key in swept_keys(problem.runs):
            y = problem.y
            members = [run for run in problem.runs if is_number(run.get(key))]
            metrics = [m for m in (final_value(run, y) for run in members if not run.diverged)
                       if m is not None and np.isfinite(m)]
            linear = not _spans_decades([m for m in metrics if m > 0])
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", PlotWarning)
                    fig = sensitivity_figure(members, key, y=y, linear=linear,
                                             title=f"{problem.name}: sensitivity to {key}")
            except PlotError as err:
                out.append(f"<p class=note>{esc(problem.name)}, {esc(key)}: not drawn ({esc(err)})</p>")
                continue
            # the report picks the axes itself, so the plotter's advice about them is shown without its fix
            remarks = [re.sub(r";? ?(add --linear to see those points|the x axis is linear)$", "", str(w.message))
                       for w in caught if issubclass(w.category, PlotWarning)]
            for remark in remarks:
                if not remark.startswith("--sensitivity"):
                    warnings.warn(remark, PlotWarning, stacklevel=1)
            remarks = [r.replace("--sensitivity ", "", 1) for r in remarks if r.startswith("--sensitivity")]
            ax = fig.axes[0]
            xs = [float(r.get(key)) for r in members]
            ax.set_xscale("log" if _spans_decades(xs) else "linear")
            ax.relim()
            ax.autoscale_view()
            legend = ax.get_legend()
            if legend is not None:
                heading = legend.get_title().get_text() or None
                handles, names = ax.get_legend_handles_labels()
                legend.remove()
                fig.legend(handles, names, loc="outside lower center", frameon=False,
                           ncol=2 if len(names) > 3 else 1, title=heading, title_fontsize="small", fontsize="small")
            out.append(f'<h3>{esc(problem.name)}: {esc(key)}</h3><div class="figure small">'
                       f'{figure_svg(fig, f"sens-{problem.slug}-{slug(key)}")}</div>'
                       + "".join(f"<p class=note>{esc(r)}.</p>" for r in remarks))
            drawn += 1
    if not drawn:
        out.append("<p>No hyperparameter is swept here: no run's overrides set a numeric key to two or more "
                   "values (a sweep such as <code>optbench -m optimizer.lr=0.001,0.01,0.1</code> makes one).</p>")
    return "\n".join(out)


def solver_of(run: Run) -> str:
    return f"{run.optimizer} ({run.impl})"


def profiles(problems: Sequence[Problem]) -> str:
    out = ['<p class=note>Dolan–Moré performance profiles, as AlgoPerf ranks optimizers. A case is one problem '
           'with one seed; a solver is an optimizer with its implementation, and on each case its best run '
           '(of a sweep) counts. For each case, the steps (or seconds of training) until the run first reaches '
           'the problem\'s target are divided by the fastest solver\'s; the profile is the fraction of cases a '
           'solver reaches within tau times the fastest. Its score is the area under the profile on the log2 '
           'tau axis up to tau_max, divided by that length: 1 = fastest on every case, 0 = never within '
           'tau_max. A solver that diverged, never reached the target, or did not run on a case fails it.</p>']
    costs_steps: dict[tuple[str, str], dict[str, float]] = {}
    costs_secs: dict[tuple[str, str], dict[str, float]] = {}
    ran: Counter = Counter()
    solvers: list[str] = []
    for problem in problems:
        if problem.target is None:
            continue
        seen: set[tuple[str, tuple[str, str]]] = set()
        for run in problem.runs:
            solver = solver_of(run)
            if solver not in solvers:
                solvers.append(solver)
            case = (problem.name, format_value(run.seed))
            if (solver, case) not in seen:
                seen.add((solver, case))
                ran[solver] += 1
            hit = target_hit(run, problem.target, problem.y, problem.smooth)
            step_cost, sec_cost = (float(hit[0]), float(hit[1])) if hit else (math.inf, math.inf)
            for costs, cost in ((costs_steps, step_cost), (costs_secs, sec_cost)):
                entry = costs.setdefault(case, {})
                entry[solver] = min(entry.get(solver, math.inf), cost)
    if not solvers:
        out.append("<p>No problem has a target, so no profile can be drawn. Fix: pass --target LOSS.</p>")
        return "\n".join(out)
    by_steps = build_profile(costs_steps, solvers, "steps", floor=1.0)
    by_secs = build_profile(costs_secs, solvers, "seconds", floor=1e-6)
    if not by_steps.cases:
        out.append(f"<p>No solver reached its problem's target on any of the {len(costs_steps)} case(s), so there "
                   "is nothing to compare. Fix: pass a larger --target.</p>")
    else:
        colors = {solver: color(i) for i, solver in enumerate(solvers)}
        out.append(f'<div class="figure">{figure_svg(profile_figure([by_steps, by_secs], colors), "profiles")}</div>')
    rows = []
    for solver in solvers:
        solved = int(np.isfinite(by_steps.ratios[solver]).sum())
        rows.append([td(solver), num_cell(ran[solver]), num_cell(solved), num_cell(by_steps.scores[solver], 3),
                     num_cell(by_secs.scores[solver], 3)])
    cases = len(by_steps.cases)
    out.append(f"<p class=note>{cases} case(s) solved by at least one solver; tau_max {fmt(by_steps.tau_max)} "
               f"(steps), {fmt(by_secs.tau_max)} (seconds)."
               + (f" Unsolved by every solver (left out): {esc(', '.join(f'{p} seed {s}' for p, s in by_steps.unsolved))}."
                  if by_steps.unsolved else "") + "</p>")
    out.append(table([("solver", False), ("cases run", True), ("cases reaching target", True),
                      ("score (steps)", True), ("score (seconds)", True)], rows, cls="scores"))
    return "\n".join(out)


def twins(problems: Sequence[Problem]) -> str:
    out = ['<p class=note>Twins: runs whose configs differ only in optimizer.impl, with the same seed (same initial '
           'weights, same batches). The gap is |scratch - builtin| / |builtin| of the logged loss, largest over '
           'the steps both logged; beside it, what the README\'s parity table proves for that optimizer. '
           f'{esc(TWIN_NOTE)}</p>']
    found: list[Twin] = []
    y_of = {problem.name: problem.y for problem in problems}
    for problem in problems:
        found.extend(find_twins(problem.runs, {}, lambda run: y_of.get(run.dataset, "loss")))
    if not found:
        out.append("<p>No twins here: no scratch run has a builtin run with the same config and seed "
                   "(the <code>builtin_twins</code> and <code>rmsprop_alpha</code> presets have them).</p>")
        return "\n".join(out)
    labels = make_labels([t.scratch.flat for t in found], [t.scratch.overrides for t in found],
                         drop=("optimizer.impl", "seed"))
    rows = []
    for twin, label in zip(found, labels):
        flag = twin.exact and twin.max_gap is not None and twin.max_gap > 1e-3
        gap = (f'<td class="num{" flag" if flag else ""}" data-v="{sort_value(twin.max_gap)}">'
               f'{esc(fmt(twin.max_gap, 3))}{" (larger than the parity table leads one to expect)" if flag else ""}'
               "</td>")
        rows.append([td(twin.problem), td(label), num_cell(twin.seed if is_number(twin.seed) else None), gap,
                     num_cell(twin.max_gap_step), num_cell(twin.final_gap, 3), num_cell(twin.points),
                     td(twin.expectation),
                     f"<td><code>{esc(twin.scratch.name)}</code><br><code>{esc(twin.builtin.name)}</code></td>"])
    out.append(table([("problem", False), ("twins", False), ("seed", True), ("largest relative gap", True),
                      ("at step", True), ("final train loss gap", True), ("steps compared", True),
                      ("parity table (200 steps, float64)", False), ("scratch / builtin folders", False)],
                     rows, cls="twins"))
    return "\n".join(out)


def _reason(run: Run) -> str:
    error = " ".join(str(run.summary.get("error") or "").split())
    if run.mark == "diverged":
        step = run.diverged_at_step
        text = f"the loss became non-finite (nan or inf) at step {step}" if step is not None else "diverged"
        return text + (f"; {error}" if error else "")
    if run.status == "interrupted":
        return error or f"stopped by SIGINT/SIGTERM after {run.summary.get('steps')} steps; resume it with resume=<folder>"
    if run.status == "failed":
        return error or "failed (no message)"
    if run.status in ("running", "unknown"):
        if not run.summary:
            return "no summary.json: the run never wrote one (killed while starting, or still running)"
        return ("summary.json still says running: the run is still going, or was killed (SIGKILL, out of memory) "
                f"after logging {len(run.losses)} rows")
    return error or run.status


def failures_section(runs: Sequence[Run], failures: Sequence[tuple[Path, str]], notes: Sequence[str]) -> str:
    out = ['<p class=note>Every run that did not complete, with its reason, and every folder or value the report '
           'had to leave out. Nothing is dropped without a line here.</p>']
    rows = []
    labels = make_labels([r.flat for r in runs], [r.overrides for r in runs]) if runs else []
    for run, label in zip(runs, labels):
        if run.status == "completed" and run.mark is None:
            continue
        status = run.status + (" (diverged)" if run.mark == "diverged" and run.status != "diverged" else "")
        rows.append([td(run.dataset), td(label), f"<td>{status_badge(status)}</td>", td(_reason(run)),
                     f"<td><code>{esc(run.name)}</code></td>"])
    for folder, reason in failures:
        record = failure_record(folder, reason)
        rows.append([td(record.get("dataset") or "?"), td("(could not be read)"),
                     f"<td>{status_badge(record['status'])}</td>", td(reason), f"<td><code>{esc(folder)}</code></td>"])
    if rows:
        out.append(table([("problem", False), ("configuration", False), ("status", False), ("reason", False),
                          ("run folder", False)], rows, cls="failures"))
    else:
        out.append("<p>None: every run completed.</p>")
    if notes:
        items = "".join(f"<li>{esc(note)}</li>" for note in dict.fromkeys(notes))
        out.append(f"<h3>Left out or adjusted</h3><ul class=notes>{items}</ul>")
    return "\n".join(out)


# --------------------------------------------------------------------------- page


def render(runs: Sequence[Run], failures: Sequence[tuple[Path, str]], *, inputs: Sequence[str],
           targets: Mapping[str | None, float] | None = None, title: str | None = None,
           notes: Sequence[str] = ()) -> tuple[str, list[str]]:
    """The whole page, and the warnings raised while building it (runs left out of a figure...)."""
    problems = make_problems(runs, failures, targets or {})
    title = title or "optbench report: " + ", ".join(p.name for p in problems)
    bodies: dict[str, str] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PlotWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="matplotlib")
        bodies["curves"] = curves(problems)
        bodies["results"] = results(problems)
        bodies["sensitivity"] = sensitivity(problems)
        bodies["profiles"] = profiles(problems)
        bodies["twins"] = twins(problems)
    built = [str(item.message) for item in caught if issubclass(item.category, PlotWarning)]
    all_notes = list(dict.fromkeys([*notes, *built]))
    bodies["overview"] = overview(problems, runs, failures, inputs)
    bodies["failures"] = failures_section(runs, failures, all_notes)
    nav = "".join(f'<a href="#{ident}">{esc(heading)}</a>' for ident, heading in SECTIONS)
    sections = "\n".join(f'<section id="{ident}" data-section="{ident}"><h2>{esc(heading)}</h2>\n{bodies[ident]}\n'
                         "</section>" for ident, heading in SECTIONS)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{assets.CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="optbench-report {esc(__version__)}">
<title>{esc(title)}</title>
<style>{assets.CSS}</style>
</head>
<body>
<header><h1>{esc(title)}</h1>
<p>{len(runs)} run(s){f" and {len(failures)} unreadable folder(s)" if failures else ""} in
{len(problems)} problem(s); made by optbench-report {esc(__version__)} on {stamp} from the run folders only.</p>
<nav>{nav}</nav></header>
<main>
{sections}
</main>
<footer id="closing-note"><p>{esc(CLOSING_NOTE)}</p></footer>
<script>{assets.JS}</script>
</body>
</html>
"""
    return page, built
