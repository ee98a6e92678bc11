"""One CSV cell per value: floats exactly (repr), subclasses alike, the special values and other types."""

from __future__ import annotations

import math
import random
from fractions import Fraction

from optbench.csv_cells import csv_cell


class _Real(float):
    """A float subclass: takes the general path."""


def test_plain_floats_are_written_exactly_and_as_their_subclasses_are():
    rng = random.Random(0)
    values = [0.0, -0.0, 5e-324, 1e-300, 1.7976931348623157e308, 0.1, 1 / 3, 2.5e10]
    values += [rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30) for _ in range(1000)]
    for value in values:
        assert csv_cell(value) == repr(value) == csv_cell(_Real(value))
        assert float(csv_cell(value)) == value and math.copysign(1, float(csv_cell(value))) == math.copysign(1, value)


def test_special_values_and_other_types():
    assert [csv_cell(v) for v in (float("nan"), float("inf"), -float("inf"), None)] == ["nan", "inf", "-inf", ""]
    assert [csv_cell(v) for v in (3, True, "x", Fraction(1, 4))] == ["3", "True", "x", "0.25"]
    assert csv_cell(0.123456, "0.3f") == "0.123" and csv_cell(float("nan"), "0.3f") == "nan"
