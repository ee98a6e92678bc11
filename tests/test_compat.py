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
