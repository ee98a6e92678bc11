"""Turn Hydra's composed config into a checked run config, or one clear error.

Hydra composes the YAML files untyped (so that ``+optimizer.foo=1`` reaches us);
here every node is merged into its schema dataclass, which refuses wrong types and
unknown keys, and then every value is checked against what the run will do with it,
so that whatever this accepts runs, and whatever it refuses is refused before any
data is loaded or any step is taken:

* every number: finite, within float32 (floats: the tensors are float32) or int64
  (integers: torch's limit); a boolean key takes only true or false;
* ranges: ``RANGES`` below for the run, ``optbench.optim.registry.limits`` for each
  optimizer's hyperparameters, the dataset's own (``_check_dataset``);
* builtin optimizers: torch.optim's own checks, by building the optimizer on a dummy
  tensor and taking one step;
* combinations: the seed range for every epoch, the objective against the dataset,
  ``batch_size`` against the dataset, ``compile`` against LBFGS;
* the device.

Every refusal is an :class:`~optbench.errors.OptbenchError`: one paragraph naming the fix.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException
from omegaconf.nodes import BooleanNode

from optbench import compat
from optbench.config.schema import (
    CHOICES,
    DATASET_MODELS,
    DATASET_SCHEMAS,
    MODEL_SCHEMAS,
    TEST_SET_DATASETS,
    RunConfig,
)
from optbench.errors import OptbenchError
from optbench.optim.registry import OPTIMIZERS, STRING_CHOICES, limits, resolve_aliases

#: the largest finite float32 (the model, the data and the optimizer state are float32)
FLOAT32_MAX = 3.4028234663852886e38
#: the smallest positive float32 (a learning rate below it is 0 in a float32 kernel)
FLOAT32_TINY = 1.401298464324817e-45
INT64_MAX = 2**63 - 1
#: seeds: torch takes 64 bits, and each epoch's batch order uses seed * 1_000_003 + epoch
SEED_MAX = 2**32 - 1
#: linreg: examples x (features + 1) values (the float64 least-squares design matrix)
LINREG_MAX_VALUES = 5 * 10**7
#: models: the widest layer (mlp hidden width, cnn channels) and the most blocks/parameters
MODEL_MAX_WIDTH = {"hidden": 65536, "channels": 4096}
MODEL_MAX_LAYERS = {"hidden": 64, "channels": 4}  # 4 poolings take 28 x 28 down to 1 x 1
MODEL_MAX_PARAMETERS = 10**8  # 400 MB of float32 weights, before gradients and optimizer state
#: what the image datasets feed a model (flattened 1 x 28 x 28, 10 classes)
IMAGE_SHAPE, NUM_CLASSES = (1, 28, 28), 10

#: top-level integers: (least, largest) value; None = no bound beyond int64
RANGES: dict[str, tuple[int, int | None]] = {
    "seed": (0, SEED_MAX), "batch_size": (1, None), "epochs": (1, None), "log_every": (1, None),
    "steps": (1, None), "threads": (1, None), "checkpoint_every": (1, None),
    "schedule.step_size": (1, None), "schedule.t_max": (1, None),
}


def validate(cfg: DictConfig | Mapping) -> DictConfig:
    """Check a composed config; return it typed, with aliases resolved and no ``hydra`` node."""
    raw = _plain(cfg)
    raw.pop("hydra", None)
    raw_dataset, raw_optimizer = raw.get("dataset"), raw.get("optimizer")
    dataset = _typed_node(raw.pop("dataset", None), "dataset", _dataset_schema)
    raw_model = raw.pop("model", None)
    if raw_model is None:  # a config from before the model group: the dataset's own model
        raw_model = {"name": DATASET_MODELS[dataset.name][0]}
    model = _typed_node(raw_model, "model", _model_schema)
    optimizer = _typed_node(raw.pop("optimizer", None), "optimizer", _optimizer_schema)
    run = _merge(_schema(RunConfig), raw, where="")
    _check_booleans(run, raw, "")
    _check_booleans(dataset, raw_dataset, "dataset.")
    _check_booleans(model, raw_model, "model.")
    _check_booleans(optimizer, raw_optimizer, "optimizer.")
    run.dataset = dataset
    run.model = model
    run.optimizer = _canonical_optimizer(optimizer)
    _check_missing(run)
    _check_numbers(run)
    _check_ranges(run)
    _check_dataset(run)
    _check_model(run)
    _check_optimizer_choice(run.optimizer)
    _check_optimizer_values(run.optimizer)
    _check_combinations(run)
    check_device(run.device)
    _check_with_torch(run.optimizer)
    return run


def _plain(cfg: DictConfig | Mapping) -> dict:
    if isinstance(cfg, DictConfig):
        try:
            return OmegaConf.to_container(cfg, resolve=True)
        except OmegaConfBaseException as err:
            key = getattr(err, "full_key", None)
            where = f" at `{key}`" if key else ""
            raise OptbenchError(
                f"The config could not be resolved{where}: {_first_line(err)}. Fix: correct or remove the "
                "`${...}` interpolation it names (it must point at an existing key, e.g. `${optimizer.eps}`)."
            ) from None
    return dict(cfg)


def _first_line(err: BaseException) -> str:
    text = getattr(err, "msg", None) or str(err)
    return " ".join(str(text).split("\n")[0].split()).rstrip(".")


def _dataset_schema(node: dict) -> type:
    name = node.get("name")
    if name not in DATASET_SCHEMAS:
        raise OptbenchError(
            f"Unknown dataset {name!r}. Fix: choose one of {', '.join(DATASET_SCHEMAS)} with dataset=<name>."
        )
    return DATASET_SCHEMAS[name]


def _model_schema(node: dict) -> type:
    name = node.get("name")
    if name not in MODEL_SCHEMAS:
        raise OptbenchError(
            f"Unknown model {name!r}. Fix: choose one of {', '.join(MODEL_SCHEMAS)} with model=<name>."
        )
    return MODEL_SCHEMAS[name]


def _optimizer_schema(node: dict) -> type:
    name = node.get("name")
    if name not in OPTIMIZERS:
        raise OptbenchError(
            f"Unknown optimizer {name!r}. Fix: choose one of {', '.join(sorted(OPTIMIZERS))} with optimizer=<name>."
        )
    return OPTIMIZERS[name].schema


def _typed_node(node: Any, group: str, schema_of) -> DictConfig:
    if not isinstance(node, Mapping):
        raise OptbenchError(f"The config has no `{group}` node. Fix: select one with {group}=<name>.")
    return _merge(_schema(schema_of(node)), dict(node), where=group)


@functools.lru_cache(maxsize=None)
def _schema(dataclass: type) -> DictConfig:
    """The structured config of a schema dataclass, built once: ``OmegaConf.merge`` copies its first
    argument, so every validation merges into a fresh copy and the cached one is never changed (building
    it from the class each time was about a third of a sweep job's validation)."""
    return OmegaConf.structured(dataclass)


def _merge(schema: DictConfig, values: dict, where: str) -> DictConfig:
    try:
        return OmegaConf.merge(schema, values)
    except ConfigKeyError as err:
        key = _full_key(where, err)
        valid = [k for k in schema.keys() if k not in ("name",)]
        what = f"optimizer {values.get('name')!r}" if where == "optimizer" else (
            f"{where} {values.get('name')!r}" if where in ("dataset", "model") else "optbench")
        prefix = f"{where}." if where else ""
        close = difflib.get_close_matches(key.removeprefix(prefix), valid, n=1, cutoff=0.6)
        value = _raw_value(values, key.removeprefix(prefix))
        hint = f"did you mean `{prefix}{close[0]}={value}`? " if close else ""
        raise OptbenchError(
            f"Unknown config key `{key}` for {what}. Valid keys here: {', '.join(valid)}. "
            f"Fix: {hint}remove `{key}` (or `+{key}=...`) from the command line or config, or spell it as one of "
            "the valid keys."
        ) from None
    except OmegaConfBaseException as err:
        key = _full_key(where, err)
        raise OptbenchError(
            f"Bad value for `{key}`: {_first_line(err)}. "
            f"Fix: pass a value of the right type, e.g. `{key}=<{_type_name(schema, err)}>`."
        ) from None


def _raw_value(values: dict, key: str) -> str:
    node: Any = values
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return "..." if node is None or isinstance(node, (Mapping, list)) else str(node)


def _full_key(where: str, err: OmegaConfBaseException) -> str:
    key = str(getattr(err, "full_key", "") or getattr(err, "key", "") or "?")
    return f"{where}.{key}" if where and not key.startswith(where + ".") else key


def _type_name(schema: DictConfig, err: OmegaConfBaseException) -> str:
    """The schema's declared type at the failing key (int, float, bool, str)."""
    *parents, leaf = str(getattr(err, "full_key", "")).split(".")
    try:
        node = schema
        for part in parents:
            node = node[part]
        ref_type = compat.declared_type(node, leaf)
    except (KeyError, AttributeError, OmegaConfBaseException):
        return "value"
    return getattr(ref_type, "__name__", "value")


def _check_booleans(typed: DictConfig, raw: Any, prefix: str) -> None:
    """A boolean key takes true or false only: OmegaConf would also read 2, 'yes' or 'off' as booleans."""
    if not isinstance(raw, Mapping):
        return
    for key in typed.keys():
        node = typed._get_node(key)
        full = f"{prefix}{key}"
        if isinstance(node, DictConfig):
            _check_booleans(node, raw.get(key), full + ".")
        elif isinstance(node, BooleanNode) and key in raw and raw[key] is not None and not isinstance(raw[key], bool):
            raise OptbenchError(
                f"`{full}` is a boolean and takes true or false, got {raw[key]!r}. Fix: `{full}=true` or `{full}=false`."
            )


def _canonical_optimizer(node: DictConfig) -> DictConfig:
    """Move alias values (seed 001's ``gamma`` for RMSProp's ``alpha``...) to the torch name."""
    values = OmegaConf.to_container(node)
    spec = OPTIMIZERS[values["name"]]
    meta = {"name": values.pop("name"), "impl": values.pop("impl")}
    return OmegaConf.create({**meta, **resolve_aliases(spec.name, values)})


def _check_missing(run: DictConfig) -> None:
    for key in _walk_keys(run):
        try:
            OmegaConf.select(run, key, throw_on_missing=True)
        except MissingMandatoryValue:
            raise OptbenchError(f"`{key}` has no value. Fix: set it on the command line, e.g. `{key}=...`.") from None


def _walk_keys(node: DictConfig, prefix: str = ""):
    for key in node.keys():
        full = f"{prefix}{key}"
        if OmegaConf.is_missing(node, key):
            yield full
            continue
        child = node[key]
        if isinstance(child, DictConfig):
            yield from _walk_keys(child, full + ".")


def _refuse(key: str, value: Any, rule: str, example: Any) -> None:
    raise OptbenchError(f"`{key}` must be {rule}, got {value!r}. Fix: pass a valid value, e.g. `{key}={example}`.")


# ----------------------------------------------------------------------------- numbers


def _check_numbers(run: DictConfig) -> None:
    """Every float finite and within float32, every integer within int64; -0.0 becomes 0.0."""
    for parent, key, full, value in _leaves(run):
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, float):
            if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
                what = "a finite number" if not math.isfinite(value) else "within float32's range (|x| <= 3.4e38)"
                _refuse(full, value, what, _example(run, full))
            if value == 0.0 and math.copysign(1.0, value) < 0:
                parent[key] = 0.0  # the same run; one spelling for the config hash
        elif isinstance(value, int) and full not in RANGES and not -INT64_MAX - 1 <= value <= INT64_MAX:
            _refuse(full, value, "within torch's 64-bit integer range", _example(run, full))


