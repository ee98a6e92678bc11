"""The vectorized launcher against the basic launcher: one command, the issue's table, memory against K.

    python bench/vectorized.py            # the issue's sweeps (~15-25 minutes on 2 idle cores)
    python bench/vectorized.py --quick    # smaller sweeps of the same kinds (~3-5 minutes)
    python bench/vectorized.py --out results.json
    python bench/vectorized.py --cuda-only # the CUDA row alone (a GPU machine; about 5 minutes)

Every row runs the same sweep twice in this invocation, end to end as a user runs it:
``optbench -m <sweep> quiet=true hydra.sweep.dir=<temp>`` with the basic launcher, then
with ``hydra/launcher=vectorized`` added, each a fresh console-script process (the
interpreter, imports, Hydra, every job's planning and files included). Caches are warm:
before the rows, one untimed run per dataset fills optbench's image cache and the OS's
file cache (and, for the compile row, Inductor's cache).

Columns: wall s of each sweep; wall ratio (basic / vectorized: "x faster"; for the
Fashion-MNIST row the issue states vectorized / basic: "x the time"); cpu ratio, the
same on user + system CPU time (``os.wait4``), which other processes on a shared
machine disturb far less than wall time; target and whether it is met (on wall time).

Rows (full sizes; ``--quick`` divides them):

* linreg, 8 lrs x 8 seeds = 64 jobs (seed 001's run: 300 steps of batch 10): >= 10x faster;
* linreg, 16 lrs x 16 seeds = 256 jobs: >= 25x faster;
* Fashion-MNIST MLP 784-200-10, batch 64, 8 jobs (lrs) x 1 epoch: <= 0.6x the time; and
  with ``compile=true`` on both sides (warm Inductor cache): <= 0.4x. Compiled jobs are
  not stacked (``grouping.why_alone``), so that row shows what compile costs a sweep;
* batch size 1, 16 jobs (seeds) x 2000 steps of seed 002's SGD (lr 0.01) on the MLP:
  >= 8x faster (Fashion-MNIST stands in for MNIST, same sizes, when MNIST is not cached);
* CUDA, 64 MLP jobs x 1 epoch, vectorized against sequential on the same GPU: >= 30x;
  only when ``torch.cuda.is_available()``, else "not measured (no CUDA)".

Best possible here: each row also gives the best ratio any launcher could reach on this
machine, from three floors measured in the same invocation: the start-up floor (a
``python -c "import torch, hydra"`` process, which every sweep pays once), the Hydra job
floor (one call of Hydra's ``run_job`` with a task function that does nothing, on an
already composed optbench config, times jobs: what any launcher that runs its jobs through
Hydra pays, before optbench composes, plans, writes or trains anything) and the arithmetic
floor (the MLP's matrix products of one member-step, forward and backward, at the row's
batch size and torch's thread count, times jobs x steps; linreg's is negligible). A sweep
cannot take less than their sum, so the bound is basic s / (start-up + Hydra jobs +
arithmetic) for an "x faster" row, and its inverse for an "x the time" row. A target beyond
the bound is out of reach on this machine for any Hydra launcher.

Memory against K: a vectorized sweep of K Fashion-MNIST MLP members (Adam, 100 steps,
``max_group=K``) for several K; peak RSS of the process (``ru_maxrss``) and the increase
per member.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from floors import arithmetic_floor, hydra_job_floor, startup_floor

OPTBENCH = str(Path(sys.executable).parent / "optbench")
VEC = "hydra/launcher=vectorized"
LRS = ("1e-4", "2e-4", "5e-4", "1e-3", "2e-3", "5e-3", "1e-2", "2e-2", "3e-2", "5e-2", "7e-2", "1e-1", "1.5e-1",
       "2e-1", "3e-1", "4e-1")


def seeds(n: int) -> str:
    return "seed=" + ",".join(map(str, range(n)))


def lrs(n: int) -> str:
    return "optimizer.lr=" + ",".join(LRS[:n])


@dataclass
class Timed:
    wall_s: float
    cpu_s: float
    peak_mb: float
    rc: int


@dataclass
class Row:
    name: str
    jobs: int
    target: str
    basic: Timed | None = None
    vectorized: Timed | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)
    batch: int | None = None  # the MLP's batch size (None: linreg, whose arithmetic is negligible)
    steps: int = 0  # updates per job
    floor_s: float | None = None  # start-up + arithmetic floor of the whole sweep (see "Best possible here")

    def ratios(self) -> tuple[float, float] | None:
        """(wall, cpu): basic / vectorized, or vectorized / basic for a "x the time" target."""
        if self.basic is None or self.vectorized is None:
            return None
        if "the time" in self.target:
            return self.vectorized.wall_s / self.basic.wall_s, self.vectorized.cpu_s / self.basic.cpu_s
        return self.basic.wall_s / self.vectorized.wall_s, self.basic.cpu_s / self.vectorized.cpu_s

    def bound(self) -> float | None:
        """The best wall ratio any launcher could reach here (``floor_s`` against the basic sweep)."""
        if self.basic is None or self.floor_s is None:
            return None
        if "the time" in self.target:
            return self.floor_s / self.basic.wall_s
        return self.basic.wall_s / self.floor_s

    def met(self) -> bool | None:
        ratios = self.ratios()
        if ratios is None:
            return None
        bound = float(self.target.split("x")[0].strip("<=> "))
        return ratios[0] <= bound if "<=" in self.target else ratios[0] >= bound


def run(args: list[str], cwd: Path, env: dict | None = None) -> Timed:
    """One console-script process: wall time, user + system CPU time and peak RSS (``os.wait4``)."""
    started = time.perf_counter()
    proc = subprocess.Popen([OPTBENCH, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(f"  command failed ({proc.returncode}): optbench {' '.join(args)}\n{err[-2000:]}", file=sys.stderr)
    return Timed(round(wall, 3), round(usage.ru_utime + usage.ru_stime, 3), round(usage.ru_maxrss / 1024, 1),
                 proc.returncode)


def sweep_pair(row: Row, sweep: list[str], work: Path, basic_extra: list[str] = (), vec_extra: list[str] = ()) -> Row:
    """The same sweep with both launchers, basic first; each into a fresh sweep dir."""
    tag = str(len(list(work.iterdir())))
    print(f"{row.name}: basic ...", flush=True)
    row.basic = run(["-m", *sweep, *basic_extra, "quiet=true", f"hydra.sweep.dir={work / tag / 'basic'}"], work)
    print(f"  {row.basic.wall_s:.1f} s; vectorized ...", flush=True)
    row.vectorized = run(["-m", VEC, *sweep, *vec_extra, "quiet=true", f"hydra.sweep.dir={work / tag / 'vec'}"],
                         work)
    print(f"  {row.vectorized.wall_s:.1f} s", flush=True)
    return row


def set_floors(found: list["Row"], startup_s: float, hydra_job_s: float) -> None:
    per_step = {batch: arithmetic_floor(batch) for batch in {r.batch for r in found if r.batch is not None}}
    for row in found:
        arithmetic = 0.0 if row.batch is None else per_step[row.batch] * row.jobs * row.steps
        hydra_jobs = hydra_job_s * row.jobs
        row.floor_s = startup_s + hydra_jobs + arithmetic
        row.extra["floors"] = {"startup_s": round(startup_s, 3), "hydra_jobs_s": round(hydra_jobs, 3),
                               "arithmetic_s": round(arithmetic, 3)}


def image_dataset() -> str:
    """MNIST when optbench's cache holds it (seed 002's data), else Fashion-MNIST (same sizes)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "optbench" / "data"
    return "mnist" if (cache / "MNIST").is_dir() else "fashion_mnist"


