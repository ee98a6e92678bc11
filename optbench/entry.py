"""The console script's first lines: stop signals are optbench's before anything heavy is imported."""

from __future__ import annotations

import os


def main() -> None:
    from optbench import stop_signal

    stop_signal.install()
    try:
        from optbench.cli import main as run
    except stop_signal.Stopped as stop:  # Ctrl-C while Hydra or torch was being imported
        os._exit(stop.exit_code)
    run()