def _leaves(node, prefix: str = ""):
    items = node.items() if isinstance(node, DictConfig) else enumerate(node)
    for key, value in items:
        full = f"{prefix}{key}" if isinstance(node, DictConfig) else f"{prefix.rstrip('.')}[{key}]"
        if isinstance(value, (DictConfig, ListConfig)):
            yield from _leaves(value, full + ".")
        else:
            yield node, key, full, value


@functools.lru_cache(maxsize=None)
def _yaml_defaults(group: str, name: str) -> dict:
    """conf/<group>/<name>.yaml (or conf/config.yaml), for the examples in messages."""
    from importlib import resources

    try:
        path = resources.files("optbench.conf") / (f"{group}/{name}.yaml" if group else "config.yaml")
        return OmegaConf.to_container(OmegaConf.create(path.read_text()))
    except Exception:  # an example is a courtesy: never fail validation over it
        return {}


def _example(run: DictConfig, key: str) -> Any:
    """A valid value for ``key``: its default in conf/ (or the schema's)."""
    section, _, leaf = key.partition(".")
    leaf = leaf.split("[")[0]
    if section == "optimizer":
        value = _yaml_defaults("optimizer", run.optimizer.name).get(leaf)
    elif section == "model":
        value = _yaml_defaults("model", run.model.name).get(leaf)
    elif section == "dataset":
        value = _yaml_defaults("dataset", run.dataset.name).get("dataset", {}).get(leaf)
    else:
        value = OmegaConf.select(OmegaConf.create(_yaml_defaults("", "config")), key.split("[")[0])
        if value is None:
            value = OmegaConf.select(_schema(RunConfig), key.split("[")[0])
    if isinstance(value, list):
        value = value[0] if value else None
    return "..." if value is None or isinstance(value, dict) else value