def warm_up(work: Path, with_compile: bool) -> None:
    print("warming caches (untimed) ...", flush=True)
    run(["dataset=linreg", "quiet=true", f"hydra.run.dir={work / 'warm' / 'linreg'}"], work)
    run(["dataset=fashion_mnist", "steps=20", "quiet=true", f"hydra.run.dir={work / 'warm' / 'fmnist'}"], work)
    if image_dataset() == "mnist":
        run(["dataset=mnist", "steps=20", "quiet=true", f"hydra.run.dir={work / 'warm' / 'mnist'}"], work)
    if with_compile:
        run(["dataset=fashion_mnist", "epochs=1", "compile=true", "quiet=true",
             f"hydra.run.dir={work / 'warm' / 'compile'}"], work)
    import torch

    if torch.cuda.is_available():  # the driver's and the kernels' first-use costs, before the CUDA row
        run(["dataset=fashion_mnist", "steps=20", "device=cuda", "quiet=true",
             f"hydra.run.dir={work / 'warm' / 'cuda'}"], work)


def rows(work: Path, quick: bool, with_compile: bool, cuda_only: bool = False) -> list[Row]:
    if cuda_only:
        return [cuda_row(work, quick)]
    linreg_small, linreg_big = (4, 8) if quick else (8, 16)
    mlp_jobs, mlp_len, mlp_steps = (4, "steps=200", 200) if quick else (8, "epochs=1", 938)
    bs1_jobs, bs1_steps = (8, 500) if quick else (16, 2000)
    out = [
        sweep_pair(Row(f"linreg, {linreg_small} lrs x {linreg_small} seeds", linreg_small ** 2, ">= 10x faster",
                       steps=300),
                   ["dataset=linreg", lrs(linreg_small), seeds(linreg_small)], work),
        sweep_pair(Row(f"linreg, {linreg_big} lrs x {linreg_big} seeds", linreg_big ** 2, ">= 25x faster", steps=300),
                   ["dataset=linreg", lrs(linreg_big), seeds(linreg_big)], work),
        sweep_pair(Row(f"Fashion-MNIST MLP, batch 64, {mlp_jobs} lrs x {mlp_len.replace('=', ' ')}", mlp_jobs,
                       "<= 0.6x the time", batch=64, steps=mlp_steps),
                   ["dataset=fashion_mnist", mlp_len, lrs(mlp_jobs)], work),
    ]
    if with_compile:
        out.append(sweep_pair(Row(f"Fashion-MNIST MLP, batch 64, {mlp_jobs} lrs, compile=true (warm cache)", mlp_jobs,
                                  "<= 0.4x the time", note="compiled jobs run alone (not stacked)", batch=64,
                                  steps=mlp_steps),
                              ["dataset=fashion_mnist", mlp_len, lrs(mlp_jobs), "compile=true"], work))
    data = image_dataset()
    out.append(sweep_pair(Row(f"batch size 1, {bs1_jobs} seeds x {bs1_steps} steps (seed 002's SGD, {data})",
                              bs1_jobs, ">= 8x faster", batch=1, steps=bs1_steps),
                          [f"dataset={data}", "optimizer=sgd", "optimizer.lr=0.01", "batch_size=1",
                           f"steps={bs1_steps}", seeds(bs1_jobs)], work))
    out.append(cuda_row(work, quick))
    return out


