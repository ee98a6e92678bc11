"""Shims over other libraries' behaviour, each in one place, each with a test that fails when the library changes."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from optbench.errors import OptbenchError


def slurm_requeued() -> bool:
    """Whether this process is a SLURM job that was requeued (after a time-out or preemption)."""
    return os.environ.get("SLURM_RESTART_COUNT", "0").strip() not in ("", "0")


# --------------------------------------------------------------------------- SLURM / submitit
#
# hydra-submitit-launcher 1.2 (submitit 1.5) on a real cluster, measured on a one-node
# SLURM 22.05 cluster (tests/test_slurm.py):
# - With accounting off (AccountingStorageType=accounting_storage/none, common on small
#   clusters) every status poll's `sacct` fails: submitit warns "Bypassing sacct error"
#   each time and never learns a job's state, so a job that ends without a result (scancel,
#   time limit, node failure, a job that exits 2) keeps the sweep waiting forever.
#   :class:`QueueInfoWatcher` says so once and reads the states from `squeue` instead.
# - A job that ends without a result (or raises) ends the stock launcher's collection with
#   submitit's UncompletedJobError/FailedJobError traceback, before the other jobs are
#   collected. :func:`collect_submitit_jobs` waits for every job and reports the ones that
#   failed in one paragraph, exit code 2.
# All of it is installed in the submitting process by the presets' Hydra callback
# :class:`SubmititShims` (conf/hydra/launcher/slurm.yaml, slurm_local.yaml).
# - SLURM sends the --signal warning when at most signal_delay_s + 30 s are left (its time
#   limit check runs every 30 s): with --time=1 and the plugin's 120 s, at the job's start.
#   :func:`fit_signal_delay` keeps the delay to a quarter of the limit.

SACCT_WARNING = "Bypassing sacct error"
ACCOUNTING_OFF = ("SLURM accounting is off on this cluster (sacct: {error}), so job states come from squeue "
                  "instead (said once; submitit's repeated sacct warnings are dropped).")
#: squeue states of jobs that may still produce a result (submitit's own list, plus squeue's spellings)
INCOMPLETE_STATES = ("READY", "PENDING", "RUNNING", "UNKNOWN", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
                     "COMPLETING", "CONFIGURING", "PREEMPTED", "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING",
                     "RESV_DEL_HOLD", "REVOKED")
#: the state given to a job that squeue no longer lists (it ended more than MinJobAge ago)
LEFT_THE_QUEUE = "ENDED"


def fit_signal_delay(timeout_min: int | float | None, wanted_s: int) -> int:
    """The ``--signal=USR2@N`` delay for a ``--time`` of ``timeout_min``: ``wanted_s``, at most a quarter of the limit.

    SLURM sends the warning signal at its first time-limit check (every 30 s) with at most
    N + 30 s left, so the job gets between N and N + 30 s to save and requeue. The
    plugin's 120 s would signal a 1-minute job as it starts; a quarter of the limit (at
    least 10 s) leaves most of a short job's time to training and is never longer than
    the limit. No limit (``timeout_min`` null or 0): ``wanted_s``.
    """
    wanted_s = int(wanted_s)
    if not timeout_min or timeout_min <= 0:
        return wanted_s
    limit_s = int(timeout_min * 60)
    return max(1, min(wanted_s, max(10, limit_s // 4), limit_s - 1))


class SacctWarningsOnce:
    """A logging filter for the ``submitit`` logger: the first "Bypassing sacct error" becomes one line, the rest go.

    (A class with ``filter``, as :mod:`logging` accepts; installed by :func:`install_submitit_shims`.)
    """

    def __init__(self):
        self.said = False

    def filter(self, record) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        if SACCT_WARNING not in message:
            return True
        if self.said:
            return False
        self.said = True
        error = message.split(SACCT_WARNING, 1)[1].split(", status may be inaccurate")[0].strip()
        record.msg, record.args = ACCOUNTING_OFF.format(error=error or "failed"), ()
        return True


_FILTER = SacctWarningsOnce()


def install_submitit_shims() -> None:
    """In the submitting process: the sacct filter on submitit's logger, and the squeue fallback watcher."""
    import logging

    logger = logging.getLogger("submitit")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    try:
        from submitit.slurm import slurm as submitit_slurm
    except ImportError:
        return
    if not isinstance(submitit_slurm.SlurmJob.watcher, _queue_watcher_class()):
        submitit_slurm.SlurmJob.watcher = _queue_watcher_class()(delay_s=600)