# ----------------------------------------------------------------------------- ranges


def _check_ranges(run: DictConfig) -> None:
    for key, (least, largest) in RANGES.items():
        value = OmegaConf.select(run, key)
        if value is None:
            continue
        if value < least or value > (largest or INT64_MAX):
            rule = f"an integer >= {least}" if value < least and largest is None else \
                f"an integer from {least} to {largest or INT64_MAX}"
            _refuse(key, value, rule, _example(run, key) if key in ("seed", "batch_size", "epochs") else least)
    threads = os.cpu_count() or 1
    if run.threads is not None and run.threads > 4 * threads:
        _refuse("threads", run.threads, f"at most 4 x this machine's {threads} cores ({4 * threads})", threads)
    for key, options in CHOICES.items():
        value = OmegaConf.select(run, key)
        if value not in options:
            raise OptbenchError(f"`{key}` must be one of {', '.join(options)}, got {value!r}. Fix: `{key}={options[0]}`.")
    if not run.grad_clip.threshold > 0:
        _refuse("grad_clip.threshold", run.grad_clip.threshold, "> 0", 1.0)
    if not run.schedule.gamma > 0:
        _refuse("schedule.gamma", run.schedule.gamma, "> 0", 0.1)
    if not run.schedule.eta_min >= 0:
        _refuse("schedule.eta_min", run.schedule.eta_min, ">= 0 (the learning rate a cosine schedule ends at)", 0.0)


