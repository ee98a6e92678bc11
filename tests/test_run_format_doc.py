"""docs/run-format.md and optbench/run_folder.py describe the same format."""

from __future__ import annotations

import re
from pathlib import Path

from optbench import run_folder as rf

DOC = Path(__file__).resolve().parents[1] / "docs" / "run-format.md"


def table_keys(heading: str) -> list[str]:
    """The first column of the table under ``## heading``, without backticks."""
    text = DOC.read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("|---")]
    return [re.sub(r"`", "", row.split("|")[1]).strip() for row in rows[1:]]


def test_file_table_names_every_file_the_module_names():
    names = set(table_keys("Files"))
    module = {rf.SUMMARY, rf.LOSSES, rf.EPOCHS, rf.CHECKPOINT, rf.REUSED, rf.LOG, rf.LOCK, rf.HYDRA_CONFIG,
              rf.HYDRA_OVERRIDES, rf.HYDRA_SETTINGS, rf.MULTIRUN_YAML}
    assert names == module


def test_losses_columns_match():
    assert table_keys("losses.csv") == [*rf.LOSS_COLUMNS, *rf.PROBLEM_LOSS_COLUMNS, *rf.DIAGNOSTIC_COLUMNS]


def test_epochs_columns_match():
    assert table_keys("epochs.csv") == list(rf.EPOCH_COLUMNS)


def test_summary_keys_match_in_order():
    assert table_keys("summary.json") == [*rf.SUMMARY_KEYS, *rf.OPTIONAL_SUMMARY_KEYS]


def test_every_status_is_documented():
    text = DOC.read_text()
    for status in rf.STATUSES:
        assert f"`{status}`" in text, status


def test_a_run_writes_exactly_the_documented_summary_keys(tmp_path):
    from conftest import run_config

    summary = run_config(tmp_path / "run", "quiet=true", "steps=5")
    assert list(summary) == list(rf.SUMMARY_KEYS)
    header = (tmp_path / "run" / rf.LOSSES).read_text().splitlines()[0].split(",")
    assert header[: len(rf.LOSS_COLUMNS)] == list(rf.LOSS_COLUMNS)
    assert set(header[len(rf.LOSS_COLUMNS):]) <= set(rf.PROBLEM_LOSS_COLUMNS)