def cuda_row(work: Path, quick: bool) -> Row:
    import torch

    jobs = 16 if quick else 64
    row = Row(f"CUDA: {jobs} MLP jobs (8 lrs x {jobs // 8} seeds), vectorized vs sequential, same GPU", jobs,
              ">= 30x faster")
    if not torch.cuda.is_available():
        row.note = "not measured (no CUDA)"
        print(f"{row.name}: {row.note}", flush=True)
        return row
    row.note = torch.cuda.get_device_name(0)
    return sweep_pair(row, ["dataset=fashion_mnist", "device=cuda", "epochs=1" if not quick else "steps=200",
                            lrs(8), seeds(jobs // 8)], work)


def memory_against_k(work: Path, quick: bool) -> list[dict]:
    out = []
    for k in (1, 4, 16) if quick else (1, 4, 16, 64):
        print(f"memory: K={k} ...", flush=True)
        timed = run(["-m", VEC, f"hydra.launcher.max_group={k}", "dataset=fashion_mnist", "optimizer=adam",
                     "steps=100", "quiet=true", "seed=" + ",".join(map(str, range(k))),
                     f"hydra.sweep.dir={work / 'memory' / str(k)}"], work)
        out.append({"K": k, "peak_mb": timed.peak_mb, "wall_s": timed.wall_s, "rc": timed.rc})
    base = out[0]["peak_mb"]
    for entry in out[1:]:
        entry["mb_per_extra_member"] = round((entry["peak_mb"] - base) / (entry["K"] - 1), 2)
    return out


def table(found: list[Row]) -> str:
    lines = ["| sweep | jobs | basic s | vectorized s | wall ratio | cpu ratio | best possible here | target | met |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in found:
        ratios = row.ratios()
        if ratios is None:
            lines.append(f"| {row.name} | {row.jobs} | | | {row.note} | | | {row.target} | |")
            continue
        met = {True: "yes", False: "no"}[row.met()]
        failed = row.basic.rc != 0 or row.vectorized.rc != 0
        lines.append(f"| {row.name} | {row.jobs} | {row.basic.wall_s:.1f} | {row.vectorized.wall_s:.1f} | "
                     f"{ratios[0]:.2f}x | {ratios[1]:.2f}x | {row.bound():.2f}x | {row.target} | {met}"
                     f"{' (a command failed)' if failed else ''}{'; ' + row.note if row.note else ''} |")
    return "\n".join(lines)


def memory_table(entries: list[dict]) -> str:
    lines = ["| K (members) | peak RSS MB | MB per extra member | wall s |", "|---|---|---|---|"]
    for e in entries:
        lines.append(f"| {e['K']} | {e['peak_mb']:.0f} | {e.get('mb_per_extra_member', '')} | {e['wall_s']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sweeps of the same kinds")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile=true row (full runs include it)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--cuda-only", action="store_true", help="only the CUDA row (no CPU rows, no memory table)")
    args = parser.parse_args()
    with_compile = not args.quick and not args.no_compile and not args.cuda_only
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="optbench-bench-vec-") as tmp:
        work = Path(tmp)
        warm_up(work, with_compile)
        found = rows(work, args.quick, with_compile, args.cuda_only)
        memory = [] if args.cuda_only else memory_against_k(work, args.quick)
        print("floors: start-up, Hydra's run_job and arithmetic ...", flush=True)
        set_floors(found, startup_floor(), hydra_job_floor())
    print()
    print(table(found))
    if memory:
        print()
        print(memory_table(memory))
    end_load = os.getloadavg()[0]
    print(f"\nload average {load:.2f} at the start, {end_load:.2f} at the end, on {os.cpu_count()} CPUs"
          + ("  (the CPUs were shared: wall times are unreliable, compare the cpu ratios)"
             if max(load, end_load) > 0.5 * (os.cpu_count() or 1) else ""))
    if args.out:
        args.out.write_text(json.dumps({"rows": [asdict(r) | {"ratios": r.ratios(), "met": r.met(), "bound": r.bound()} for r in found],
                                        "memory": memory, "load": [load, end_load], "quick": args.quick},
                                       indent=2) + "\n")


if __name__ == "__main__":
    main()