def _check_dataset(run: DictConfig) -> None:
    node = run.dataset
    if node.name == "linreg":
        true_w = list(node.true_w)
        for index, value in enumerate(true_w):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                _refuse(f"dataset.true_w[{index}]", value, "a number", 2.0)
        if not true_w:
            _refuse("dataset.true_w", true_w, "a list of at least one weight", "[2.0,-3.4]")
        if node.num_examples < 1:
            _refuse("dataset.num_examples", node.num_examples, "an integer >= 1", 1000)
        if node.num_examples * (len(true_w) + 1) > LINREG_MAX_VALUES:
            _refuse("dataset.num_examples", node.num_examples,
                    f"at most {LINREG_MAX_VALUES // (len(true_w) + 1)} with {len(true_w)} weights (the data and its "
                    f"least-squares solution must fit in memory: examples x (weights + 1) <= {LINREG_MAX_VALUES:.0e})",
                    1000)
        if not node.noise >= 0:
            _refuse("dataset.noise", node.noise, ">= 0 (the standard deviation of the label noise)", 0.01)
        if run.batch_size > node.num_examples:
            raise OptbenchError(
                f"batch_size={run.batch_size} is larger than the dataset (dataset.num_examples={node.num_examples}): "
                f"a batch cannot hold more examples than there are. Fix: pass batch_size={node.num_examples} "
                f"(full batch) or less, or make more data with dataset.num_examples={run.batch_size}."
            )
    elif node.name == "quadratic":
        if not node.coef > 0:
            _refuse("dataset.coef", node.coef, "> 0 (f(x) = coef * x^2 has its minimum at x = 0 only then)", 4.0)


