"""Hostile-input battery, command line and config: every case is refused before training.

Each case runs the real ``optbench`` command in a folder that already holds a completed
run (and a stray file), and asserts (``hostile.battery_case``): exit code 2, no
traceback, one paragraph on stderr that names a fix, and every pre-existing file's
bytes unchanged. ``mentions`` pins what the message must name, and ``absent`` what it
must not say (Hydra's own advice ``+epoch=1`` would be refused by validation).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hostile import battery_case, optbench, run_command

STRAY = "notes.txt"  # a file where a folder is expected

CASES = [
    # --- point 5: values validation must refuse, by class (numbers, ranges, data, torch's own checks)
    ("lr-beyond-float32", ["optimizer.lr=1e39"], ["optimizer.lr", "float32"]),
    ("lr-zero-in-float32", ["optimizer.lr=1e-50"], ["optimizer.lr"]),
    ("lr-negative-zero", ["optimizer.lr=-0.0"], ["optimizer.lr", "> 0"]),
    ("seed-beyond-64-bits", ["seed=99999999999999999999"], ["seed", "4294967295"]),
    ("seed-negative", ["seed=-1"], ["seed"]),
    ("epochs-beyond-int64", ["epochs=99999999999999999999"], ["epochs"]),
    ("threads-absurd", ["threads=100000"], ["threads"]),
    ("no-examples", ["dataset.num_examples=0"], ["dataset.num_examples"]),
    ("examples-beyond-memory", ["dataset.num_examples=10000000000"], ["dataset.num_examples"]),
    ("noise-nan", ["dataset.noise=nan"], ["dataset.noise", "finite"]),
    ("noise-negative", ["dataset.noise=-1"], ["dataset.noise"]),
    ("no-weights", ["dataset.true_w=[]"], ["dataset.true_w"]),
    ("nested-weights", ["dataset.true_w=[[1,2]]"], ["dataset.true_w[0]"]),
    ("bias-inf", ["dataset.true_b=inf"], ["dataset.true_b"]),
    ("quadratic-coef-negative", ["dataset=quadratic", "dataset.coef=-4"], ["dataset.coef"]),
    ("quadratic-x0-beyond-float32", ["dataset=quadratic", "dataset.x0=1e40"], ["dataset.x0"]),
    ("batch-beyond-dataset", ["batch_size=1001"], ["batch_size=1000"]),
    ("cosine-eta-min-negative", ["schedule.kind=cosine", "schedule.eta_min=-1"], ["schedule.eta_min"]),
    ("cosine-t-max-negative", ["schedule.kind=cosine", "schedule.t_max=-3"], ["schedule.t_max"]),
    ("step-size-zero", ["schedule.kind=step", "schedule.step_size=0"], ["schedule.step_size"]),
    ("step-gamma-nan", ["schedule.kind=step", "schedule.gamma=nan"], ["schedule.gamma"]),
    ("clip-threshold-inf", ["grad_clip.kind=norm", "grad_clip.threshold=inf"], ["grad_clip.threshold"]),
    ("lbfgs-history-negative", ["optimizer=lbfgs", "optimizer.history_size=-1"], ["optimizer.history_size"]),
    ("lbfgs-line-search-garbage", ["optimizer=lbfgs", "optimizer.line_search_fn=garbage"], ["strong_wolfe"]),
    ("lbfgs-no-iterations", ["optimizer=lbfgs", "optimizer.max_iter=0"], ["optimizer.max_iter"]),
    ("asgd-lambd-negative", ["optimizer=asgd", "optimizer.lambd=-5"], ["optimizer.lambd"]),
    ("asgd-decay-flips-weights", ["optimizer=asgd", "optimizer.lambd=500"], ["optimizer.lambd"]),
    ("rprop-etas-swapped", ["optimizer=rprop", "optimizer.eta_plus=0.5"], ["optimizer.eta_plus"]),
    ("rprop-step-sizes-swapped", ["optimizer=rprop", "optimizer.step_size_min=100"], ["optimizer.step_size_min"]),
    ("adamax-beta-one", ["optimizer=adamax", "optimizer.beta1=1"], ["optimizer.beta1"]),
    ("nadam-momentum-decay-negative", ["optimizer=nadam", "optimizer.momentum_decay=-1"],
     ["optimizer.momentum_decay"]),
    ("test-acc-without-test-set", ["objective=test_acc"], ["objective", "final_train_loss"]),
    ("compile-lbfgs", ["optimizer=lbfgs", "compile=true"], ["compile=false"]),
    ("bool-as-number", ["compile=2"], ["compile", "true or false"]),
    ("bool-as-word", ["optimizer.centered=yes"], ["optimizer.centered"]),
    ("number-as-bool", ["batch_size=true"], ["batch_size"]),
    ("list-as-number", ["optimizer.lr=[0.1]"], ["optimizer.lr"]),
    ("device-name", ["device=cuda:0"], ["device"]),
    ("impl-spelling", ["optimizer.impl=Builtin"], ["optimizer.impl"]),
    ("unknown-added-key", ["+optimizer.foo=1"], ["optimizer.foo"]),
    # --- point 6: Hydra's errors, as optbench's
    ("unknown-key", ["foo=1"], ["`foo`"]),
    ("misspelt-key", ["epoch=1"], ["epochs=1"]),
    ("bare-hyperparameter", ["lr=0.1"], ["optimizer.lr=0.1"]),
    ("unicode-key", ["é=1"], ["ASCII"]),
    ("unicode-value", ["dataset.root=/tmp/données"], ["quote"]),
    ("no-equals", ["optimizer"], ["optimizer"]),
    ("no-key", ["=1"], ["key"]),
    ("delete-dataset", ["~dataset"], ["dataset=<name>"]),
    ("unknown-option", ["optimizer=nope"], ["rmsprop", "adam"]),
    ("misspelt-option", ["optimizer=rmsprp"], ["optimizer=rmsprop"]),
    ("unknown-preset", ["+experiment=nope"], ["quadratic_lr"]),
    ("preset-without-plus", ["experiment=quadratic_lr"], ["+experiment=quadratic_lr"]),
    ("group-added-twice", ["+optimizer=adam"], ["optimizer=adam"]),
    ("renamed-node", ["optimizer.name=adam"], ["optimizer=adam"]),
    ("internal-group", ["per_dataset=linreg/sgd"], ["per_dataset"]),
    ("unresolvable-interpolation", ["optimizer.lr=${nope}"], ["nope"]),
    ("unresolvable-hydra-interpolation", ["hydra.run.dir=${nope}"], ["hydra.run.dir"]),
    ("comma-without-m", ["optimizer.lr=0.1,0.2"], ["-m"]),
    ("unknown-flag", ["--nope"], ["--nope"]),
    ("flag-after-overrides", ["epochs=1", "--cfg", "job"], ["flags first"]),
    ("run-dir-is-a-file", [f"hydra.run.dir={STRAY}"], ["hydra.run.dir", STRAY]),
    ("run-dir-read-only", ["hydra.run.dir=/proc/optbench-run"], ["hydra.run.dir"]),
    ("sweep-dir-is-a-file", ["-m", f"hydra.sweep.dir={STRAY}", "optimizer.lr=0.1,0.2"], ["hydra.sweep.dir"]),
    ("sweep-unknown-key", ["-m", "epoch=1,2"], ["epochs=1,2"]),
    ("sweep-unknown-option", ["-m", "optimizer=adam,nope"], ["rmsprop"]),
    ("cfg-job-unknown-key", ["--cfg", "job", "epoch=1"], ["epochs=1"]),
    ("cfg-job-unknown-option", ["--cfg", "job", "dataset=nope"], ["linreg"]),
    ("cfg-job-refused-value", ["--cfg", "job", "optimizer.lr=-1"], ["optimizer.lr"]),
]

#: Hydra's advice that validation would refuse, or internals a user never chooses
NEVER_SAID = ("+epoch", "+foo", "schema/", "HYDRA_FULL_ERROR", "Error executing job")


@pytest.fixture(scope="session")
def completed_run(tmp_path_factory) -> Path:
    """A finished tiny linreg run (made once), and a stray file, to copy beside each case."""
    home = tmp_path_factory.mktemp("completed")
    done = run_command(optbench("quiet=true", "epochs=1", "hydra.run.dir=outputs/done"), home)
    assert done.returncode == 0, done.output
    assert (home / "outputs" / "done" / "summary.json").exists()
    (home / STRAY).write_text("not a folder\n")
    return home


@pytest.mark.parametrize("argv, mentions", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_command_line_is_refused_before_training(completed_run, tmp_path, argv, mentions):
    shutil.copytree(completed_run, tmp_path, dirs_exist_ok=True)
    outcome = battery_case(optbench(*argv, "quiet=true"), tmp_path, mentions=mentions)
    for text in NEVER_SAID:
        assert text not in outcome.output, outcome.output
    assert "Train Loss" not in outcome.output and "completed" not in outcome.stdout  # nothing trained
    assert not list(tmp_path.rglob("losses.csv"))[1:], "a second run folder has losses"
