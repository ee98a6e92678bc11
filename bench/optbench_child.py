"""Run optbench for the benchmark, timing its training loop from the outside.

``cli <overrides...>``: the real ``optbench`` command (Hydra, config validation,
run folder, progress bar, the CLI's early ``set_flush_denormal``) in this process,
with a process callback timing ``Trainer.run`` (and the trainer's own count of the
end-of-epoch work: test-set evaluation, epochs.csv). ``api <run_dir> <overrides...>``: the
Python API (compose, ``validate``, ``execute``), which leaves torch's denormal
handling alone. Either writes ``{"loop_s": ..., "epoch_end_s": ..., "loop_cpu_s": ...}`` (the process's CPU
time over the loop) to the file named by
``$OPTBENCH_BENCH_OUT``; the run's own numbers are in its summary.json.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _time_the_loop() -> None:
    """A process callback (``optbench.train.callbacks``) that times the loop from its start to its end."""
    from optbench.train.callbacks import Callback, add_process_callback

    class LoopTimer(Callback):
        def on_train_start(self, trainer, state):
            self.started, self.cpu_started = time.perf_counter(), time.process_time()

        def on_train_end(self, trainer, state, outcome):
            with open(os.environ["OPTBENCH_BENCH_OUT"], "w") as out:
                json.dump({"loop_s": time.perf_counter() - self.started, "epoch_end_s": trainer.epoch_end_time_s,
                           "loop_cpu_s": time.process_time() - self.cpu_started}, out)

    add_process_callback(LoopTimer)


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