def _check_model(run: DictConfig) -> None:
    """The model fits the dataset (``DATASET_MODELS``), and its sizes are sane."""
    model, dataset = run.model, run.dataset.name
    fits = DATASET_MODELS[dataset]
    if model.name not in fits:
        homes = [d for d, names in DATASET_MODELS.items() if model.name in names]
        raise OptbenchError(
            f"model={model.name} does not fit dataset={dataset}: {dataset} trains "
            f"{'its own model' if len(fits) == 1 else 'these models'} ({', '.join(f'model={m}' for m in fits)}), "
            f"and model={model.name} is for {', '.join(homes)}. Fix: drop `model={model.name}` from the command "
            f"line (dataset={dataset} picks model={fits[0]} itself), or train it on "
            f"{'an image dataset' if set(homes) <= set(TEST_SET_DATASETS) else 'its dataset'}, "
            f"e.g. `dataset={homes[-1]} model={model.name}`."
        )
    for key in ("hidden", "channels"):
        if key in model:
            _check_widths(model, key)
    if model.name == "mlp":
        from optbench.models.mlp import ACTIVATIONS, num_parameters

        if model.activation not in ACTIVATIONS:
            raise OptbenchError(
                f"`model.activation` must be one of {', '.join(ACTIVATIONS)}, got {model.activation!r}. "
                "Fix: `model.activation=relu` (the seeds' choice)."
            )
        count = num_parameters(model, IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2], NUM_CLASSES)
    elif model.name == "cnn":
        from optbench.models.cnn import num_parameters

        count = num_parameters(model, IMAGE_SHAPE, NUM_CLASSES)
    else:
        return
    if count > MODEL_MAX_PARAMETERS:
        key = "hidden" if model.name == "mlp" else "channels"
        raise OptbenchError(
            f"model={model.name} with `model.{key}={_list_text(model[key])}` has {count:,} parameters, more than "
            f"optbench trains ({MODEL_MAX_PARAMETERS:,}: the weights, gradients and optimizer state must fit in "
            f"memory). Fix: use narrower or fewer layers, e.g. `model.{key}={_list_text(_yaml_defaults('model', model.name)[key])}`."
        )


def _list_text(values) -> str:
    return "[" + ",".join(str(v) for v in values) + "]"


def _check_widths(model: DictConfig, key: str) -> None:
    values = list(model[key])
    default = _list_text(_yaml_defaults("model", model.name).get(key) or [1])
    if not values:
        _refuse(f"model.{key}", values, "a list of at least one width", default)
    if len(values) > MODEL_MAX_LAYERS[key]:
        _refuse(f"model.{key}", _list_text(values), f"a list of at most {MODEL_MAX_LAYERS[key]} widths", default)
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MODEL_MAX_WIDTH[key]:
            _refuse(f"model.{key}[{index}]", value, f"an integer from 1 to {MODEL_MAX_WIDTH[key]}",
                    _yaml_defaults("model", model.name).get(key, [1])[0])


def _check_optimizer_values(node: DictConfig) -> None:
    name = node.name
    for key, (low, low_closed, high, high_closed) in limits(name).items():
        value = node.get(key)
        if value is None:
            continue
        below = low is not None and (value < low if low_closed else value <= low)
        above = high is not None and (value > high if high_closed else value >= high)
        if below or above:
            _refuse(f"optimizer.{key}", value, _interval(low, low_closed, high, high_closed),
                    _example_optimizer(name, key))
    if node.get("lr") is not None and abs(float(node.lr)) < FLOAT32_TINY:
        _refuse("optimizer.lr", node.lr, f">= {FLOAT32_TINY:.3g} (below that it is 0 in float32)",
                _example_optimizer(name, "lr"))
    for key, options in STRING_CHOICES.get(name, {}).items():
        if node.get(key) not in options:
            shown = ", ".join("null" if o is None else o for o in options)
            raise OptbenchError(f"`optimizer.{key}` must be one of {shown}, got {node.get(key)!r}. "
                                f"Fix: `optimizer.{key}={shown.split(', ')[-1]}` (or null).")
    if name == "asgd" and node.lambd * node.lr >= 1:
        raise OptbenchError(
            f"optimizer.lambd * optimizer.lr must be < 1, got {node.lambd} * {node.lr}: ASGD multiplies the weights "
            "by 1 - lambd * lr each step, which would flip or zero them. Fix: lower `optimizer.lambd` (default 1e-4).")
    if name == "rprop" and node.step_size_min > node.step_size_max:
        raise OptbenchError(
            f"optimizer.step_size_min ({node.step_size_min}) must not exceed optimizer.step_size_max "
            f"({node.step_size_max}). Fix: swap them, or pass e.g. `optimizer.step_size_min=1e-06 "
            "optimizer.step_size_max=50`.")


def _interval(low, low_closed, high, high_closed) -> str:
    if high is None:
        return f"{'>=' if low_closed else '>'} {low:g}"
    return f"in {'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"


def _example_optimizer(name: str, key: str) -> Any:
    value = _yaml_defaults("optimizer", name).get(key)
    if value is None:  # an optional key (lbfgs max_eval): its least valid value
        value = limits(name).get(key, (None,))[0]
    return "..." if value is None else value


