"""Config composition, per-dataset defaults and validation (in-process)."""

from __future__ import annotations

import pytest
from conftest import compose_config
from hydra.errors import ConfigCompositionException, MissingConfigException

from optbench.config.validate import validate
from optbench.errors import OptbenchError


def checked(*overrides):
    return validate(compose_config(*overrides))


def test_default_is_seed_001_linreg_rmsprop():
    cfg = checked()
    assert cfg.dataset.name == "linreg"
    assert (cfg.optimizer.name, cfg.optimizer.impl) == ("rmsprop", "scratch")
    assert (cfg.optimizer.lr, cfg.optimizer.alpha, cfg.optimizer.eps) == (0.03, 0.9, 1e-8)
    assert (cfg.batch_size, cfg.epochs, cfg.log_every) == (10, 3, 1)
    assert list(cfg.dataset.true_w) == [2.0, -3.4] and cfg.dataset.true_b == 4.2
    assert cfg.dataset.num_examples == 1000 and cfg.dataset.noise == 0.01
    assert dict(cfg.model) == {"name": "linear"}  # linreg picks its own model


def test_mnist_is_seed_000():
    cfg = checked("dataset=mnist")
    assert (cfg.batch_size, cfg.epochs, cfg.log_every) == (64, 5, 30)
    assert (cfg.model.name, list(cfg.model.hidden), cfg.model.activation) == ("mlp", [200], "relu")  # 784-200-10
    assert (cfg.optimizer.lr, cfg.optimizer.alpha, cfg.optimizer.eps) == (1e-3, 0.9, 1e-10)


def test_fashion_mnist_uses_the_seed_settings_and_debian_folder():
    cfg = checked("dataset=fashion_mnist")
    assert (cfg.batch_size, cfg.epochs, cfg.optimizer.lr) == (64, 5, 1e-3)
    assert cfg.dataset.system_dir == "/usr/share/datasets/fashion-mnist"


def test_quadratic_defaults_to_gradient_descent():
    cfg = checked("dataset=quadratic")
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.steps, cfg.log_every) == ("sgd", 0.2, 20, 1)


def test_explicit_overrides_win_over_dataset_defaults():
    cfg = checked("optimizer.lr=0.5", "batch_size=7", "epochs=2", "log_every=4")
    assert (cfg.optimizer.lr, cfg.batch_size, cfg.epochs, cfg.log_every) == (0.5, 7, 2, 4)
    cfg = checked("dataset=quadratic", "optimizer=adam")
    assert cfg.optimizer.name == "adam"


def test_users_example_rmsprop_alpha():
    cfg = checked("optimizer=rmsprop", "optimizer.alpha=0.999")
    assert cfg.optimizer.alpha == 0.999 and cfg.optimizer.lr == 0.03


def test_gamma_is_an_alias_of_alpha():
    cfg = checked("optimizer.gamma=0.999")
    assert cfg.optimizer.alpha == 0.999
    assert "gamma" not in cfg.optimizer and "rho" not in cfg.optimizer


@pytest.mark.parametrize(
    "override, words",
    [
        ("batch_size=abc", ["batch_size", "int"]),
        ("optimizer.lr=fast", ["optimizer.lr", "float"]),
        ("optimizer.centered=maybe", ["optimizer.centered", "bool"]),
        ("+optimizer.foo=1", ["optimizer.foo", "Valid keys", "alpha"]),
        ("+foo=1", ["`foo`", "Valid keys"]),
        ("optimizer.lr=0", ["optimizer.lr", "> 0"]),
        ("optimizer.lr=-1", ["optimizer.lr", "> 0"]),
        ("optimizer.alpha=1.0", ["optimizer.alpha", "[0, 1)"]),
        ("optimizer.alpha=-0.1", ["optimizer.alpha", "[0, 1)"]),
        ("optimizer.eps=-1e-8", ["optimizer.eps", ">= 0"]),
        ("batch_size=0", ["batch_size", ">= 1"]),
        ("epochs=0", ["epochs", ">= 1"]),
        ("log_every=0", ["log_every", ">= 1"]),
        ("device=tpu", ["device", "auto, cpu, cuda, mps"]),
        ("grad_clip.kind=sideways", ["grad_clip.kind", "global_norm"]),
        ("schedule.kind=zigzag", ["schedule.kind", "cosine"]),
    ],
)
def test_bad_values_are_refused_with_a_fix(override, words):
    with pytest.raises(OptbenchError) as err:
        checked(override)
    message = str(err.value)
    assert "Fix" in message and "\n" not in message
    for word in words:
        assert word in message