_WATCHER_CLASS = None


def _queue_watcher_class():
    """:class:`QueueInfoWatcher`, a subclass of submitit's SlurmInfoWatcher (built on first use: submitit is an extra)."""
    global _WATCHER_CLASS
    if _WATCHER_CLASS is not None:
        return _WATCHER_CLASS
    import logging
    import subprocess
    import time

    from submitit.slurm.slurm import SlurmInfoWatcher

    class QueueInfoWatcher(SlurmInfoWatcher):
        """submitit's sacct watcher, reading job states from squeue when the cluster has accounting off."""

        accounting_off = False

        def update(self) -> None:
            command = self._make_command()
            if command is None:
                return
            self._num_calls += 1
            if not self.accounting_off:
                try:
                    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
                except (OSError, subprocess.SubprocessError) as err:
                    done = subprocess.CompletedProcess(command, 1, "", str(err))
                if done.returncode == 0:
                    self._info_dict.update(self.read_info(done.stdout))
                    return self._after_update()
                error = " ".join((done.stderr or "").split()) or f"exit status {done.returncode}"
                if "accounting storage is disabled" in error.lower() or "accounting_storage/none" in error.lower():
                    self.accounting_off = True
                    if not _FILTER.said:
                        _FILTER.said = True
                        logging.getLogger(__name__).warning(ACCOUNTING_OFF.format(error=error))
                else:
                    logging.getLogger("submitit").warning(
                        f"Call #{self.num_calls} - {SACCT_WARNING} {error}, status may be inaccurate.")
                    return self._after_update()
            self._info_dict.update(self._squeue_states())
            self._after_update()

        def _squeue_states(self) -> dict:
            pending = self._registered - self._finished
            arrays = sorted({job_id.split("_")[0] for job_id in pending})
            if not arrays:
                return {}
            command = ["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%N", "-j", ",".join(arrays)]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.SubprocessError):
                return {}
            if done.returncode != 0 and "invalid job id" not in done.stderr.lower():
                return {}  # slurmctld unreachable: learn nothing, ask again at the next poll
            states = {}
            for line in done.stdout.splitlines():
                parts = line.strip().split("|")
                if len(parts) == 3 and parts[0]:
                    states[parts[0]] = {"JobID": parts[0], "State": parts[1].split()[0], "NodeList": parts[2]}
            for job_id in pending:  # gone from squeue: it ended more than MinJobAge ago
                if job_id not in states and job_id.split("_")[0] in arrays:
                    states[job_id] = {"JobID": job_id, "State": LEFT_THE_QUEUE, "NodeList": ""}
            return states

        def is_done(self, job_id: str, mode: str = "standard") -> bool:
            return self.get_state(job_id, mode=mode).upper() not in INCOMPLETE_STATES

        def _after_update(self) -> None:
            self._last_status_check = time.time()
            for job_id in self._registered - self._finished:
                if self.is_done(job_id, mode="cache"):
                    self._finished.add(job_id)

    QueueInfoWatcher.__module__ = __name__
    QueueInfoWatcher.__qualname__ = "QueueInfoWatcher"
    _WATCHER_CLASS = QueueInfoWatcher
    return QueueInfoWatcher


class SweepJobsFailed(SystemExit):
    """Some jobs of a submitit sweep ended without a result; raised (as SystemExit 2) after every job was collected."""