def _check_optimizer_choice(node: DictConfig) -> None:
    spec = OPTIMIZERS[node.name]
    if node.impl not in ("scratch", "builtin"):
        raise OptbenchError(
            f"`optimizer.impl` must be scratch or builtin, got {node.impl!r}. Fix: `optimizer.impl=builtin`."
        )
    if spec.refusal:
        raise OptbenchError(spec.refusal)
    if node.impl == "scratch" and spec.scratch is None:
        have = ", ".join(name for name, s in sorted(OPTIMIZERS.items()) if s.scratch is not None)
        raise OptbenchError(
            f"{node.name} has no scratch implementation; the optimizers with one are: {have}. "
            f"Fix: run it as `optimizer={node.name} optimizer.impl=builtin`."
        )


def _check_combinations(run: DictConfig) -> None:
    if run.objective in ("test_acc", "best_test_loss") and run.dataset.name not in TEST_SET_DATASETS:
        raise OptbenchError(
            f"objective={run.objective} needs a test set, and dataset={run.dataset.name} has none (only "
            f"{', '.join(TEST_SET_DATASETS)} have one). Fix: use objective=final_train_loss, or a dataset with a test "
            "set, e.g. dataset=fashion_mnist."
        )
    if run.compile and OPTIMIZERS[run.optimizer.name].needs_closure:
        raise OptbenchError(
            f"compile=true cannot compile optimizer={run.optimizer.name}: its step(closure) re-evaluates the loss a "
            "data-dependent number of times, so there is no single training step to compile. Fix: run it with "
            "compile=false."
        )
    if run.compile and run.diagnostics:
        raise OptbenchError(
            "diagnostics=true reads each parameter's .grad, which the compiled step does not keep (it takes "
            "gradients functionally). Fix: run the diagnostics with compile=false (the losses are the same)."
        )
    _check_seed(run.seed, run.epochs)


def _check_seed(seed: int, epochs: int) -> None:
    """Every generator the run seeds (data, weights, each epoch's batch order) takes its seed."""
    import torch

    from optbench.train.trainer import epoch_generator

    try:
        torch.Generator().manual_seed(seed)
        epoch_generator(seed, 0)
        epoch_generator(seed, epochs - 1)
    except (RuntimeError, ValueError, OverflowError) as err:
        raise OptbenchError(
            f"seed={seed} with epochs={epochs} is beyond torch's seed range ({_first_line(err)}). "
            "Fix: pass a smaller seed (e.g. seed=0) or fewer epochs."
        ) from None


def _check_with_torch(node: DictConfig) -> None:
    """torch.optim's own checks: build the builtin optimizer on a dummy tensor and take one step.

    Runs only for ``impl=builtin`` (such a run imports torch._dynamo at its first step
    anyway); the scratch optimizers' keys are all covered by the ranges above.
    """
    if node.impl != "builtin":
        return
    import torch

    from optbench.optim.registry import hyperparameters

    spec = OPTIMIZERS[node.name]
    hparams = hyperparameters(OmegaConf.to_container(node))
    param = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    try:
        optimizer = spec.builtin([param], **spec.to_torch(hparams))

        def closure():
            param.grad = None
            loss = (param * param).sum()
            loss.backward()
            return loss

        if spec.needs_closure:
            optimizer.step(closure)
        else:
            closure()
            optimizer.step()
    except OptbenchError:
        raise  # our own mapping already said what is wrong and how to fix it
    except Exception as err:  # whatever torch refuses or breaks on: never a traceback mid-run
        shown = " ".join(f"optimizer.{k}={v}" for k, v in hparams.items())
        raise OptbenchError(
            f"torch.optim.{spec.builtin.__name__} does not accept these hyperparameters ({shown}): "
            f"{type(err).__name__}: {_first_line(err)}. Fix: correct the value it names "
            f"(the defaults are in conf/optimizer/{node.name}.yaml)."
        ) from None


def check_device(device: str) -> None:
    """Refuse a device this machine does not have."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise OptbenchError(
            "device=cuda was asked for, but CUDA is not available on this machine "
            f"(torch {torch.__version__} sees no GPU). Fix: use device=cpu, or device=auto to pick the best available."
        )
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise OptbenchError(
            "device=mps was asked for, but Apple's MPS backend is not available here. "
            "Fix: use device=cpu, or device=auto to pick the best available."
        )
