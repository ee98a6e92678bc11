"""Legend labels come from what differs between runs (config and overrides)."""

from __future__ import annotations

import pytest
from run_folders import make_config

from optbench.plot.labels import format_value, make_labels, with_mark
from optbench.plot.runs import flatten


def labels_for(configs, overrides=None):
    flats = [flatten(c) for c in configs]
    return make_labels(flats, overrides or [[] for _ in configs])


def test_alpha_differs():
    configs = [make_config(**{"optimizer.alpha": a}) for a in (0.9, 0.999)]
    assert labels_for(configs, [["optimizer.alpha=0.9"], ["optimizer.alpha=0.999"]]) == ["alpha=0.9", "alpha=0.999"]


def test_batch_size_differs():
    configs = [make_config("mnist", "sgd", batch_size=b) for b in (1, 64)]
    assert labels_for(configs) == ["batch_size=1", "batch_size=64"]


def test_impl_differs():
    configs = [make_config(**{"optimizer.impl": i}) for i in ("scratch", "builtin")]
    assert labels_for(configs) == ["impl=scratch", "impl=builtin"]


def test_optimizer_choice_hides_the_keys_it_implies():
    names = ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adadelta"]
    configs = [make_config("mnist", n) for n in names]
    overrides = [[f"optimizer={n}", "+experiment=all_optimizers"] for n in names]
    assert labels_for(configs, overrides) == [f"optimizer={n}" for n in names]


def test_twins_show_optimizer_then_impl():
    configs, overrides = [], []
    for name in ("adam", "adadelta"):
        for impl in ("scratch", "builtin"):
            configs.append(make_config("mnist", name, **{"optimizer.impl": impl}))
            overrides.append([f"optimizer={name}", f"optimizer.impl={impl}"])
    assert labels_for(configs, overrides) == [
        "optimizer=adam, impl=scratch", "optimizer=adam, impl=builtin",
        "optimizer=adadelta, impl=scratch", "optimizer=adadelta, impl=builtin",
    ]


def test_explicit_override_is_kept_even_if_the_choice_would_explain_it():
    # seed 003: lr 0.01 with momentum vs lr 0.03 plain sgd
    configs = [make_config("quadratic", "momentum", **{"optimizer.lr": 0.01, "optimizer.momentum": 0.9}),
               make_config("quadratic", "sgd", **{"optimizer.lr": 0.03})]
    overrides = [["optimizer=momentum", "optimizer.lr=0.01", "optimizer.momentum=0.9"],
                 ["optimizer=sgd", "optimizer.lr=0.03"]]
    assert labels_for(configs, overrides) == ["optimizer=momentum, lr=0.01, momentum=0.9", "optimizer=sgd, lr=0.03"]


def test_label_order_follows_overrides():
    configs = [make_config("mnist", "sgd", batch_size=b, **{"optimizer.lr": lr}) for b, lr in ((1, 0.01), (64, 0.01), (64, 1.0))]
    overrides = [[f"batch_size={c['batch_size']}", f"optimizer.lr={c['optimizer']['lr']}"] for c in configs]
    assert labels_for(configs, overrides) == ["batch_size=1, lr=0.01", "batch_size=64, lr=0.01", "batch_size=64, lr=1"]


def test_output_settings_never_label():
    configs = [make_config(quiet=q, results_root=r) for q, r in ((True, None), (False, "/x"))] + [make_config(**{"optimizer.alpha": 0.5})]
    labels = labels_for(configs)
    assert labels == ["alpha=0.9", "alpha=0.9", "alpha=0.5"]


def test_same_short_name_uses_full_key():
    configs = [make_config(**{"optimizer.gamma": 0.5, "schedule.gamma": 0.1}),
               make_config(**{"optimizer.gamma": 0.7, "schedule.gamma": 0.5})]
    # without overrides, keys come in config order (schedule is above optimizer)
    assert labels_for(configs) == ["schedule.gamma=0.1, optimizer.gamma=0.5", "schedule.gamma=0.5, optimizer.gamma=0.7"]


def test_single_run_is_named_by_its_optimizer():
    assert labels_for([make_config("mnist", "adam")]) == ["optimizer=adam"]


def test_format_and_marks():
    assert [format_value(v) for v in (1e-10, 0.001, 1.0, True, None, (2.0, -3.4))] == ["1e-10", "0.001", "1", "true", "null", "[2, -3.4]"]
    assert with_mark("lr=1", ["diverged"]) == "lr=1 (diverged)"
    assert with_mark("lr=1", ["diverged", None, "diverged", "incomplete"]) == "lr=1 (2/4 diverged, 1/4 incomplete)"
    assert with_mark("lr=1", [None]) == "lr=1"


def test_a_gamma_sweep_is_labelled_as_the_alpha_sweep_it_is(tmp_path):
    from run_folders import write_multirun

    from optbench.plot.aggregate import group_runs
    from optbench.plot.figures import curve_labels
    from optbench.plot.runs import find_runs, load_runs

    jobs = [{"config": make_config(**{"optimizer.gamma": g}), "overrides": [f"optimizer.gamma={g}", "batch_size=64"]}
            for g in (0.9, 0.999)]
    runs = load_runs(find_runs([write_multirun(tmp_path / "m", jobs)]).runs)
    labels = curve_labels(group_runs(runs))
    assert labels == ["alpha=0.9", "alpha=0.999"]
    assert not any("gamma" in label for label in labels)


def test_alias_overrides_order_labels_by_their_canonical_key():
    configs = [make_config(batch_size=b, **{"optimizer.alpha": a}) for b, a in ((1, 0.9), (64, 0.999))]
    overrides = [[f"optimizer.rho={c['optimizer']['alpha']}", f"batch_size={c['batch_size']}"] for c in configs]
    for config in configs:
        del config["optimizer"]["gamma"], config["optimizer"]["rho"]  # as summary.json's resolved config
    assert labels_for(configs, overrides) == ["alpha=0.9, batch_size=1", "alpha=0.999, batch_size=64"]


def test_the_torch_free_alias_table_is_the_registrys():
    pytest.importorskip("torch")
    from optbench.optim.registry import OPTIMIZERS
    from optbench.optimizer_aliases import OPTIMIZER_ALIASES

    assert {name: dict(spec.aliases) for name, spec in OPTIMIZERS.items() if spec.aliases} == OPTIMIZER_ALIASES


def test_the_alias_module_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, optbench.optimizer_aliases, optbench.plot.runs; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
