"""A problem describes its outputs (summary.json's ``outputs``); the console, the summary, the plotter
and the report follow that description, and old summaries without it read as their dataset's."""

from __future__ import annotations

import io
import json
import re
import tokenize
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from conftest import REPO, compose_config, read_summary
from run_folders import curve_rows, make_config, quadratic_rows, write_run
from test_run_format_doc import table_keys
from torch import nn

from optbench import problems as problem_registry
from optbench import run_folder as rf
from optbench.config.validate import validate
from optbench.plot.cli import main as plot_main
from optbench.plot.figures import loss_figure
from optbench.plot.runs import PlotError, load_run
from optbench.plot.table import summary_rows
from optbench.problems.base import LOSSES, Column, Outputs, Problem
from optbench.problems.images import ImageClassification
from optbench.problems.linreg import LinearRegression
from optbench.problems.quadratic import Quadratic
from optbench.train.console import RunConsole
from optbench.train.run import execute

DATASET_NAMES = ("linreg", "quadratic", "mnist", "fashion")


# --------------------------------------------------------------------------- no dataset names in readers


def _code_files() -> list[Path]:
    root = REPO / "optbench"
    return [*sorted((root / "train").glob("*.py")), *sorted((root / "plot").glob("*.py")),
            *sorted((root / "report").glob("*.py")), root / "jobs.py"]


