"""optbench-report: one self-contained HTML report of a study, from run folders only.

    cli.main                 the ``optbench-report`` command
    build.render(runs, ...)  the page: overview, curves, results, sensitivity, profiles, twins, failures
    profiles                 Dolan-More performance profiles over problems x seeds
    twins                    scratch vs builtin gaps beside the README's parity table
    svg.figure_svg(fig)      a matplotlib Figure as inline SVG

It reads runs with :mod:`optbench.plot.runs` (as :mod:`optbench.results` does) and draws
with the plotter's own functions; it never imports torch or the trainer.
"""
