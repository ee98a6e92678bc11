"""The shims in optbench/compat.py and the run log's handler: each test fails loudly when the
library under a shim changes shape."""

from __future__ import annotations

import logging
import math

import pytest

from optbench import compat
from optbench.errors import OptbenchError
from optbench.run_folder import LOG, RunLogHandler


def test_a_refused_sweep_job_raises_without_hydras_extra_line(capsys):
    from hydra.core.utils import JobReturn, JobStatus

    compat.quiet_refused_job_returns()
    compat.quiet_refused_job_returns()  # idempotent
    ours = JobReturn(overrides=["a=1"], status=JobStatus.FAILED, _return_value=OptbenchError("refused"))
    with pytest.raises(OptbenchError):
        ours.return_value
    assert "Error executing job" not in capsys.readouterr().err
    bug = JobReturn(overrides=["a=1"], status=JobStatus.FAILED, _return_value=ZeroDivisionError())
    with pytest.raises(ZeroDivisionError):
        bug.return_value
    assert "Error executing job with overrides: ['a=1']" in capsys.readouterr().err  # a real bug keeps Hydra's line
    done = JobReturn(overrides=[], status=JobStatus.COMPLETED, _return_value=3.0)
    assert done.return_value == 3.0


def test_optuna_best_trial_must_be_finite(tmp_path):
    import optuna

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s")
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=math.inf))
    with compat.optuna_best_trial_must_be_finite("s"):
        with pytest.raises(compat.NoFiniteTrial, match="1 COMPLETE"):
            study.best_trial
    assert study.best_trial.value == math.inf  # restored outside the block
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.5))
    with compat.optuna_best_trial_must_be_finite("s"):
        assert study.best_trial.value == 0.5
    empty = optuna.create_study()
    with compat.optuna_best_trial_must_be_finite(None), pytest.raises(compat.NoFiniteTrial):
        empty.best_trial


def test_run_log_handler_opens_late_never_raises_and_moves(tmp_path):
    handler = RunLogHandler(str(tmp_path / "a" / LOG))
    assert not (tmp_path / "a").exists()  # nothing opened before the first line
    logger = logging.getLogger("optbench.test_compat")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("into a missing folder")  # an OS error while logging is dropped, not raised
        (tmp_path / "b").mkdir()
        handler.move_to(tmp_path / "b")
        logger.warning("moved")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert "moved" in (tmp_path / "b" / LOG).read_text()


def _python(code: str, env: dict | None = None):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


DYNAMO_PROBE = """
import sys, torch
from optbench import compat
assert hasattr(torch.optim.Optimizer.add_param_group, "__wrapped__"), "torch no longer wraps add_param_group"
with compat.dynamo_stays_unimported():
    torch.optim.RMSprop([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
print("torch._dynamo" in sys.modules)
"""


def test_building_an_optimizer_does_not_import_dynamo_and_the_switch_turns_the_shim_off():
    on = _python(DYNAMO_PROBE)
    assert on.returncode == 0, on.stderr
    assert on.stdout.strip() == "False"  # fails loudly if torch changes how it wraps add_param_group
    off = _python(DYNAMO_PROBE, {compat.SHIMS_OFF_ENV: "dynamo_slot"})
    assert off.returncode == 0 and off.stdout.strip() == "True"


EXIT_PROBE = """
import atexit, sys
from optbench import compat
atexit.register(lambda: print("exit handler ran", flush=True))
print("before", flush=True)
compat.fast_exit(3)
"""


@pytest.mark.parametrize("switch", ["", "fast_exit"])
def test_fast_exit_keeps_the_code_and_runs_exit_handlers(switch):
    done = _python(EXIT_PROBE, {compat.SHIMS_OFF_ENV: switch})
    assert done.returncode == 3 and done.stdout.split() == ["before", "exit", "handler", "ran"]


def test_the_compile_shims_still_fit_this_torch(monkeypatch):
    import torch

    assert isinstance(compat.graph_breaks(), int)  # torch._dynamo.utils.counters["graph_break"]
    compat.reset_dynamo()
    compiled = torch.compile(lambda x: x * 2)
    assert compiled(torch.ones(2)).tolist() == [2.0, 2.0]
    with compat.fast_guards():  # skip_guard_eval_unsafe: raises if torch drops the stance
        assert compiled(torch.ones(2)).tolist() == [2.0, 2.0]
    monkeypatch.setenv(compat.SHIMS_OFF_ENV, "fast_guards")
    with compat.fast_guards():  # switched off: a no-op context
        assert compiled(torch.ones(2)).tolist() == [2.0, 2.0]
    compat.quiet_compile_logs()
    compat.quiet_compile_logs()
    logger = logging.getLogger(compat.COMPILE_LOGGERS[0])
    assert sum(isinstance(f, compat._QuietCompileLogs) for f in logger.filters) == 1
    assert not logger.filters[0].filter(logging.makeLogRecord({"msg": "Profiler function x"}))


def test_omegaconf_still_tells_the_declared_type_and_made_classes_pickle():
    import pickle

    from omegaconf import OmegaConf

    from optbench.config.schema import RunConfig
    from optbench.optim.registry import OPTIMIZERS

    schema = OmegaConf.structured(RunConfig)
    assert compat.declared_type(schema, "batch_size") is int
    assert compat.declared_type(schema, "steps") is int  # Optional[int] -> int
    assert compat.declared_type(schema, "quiet") is bool
    node = OmegaConf.structured(OPTIMIZERS["rmsprop"].schema)
    assert compat.declared_type(node, "alpha") is float
    assert pickle.loads(pickle.dumps(node)) == node  # the run-time dataclass is importable by name
