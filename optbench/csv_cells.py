"""How a value is written into a CSV cell: the run files and the plotter's summary.csv agree."""

from __future__ import annotations

import math
import numbers
from typing import Any


def csv_cell(value: Any, float_format: str | None = None) -> str:
    """``None`` -> empty, NaN -> ``nan``, infinities -> ``inf``/``-inf``, floats exactly
    (``repr``) unless ``float_format`` is given, anything else with ``str``."""
    if value is None:
        return ""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, int)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return format(value, float_format) if float_format else repr(value)
    return str(value)
