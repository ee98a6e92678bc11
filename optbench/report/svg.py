"""A matplotlib Figure as inline SVG markup for the report (text stays text, no external refs)."""

from __future__ import annotations

import io
import re

import matplotlib

#: colours for up to 20 curves on one axes (matplotlib's tab20, dark shade first, then light)
PALETTE = [matplotlib.colors.to_hex(c) for c in (matplotlib.colormaps["tab20"].colors[0::2]
                                                  + matplotlib.colormaps["tab20"].colors[1::2])]


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def figure_svg(fig, ident: str) -> str:
    """``fig`` as an ``<svg>`` element that scales to its container.

    ``ident`` salts matplotlib's element ids so that two figures inlined in one page never
    share an id (a clip path of one figure would otherwise clip the other); it also makes
    the output deterministic.
    """
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"optbench-report-{ident}",
                                "svg.image_inline": True}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    start = text.find("<svg")
    text = text[start:]
    # size: drop the absolute width/height so CSS scales it (the viewBox keeps the aspect ratio)
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1', text, count=1)
    text = text.replace("<svg", f'<svg class="fig" role="img" data-fig="{ident}"', 1)
    # metadata blocks only carry RDF namespaces; they are dead weight inline
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.S)
    # matplotlib names every group (figure_1, axes_1...); unreferenced ids would repeat across figures
    referenced = set(re.findall(r"#([A-Za-z0-9_.:-]+)\)?\"", text)) | set(re.findall(r"url\(#([^)]+)\)", text))
    text = re.sub(r' id="([^"]*)"', lambda m: m.group(0) if m.group(1) in referenced else "", text)
    return text.strip()
