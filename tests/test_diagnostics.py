"""diagnostics=true: grad_norm, update_norm, update_ratio at logged steps, for scratch and builtin alike."""

from __future__ import annotations

import math
import subprocess

import pytest
from conftest import read_csv, run_config

from optbench.run_folder import DIAGNOSTIC_COLUMNS, LOSSES

LR = 0.05


@pytest.mark.parametrize("impl", ["scratch", "builtin"])
def test_sgd_update_norm_is_lr_times_grad_norm(tmp_path, impl):
    run_config(tmp_path / "run", "optimizer=sgd", f"optimizer.impl={impl}", f"optimizer.lr={LR}", "diagnostics=true",
               "quiet=true", "epochs=1")
    rows = read_csv(tmp_path / "run" / LOSSES)
    assert len(rows) > 50
    for row in rows:
        grad, update, ratio = (float(row[c]) for c in DIAGNOSTIC_COLUMNS)
        # plain SGD: theta_t - theta_(t-1) = -lr g (up to float32 rounding of the weights' difference)
        assert grad > 0 and update == pytest.approx(LR * grad, rel=1e-3)
        assert 0 < ratio < math.inf


def test_update_ratio_is_update_norm_over_the_weights_norm_before_the_update():
    import torch

    from optbench.train.diagnostics import Diagnostics

    weights = torch.tensor([3.0, 4.0], requires_grad=True)  # ||theta_(t-1)|| = 5
    weights.grad = torch.tensor([6.0, 8.0])  # ||g|| = 10
    diagnostics = Diagnostics([weights])
    diagnostics.before_step()
    with torch.no_grad():
        weights -= 0.05 * weights.grad  # an update of norm 0.5
    got = diagnostics.after_step()
    assert got == pytest.approx({"grad_norm": 10.0, "update_norm": 0.5, "update_ratio": 0.1})


def test_diagnostics_under_compile_is_refused_before_training(tmp_path):
    from conftest import cli

    done = cli("quiet=true", "compile=true", "diagnostics=true", cwd=tmp_path)
    assert done.returncode == 2 and "compile=false" in done.stderr and "Traceback" not in done.stderr


def test_off_by_default_and_the_losses_are_the_same_with_it_on(tmp_path):
    run_config(tmp_path / "off", "quiet=true", "steps=60")
    run_config(tmp_path / "on", "quiet=true", "steps=60", "diagnostics=true")
    off, on = read_csv(tmp_path / "off" / LOSSES), read_csv(tmp_path / "on" / LOSSES)
    assert not set(DIAGNOSTIC_COLUMNS) & set(off[0])
    assert [r["loss"] for r in off] == [r["loss"] for r in on]


def test_the_plotter_draws_update_ratio_and_explains_a_run_without_it(tmp_path):
    run_config(tmp_path / "runs" / "on", "quiet=true", "steps=60", "diagnostics=true")
    done = subprocess.run(["optbench-plot", str(tmp_path / "runs" / "on"), "--y", "update_ratio", "--out",
                           str(tmp_path / "fig")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "fig").glob("*update_ratio*.png"))
    run_config(tmp_path / "runs" / "off", "quiet=true", "steps=60")
    refused = subprocess.run(["optbench-plot", str(tmp_path / "runs" / "off"), "--y", "update_ratio", "--out",
                              str(tmp_path / "fig2")], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "diagnostics=true" in refused.stderr and "Traceback" not in refused.stderr
