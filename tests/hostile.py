"""The hostile-input battery's one assertion: exit code, no traceback, no byte changed.

Each battery case runs a command in a folder that may already hold files (an earlier
run, a figure), then checks:

* the exit code is the one expected (2 for refused input unless the case says otherwise);
* neither stream holds a Python traceback;
* a refusal is one paragraph (no blank line inside the message) that names a fix;
* every file that existed before the command has the same bytes after it (``keep``:
  folders whose files must not change; by default the whole working folder).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from optbench.run_folder import snapshot

TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "', "Error executing job with overrides")


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_command(argv: Sequence[str], cwd: Path, timeout: float = 180, env: dict | None = None,
                input_text: str | None = None) -> Outcome:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "100", **(env or {})}
    done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env,
                          input=input_text, stdin=None if input_text is not None else subprocess.DEVNULL)
    return Outcome(done.returncode, done.stdout, done.stderr)


def assert_no_traceback(outcome: Outcome) -> None:
    for marker in TRACEBACK_MARKERS:
        assert marker not in outcome.output, f"traceback-like output ({marker!r}):\n{outcome.output[-3000:]}"


def assert_refusal(outcome: Outcome, *, code: int = 2, mentions: Sequence[str] = ()) -> str:
    """A refusal: exit ``code``, no traceback, one paragraph on stderr that names a fix. Returns the message."""
    assert outcome.returncode == code, f"exit {outcome.returncode}, wanted {code}:\n{outcome.output[-3000:]}"
    assert_no_traceback(outcome)
    message = outcome.stderr.strip()
    assert message, f"nothing on stderr:\n{outcome.stdout[-2000:]}"
    assert "\n\n" not in message, f"more than one paragraph:\n{message}"
    assert "fix" in message.lower(), f"names no fix:\n{message}"
    for text in mentions:
        assert text in message, f"{text!r} not in:\n{message}"
    return message


def assert_unchanged(before: dict[str, bytes], folder: Path) -> None:
    """Every file in ``before`` still exists below ``folder`` with the same bytes (new files are allowed)."""
    after = snapshot(folder)
    for name, data in before.items():
        assert name in after, f"{name} was removed"
        assert after[name] == data, f"{name} was changed"


def battery_case(argv: Sequence[str], cwd: Path, *, code: int = 2, mentions: Sequence[str] = (),
                 keep: Sequence[Path] | None = None, timeout: float = 180, env: dict | None = None) -> Outcome:
    """Run one battery case and make all four checks (see the module docstring)."""
    folders = [Path(p) for p in (keep if keep is not None else [cwd])]
    before = {folder: snapshot(folder) for folder in folders}
    outcome = run_command(argv, cwd, timeout=timeout, env=env)
    if code == 2:
        assert_refusal(outcome, code=code, mentions=mentions)
    else:
        assert outcome.returncode == code, f"exit {outcome.returncode}, wanted {code}:\n{outcome.output[-3000:]}"
        assert_no_traceback(outcome)
    for folder in folders:
        assert_unchanged(before[folder], folder)
    return outcome


def optbench(*args: str) -> list[str]:
    return ["optbench", *args]


def optbench_plot(*args: str) -> list[str]:
    return ["optbench-plot", *args]


PYTHON = sys.executable