def test_adam_betas_out_of_range():
    with pytest.raises(OptbenchError, match=r"optimizer.beta2.*\[0, 1\)"):
        checked("optimizer=adam", "optimizer.beta2=1.5")


def test_cuda_refused_when_unavailable():
    import torch

    if torch.cuda.is_available():  # a lent GPU machine: the check must then pass
        assert checked("device=cuda").device == "cuda"
        return
    with pytest.raises(OptbenchError, match="CUDA is not available.*device=cpu"):
        checked("device=cuda")


def test_unknown_group_option_lists_options_not_schemas():
    with pytest.raises((ConfigCompositionException, MissingConfigException)) as err:
        compose_config("optimizer=nope")
    message = str(err.value)
    assert "rmsprop" in message and "adam" in message
    listed = message.split("Available options in 'optimizer':")[1].split("Config search path")[0]
    options = [line.strip() for line in listed.splitlines() if line.strip()]
    assert "rmsprop" in options and "adamw" in options
    assert not [o for o in options if "schema" in o or "Config" in o]


def test_unknown_model_lists_the_models():
    with pytest.raises((ConfigCompositionException, MissingConfigException)) as err:
        compose_config("dataset=mnist", "model=resnet")
    listed = str(err.value).split("Available options in 'model':")[1].split("Config search path")[0]
    assert {line.strip() for line in listed.splitlines() if line.strip()} == {"cnn", "linear", "mlp", "scalar"}


def test_scratch_on_builtin_only_names_the_scratch_set():
    with pytest.raises(OptbenchError) as err:
        checked("optimizer=adamw", "optimizer.impl=scratch")
    for name in ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adadelta", "impl=builtin"):
        assert name in str(err.value)


def test_sparse_adam_is_refused_cleanly():
    with pytest.raises(OptbenchError, match="sparse"):
        checked("optimizer=sparse_adam")


def test_asgd_alpha_is_a_power_not_a_decay_rate():
    assert checked("optimizer=asgd", "optimizer.alpha=1.5").optimizer.alpha == 1.5


