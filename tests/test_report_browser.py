"""optbench-report in a real browser: headless Chromium loads the page, runs its script,
takes a screenshot; no console error, every section in the rendered DOM, every control works.

The page's script records what it did on <body>: ``data-ready`` (it ran to the end),
``data-js-errors`` (any uncaught error), and with ``#selftest`` in the URL
``data-selftest`` ("ok", or the controls that failed: it switches every curve figure to
every x axis and y scale, and sorts every table by every column, checking the order).
Chromium's ``--enable-logging=stderr`` prints every console message and uncaught error
as a ``CONSOLE`` line, which must not appear.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hostile import run_command
from test_report import write_study

from optbench.report.build import SECTIONS
from optbench.report.cli import main

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)
if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI must run the browser tests: chromium is not installed (.ci/run installs it)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed here (apt-get install chromium); "
                                                          "CI installs it")

CONSOLE = re.compile(r"CONSOLE|Uncaught|Content Security Policy", re.I)


def chromium(url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "chromium-profile"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
         *args, url],
        capture_output=True, text=True, timeout=120)


def console_errors(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if CONSOLE.search(line)]


def dom(path: Path, tmp: Path, fragment: str = "") -> tuple[str, list[str]]:
    done = chromium(path.resolve().as_uri() + fragment, tmp, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, console_errors(done)


def body_attrs(text: str) -> dict[str, str]:
    tag = re.search(r"<body([^>]*)>", text).group(1)
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    out = root / "report.html"
    assert main([str(write_study(root)), "--out", str(out), "--target", "mnist=0.5"]) == 0
    return out


def test_the_console_check_sees_errors(tmp_path):
    """The check is not vacuous: a page with a script error and a blocked request is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
                   "content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>"
                   '<img src="http://example.invalid/x.png"><script>console.error("boom"); nosuch();</script>'
                   "</body></html>")
    _, errors = dom(bad, tmp_path)
    assert any("Uncaught" in line for line in errors) and any("boom" in line for line in errors)
    assert any("Content Security Policy" in line for line in errors)


def test_rendered_dom_has_every_section_and_no_console_error(report, tmp_path):
    text, errors = dom(report, tmp_path)
    assert errors == []
    attrs = body_attrs(text)
    assert attrs.get("data-ready") == "1" and "data-js-errors" not in attrs
    for ident, heading in SECTIONS:
        assert re.search(rf'<section id="{ident}" data-section="{ident}"><h2>{heading}</h2>', text), ident
    assert text.count('data-sortable-ready="1"') == text.count('<table class="sortable')
    assert text.count("<svg") >= 3 + 1  # one shown curve figure per problem, plus the profiles at least


def test_every_control_works_in_the_browser(report, tmp_path):
    text, errors = dom(report, tmp_path, "#selftest")
    assert errors == []
    attrs = body_attrs(text)
    assert attrs.get("data-selftest") == "ok", attrs
    assert "data-js-errors" not in attrs
    assert int(attrs["data-load-ms"]) >= 0


def test_screenshot(report, tmp_path):
    shot = tmp_path / "report.png"
    done = chromium(report.resolve().as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1280,2400")
    assert done.returncode == 0, done.stderr[-2000:]
    assert console_errors(done) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a page with figures, not a blank one


@pytest.mark.slow
def test_end_to_end_tiny_linreg_sweep(tmp_path):
    """Train two tiny linreg runs with the real CLI, report them, open the report in Chromium."""
    trained = run_command(["optbench", "-m", "optimizer=sgd,rmsprop", "epochs=1", "quiet=true", "threads=1",
                           "hydra.sweep.dir=sweep"], tmp_path, timeout=300)
    assert trained.returncode == 0, trained.output[-3000:]
    made = run_command(["optbench-report", "sweep", "--out", "report.html"], tmp_path, timeout=300)
    assert made.returncode == 0, made.output[-3000:]
    text, errors = dom(tmp_path / "report.html", tmp_path, "#selftest")
    assert errors == []
    assert body_attrs(text).get("data-selftest") == "ok"
    assert 'id="curves-linreg"' in text and "optbench optimizer=rmsprop" in text
    assert "None: every run completed." in text
