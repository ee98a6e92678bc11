"""A Hydra callback for the time-limit tests: it slows a job's first SLURM attempt, and only that one.

Each optimizer step of the first attempt (``SLURM_RESTART_COUNT`` unset or 0) sleeps
``OPTBENCH_TEST_STEP_SLEEP_S`` (default 2 ms) through torch's global step hook, so that
attempt is still training when the time limit comes, however fast the machine is; a
requeued attempt runs at full speed and finishes the same fixed work in seconds. Numbers
are untouched: the hook only waits. ``OPTBENCH_TEST_THROTTLE_ALL=1`` slows every attempt.
"""

from __future__ import annotations

import os
import time

from hydra.experimental.callback import Callback


class SlowFirstAttempt(Callback):
    def on_job_start(self, config, **kwargs) -> None:
        first = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) == 0
        if not (first or os.environ.get("OPTBENCH_TEST_THROTTLE_ALL") == "1"):
            return
        from torch.optim.optimizer import register_optimizer_step_post_hook

        pause_s = float(os.environ.get("OPTBENCH_TEST_STEP_SLEEP_S", "0.002"))
        register_optimizer_step_post_hook(lambda optimizer, args, kwargs: time.sleep(pause_s))