# ----------------------------------------------------------------------------- every class of bad value


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["optimizer.lr=1e39"], ["optimizer.lr", "float32"]),
        (["seed=99999999999999999999"], ["seed", "4294967295"]),
        (["dataset.num_examples=0"], ["dataset.num_examples"]),
        (["dataset.noise=nan"], ["dataset.noise", "finite"]),
        (["dataset.true_w=[]"], ["dataset.true_w"]),
        (["schedule.eta_min=-1"], ["schedule.eta_min"]),
        (["schedule.t_max=-3"], ["schedule.t_max"]),
        (["optimizer=lbfgs", "optimizer.history_size=-1"], ["optimizer.history_size"]),
        (["optimizer=lbfgs", "optimizer.line_search_fn=garbage"], ["strong_wolfe"]),
        (["optimizer=lbfgs", "optimizer.max_iter=0"], ["optimizer.max_iter"]),
        (["optimizer=asgd", "optimizer.lambd=-5"], ["optimizer.lambd"]),
        (["optimizer=asgd", "optimizer.alpha=-1"], ["optimizer.alpha"]),
        (["optimizer=rprop", "optimizer.eta_minus=1.5"], ["optimizer.eta_minus"]),
        (["optimizer=radam", "optimizer.beta2=1"], ["optimizer.beta2"]),
        (["objective=test_acc"], ["objective", "test set"]),
        (["objective=best_test_loss", "dataset=quadratic"], ["objective"]),
        (["batch_size=1001"], ["batch_size", "dataset.num_examples"]),
        (["quiet=1"], ["quiet", "true or false"]),
        (["dataset.true_w=[[1]]"], ["dataset.true_w[0]"]),
        (["compile=true", "optimizer=lbfgs", "optimizer.impl=builtin"], ["compile"]),
        (["compile=true", "diagnostics=true"], ["diagnostics", "compile=false"]),
        (["optimizer=adam", "optimizer.impl=builtin", "optimizer.eps_in_sqrt=true"], ["eps_in_sqrt"]),
        (["epochs=99999999999999999999"], ["epochs"]),
        (["model=cnn"], ["model=cnn", "dataset=linreg", "model=linear"]),
        (["dataset=mnist", "model.hidden=[]"], ["model.hidden"]),
        (["dataset=mnist", "model.hidden=[0]"], ["model.hidden[0]", "from 1 to"]),
        (["dataset=mnist", "model.activation=swish"], ["model.activation", "gelu"]),
        (["dataset=mnist", "+model.width=3"], ["model.width", "Valid keys", "hidden"]),
    ],
)
def test_every_class_of_bad_value_is_refused_before_training(overrides, words):
    with pytest.raises(OptbenchError) as err:
        checked(*overrides)
    message = str(err.value)
    assert "Fix" in message and "\n" not in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    "overrides",
    [
        ["seed=4294967295"],
        ["optimizer.eps=-0.0"],
        ["batch_size=1000"],
        ["dataset.true_w=[1]", "dataset.noise=0"],
        ["epochs=9223372036854775807", "steps=5"],
        ["log_every=9223372036854775807"],
        ["schedule.kind=cosine", "schedule.t_max=5", "schedule.eta_min=0.001"],
        ["schedule.kind=step", "schedule.step_size=9223372036854775807", "schedule.gamma=2"],
        ["optimizer=lbfgs", "optimizer.line_search_fn=strong_wolfe", "optimizer.history_size=1", "batch_size=1000"],
        ["optimizer=lbfgs", "optimizer.max_eval=1", "batch_size=1000"],
        ["optimizer=asgd", "optimizer.lambd=0", "optimizer.t0=0"],
        ["optimizer=rprop", "optimizer.step_size_min=0", "batch_size=1000"],
        ["optimizer=nadam", "optimizer.momentum_decay=0"],
        ["optimizer=adam", "optimizer.impl=builtin", "optimizer.beta1=0"],
        ["dataset=quadratic", "dataset.x0=3e38"],
        ["dataset=quadratic", "steps=null"],
    ],
)
def test_every_edge_that_validation_accepts_runs(tmp_path, overrides):
    from conftest import run_config

    summary = run_config(tmp_path / "run", "epochs=1", *overrides) if not any(o.startswith("epochs=") for o in overrides) \
        else run_config(tmp_path / "run", *overrides)
    assert summary["status"] in ("completed", "diverged"), summary.get("error")
    assert summary["steps"] >= 1


def test_negative_zero_is_recorded_as_zero():
    import math

    eps = checked("optimizer.eps=-0.0").optimizer.eps
    assert eps == 0.0 and math.copysign(1.0, eps) == 1.0  # one config hash for one run


def test_builtin_values_are_checked_by_torch_itself(monkeypatch):
    import optbench.config.validate as validate_module

    monkeypatch.setattr(validate_module, "limits", lambda name: {})  # only torch's own checks are left
    monkeypatch.setattr(validate_module, "STRING_CHOICES", {})
    with pytest.raises(OptbenchError, match=r"torch\.optim\.Adamax does not accept.*beta parameter.*Fix"):
        checked("optimizer=adamax", "optimizer.beta1=1.5")
    with pytest.raises(OptbenchError, match=r"torch\.optim\.LBFGS does not accept.*strong_wolfe"):
        checked("optimizer=lbfgs", "optimizer.line_search_fn=garbage", "batch_size=1000")


