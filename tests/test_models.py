"""The model group: conf/model/*.yaml <-> optbench/models/, the builders, validation, and runs on small IDX data."""

from __future__ import annotations

import math
from importlib import resources

import pytest
import torch
from conftest import cli, compose_config, read_csv, read_summary, run_config
from idx_files import write_raw
from omegaconf import OmegaConf
from torch import nn

from optbench.config.hashing import config_hash
from optbench.config.schema import DATASET_MODELS, MODEL_SCHEMAS
from optbench.config.validate import validate
from optbench.errors import OptbenchError
from optbench.models import MODELS, ModelInputs, build_model, cnn, mlp

IMAGES = ModelInputs(784, 10, image_shape=(1, 28, 28))


def checked(*overrides):
    return validate(compose_config(*overrides))


def model_cfg(*overrides, dataset="fashion_mnist"):
    return OmegaConf.to_container(checked(f"dataset={dataset}", *overrides).model)


# ----------------------------------------------------------------------------- one table per axis


def test_yaml_files_schemas_and_builders_name_the_same_models():
    yamls = {p.name.removesuffix(".yaml") for p in (resources.files("optbench.conf") / "model").iterdir()
             if p.name.endswith(".yaml")}
    assert yamls == set(MODELS) == set(MODEL_SCHEMAS) == {"mlp", "cnn", "linear", "scalar"}
    assert {m for fits in DATASET_MODELS.values() for m in fits} == set(MODELS)


@pytest.mark.parametrize(("dataset", "model"), [("linreg", "linear"), ("quadratic", "scalar"),
                                                ("mnist", "mlp"), ("fashion_mnist", "mlp")])
def test_each_dataset_picks_its_model(dataset, model):
    cfg = checked(f"dataset={dataset}")
    assert cfg.model.name == model == DATASET_MODELS[dataset][0]


def test_default_mlp_is_the_seeds_784_200_10_relu():
    assert model_cfg() == {"name": "mlp", "hidden": [200], "activation": "relu"}
    torch.manual_seed(7)
    built = build_model(model_cfg(), IMAGES)
    torch.manual_seed(7)
    seeds = nn.Sequential(nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 10))  # seed 000's network
    assert [type(m) for m in built] == [nn.Linear, nn.ReLU, nn.Linear]
    assert built.state_dict().keys() == seeds.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), seeds.state_dict().values()))


def test_mlp_hidden_list_and_activations():
    cfg = model_cfg("model.hidden=[512,256]", "model.activation=tanh")
    net = build_model(cfg, IMAGES)
    assert [tuple(m.weight.shape) for m in net if isinstance(m, nn.Linear)] == [(512, 784), (256, 512), (10, 256)]
    assert sum(isinstance(m, nn.Tanh) for m in net) == 2
    assert sum(p.numel() for p in net.parameters()) == mlp.num_parameters(cfg, 784, 10)
    for name, cls in mlp.ACTIVATIONS.items():
        net = build_model(model_cfg(f"model.activation={name}"), IMAGES)
        assert isinstance(net[1], cls)
        assert net(torch.zeros(3, 784)).shape == (3, 10)


def test_cnn_maps_flat_images_to_logits():
    cfg = model_cfg("model=cnn")
    assert cfg == {"name": "cnn", "channels": [16, 32]}
    net = build_model(cfg, IMAGES)
    assert [type(m) for m in net if isinstance(m, (nn.Conv2d, nn.Linear))] == [nn.Conv2d, nn.Conv2d, nn.Linear]
    assert net[-1].in_features == 32 * 7 * 7
    assert net(torch.randn(5, 784)).shape == (5, 10)
    assert sum(p.numel() for p in net.parameters()) == cnn.num_parameters(cfg, (1, 28, 28), 10)
    one = build_model({"name": "cnn", "channels": [4, 4, 4, 4]}, IMAGES)
    assert one(torch.randn(2, 784)).shape == (2, 10) and one[-1].in_features == 4


@pytest.mark.parametrize("overrides", [(), ("model=cnn",), ("model.hidden=[64,32]", "model.activation=gelu")])
def test_same_seed_same_initial_weights(overrides):
    cfg = model_cfg(*overrides)
    torch.manual_seed(3)
    a = build_model(cfg, IMAGES)
    torch.manual_seed(3)
    b = build_model(cfg, IMAGES)
    torch.manual_seed(4)
    c = build_model(cfg, IMAGES)
    assert all(torch.equal(u, v) for u, v in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(u, v) for u, v in zip(a.parameters(), c.parameters()))