def collect_submitit_jobs(jobs, indices, sweep_dir) -> list:
    """Every job's JobReturn, in order, waiting for all of them; one paragraph on stderr and exit 2 if any failed.

    A job fails when it ends without a result (cancelled, killed at its time limit, its node
    failed, it exited with an error code), when it raised, or when Hydra caught its exception.
    """
    import sys

    from submitit.core.utils import FailedJobError, UncompletedJobError

    results, failed = [], []
    for index, job in zip(indices, jobs):
        try:
            ret = job.results()[0]
        except (UncompletedJobError, FailedJobError) as err:
            failed.append((index, job, _job_message(job) or _first_line(err), True))
            continue
        status = getattr(getattr(ret, "status", None), "name", "")
        if status == "FAILED":  # Hydra caught the job's exception
            error = getattr(ret, "_return_value", None)
            failed.append((index, job, _raised(error), False))
        results.append(ret)
    if failed:
        print(_failure_paragraph(failed, len(jobs), sweep_dir), file=sys.stderr, flush=True)
        raise SweepJobsFailed(2)
    return results


def _raised(error) -> str:
    """What a job's exception says: optbench's own message as it is, anything else with its type."""
    import re

    from optbench.errors import OptbenchError

    if isinstance(error, OptbenchError):
        first = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
        return "refused: " + re.sub(r"^job \S+ \(.*?\): ", "", " ".join(first.split()), count=1).split(" Fix: ")[0]
    return f"raised {type(error).__name__}: {_first_line(error)}"


def _job_message(job) -> str:
    """The last ``optbench: ...`` paragraph the job wrote to its stderr (why it ended), if any."""
    try:
        text = job.paths.stderr.read_text(errors="replace")
    except (OSError, AttributeError):
        return ""
    lines = [line.strip() for line in text.splitlines() if line.startswith("optbench: ")]
    if not lines:
        return ""
    return lines[-1][len("optbench: "):].split(" Fix: ")[0]  # the reason; the sweep's paragraph gives the fix


def _first_line(value) -> str:
    text = str(value).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(value).__name__
    first = lines[0]
    if "has not produced any output" in text:  # UncompletedJobError: "Job X ... with path P" / "has not produced ..."
        head = []
        for line in lines:
            if line.startswith(("Error stream produced", "No error stream produced", "No output/error stream")):
                break
            head.append(line)
        return " ".join(head)
    # FailedJobError: the job's own last line ("SomeError: message") says more than the header
    if "failed during processing" in first:
        tail = [line for line in lines if not line.startswith(("File ", "-", "Traceback", "You can check", "or at "))]
        return tail[-1] if tail else first
    return first


def _failure_paragraph(failed, total, sweep_dir) -> str:
    from pathlib import Path

    parts = []
    for index, job, reason, no_result in failed:
        state = ""
        if no_result:
            try:
                state = f"state {job.state}: "
            except Exception:
                state = ""
        folder = Path(sweep_dir) / str(index)  # the config's hydra.sweep.subdir: ${hydra.job.num}
        run = _run_status(folder)
        log = getattr(getattr(job, "paths", None), "stderr", None)
        parts.append(f"job {index} (submitit job {job.job_id}, {state}{reason.rstrip('.')}; run folder "
                     f"{folder}: {run}{f'; its log: {log}' if log else ''})")
    done = total - len(failed)
    others = ""
    if done:
        others = ("The other job ran to its end; its run folder is whole. " if done == 1 else
                  f"The other {done} jobs ran to their end; their run folders are whole. ")
    return (f"optbench: {len(failed)} of {total} jobs of the sweep did not complete: {'; '.join(parts)}. {others}"
            "Fix: see the job's log for why it ended; to go on, rerun the same command with "
            f"hydra.sweep.dir={sweep_dir} skip_finished=true: it reuses the completed jobs, continues interrupted ones "
            "from their checkpoints and runs the rest.")


