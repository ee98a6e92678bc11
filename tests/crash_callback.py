"""A Hydra callback that makes one sweep job die hard (``os._exit``), for the sweep robustness tests.

Nothing in optbench knows about it: a test adds it on the command line and puts this
folder on PYTHONPATH, so that the job processes of any launcher can import it::

    PYTHONPATH=tests optbench -m ... \\
        +hydra.callbacks.crash._target_=crash_callback.CrashJob +hydra.callbacks.crash.job=2

``after_rows=0`` (default) kills job ``job`` as it starts, before optbench runs (its
folder then holds only .hydra/). ``after_rows=N`` kills it from a watcher thread once
its losses.csv holds N rows, i.e. in the middle of training, like an out-of-memory
kill or a node failure.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

EXIT_CODE = 17


class CrashJob(Callback):
    def __init__(self, job: int = 0, after_rows: int = 0, code: int = EXIT_CODE) -> None:
        self.job, self.after_rows, self.code = int(job), int(after_rows), int(code)

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        if int(config.hydra.job.num) != self.job:
            return
        if self.after_rows <= 0:
            os._exit(self.code)
        losses = Path(config.hydra.runtime.output_dir) / "losses.csv"
        threading.Thread(target=self._watch, args=(losses,), daemon=True).start()

    def _watch(self, losses: Path) -> None:
        while True:
            try:
                rows = len(losses.read_text().splitlines()) - 1
            except OSError:
                rows = 0
            if rows >= self.after_rows:
                os._exit(self.code)
            time.sleep(0.01)
