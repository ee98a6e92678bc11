"""optbench-plot: figures and tables from run folders (see docs/run-format.md).

Reads only a run's files, never the trainer or torch. The function layer returns
matplotlib Figure objects; ``optbench.plot.cli`` is the thin command-line layer.

    runs.find_runs / runs.load_runs            folders, multirun folders, globs -> Run objects
    figures.loss_figure(runs, x=, y=, ...)      loss curves (seed groups: median + band)
    sensitivity.sensitivity_figure(runs, "lr")  final/best loss against a swept hyperparameter
    table.summary_rows / write_summary_csv      one row per run
    ewa.ewa_figure([0.98, 0.95, 0.9, 0.8])      seed 003's EWA weights
"""