def dataset_name_uses(path: Path) -> list[str]:
    """Identifiers that contain a dataset's name, and string literals that are one (comments,
    docstrings and prose are free to name datasets)."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        text = token.string
        if token.type == tokenize.NAME and any(name in text.lower() for name in DATASET_NAMES):
            found.append(f"{path.name}:{token.start[0]}: identifier {text}")
        elif token.type == tokenize.STRING:
            body = re.sub(r"^[rbuf]*('''|\"\"\"|'|\")|('''|\"\"\"|'|\")$", "", text, flags=re.I).strip()
            if body.lower() in ("linreg", "quadratic", "mnist", "fashion_mnist"):
                found.append(f"{path.name}:{token.start[0]}: literal {text}")
    return found


def test_no_dataset_name_logic_in_train_plot_report_or_jobs():
    uses = [use for path in _code_files() for use in dataset_name_uses(path)]
    assert uses == []


def test_the_dataset_name_check_catches_what_it_is_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('"""linreg and quadratic in a docstring are fine."""\n# so is mnist here\n'
                   'if run.dataset == "quadratic":\n    is_linreg = True\n')
    assert [use.split(": ", 1)[1] for use in dataset_name_uses(bad)] == ['literal "quadratic"', "identifier is_linreg"]


# --------------------------------------------------------------------------- the descriptions


@pytest.mark.parametrize("dataset, problem", [("linreg", LinearRegression), ("quadratic", Quadratic),
                                              ("mnist", ImageClassification), ("fashion_mnist", ImageClassification)])
def test_old_summaries_read_as_what_their_problem_declares_today(dataset, problem):
    assert rf.LEGACY_OUTPUTS[dataset] == problem.outputs
    assert problem.step_column_names == problem.outputs.problem_columns(LOSSES)
    assert set(problem.step_column_names) <= set(rf.PROBLEM_LOSS_COLUMNS)
    assert rf.Outputs.from_json(json.loads(json.dumps(problem.outputs.to_json()))) == problem.outputs


def test_the_outputs_doc_table_names_every_field():
    assert table_keys("summary.json: outputs") == [f.name for f in fields(Outputs)]


def test_a_malformed_outputs_is_a_one_line_error_naming_the_fix(tmp_path):
    run = write_run(tmp_path / "r", summary={"outputs": {"columns": [{"name": "loss", "file": "weights.bin"}]}})
    with pytest.raises(PlotError, match="`outputs` has a malformed column") as err:
        load_run(run)
    assert "\n" not in str(err.value) and "Fix:" in str(err.value) and str(run) in str(err.value)


def test_a_summary_without_outputs_reads_as_its_dataset_and_an_unknown_one_as_undescribed(tmp_path):
    run = load_run(write_run(tmp_path / "q", config=make_config("quadratic", "sgd")))
    assert run.outputs == Quadratic.outputs and run.column("loss").label == "loss f(x)"
    config = make_config("linreg", "sgd", **{"dataset.name": "someday"})
    other = load_run(write_run(tmp_path / "u", config=config, losses=curve_rows([1.0, 0.5])))
    assert other.outputs is None and other.column("loss") == rf.GENERIC_OUTPUTS.column("loss")


def _figure_facts(run) -> list:
    fig = loss_figure([run])
    return [(ax.get_xlabel(), ax.get_ylabel(), ax.get_yscale()) for ax in fig.axes]


@pytest.mark.parametrize("dataset", ["linreg", "quadratic", "mnist"])
def test_a_run_with_outputs_plots_as_an_old_run_of_its_dataset(tmp_path, dataset):
    config = make_config(dataset, "sgd")
    rows = (quadratic_rows(0.1, 10) if dataset == "quadratic" else
            curve_rows([1.0, 0.5, 0.2], extra={"full_loss": [0.9, 0.4, 0.1], "suboptimality": [0.8, 0.3, 0.05]}))
    old = load_run(write_run(tmp_path / "old", config=config, losses=rows))
    new = load_run(write_run(tmp_path / "new", config=config, losses=rows,
                             summary={"outputs": rf.LEGACY_OUTPUTS[dataset].to_json()}))
    assert old.outputs == new.outputs and _figure_facts(old) == _figure_facts(new)
    assert summary_rows([old])[0] | {"run": None} == summary_rows([new])[0] | {"run": None}


# --------------------------------------------------------------------------- a new problem flows through


class ToyProblem(Problem):
    """w walks from 0 towards 3 under gradient descent on (w - 3)^2; toy_metric = -(w - 1.5)^2 peaks halfway."""

    name = "toy"
    outputs = Outputs(
        columns=(Column("toy_metric", LOSSES, "toy score", log_scale=False, higher_is_better=True, table=True),
                 Column("toy_distance", rf.EPOCHS, "distance to 3", console="Distance: {:.4f}")),
        x="step",
        report_lines=("toy w: {w:.3f} (target {target:g})", "never shown: {absent}"),
    )
    step_column_names = outputs.problem_columns(LOSSES)

    @property
    def num_train(self) -> int:
        return 1

    def batches(self, batch_size, generator):
        yield torch.zeros(1), torch.zeros(1)

    def make_model(self) -> nn.Module:
        model = nn.Module()
        model.w = nn.Parameter(torch.zeros(()))
        return model

    def loss(self, model, batch):
        return (model.w - 3.0) ** 2

    @torch.no_grad()
    def step_columns(self, model):
        return {"toy_metric": -float((model.w - 1.5) ** 2)}

    @torch.no_grad()
    def evaluate(self, model):
        return {"toy_distance": abs(3.0 - float(model.w))}

    @torch.no_grad()
    def report(self, model):
        return {"w": float(model.w), "target": 3.0}


@pytest.fixture
def toy_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(problem_registry.PROBLEMS, "toy", lambda cfg, device: ToyProblem(device))
    overrides = ["dataset=linreg", "optimizer=sgd", "optimizer.lr=0.1", "epochs=12", "log_every=1", "device=cpu"]
    cfg = validate(compose_config(*overrides))
    cfg.dataset.name = "toy"
    run_dir = tmp_path / "toy"
    summary = execute(cfg, run_dir, overrides, RunConsole(quiet=False))
    return run_dir, summary, capsys.readouterr().out


def test_a_new_problem_describes_itself_and_the_console_follows(toy_run):
    run_dir, summary, out = toy_run
    assert summary["status"] == "completed" and read_summary(run_dir)["outputs"] == ToyProblem.outputs.to_json()
    assert Outputs.from_json(summary["outputs"]) == ToyProblem.outputs
    logged = [float(line.split(",")[-1]) for line in (run_dir / LOSSES).read_text().splitlines()[1:]]
    assert summary["final"]["toy_metric"] == logged[-1]
    assert set(summary["final"]) == {"loss", "train_loss", "toy_metric", "toy_distance"}
    assert f"toy w: {summary['report']['w']:.3f} (target 3)" in out and "never shown" not in out
    assert re.search(r"^epoch: 0, Train Loss: \d+\.\d{6}, Distance: \d\.\d{4}, Time: \d+\.\d\d s$", out, re.M)


def test_a_new_problems_epoch_metric_is_recorded_summarised_and_printed(toy_run):
    run_dir, summary, out = toy_run
    header, *rows = (run_dir / rf.EPOCHS).read_text().splitlines()
    assert header.split(",") == [*rf.EPOCH_COLUMNS, "toy_distance"]
    distances = [float(row.split(",")[-1]) for row in rows]
    assert len(distances) == 12 and distances == sorted(distances, reverse=True)  # w walks towards 3
    assert summary["final"]["toy_distance"] == distances[-1] and summary["best"]["toy_distance"] == min(distances)
    assert f"Distance: {distances[0]:.4f}" in out


def test_a_new_problems_metric_plots_with_its_declared_defaults_and_its_best_is_the_max(toy_run, tmp_path, capsys):
    run_dir, summary, _ = toy_run
    run = load_run(run_dir)
    logged = run.losses["toy_metric"].to_numpy()
    assert logged.argmax() not in (0, len(logged) - 1)  # the best is neither the first nor the last value
    ax = loss_figure([run], y="toy_metric").axes[0]
    assert (ax.get_yscale(), ax.get_xlabel(), ax.get_ylabel()) == ("linear", "step", "toy score")
    row = summary_rows([run])[0]
    assert row["best_toy_metric"] == pytest.approx(logged.max()) and row["final_toy_metric"] == pytest.approx(logged[-1])
    status = plot_main([str(run_dir), "--y", "toy_metric", "--table", "--out", str(tmp_path / "fig")])
    out = capsys.readouterr().out
    assert status == 0 and (tmp_path / "fig" / "toy_toy_metric_vs_step.png").exists()
    header = (tmp_path / "fig" / "toy_summary.csv").read_text().splitlines()[0].split(",")
    assert header[-2:] == ["final_toy_metric", "best_toy_metric"] and "toy" in out