def test_model_is_part_of_the_config_hash():
    hashes = {config_hash(OmegaConf.to_container(checked("dataset=fashion_mnist", *o)))
              for o in [(), ("model=cnn",), ("model.hidden=[512,256]",), ("model.activation=tanh",)]}
    assert len(hashes) == 4


def test_config_without_model_node_gets_the_datasets_model():
    raw = OmegaConf.to_container(compose_config("dataset=mnist"))
    raw.pop("model")
    assert OmegaConf.to_container(validate(OmegaConf.create(raw)).model) == model_cfg(dataset="mnist")


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("overrides", "needle"), [
    (("dataset=linreg", "model=cnn"), "model=cnn does not fit dataset=linreg"),
    (("dataset=quadratic", "model=mlp"), "model=mlp does not fit dataset=quadratic"),
    (("dataset=mnist", "model=linear"), "model=linear does not fit dataset=mnist"),
    (("dataset=mnist", "model=scalar"), "model=scalar does not fit dataset=mnist"),
    (("dataset=mnist", "model.hidden=[]"), "`model.hidden` must be a list of at least one width"),
    (("dataset=mnist", "model.hidden=[64,0]"), "`model.hidden[1]` must be an integer from 1 to"),
    (("dataset=mnist", "model.hidden=[-3]"), "`model.hidden[0]` must be an integer from 1 to"),
    (("dataset=mnist", "model.hidden=[100000]"), "`model.hidden[0]` must be an integer from 1 to 65536"),
    (("dataset=mnist", "model.hidden=[60000,60000]"), "parameters, more than optbench trains"),
    (("dataset=mnist", "model.hidden=[1.5]"), "model.hidden[0]"),
    (("dataset=mnist", "model.activation=elu"), "`model.activation` must be one of relu, tanh, sigmoid, gelu"),
    (("dataset=mnist", "+model.foo=1"), "Unknown config key `model.foo` for model 'mlp'"),
    (("dataset=mnist", "model=cnn", "model.channels=[8,8,8,8,8]"), "at most 4 widths"),
    (("dataset=mnist", "model=cnn", "model.channels=[0]"), "`model.channels[0]` must be an integer"),
    (("dataset=mnist", "model=cnn", "+model.hidden=[3]"), "Unknown config key `model.hidden` for model 'cnn'"),
])
def test_bad_models_are_refused_with_a_fix(overrides, needle):
    with pytest.raises(OptbenchError) as err:
        checked(*overrides)
    msg = str(err.value)
    assert needle in msg and "Fix:" in msg and "\n" not in msg


def test_mismatch_names_the_fix():
    with pytest.raises(OptbenchError) as err:
        checked("dataset=linreg", "model=cnn")
    msg = str(err.value)
    assert "drop `model=cnn`" in msg and "model=linear" in msg and "dataset=fashion_mnist model=cnn" in msg


def test_cli_refuses_cnn_on_linreg_with_exit_2(tmp_path):
    proc = cli("dataset=linreg", "model=cnn", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "model=cnn does not fit dataset=linreg" in lines[0]
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------- runs on small IDX data


@pytest.fixture
def fashion_root(tmp_path):
    root = tmp_path / "data"
    write_raw(root, "FashionMNIST")
    return root


def _run(tmp_path, root, name, *overrides):
    return run_config(tmp_path / name, "dataset=fashion_mnist", f"dataset.root={root}", "dataset.download=false",
                      "dataset.system_dir=", "steps=6", "log_every=2", "epochs=1", "batch_size=32", "threads=1", *overrides)


@pytest.mark.parametrize("overrides", [("model=cnn",), ("model.hidden=[512,256]",)])
def test_runs_that_must_work(tmp_path, fashion_root, overrides):
    summary = _run(tmp_path, fashion_root, "run", *overrides)
    assert summary["status"] == "completed" and summary["steps"] == 6
    assert summary["config"]["model"] == model_cfg(*overrides)
    rows = read_csv(tmp_path / "run" / "losses.csv")
    assert len(rows) >= 3 and all(math.isfinite(float(r["loss"])) for r in rows)
    assert read_summary(tmp_path / "run")["final"]


def test_every_optimizer_sees_the_same_initial_weights(tmp_path, fashion_root):
    """Step 0's loss (before any update) is the same for two optimizers with one seed and model."""
    a = _run(tmp_path, fashion_root, "a", "model=cnn", "optimizer=adam", "steps=1", "log_every=1")
    b = _run(tmp_path, fashion_root, "b", "model=cnn", "optimizer=sgd", "steps=1", "log_every=1")
    assert a["status"] == b["status"] == "completed"
    assert read_csv(tmp_path / "a" / "losses.csv")[0]["loss"] == read_csv(tmp_path / "b" / "losses.csv")[0]["loss"]
