"""Run optbench for the benchmark, timing its training loop from the outside.

``cli <overrides...>``: the real ``optbench`` command (Hydra, config validation,
run folder, progress bar, the CLI's early ``set_flush_denormal``) in this process,
with ``Trainer.run`` (and, inside it, the end-of-epoch work: test-set evaluation,
epochs.csv) wrapped in timers. ``api <run_dir> <overrides...>``: the
Python API (compose, ``validate``, ``execute``), which leaves torch's denormal
handling alone. Either writes ``{"loop_s": ..., "epoch_end_s": ...}`` to the file named by
``$OPTBENCH_BENCH_OUT``; the run's own numbers are in its summary.json.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _time_the_loop() -> None:
    from optbench.train import trainer

    run, end_epoch = trainer.Trainer.run, trainer.Trainer._end_epoch
    spent = {"epoch_end_s": 0.0}

    def timed_end_epoch(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return end_epoch(self, *args, **kwargs)
        finally:
            spent["epoch_end_s"] += time.perf_counter() - started

    def timed(self, state=None):
        started = time.perf_counter()
        try:
            return run(self, state)
        finally:
            with open(os.environ["OPTBENCH_BENCH_OUT"], "w") as out:
                json.dump({"loop_s": time.perf_counter() - started, **spent}, out)

    trainer.Trainer.run = timed
    trainer.Trainer._end_epoch = timed_end_epoch


def main() -> None:
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "cli":
        sys.argv = ["optbench", *rest]
        _time_the_loop()
        from optbench.cli import main as cli_main

        cli_main()
    elif mode == "api":
        run_dir, overrides = rest[0], rest[1:]
        _time_the_loop()
        from hydra import compose, initialize_config_module

        from optbench.config.validate import validate
        from optbench.train.console import RunConsole
        from optbench.train.run import execute

        with initialize_config_module("optbench.conf", version_base="1.3"):
            cfg = validate(compose("config", overrides=overrides))
        execute(cfg, run_dir, overrides, RunConsole(quiet=True))
    else:
        raise SystemExit(f"unknown mode {mode!r}: cli or api")


if __name__ == "__main__":
    main()
