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


def test_mnist_is_seed_000():
    cfg = checked("dataset=mnist")
    assert (cfg.batch_size, cfg.epochs, cfg.log_every) == (64, 5, 30)
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