def test_test_set_datasets_are_the_problems_with_a_test_set():
    from optbench.config.schema import DATASET_SCHEMAS, TEST_SET_DATASETS
    from optbench.problems.images import ImageClassification
    from optbench.problems.linreg import LinearRegression
    from optbench.problems.quadratic import Quadratic

    has_test_set = {"linreg": LinearRegression, "quadratic": Quadratic, "mnist": ImageClassification,
                    "fashion_mnist": ImageClassification}
    assert set(has_test_set) == set(DATASET_SCHEMAS)
    assert sorted(TEST_SET_DATASETS) == sorted(n for n, cls in has_test_set.items() if cls.has_test_set)


# ----------------------------------------------------------------------------- Hydra's errors (compat, front door)


def test_hydra_reraises_its_errors_only_under_the_compat_shim(monkeypatch):
    """compat.hydra_errors_raised relies on Hydra's run_and_report re-raising under HYDRA_FULL_ERROR."""
    from hydra._internal.utils import run_and_report

    from optbench import compat

    def fail():
        raise ValueError("boom")

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as stop:  # Hydra's own report: print, exit 1
        run_and_report(fail)
    assert stop.value.code == 1
    with compat.hydra_errors_raised() as ours:
        assert ours is True
        with pytest.raises(ValueError, match="boom"):
            run_and_report(fail)
    assert "HYDRA_FULL_ERROR" not in __import__("os").environ
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # the user asked for Hydra's full traces: left alone
    with compat.hydra_errors_raised() as ours:
        assert ours is False


def test_hydras_parsers_are_reachable():
    from optbench import compat

    args = compat.hydra_args_parser().parse_args(["-m", "--cfg", "job", "optimizer.lr=0.1,1"])
    assert args.multirun and args.cfg == "job" and args.overrides == ["optimizer.lr=0.1,1"]
    override = compat.hydra_overrides_parser().parse_override("+optimizer.foo=1,2")
    assert override.key_or_group == "optimizer.foo" and override.is_add() and override.is_sweep_override()


@pytest.mark.parametrize(
    "argv, words",
    [
        (["epoch=1"], None),  # Hydra itself reports it: the front door lets composition find it
        (["~optimizer"], ["optimizer=<name>"]),
        (["+dataset=mnist"], ["dataset=mnist"]),
        (["schema/dataset=linreg"], ["schema"]),
        (["dataset.name=quadratic"], ["dataset=quadratic"]),
        (["a b=1"], ["key=value"]),
        (["--cfg", "nope"], ["--cfg"]),
    ],
)
def test_front_door_refuses_before_hydra(argv, words):
    from optbench.config.front_door import check_command_line

    if words is None:
        assert check_command_line(argv).overrides == argv
        return
    with pytest.raises(OptbenchError) as err:
        check_command_line(argv)
    assert "Fix" in str(err.value) and all(w in str(err.value) for w in words), str(err.value)


def test_unknown_key_suggests_a_key_that_validation_accepts():
    from hydra.errors import ConfigCompositionException

    from optbench.config.front_door import explain

    for argv, suggestion in ((["epoch=1"], "epochs=1"), (["dataset=quadratic", "x0=3"], "dataset.x0=3"),
                             (["optimizer=adam", "optimizer.beta=0.5"], "optimizer.beta1=0.5")):
        try:
            compose_config(*argv)
        except ConfigCompositionException as err:
            message = str(explain(err, argv))
        assert f"did you mean `{suggestion}`" in message and "+" not in message.split("Fix:")[1], message
        key = suggestion.split("=")[0]
        checked(*argv[:-1], suggestion)  # the suggestion is valid
        assert key


def test_a_bug_inside_optbench_keeps_its_traceback():
    from optbench.config.front_door import explain
    from optbench.optim.registry import limits

    with pytest.raises(KeyError) as err:
        limits("no-such-optimizer")
    assert explain(err.value, []) is None