def _run_status(folder) -> str:
    import json

    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return "no summary.json (the job died before training)"
    status = summary.get("status", "?")
    if status == "interrupted":
        return f"interrupted at step {summary.get('steps')}, checkpoint saved"
    if status == "running":
        return f"left 'running' at step {summary.get('steps')} (the process was killed)"
    return str(status)


def _submitit_launch(self, job_overrides, initial_job_idx):
    """hydra-submitit-launcher 1.2.0's ``BaseSubmititLauncher.launch``, with two changes: the SLURM signal
    delay fitted to the time limit (:func:`fit_signal_delay`), and every job collected by
    :func:`collect_submitit_jobs` (the plugin stops at the first job without a result, with a traceback)."""
    import os
    from pathlib import Path

    import submitit
    from hydra.core.singleton import Singleton
    from hydra.core.utils import filter_overrides
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher as plugin
    from omegaconf import OmegaConf

    assert self.config is not None and len(job_overrides) > 0
    params = dict(self.params)
    if self._EXECUTOR == "slurm" and "signal_delay_s" in params:
        params["signal_delay_s"] = fit_signal_delay(params.get("timeout_min"), params["signal_delay_s"])
    specific_init_keys = {"max_num_timeout"}
    init_params = {"folder": params["submitit_folder"]}
    init_params.update({f"{self._EXECUTOR}_{k}": v for k, v in params.items() if k in specific_init_keys})
    executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init_params)
    baseparams = set(OmegaConf.structured(plugin.BaseQueueConf).keys())
    executor.update_parameters(**{
        k if k in baseparams else f"{self._EXECUTOR}_{k}": v
        for k, v in params.items() if k not in specific_init_keys | {"submitit_folder"}
    })
    plugin.log.info(f"Submitit '{self._EXECUTOR}' sweep output dir : {self.config.hydra.sweep.dir}")
    sweep_dir = Path(str(self.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in self.config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
    job_params, indices = [], []
    for offset, overrides in enumerate(job_overrides):
        idx = initial_job_idx + offset
        plugin.log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        indices.append(idx)
    jobs = executor.map_array(self, *zip(*job_params))
    return collect_submitit_jobs(jobs, indices, sweep_dir)


_submitit_launch.optbench = True


def install_submitit_launch() -> None:
    """Put :func:`_submitit_launch` in place of the plugin's ``launch`` (this process only; idempotent)."""
    try:
        from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
    except ImportError:
        return
    if not getattr(BaseSubmititLauncher.launch, "optbench", False):
        BaseSubmititLauncher.launch = _submitit_launch


from hydra.experimental.callback import Callback as _Callback  # noqa: E402


class SubmititShims(_Callback):
    """The submitit presets' Hydra callback (``hydra.callbacks.optbench_submitit``).

    ``on_multirun_start`` runs in the submitting process before Hydra instantiates the
    launcher: it installs the sacct filter, the squeue watcher and the collecting
    ``launch``. (A launcher subclass would have to live in the ``hydra_plugins`` package:
    Hydra refuses launcher classes elsewhere.) In the jobs it does nothing.
    """

    def on_multirun_start(self, config, **kwargs) -> None:
        install_submitit_shims()
        install_submitit_launch()


# ----------------------------------------------------------------------------- Hydra
#
# Hydra 1.3 runs each step of its command line (composing, --cfg, the run itself)
# through ``hydra._internal.utils.run_and_report``, which prints the error (a stack
# trace for most) and calls ``sys.exit(1)``, unless the environment variable
# HYDRA_FULL_ERROR is set: then it re-raises. optbench sets it for the duration of the
# command so that ``optbench.config.front_door.explain`` can turn each error into one
# paragraph and exit code 2. tests/test_config.py checks both behaviours of
# run_and_report, so a Hydra that changes them fails loudly.

_FULL_ERROR = "HYDRA_FULL_ERROR"


@contextlib.contextmanager
def hydra_errors_raised():
    """Within this block Hydra raises its errors instead of reporting them and exiting 1.

    Yields True when optbench should explain them, False when the user set
    HYDRA_FULL_ERROR themselves (they asked for Hydra's full stack traces).
    """
    previous = os.environ.get(_FULL_ERROR)
    if previous is not None and previous.strip() not in ("", "0"):
        yield False
        return
    os.environ[_FULL_ERROR] = "1"
    try:
        yield True
    finally:
        if previous is None:
            os.environ.pop(_FULL_ERROR, None)
        else:
            os.environ[_FULL_ERROR] = previous


def hydra_args_parser():
    """Hydra's own command-line parser (the one ``@hydra.main`` uses): flags and overrides."""
    from hydra._internal.utils import get_args_parser

    return get_args_parser()


def hydra_overrides_parser():
    """Hydra's override grammar (what ``key=value`` may be)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


# --------------------------------------------------------------------------- Optuna (optbench.optuna_sweeper)


class NoFiniteTrial(OptbenchError):
    """No trial of an Optuna study produced a finite objective: there is no best to claim."""


def fail_stale_optuna_trials(storage: Any, study_name: str | None) -> int:
    """Mark the trials an interrupted command left RUNNING as FAIL; return how many.

    Uses ``study._storage.set_trial_state`` (optuna 2.x's storage API, no public
    equivalent); tests/test_compat.py fails if it goes away.
    """
    if not storage or not study_name:
        return 0
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except (KeyError, ValueError):  # no such study yet
        return 0
    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_state(trial._trial_id, optuna.trial.TrialState.FAIL)
    return len(stale)


@contextlib.contextmanager
def optuna_best_trial_must_be_finite(study_name: str | None):
    """While the plugin sweeps, ``Study.best_trial`` refuses a non-finite best (the plugin then claims none)."""
    import math

    import optuna

    original = optuna.study.Study.best_trial

    def best_trial(study):
        try:
            trial = original.fget(study)
        except ValueError:  # no COMPLETE trial at all
            trial = None
        if trial is None or trial.value is None or not math.isfinite(trial.value):
            states: dict[str, int] = {}
            for t in study.get_trials(deepcopy=False):
                states[t.state.name] = states.get(t.state.name, 0) + 1
            counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
            raise NoFiniteTrial(
                f"no trial of the Optuna study{f' {study_name!r}' if study_name else ''} produced a finite objective ({counts}; a diverged "
                "run scores inf), so there are no best parameters to report and optimization_results.yaml was "
                "not written. Fix: narrow the search space (e.g. a smaller lr interval), or look at the trials' "
                "summary.json files for why they failed."
            )
        return trial

    optuna.study.Study.best_trial = property(best_trial)
    try:
        yield
    finally:
        optuna.study.Study.best_trial = original


# --------------------------------------------------------------------------- Hydra's failed-job line


def quiet_refused_job_returns() -> None:
    """A sweep job that optbench refused has already said why in one paragraph: Hydra's
    ``JobReturn.return_value`` would add "Error executing job with overrides: [...]" on
    stderr before raising it. For an :class:`OptbenchError` it now just raises; any other
    exception (a real bug) keeps Hydra's line. tests/test_compat.py fails if the property
    stops existing or changes shape.
    """
    from hydra.core.utils import JobReturn, JobStatus

    original = JobReturn.return_value
    if getattr(original.fget, "_optbench_quiet", False):
        return

    def return_value(self):
        if self.status == JobStatus.FAILED and isinstance(self._return_value, OptbenchError):
            raise self._return_value
        return original.fget(self)

    return_value._optbench_quiet = True  # type: ignore[attr-defined]
    JobReturn.return_value = property(return_value, original.fset)


# --------------------------------------------------------------------------- start-up and exit speed

#: shims named here (comma-separated, in $OPTBENCH_SHIMS_OFF) are switched off: the plain, slower path runs
SHIMS_OFF_ENV = "OPTBENCH_SHIMS_OFF"


def shim_on(name: str) -> bool:
    return name not in {part.strip() for part in os.environ.get(SHIMS_OFF_ENV, "").split(",")}


@contextlib.contextmanager
def dynamo_stays_unimported():
    """Build an optimizer without importing torch._dynamo (2-3 s: as long as the rest of the default run).

    ``torch.optim.Optimizer.__init__`` calls ``add_param_group``, which torch wraps in
    ``torch._disable_dynamo``: the wrapper's first call imports torch._dynamo only to
    hide the function from a compiler. While torch._dynamo is not imported nothing can
    be compiling, so the wrapped function itself is equivalent; the wrapper reads it
    from its cache slot ``__dynamo_disable``, filled here for the construction only.
    Any other torch layout degrades to the ordinary (slower) import. Off switch:
    ``OPTBENCH_SHIMS_OFF=dynamo_slot``; tests/test_compat.py fails when torch changes.
    """
    import sys

    import torch

    fn = getattr(torch.optim.Optimizer.add_param_group, "__wrapped__", None)
    if (not shim_on("dynamo_slot") or "torch._dynamo" in sys.modules or fn is None
            or hasattr(fn, "__dynamo_disable")):
        yield
        return
    setattr(fn, "__dynamo_disable", fn)
    try:
        yield
    finally:
        if getattr(fn, "__dynamo_disable", None) is fn:
            delattr(fn, "__dynamo_disable")


def fast_exit(code) -> None:
    """``sys.exit(code)``, skipping the interpreter's teardown unless other threads must be joined.

    Tearing down a process that imported torch takes about a second (it collects
    torch's whole module graph), a quarter of the default run. By then every file
    optbench writes is closed; the exit handlers (logging's flush among them) still
    run and the standard streams are flushed. While non-daemon threads are alive (a
    parallel launcher's executor), the ordinary exit joins them. Off switch:
    ``OPTBENCH_SHIMS_OFF=fast_exit``.
    """
    import atexit
    import sys
    import threading

    main_thread = threading.main_thread()
    if not shim_on("fast_exit") or any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 1
    os._exit(status)


# --------------------------------------------------------------------------- torch.compile (optbench/train/compiled.py)

#: torch's log lines that a compiled optimizer step triggers on every run and that say nothing to a user
COMPILE_LOG_NOISE = ("Profiler record function", "Profiler function", "No CUDA runtime is found")
COMPILE_LOGGERS = ("torch._dynamo.variables.ctx_manager", "torch._dynamo.variables.torch", "torch.utils.cpp_extension")


def reset_dynamo() -> None:
    """Forget the graphs of earlier runs in this process (a sweep's jobs): they guard on their own
    models and count against Dynamo's per-function recompile limit."""
    import torch._dynamo

    torch._dynamo.reset()


def graph_breaks() -> int:
    """How many graph breaks Dynamo has counted so far (``torch._dynamo.utils.counters``)."""
    from torch._dynamo.utils import counters

    return sum(counters["graph_break"].values())


def fast_guards():
    """Check only the guards that pick between already compiled graphs (``skip_guard_eval_unsafe``).

    Safe only once warm-up compiled every graph the run needs; saves ~70 us of a ~600 us
    MNIST step. Off switch: ``OPTBENCH_SHIMS_OFF=fast_guards`` (the full guard check runs).
    """
    import torch

    if not shim_on("fast_guards"):
        return contextlib.nullcontext()
    return torch.compiler.set_stance("default", skip_guard_eval_unsafe=True)


class _QuietCompileLogs(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(COMPILE_LOG_NOISE)


def quiet_compile_logs() -> None:
    """Drop torch's per-run compile noise (COMPILE_LOG_NOISE) from its loggers; idempotent."""
    for name in COMPILE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _QuietCompileLogs) for f in logger.filters):
            logger.addFilter(_QuietCompileLogs())


# --------------------------------------------------------------------------- OmegaConf and dataclasses


def declared_type(node: Any, key: str) -> Any:
    """The type a structured config declares for ``node[key]`` (``Optional[X]`` gives X), or None.

    Reads OmegaConf's node metadata (``_get_node(key)._metadata.ref_type``), which has no
    public accessor; tests/test_compat.py fails if that moves.
    """
    try:
        ref_type = node._get_node(key)._metadata.ref_type
    except AttributeError:
        return None
    args = [a for a in getattr(ref_type, "__args__", ()) if a is not type(None)]
    return args[0] if len(args) == 1 else ref_type


def make_importable(cls: type, module_name: str) -> type:
    """Give a class made at run time (``dataclasses.make_dataclass``) a home in ``module_name``,
    so that pickle (and a structured config holding it) can find it by name."""
    import sys

    cls.__module__ = module_name
    setattr(sys.modules[module_name], cls.__name__, cls)
    return cls


# --------------------------------------------------------------------------- Hydra plugin discovery
# (this section: hydra/launcher=vectorized; tests/test_compat_plugins.py)
#
# Hydra 1.3 instantiates a launcher only when its class is under the ``hydra_plugins``
# namespace package and ``hydra.core.plugins.Plugins`` found it by walking
# ``hydra_plugins.__path__`` with ``pkgutil.walk_packages``. A ``hydra_plugins/...``
# package of an editable install is not on that path (setuptools' editable finder maps
# it, and its namespace path hook cannot list modules), so optbench ships its plugin
# inside its own package, in ``optbench/_hydra_plugins/hydra_plugins/``, and puts that
# folder on ``sys.path`` before Hydra scans: the same in an editable install and a wheel.

#: the folder in the optbench package that holds ``hydra_plugins/optbench_vectorized_launcher``
HYDRA_PLUGIN_FOLDER = "_hydra_plugins"


def register_hydra_plugins() -> None:
    """Make Hydra's plugin scan find optbench's launcher (``hydra/launcher=vectorized``); idempotent.

    Call before Hydra's first ``Plugins.instance()`` (the console script does, first
    thing). Off switch: ``OPTBENCH_SHIMS_OFF=hydra_plugins`` (then that launcher is
    unknown to Hydra; the others are unaffected).
    """
    import sys
    from pathlib import Path

    if not shim_on("hydra_plugins"):
        return
    folder = Path(__file__).resolve().parent / HYDRA_PLUGIN_FOLDER
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    import hydra_plugins  # a namespace package: its path now includes the folder's hydra_plugins/

    portion = str(folder / "hydra_plugins")
    if portion not in list(hydra_plugins.__path__):  # a regular hydra_plugins package (an old plugin's __init__.py)
        hydra_plugins.__path__.append(portion)


def compose_sweep_jobs_once(config_loader):
    """For ``hydra/launcher=vectorized``: compose each sweep job once, cheaply; returns the launcher's composer.

    Hydra's basic sweeper composes every job of a batch to validate it
    (``Sweeper.validate_batch_is_legal``) and throws the configs away; the launcher then
    composes each again (``load_sweep_config``, about 0.1 s a job here: most of a linreg
    job's cost). Two shims, each with its off switch:

    * ``compose_once``: ``config_loader`` (the sweep's, shared with the sweeper) gets an
      instance-level ``load_sweep_config`` that remembers its result; the returned
      function hands each remembered config to the launcher once and composes any other
      afresh (``OPTBENCH_SHIMS_OFF=compose_once``: every job is composed twice again);
    * ``compose_by_shape``: that ``load_sweep_config`` is :class:`ShapeComposer`, which
      composes once per set of config-group choices and gives each job a copy with its
      value overrides applied (``OPTBENCH_SHIMS_OFF=compose_by_shape``: Hydra's own
      composition for every job).
    """
    compose = config_loader.load_sweep_config
    if shim_on("compose_by_shape"):
        compose = ShapeComposer(config_loader)
    if not shim_on("compose_once"):
        return compose
    kept: dict[tuple, Any] = {}

    def load_sweep_config(master_config, sweep_overrides):
        config = compose(master_config=master_config, sweep_overrides=sweep_overrides)
        kept[tuple(sweep_overrides)] = config
        return config

    def take(master_config, sweep_overrides):
        config = kept.pop(tuple(sweep_overrides), None)
        if config is None:
            return compose(master_config=master_config, sweep_overrides=list(sweep_overrides))
        return config

    config_loader.load_sweep_config = load_sweep_config
    return take


class ShapeComposer:
    """Hydra's ``load_sweep_config``, composed once per *shape*: the job's overrides other than plain values.

    Hydra composes a job in two stages (``ConfigLoaderImpl._load_configuration_impl``):
    the defaults list and the merged config follow from the config-group overrides alone
    (``optimizer=adam``), and the other overrides (``optimizer.lr=0.01``, ``+x=1``,
    ``~y``) are then applied to the result in order (``_apply_overrides_to_config``),
    after which ``hydra.overrides.task`` and ``hydra.job.override_dirname`` are filled
    from the job's overrides. So this classifies a job's overrides with Hydra's own
    ``Overrides``; composes the shape (group overrides and every ``hydra.*`` override)
    with Hydra once; and builds each job as a deep copy of it with Hydra's
    ``_apply_overrides_to_config`` of the job's value overrides and those two fields
    refilled. An override Hydra would refuse is refused the same way (the same
    function raises). A job with a sweep value or a ``hydra.searchpath`` override
    (which changes what counts as a group) goes through Hydra's full path.
    ``tests/test_compat_plugins.py`` checks the result against Hydra's own composition.
    """

    def __init__(self, config_loader):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        self.loader = config_loader
        self.full = config_loader.load_sweep_config
        self.parser = OverridesParser.create()
        self.shapes: dict[tuple, Any] = {}
        self.repos: dict[tuple, Any] = {}

    def __call__(self, master_config, sweep_overrides):
        import copy

        from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
        from hydra._internal.defaults_list import Overrides
        from omegaconf import OmegaConf, open_dict

        sweep_overrides = list(sweep_overrides)
        parsed = self.parser.parse_overrides(overrides=sweep_overrides)
        if any(o.is_sweep_override() or o.key_or_group.startswith("hydra.searchpath") for o in parsed):
            return self.full(master_config=master_config, sweep_overrides=sweep_overrides)
        hydra_overrides = list(OmegaConf.to_container(master_config.hydra.overrides.hydra))
        config_name = master_config.hydra.job.config_name
        repo = self._repo(config_name, hydra_overrides)
        values = {id(o) for o in Overrides(repo, parsed).config_overrides if not o.is_hydra_override()}
        shape = [line for o, line in zip(parsed, sweep_overrides) if id(o) not in values]
        key = (config_name, tuple(hydra_overrides), tuple(shape))
        if key not in self.shapes:
            self.shapes[key] = self.full(master_config=master_config, sweep_overrides=shape)
        cfg = copy.deepcopy(self.shapes[key])
        ConfigLoaderImpl._apply_overrides_to_config([o for o in parsed if id(o) in values], cfg)
        app_overrides = [o for o in parsed if not o.is_hydra_override()]
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in app_overrides]
            dirname = cfg.hydra.job.config.override_dirname
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=app_overrides, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep,
                exclude_keys=dirname.exclude_keys)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg

    def _repo(self, config_name, hydra_overrides: list[str]):
        """The config repository that decides which overrides name a group (Hydra's, with the search path)."""
        key = (config_name, tuple(hydra_overrides))
        if key not in self.repos:
            _, self.repos[key] = self.loader._parse_overrides_and_create_caching_repo(config_name, hydra_overrides)
        return self.repos[key]
