"""Floors for the benchmarks' targets: what no implementation can beat on this machine, measured here.

* :func:`startup_floor`: a ``python -c "import torch, hydra"`` process (interpreter start,
  the two imports, teardown), which every ``optbench`` command pays once;
* :func:`arithmetic_floor`: one member-step's matrix products for the seeds' 784-200-10
  MLP, forward and backward (no gradient for the input), at a batch size and thread count,
  the work any training loop of that model must do each step;
* :func:`hydra_job_floor`: Hydra's own ``run_job`` for one job of optbench's config, with a
  task function that does nothing (its composed config given): what every job of a sweep
  costs under any launcher that runs its jobs through Hydra (the basic, joblib and
  submitit launchers, and the vectorized one), before optbench does anything.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import tempfile
import time

MLP_SIZES = (784, 200, 10)


def startup_floor(reps: int = 3, modules: str = "torch, hydra") -> float:
    """Median wall seconds of a ``python -c "import <modules>"`` process."""
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {modules}"], check=True)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def arithmetic_floor(batch: int, threads: int | None = None, reps: int = 300) -> float:
    """Seconds of one MLP step's matrix products (forward; backward dh, dW2, dW1), best of three timings."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    inputs, hidden, outputs = MLP_SIZES
    x, w1, w2 = torch.randn(batch, inputs), torch.randn(inputs, hidden), torch.randn(hidden, outputs)
    h, g1, g2 = torch.randn(batch, hidden), torch.randn(batch, hidden), torch.randn(batch, outputs)

    def products():
        torch.mm(x, w1), torch.mm(h, w2)  # forward
        torch.mm(g2, w2.t()), torch.mm(h.t(), g2), torch.mm(x.t(), g1)  # backward: dh, dW2, dW1

    for _ in range(reps // 10):
        products()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(reps):
            products()
        best = min(best, (time.perf_counter() - started) / reps)
    return best


def hydra_job_floor(jobs: int = 64, overrides: tuple[str, ...] = ("dataset=linreg",)) -> float:
    """Median seconds of one ``hydra.core.utils.run_job`` call with a no-op task, in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="optbench-floor-") as sweep_dir:
        out = subprocess.run([sys.executable, __file__, "run_job", str(jobs), sweep_dir, *overrides], check=True,
                             capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def _time_run_job(jobs: int, sweep_dir: str, overrides: list[str]) -> float:
    """``jobs`` calls of Hydra's ``run_job`` as a launcher makes them (each on its own composed config)."""
    from hydra import compose, initialize_config_module
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import run_job, setup_globals
    from hydra.types import HydraContext
    from omegaconf import open_dict

    setup_globals()
    times = []
    with initialize_config_module("optbench.conf", version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        context = HydraContext(config_loader=loader, callbacks=Callbacks())
        base = compose("config", overrides=[*overrides, f"hydra.sweep.dir={sweep_dir}", "hydra.mode=MULTIRUN"],
                       return_hydra_config=True)
        configs = []
        for i in range(jobs):
            config = copy.deepcopy(base)
            with open_dict(config):
                config.hydra.job.id, config.hydra.job.num = i, i
            configs.append(config)
        for config in configs:
            started = time.perf_counter()
            run_job(hydra_context=context, task_function=lambda cfg: None, config=config,
                    job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
            times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


if __name__ == "__main__" and len(sys.argv) > 3 and sys.argv[1] == "run_job":
    print(_time_run_job(int(sys.argv[2]), sys.argv[3], sys.argv[4:]))
