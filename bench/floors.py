"""Floors for the benchmarks' targets: what no implementation can beat on this machine, measured here.

* :func:`startup_floor`: a ``python -c "import torch, hydra"`` process (interpreter start,
  the two imports, teardown), which every ``optbench`` command pays once;
* :func:`arithmetic_floor`: one member-step's matrix products for the seeds' 784-200-10
  MLP, forward and backward (no gradient for the input), at a batch size and thread count,
  the work any training loop of that model must do each step.
"""

from __future__ import annotations

import subprocess
import sys
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
