"""optbench's speed benchmark: one command, one table.

    python bench/run.py            # the full benchmark (~8 minutes on 2 cores)
    python bench/run.py --quick    # a smoke version (1 epoch, 1 repeat, short batch-size-1 runs; ~4 minutes)

Every variant trains the seeds' MLP 784-200-10 with RMSProp (lr 1e-3, alpha 0.9) on
the same data (Fashion-MNIST when it is found, else MNIST from optbench's cache, else
synthetic IDX files of the same sizes), at a fixed thread count, each repeat in a
fresh child process. Columns:

* loop s: median over repeats of the training loop's wall time, measured inside the
  child (tutorial and bare loops: around their epoch loop, like the tutorial's own
  timer; optbench: around ``Trainer.run``, which also evaluates the test set after
  every epoch and writes the CSV files and the progress bar);
* x tutorial: loop s over the tutorial's loop s in this same invocation;
* compile s: optbench's ``compile_time_s`` (cold: an empty Inductor cache; warm: the
  next repeat, which reuses it);
* process s: the child's whole wall time (interpreter, imports, data, compile, loop);
* cpu s: the child's user + system CPU time (``os.wait4``): other processes on a shared
  machine disturb it far less than wall time;
* outside s: process s - ``train_time_s`` (group f);
* peak RSS: the child's ``ru_maxrss`` (``os.wait4``), the largest over repeats.

Group (f), start-up: ``python -c "import torch"`` (interpreter start, torch's import,
interpreter teardown), and ``optbench dataset=fashion_mnist`` as a user types it: the
console script from a fresh folder, with rich's live progress bar (told it is a
terminal), the whole process. Only ``threads=`` (the tutorial's), ``epochs=`` (when not
the dataset's 5) and ``dataset.root=`` (when the data is not in optbench's cache) are
added. Its loop s is summary.json's ``train_time_s`` (the summed step times); its outside
s is everything else: imports, Hydra, validation, data, batch slicing, the test-set
evaluation after each epoch, logging, exit.

Group (g), shims: each start-up shim of optbench/compat.py switched off
(``OPTBENCH_SHIMS_OFF=<name>``) in the default run, and ``fast_guards`` off in the compiled
scratch run (warm Inductor cache), each run right after the same variant with every shim
on; the last table gives each shim's off / on ratio, paired by round, on wall and CPU time
(a "gain" when the run without the shim was the slower one in every round, at least 3).

The engine issue's targets (in the targets table):

* (a) process s of (f)'s optbench run / loop s of the tutorial (a), same epochs: <= 0.25;
  with its floor (bench/floors.py): ``import torch``'s process s plus the MLP's matrix
  products of every step at this thread count, over the tutorial's loop s; no run of
  that model can beat it, so above 0.25, (a) is out of reach on this machine;
* (b) outside s of (f)'s optbench run / process s of ``python -c "import torch"``: <= 1.5;
* (c) loop s of "scratch, eager (progress bar on a terminal)" (c) / loop s of the bare
  loop with optbench's scratch RMSprop (b): <= 1.05;
* (d) peak RSS of (f)'s optbench run: <= 1.2 GB.

Batch size 1 runs ``--bs1-steps`` updates (a tenth of an epoch by default) and scales
the time to a full epoch (optbench's one end-of-epoch test evaluation is not scaled).
The default ``optbench`` run (linreg) is timed as a user runs it: the console script
from a temporary folder, interpreter start included. Timings on a busy machine are
meaningless: the last line prints the load average at the start, the CPU time stolen
by the hypervisor (``/proc/stat``) and the widest spread between repeats, with a
warning when the CPUs were shared; variants run
round-robin (repeat r of each before repeat r + 1 of any) so that a slow spell does
not land on one variant only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
TRAIN_SIZE = 60_000
#: epochs of conf/dataset/fashion_mnist.yaml (and mnist.yaml): the run a user types
DATASET_EPOCHS = 5
#: what makes rich draw its live progress bar as on a terminal, in a child whose stdout is a file
TTY = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "120"}
IMPORT_TORCH = '`python -c "import torch"`, whole process'
SHIM_OFF = "OPTBENCH_SHIMS_OFF="
SHIM_ON = "shims on, paired with "
SHIMS_OFF_ENV = "OPTBENCH_SHIMS_OFF"  # optbench.compat.SHIMS_OFF_ENV
#: the shims of optbench/compat.py that speed up start-up or exit, each measured off against the default run
START_UP_SHIMS = ("dynamo_slot", "fast_exit")


@dataclass
class Result:
    name: str
    group: str
    loop: list[float] = field(default_factory=list)
    process: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # the child's user + system CPU seconds, per run
    loop_cpu: list[float] = field(default_factory=list)  # CPU seconds of optbench's loop (group c), per run
    rss_kb: int = 0
    compile: list[float] = field(default_factory=list)
    steal: list[float] = field(default_factory=list)  # % of CPU time the hypervisor took, per run
    loss: float | None = None
    losses_file: Path | None = None
    outside: list[float] = field(default_factory=list)  # whole process - train_time_s, per run (group f)

    @property
    def loop_s(self) -> float | None:
        return statistics.median(self.loop) if self.loop else None


# ----------------------------------------------------------------------------- data


def find_data(console: Console) -> tuple[str, str, str]:
    """(torchvision class name, root, description) of the data every variant uses."""
    from optbench.problems.image_data import DEFAULT_SYSTEM_DIR, default_data_root, fill_missing_raw_files

    root = default_data_root()
    try:
        if not fill_missing_raw_files("fashion_mnist", root, DEFAULT_SYSTEM_DIR):
            return "FashionMNIST", str(root), f"Fashion-MNIST ({root})"
    except Exception as exc:  # an unwritable cache, a corrupt file: fall through
        console.print(f"[yellow]Fashion-MNIST not usable: {exc}[/yellow]")
    if not fill_missing_raw_files("mnist", root, None):
        return "MNIST", str(root), f"MNIST ({root})"
    synthetic = Path(tempfile.mkdtemp(prefix="optbench-bench-data-"))
    _write_synthetic(synthetic / "FashionMNIST" / "raw")
    console.print("[yellow]No Fashion-MNIST or MNIST found: synthetic IDX files of the same sizes "
                  "(timings are valid, losses are not).[/yellow]")
    return "FashionMNIST", str(synthetic), f"synthetic, MNIST-sized ({synthetic})"


def _write_synthetic(raw: Path) -> None:
    import numpy as np

    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", TRAIN_SIZE), ("t10k", 10_000)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        (raw / f"{split}-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + _dims(n, 28, 28) + images.tobytes())
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + _dims(n) + labels.tobytes())


def _dims(*dims: int) -> bytes:
    return b"".join(d.to_bytes(4, "big") for d in dims)


# ----------------------------------------------------------------------------- children


def cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs since boot (Linux; zeros elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


LAST_STEAL = [0.0]  # steal % of the last child
LAST_CPU = [0.0]  # user + system CPU seconds of the last child


def run_child(argv: list[str], env: dict | None = None, cwd: str | None = None) -> tuple[float, int, str, str]:
    """Run one child to completion: (wall seconds, peak RSS in KB, stdout, stderr)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        steal0, total0 = cpu_times()
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env={**os.environ, **(env or {})}, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        steal1, total1 = cpu_times()
        LAST_STEAL[0] = 100 * (steal1 - steal0) / max(total1 - total0, 1)
        LAST_CPU[0] = usage.ru_utime + usage.ru_stime
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        tail = "\n".join((stderr or stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{tail}")
    return wall, usage.ru_maxrss, stdout, stderr


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def script(name: str, *args) -> list[str]:
    return [PYTHON, str(BENCH / name), *map(str, args)]


class Bench:
    def __init__(self, opts, console: Console):
        self.opts, self.console = opts, console
        self.dataset, self.root, self.data_note = find_data(console)
        self.work = Path(tempfile.mkdtemp(prefix="optbench-bench-"))
        self.results: list[Result] = []
        self.plan: list[tuple[Result, int, object]] = []

    def console_script(self) -> list[str]:
        """The ``optbench`` command as a user runs it (the installed console script, not a pyenv shim)."""
        exe = Path(PYTHON).parent / "optbench"
        return [str(exe)] if exe.exists() else [PYTHON, "-c", "from optbench.entry import main; main()"]

    # common flags
    def common(self) -> list[str]:
        return ["--root", self.root, "--dataset", self.dataset, "--threads", self.opts.threads]

    def optbench_args(self, *extra: str, epochs: int | None = None) -> list[str]:
        name = {"FashionMNIST": "fashion_mnist", "MNIST": "mnist"}[self.dataset]
        args = [f"dataset={name}", f"dataset.root={self.root}", f"threads={self.opts.threads}",
                f"epochs={epochs or self.opts.epochs}"]
        if name == "fashion_mnist":
            args.append("dataset.system_dir=")
        return args + list(extra)

    def record(self, result: Result, reps: int, run_once) -> Result:
        """Plan ``reps`` runs of a variant (``run`` executes the plan)."""
        self.results.append(result)
        self.plan.append((result, reps, run_once))
        return result

    def run(self) -> None:
        """Every planned run, round-robin: repeat r of every variant before repeat r + 1 of any,
        so that a slow spell of the machine does not land on one variant only."""
        rounds = max((reps for _, reps, _ in self.plan), default=0)
        for rep in range(rounds):
            for result, reps, run_once in self.plan:
                if rep >= reps:
                    continue
                wall, rss, loop, loss, compile_s = run_once(rep)
                result.process.append(wall)
                result.cpu.append(LAST_CPU[0])
                result.loop.append(loop)
                result.steal.append(LAST_STEAL[0])
                result.rss_kb = max(result.rss_kb, rss)
                if compile_s is not None:
                    result.compile.append(compile_s)
                result.loss = loss
                self.console.print(f"[dim]round {rep + 1}/{rounds}: {result.group} {result.name}: "
                                   f"{loop:.2f} s (steal {LAST_STEAL[0]:.0f}%)[/dim]")

    # (a) and (d): the tutorial
    def tutorial(self, name: str, group: str, reps: int, *extra, scale: float = 1.0) -> Result:
        def once(rep):
            wall, rss, out, _ = run_child(script("tutorial_loop.py", *self.common(), *extra))
            data = last_json(out)
            return wall, rss, data["loop_s"] * scale, (data["epoch_losses"] or [None])[-1], None

        return self.record(Result(name, group), reps, once)

    # (b): bare loops
    def bare(self, name: str, optim: str, ftz: bool, reps: int) -> Result:
        args = [*self.common(), "--optim", optim, "--epochs", self.opts.epochs] + (["--ftz"] if ftz else [])

        def once(rep):
            wall, rss, out, _ = run_child(script("bare_loop.py", *args))
            data = last_json(out)
            return wall, rss, data["loop_s"], data["epoch_losses"][-1], None

        return self.record(Result(name, "(b) bare loop"), reps, once)

    # (c) and (d): optbench
    def optbench(self, name: str, group: str, reps: int, *overrides: str, mode: str = "cli", tty: bool = False,
                 cold_first: bool = False, cache: str | None = None, scale: float = 1.0,
                 epochs: int | None = None, extra_env: dict | None = None) -> Result:
        result = Result(name, group)
        index = len(self.results)
        cache_dir = cache or str(self.work / f"inductor-{index}")

        def once(rep):
            run_dir = self.work / f"{index}-{rep}"
            stamp = self.work / f"loop-{index}-{rep}.json"
            env = {"OPTBENCH_BENCH_OUT": str(stamp)}
            if cold_first:  # rep 0 compiles into an empty cache, later reps reuse it
                if rep == 0:
                    shutil.rmtree(cache_dir, ignore_errors=True)
                env["TORCHINDUCTOR_CACHE_DIR"] = cache_dir
            elif cache:
                env["TORCHINDUCTOR_CACHE_DIR"] = cache
            if tty:  # rich draws its live progress bar as on a terminal
                env.update(TTY)
            env.update(extra_env or {})
            args = self.optbench_args(*overrides, epochs=epochs)
            if mode == "cli":
                argv = script("optbench_child.py", "cli", *args, f"hydra.run.dir={run_dir}")
            else:
                argv = script("optbench_child.py", "api", run_dir, *args)
            wall, rss, _, _ = run_child(argv, env=env, cwd=str(self.work))
            summary = json.loads((run_dir / "summary.json").read_text())
            if summary["status"] != "completed":
                raise RuntimeError(f"{name}: run ended {summary['status']}: {summary.get('error')}")
            result.losses_file = run_dir / "losses.csv"
            times = json.loads(stamp.read_text())
            result.loop_cpu.append(times["loop_cpu_s"])
            # a partial epoch scaled to a whole one: its steps scale, its one test-set evaluation does not
            loop = (times["loop_s"] - times["epoch_end_s"]) * scale + times["epoch_end_s"]
            return wall, rss, loop, summary["final"]["train_loss"], summary["compile_time_s"]

        return self.record(result, reps, once)

    # (e): the default run, as a user runs it
    def default_run(self, reps: int, name: str = "`optbench quiet=true` (linreg), whole process",
                    group: str = "(e) default run", env: dict | None = None) -> Result:
        cwd = self.work / f"default-run-{len(self.results)}"
        cwd.mkdir(exist_ok=True)

        def once(rep):
            wall, rss, _, _ = run_child([*self.console_script(), "quiet=true"], env=env, cwd=str(cwd))
            return wall, rss, wall, None, None

        return self.record(Result(name, group), reps, once)

    # (f): the image run exactly as a user types it, and the start-up baseline
    def typed_run(self, reps: int, env: dict | None = None, name: str | None = None) -> Result:
        """``optbench dataset=<name>`` from a fresh folder, on a terminal (progress bar), whole process.

        Only what the machine needs is added: ``threads=`` (the tutorial's), ``epochs=`` when
        not the dataset's default 5, ``dataset.root=`` when the data is not in optbench's cache.
        """
        from optbench.problems.image_data import default_data_root

        dataset = {"FashionMNIST": "fashion_mnist", "MNIST": "mnist"}[self.dataset]
        args = [f"dataset={dataset}", f"threads={self.opts.threads}"]
        if self.opts.epochs != DATASET_EPOCHS:
            args.append(f"epochs={self.opts.epochs}")
        if Path(self.root).resolve() != Path(default_data_root()).resolve():
            args.append(f"dataset.root={self.root}")
        result = Result(name or f"`optbench {' '.join(args)}`, whole process", "(f) start-up")
        index = len(self.results)

        def once(rep):
            cwd = self.work / f"typed-{index}-{rep}"
            cwd.mkdir()
            wall, rss, _, _ = run_child([*self.console_script(), *args], cwd=str(cwd),
                                        env={**TTY, **(env or {})})
            summaries = list(cwd.glob("outputs/*/*/summary.json"))
            if len(summaries) != 1:
                raise RuntimeError(f"{result.name}: expected one run folder under {cwd}/outputs, found {summaries}")
            summary = json.loads(summaries[0].read_text())
            if summary["status"] != "completed":
                raise RuntimeError(f"{result.name}: run ended {summary['status']}: {summary.get('error')}")
            result.losses_file = summaries[0].parent / "losses.csv"
            result.outside.append(wall - summary["train_time_s"])
            return wall, rss, summary["train_time_s"], summary["final"]["train_loss"], None

        return self.record(result, reps, once)

    def import_torch(self, reps: int) -> Result:
        def once(rep):
            wall, rss, _, _ = run_child([PYTHON, "-c", "import torch"])
            return wall, rss, wall, None, None

        return self.record(Result(IMPORT_TORCH, "(f) start-up"), reps, once)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="optbench's speed benchmark (prints one table).")
    parser.add_argument("--quick", action="store_true", help="smoke version: 1 epoch, 1 repeat, short batch-1 runs")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads in every variant (default 2)")
    parser.add_argument("--reps", type=int, default=None, help="repeats of fast variants (default 3; --quick 1)")
    parser.add_argument("--slow-reps", type=int, default=1, help="repeats of slow variants (tutorial; default 1)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs at batch size 64 (default 5; --quick 1)")
    parser.add_argument("--bs1-steps", type=int, default=None,
                        help="updates of the batch-size-1 runs, scaled to an epoch (default 6000; --quick 600)")
    parser.add_argument("--skip", default="", help="comma-separated groups to skip: a,b,c,d,e,f,g")
    opts = parser.parse_args(argv)
    opts.reps = opts.reps or (1 if opts.quick else 3)
    opts.epochs = opts.epochs or (1 if opts.quick else 5)
    opts.bs1_steps = opts.bs1_steps or (600 if opts.quick else 6000)
    skip = set(filter(None, opts.skip.split(",")))
    fast, slow = opts.reps, opts.slow_reps
    compile_reps = 1 if opts.quick else 2
    guard_reps = compile_reps if opts.quick or "g" in skip else 3  # 3 rounds judge the fast_guards shim

    console = Console(highlight=False)
    if not console.is_terminal or console.width < 170:
        console = Console(highlight=False, width=170)
    load_before, steal_before = os.getloadavg(), cpu_times()
    started = time.perf_counter()
    bench = Bench(opts, console)
    compile_cache = str(bench.work / "inductor-scratch")  # the fast_guards variant reuses what this one compiled
    console.print(f"[bold]optbench benchmark[/bold]: {bench.data_note}, MLP 784-200-10, RMSProp lr 1e-3 alpha 0.9, "
                  f"batch 64, {opts.epochs} epoch(s), {opts.threads} threads")

    tutorial = bs1_tutorial = None
    e = opts.epochs
    if "a" not in skip:
        tutorial = bench.tutorial("tutorial: DataLoader + data_tf + per-parameter rmsprop", "(a) tutorial", slow,
                                  "--epochs", e)
    if "b" not in skip:
        bench.bare("torch.optim.RMSprop (single-tensor loop on CPU)", "torch", False, fast)
        bench.bare("torch.optim.RMSprop(foreach=True) + flush denormals", "torch-foreach", True, fast)
        bench.bare("optbench scratch RMSprop + flush denormals", "scratch", True, fast)
    if "c" not in skip:
        bench.optbench("scratch, eager (progress bar on a terminal)", "(c) optbench", fast, tty=True)
        bench.optbench("scratch, eager, quiet=true", "(c) optbench", fast, "quiet=true")
        bench.optbench("builtin, eager, quiet=true", "(c) optbench", fast, "quiet=true", "optimizer.impl=builtin")
        bench.optbench("scratch, compile=true, quiet=true", "(c) optbench", compile_reps, "quiet=true", "compile=true",
                       cold_first=True, cache=compile_cache)
        bench.optbench("builtin, compile=true, quiet=true", "(c) optbench", compile_reps, "quiet=true",
                       "compile=true", "optimizer.impl=builtin", cold_first=True)
        bench.optbench("scratch, eager, Python API (denormals not flushed)", "(c) optbench", 1, mode="api")
    if "d" not in skip:
        s = opts.bs1_steps
        scale = TRAIN_SIZE / s
        bs1_tutorial = bench.tutorial(f"tutorial, {s} steps x {scale:g}", "(d) batch size 1", slow, "--epochs", 1,
                                      "--batch-size", 1, "--max-steps", s, scale=scale)
        bench.optbench(f"optbench scratch eager, {s} steps x {scale:g}", "(d) batch size 1", 1, "quiet=true",
                       "batch_size=1", f"steps={s}", scale=scale, epochs=1)
        bench.optbench(f"optbench scratch compile=true, {s} steps x {scale:g}", "(d) batch size 1", 1, "quiet=true",
                       "batch_size=1", f"steps={s}", "compile=true", scale=scale, epochs=1,
                       cache=str(bench.work / "inductor-bs1"))
    if "e" not in skip:
        bench.default_run(max(fast, 3))
    if "f" not in skip:
        bench.import_torch(max(fast, 3))
        bench.typed_run(fast)
    if "g" not in skip:  # each speed shim of optbench/compat.py off, just after the same variant with it on
        for shim in START_UP_SHIMS:
            for prefix, env in ((SHIM_ON, {}), (SHIM_OFF, {SHIMS_OFF_ENV: shim})):
                bench.default_run(max(fast, 3), f"{prefix}{shim}: `optbench quiet=true`", "(g) shims", env=env)
        if "c" in skip:  # fills the Inductor cache the pair below reuses
            bench.optbench("scratch, compile=true, quiet=true", "(c) optbench", 1, "quiet=true", "compile=true",
                           cold_first=True, cache=compile_cache)
        for prefix, env in ((SHIM_ON, {}), (SHIM_OFF, {SHIMS_OFF_ENV: "fast_guards"})):
            bench.optbench(f"{prefix}fast_guards: scratch, compile=true, quiet=true", "(g) shims", guard_reps,
                           "quiet=true", "compile=true", cache=compile_cache, extra_env=env)
    bench.run()

    steal_after = cpu_times()
    steal = 100 * (steal_after[0] - steal_before[0]) / max(steal_after[1] - steal_before[1], 1)
    print_table(console, bench, tutorial, bs1_tutorial)
    print_targets(console, bench, tutorial, bs1_tutorial)
    print_shims(console, bench)
    import torch

    spread = max(((max(r.loop) - min(r.loop)) / min(r.loop) for r in bench.results if len(r.loop) > 1), default=0)
    console.print(f"torch {torch.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs "
                  f"({platform.processor() or platform.machine()}); load average {load_before[0]:.2f} at the start; "
                  f"CPU steal {steal:.0f}% over the benchmark; widest repeat spread {100 * spread:.0f}%; "
                  f"benchmark took {time.perf_counter() - started:.0f} s")
    if steal > 5 or load_before[0] > 0.5 or spread > 0.15:
        console.print("[bold yellow]warning:[/bold yellow] the CPUs were shared (load at the start, hypervisor "
                      "steal, or repeats more than 15% apart): compare ratios from one invocation, and re-run "
                      "on an idle machine for absolute numbers.")
    shutil.rmtree(bench.work, ignore_errors=True)
    return 0


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(console: Console, bench: Bench, tutorial: Result | None, bs1: Result | None) -> None:
    table = Table(title="median seconds (each repeat a fresh process)", title_justify="left")
    for name, justify in (("", "left"), ("variant", "left"), ("reps", "right"), ("loop s", "right"),
                          ("min-max", "right"), ("x tutorial", "right"),
                          ("compile s", "right"), ("process s", "right"), ("cpu s", "right"), ("outside s", "right"),
                          ("peak RSS", "right"),
                          ("steal %", "right"), ("last train loss", "right")):
        table.add_column(name, justify=justify)
    group = None
    for r in bench.results:
        if r.group != group:
            if group is not None:
                table.add_section()
            group = r.group
        base = bs1 if r.group == "(d) batch size 1" else tutorial
        timed_loop = r.loop != r.process  # else the variant's "loop" is its whole process
        ratio = r.loop_s / base.loop_s if base and base.loop_s and timed_loop else None
        compile_s = "-"
        if r.compile:
            compile_s = " / ".join(f"{c:.1f}" for c in r.compile)
        loss = None if r.group == "(d) batch size 1" else r.loss  # a partial epoch's mean is not comparable
        spread = f"{min(r.loop):.2f}-{max(r.loop):.2f}" if len(r.loop) > 1 else ""
        table.add_row(r.group, r.name, str(len(r.loop)), _fmt(r.loop_s), spread,
                      _fmt(ratio, ".3f") + ("x" if ratio else ""),
                      compile_s, _fmt(statistics.median(r.process)), _fmt(statistics.median(r.cpu)),
                      _fmt(statistics.median(r.outside) if r.outside else None), f"{r.rss_kb / 1024:.0f} MB",
                      _fmt(max(r.steal, default=None), ".0f"), _fmt(loss, ".4f"))
    console.print(table)
    console.print("loop s: training loop only, median (batch size 1: scaled to one epoch); compile s: cold / warm "
                  "Inductor cache; process s: whole child process; cpu s: its user + system CPU time; outside s: process s - train_time_s; x tutorial: against (a), batch size 1 against the "
                  "batch-size-1 tutorial; steal %: the largest share of CPU time the hypervisor gave to other "
                  "machines during a run of the variant (high: the timing is inflated).")


def print_targets(console: Console, bench: Bench, tutorial: Result | None, bs1: Result | None) -> None:
    by_name = {r.name: r for r in bench.results}

    def get(prefix: str) -> Result | None:
        return next((r for n, r in by_name.items() if n.startswith(prefix)), None)

    rows = []

    def check(text: str, value: float | None, limit: float, fmt: str, larger_is_better: bool = False) -> None:
        if value is None:
            rows.append((text, "-", "not measured"))
            return
        ok = value >= limit if larger_is_better else value <= limit
        rows.append((text, format(value, fmt), "[green]met[/green]" if ok else "[red]MISSED[/red]"))

    eager = get("scratch, eager (progress")
    quiet = get("scratch, eager, quiet")
    bare_torch = get("torch.optim.RMSprop (single")
    bare_scratch = get("optbench scratch RMSprop")
    compiled = get("scratch, compile=true")
    if tutorial and tutorial.loop_s:
        check("eager scratch RMSProp / tutorial <= 0.25", eager and eager.loop_s / tutorial.loop_s, 0.25, ".3f")
        check("compile=true (excl. compile) / tutorial <= 0.15", compiled and compiled.loop_s / tutorial.loop_s,
              0.15, ".3f")
    if bare_torch and eager:
        check("eager scratch RMSProp / bare torch.optim loop (b) <= 1.10", eager.loop_s / bare_torch.loop_s, 1.10,
              ".3f")
    if bare_scratch and eager:
        check("runner overhead: optbench (progress bar, CSV, eval) / bare loop, same optimizer <= 1.10",
              eager.loop_s / bare_scratch.loop_s, 1.10, ".3f")
    if quiet and eager:
        check("progress bar cost: terminal / quiet=true <= 1.10", eager.loop_s / quiet.loop_s, 1.10, ".3f")
    bs1_compiled = get("optbench scratch compile=true, ")
    if bs1 and bs1_compiled:
        check("batch size 1 epoch: tutorial / compile=true >= 5", bs1.loop_s / bs1_compiled.loop_s, 5, ".1f",
              larger_is_better=True)
    default = get("`optbench quiet=true`")
    if default:
        check("default `optbench` run end to end < 4 s", default.loop_s, 4.0, ".2f")
    mnist = [r for r in bench.results if r.group in ("(c) optbench",)]
    if mnist:
        check("peak RSS of an MNIST-size optbench run <= 1.2 GB", max(r.rss_kb for r in mnist) / 1024 / 1024,
              1.2, ".2f")
    typed = next((r for r in bench.results if r.group == "(f) start-up" and r.name != IMPORT_TORCH), None)
    torch_import = get(IMPORT_TORCH)
    if typed and tutorial and tutorial.loop_s:
        check("engine (a): `optbench dataset=fashion_mnist` whole process / tutorial loop <= 0.25",
              statistics.median(typed.process) / tutorial.loop_s, 0.25, ".3f")
    if torch_import and tutorial and tutorial.loop_s:  # what no start-up or loop change can beat
        from floors import arithmetic_floor

        start = statistics.median(torch_import.process)
        steps = bench.opts.epochs * math.ceil(TRAIN_SIZE / 64)
        products = arithmetic_floor(64, bench.opts.threads) * steps
        floor = (start + products) / tutorial.loop_s
        rows.append(("engine (a)'s floor: (`python -c \"import torch\"` + the MLP's matrix products of every step) "
                     "/ tutorial loop", format(floor, ".3f"),
                     "[yellow](a) out of reach[/yellow]" if floor > 0.25 else "(a) reachable"))
    if typed and torch_import:
        check('engine (b): outside the loop (process - train_time_s) / `python -c "import torch"` <= 1.5',
              statistics.median(typed.outside) / statistics.median(torch_import.process), 1.5, ".3f")
    if bare_scratch and eager:
        check("engine (c): eager loop (progress bar) / bare preloaded loop, same optimizer <= 1.05",
              eager.loop_s / bare_scratch.loop_s, 1.05, ".3f")
    if typed:
        check("engine (d): peak RSS of the Fashion-MNIST run (f) <= 1.2 GB", typed.rss_kb / 1024 / 1024, 1.2, ".2f")
    api = get("scratch, eager, Python API")
    if api and quiet:
        same = api.losses_file is not None and quiet.losses_file is not None and _same_losses(api.losses_file,
                                                                                             quiet.losses_file)
        rows.append(("set_flush_denormal: losses with and without are bitwise equal", str(same),
                     "[green]yes[/green]" if same else "[red]NO[/red]"))
    table = Table(title="targets", title_justify="left")
    for name in ("target", "measured", ""):
        table.add_column(name)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def print_shims(console: Console, bench: Bench) -> None:
    """Each speed shim's gain: its variant with the shim off against the same variant with it on.

    The two run one after the other in each round (group g), so each round gives a paired
    ratio off / on that a slow spell of the machine mostly cancels out of. The gain
    is the median paired ratio; it is a gain when the shim-off run was the slower one in
    every round (at least 3), else "within noise". Compared on wall time and on CPU time
    (the child's user + system; for ``fast_guards``, the process's CPU time over the loop),
    which other processes on a shared machine disturb far less.
    """
    table = Table(title="speed shims (optbench/compat.py): off / on, paired by round, same invocation",
                  title_justify="left")
    for name, justify in (("shim", "left"), ("measured on", "left"), ("rounds", "right"), ("on s", "right"),
                          ("off s", "right"), ("off / on", "right"), ("min-max", "right"), ("", "left"),
                          ("cpu on s", "right"), ("cpu off s", "right"), ("cpu off / on", "right"),
                          ("cpu min-max", "right"), ("", "left")):
        table.add_column(name, justify=justify)
    for shim in (*START_UP_SHIMS, "fast_guards"):
        on = next((r for r in bench.results if r.name.startswith(f"{SHIM_ON}{shim}:")), None)
        off = next((r for r in bench.results if r.name.startswith(f"{SHIM_OFF}{shim}:")), None)
        if on is None or off is None or not on.loop or not off.loop:
            continue
        # the compile shim acts inside the loop: its loop time; the others: the whole process
        wall = (on.loop, off.loop) if shim == "fast_guards" else (on.process, off.process)
        cpu = (on.loop_cpu, off.loop_cpu) if shim == "fast_guards" else (on.cpu, off.cpu)
        rounds = min(len(wall[0]), len(wall[1]))
        measured_on = on.name.split(": ", 1)[1] + (" (loop)" if shim == "fast_guards" else " (whole process)")
        table.add_row(shim, measured_on, str(rounds),
                      *_paired_cells(*wall), *_paired_cells(*cpu))
    if table.row_count:
        console.print(table)


def _paired_cells(on: list[float], off: list[float]) -> list[str]:
    ratios = [b / a for a, b in zip(on, off)]
    if not ratios:
        return ["-"] * 5
    if len(ratios) < 3:
        verdict = "not judged (< 3 rounds)"
    else:
        verdict = "[green]gain[/green]" if min(ratios) > 1 else "[yellow]within noise[/yellow]"
    return [_fmt(statistics.median(on)), _fmt(statistics.median(off)), f"{statistics.median(ratios):.3f}",
            f"{min(ratios):.2f}-{max(ratios):.2f}", verdict]


def _same_losses(a: Path, b: Path) -> bool:
    """The loss columns of two losses.csv files (and their epochs.csv train losses) are identical strings."""
    import csv

    def column(path: Path, name: str) -> list[str]:
        with open(path, newline="") as handle:
            return [row[name] for row in csv.DictReader(handle)]

    return (column(a, "loss") == column(b, "loss")
            and column(a.parent / "epochs.csv", "train_loss") == column(b.parent / "epochs.csv", "train_loss"))


if __name__ == "__main__":
    sys.exit(main())
