"""The console script's first lines: stop signals are optbench's before anything heavy is imported.

A stop signal while Hydra or torch is still being imported ends the process at once with
128 + its number (``optbench.stop_signal``).
"""

from __future__ import annotations


def main() -> None:
    from optbench import stop_signal

    stop_signal.install()
    from optbench.compat import register_hydra_plugins

    register_hydra_plugins()  # hydra/launcher=vectorized
    from optbench.cli import main as run

    run()
