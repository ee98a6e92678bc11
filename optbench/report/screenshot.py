"""A screenshot of a report for the README gallery (needs Chromium; not used by the report itself).

    python -m optbench.report.screenshot REPORT.html OUT.png

Headless Chromium renders the page 1280 px wide; the PNG puts two columns side by side:
the top of the report (overview, curves, the first results table) and its later
sections (performance profiles, scratch vs builtin, failures, then as much of the
sensitivity section as fits). Sections are found by their blue heading rules.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTH, COLUMN = 1280, 2620
ACCENT = (0x1F, 0x5F, 0xAE)


def capture(report: Path, png: Path, height: int = 12000) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise SystemExit("screenshot: chromium is not installed. Fix: apt-get install chromium.")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}", f"--screenshot={png}",
                        Path(report).resolve().as_uri()], check=True, capture_output=True, timeout=180)


def headings(image) -> list[int]:
    """The y of each section heading's rule (a full-width line in the accent colour)."""
    import numpy as np

    pixels = np.asarray(image.convert("RGB")).astype(int)
    band = pixels[:, 40:WIDTH - 80]
    hits = (np.abs(band - np.array(ACCENT)).sum(axis=2) < 30).mean(axis=1) > 0.9
    rows = np.flatnonzero(hits)
    starts = [int(y) for i, y in enumerate(rows) if i == 0 or y - rows[i - 1] > 3]
    return starts


def montage(report: Path, out: Path) -> Path:
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        full_png = Path(tmp) / "full.png"
        capture(report, full_png)
        full = Image.open(full_png).convert("RGB")
        full.load()
    rules = headings(full)
    if len(rules) < 7:
        raise SystemExit(f"screenshot: found {len(rules)} section headings, not 7. Fix: check the report renders.")
    _, _, _, sensitivity, profiles, _, _ = rules[:7]
    import numpy as np

    ink = np.flatnonzero((np.asarray(full) < 240).any(axis=(1, 2)))
    end = int(ink.max()) + 20
    rest = full.crop((0, profiles - 45, WIDTH, end))
    left = full.crop((0, 0, WIDTH, COLUMN))
    right = Image.new("RGB", (WIDTH, COLUMN), "white")
    right.paste(rest.crop((0, 0, WIDTH, min(rest.height, COLUMN))), (0, 0))
    if rest.height < COLUMN - 100:  # below them, as much of the sensitivity section as fits
        right.paste(full.crop((0, sensitivity - 45, WIDTH, sensitivity - 45 + COLUMN - rest.height)), (0, rest.height))
    sheet = Image.new("RGB", (2 * WIDTH + 20, COLUMN), (217, 222, 229))
    sheet.paste(left, (0, 0))
    sheet.paste(right, (WIDTH + 20, 0))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours are plenty for a page of text and line plots, and a third of the bytes
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m optbench.report.screenshot REPORT.html OUT.png")
    print(montage(Path(sys.argv[1]), Path(sys.argv[2])))
