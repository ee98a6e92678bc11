"""Seed groups: runs that differ only in ``seed`` are drawn as one curve with a band.

The curve is the **median** over seeds at each logged step; the band spans the
interquartile range (25th-75th percentile, numpy's linear interpolation) when the group
has 4 or more seeds, and min-max when it has fewer. On a log y axis every statistic is
computed on log10(y) and mapped back, so the band never reaches zero or below (and with
an even number of seeds the median is the geometric mean of the two middle values).
Only finite values (and, on a log axis, positive ones) enter the statistics: a seed that
diverged or stopped early drops out from the step where its data ends.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from optbench.plot.labels import is_ignored
from optbench.plot.runs import Run

#: fewer seeds than this: the band is min-max; otherwise the interquartile range
IQR_MIN_SEEDS = 4


@dataclass
class Group:
    """Runs with the same config except ``seed`` (and keys that never matter)."""

    runs: list[Run] = field(default_factory=list)

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def size(self) -> int:
        return len(self.runs)

    @property
    def band_kind(self) -> str:
        return "IQR" if self.size >= IQR_MIN_SEEDS else "min-max"


def group_key(run: Run, drop: Sequence[str] = ()) -> tuple:
    return tuple(sorted(
        (key, repr(value)) for key, value in run.flat.items()
        if key != "seed" and key not in drop and not is_ignored(key)
    ))


def group_runs(runs: Sequence[Run], drop: Sequence[str] = ()) -> list[Group]:
    """Groups in the order their first run appears."""
    groups: dict[tuple, Group] = {}
    for run in runs:
        groups.setdefault(group_key(run, drop), Group()).runs.append(run)
    return list(groups.values())


@dataclass
class Band:
    """Per-point statistics over seeds: ``center`` (median), ``low``/``high`` (band), ``count``."""

    center: np.ndarray
    low: np.ndarray
    high: np.ndarray
    count: np.ndarray
    kind: str


def band_stats(values: np.ndarray, *, log: bool, seeds: int | None = None) -> Band:
    """Median and band of ``values`` (seeds x points; NaN where a seed has no value).

    ``seeds`` (default: the number of rows) picks the band: IQR from 4 seeds, else min-max.
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    usable = np.isfinite(values) & ((values > 0) if log else True)
    work = np.where(usable, np.log10(np.where(usable, values, 1.0)) if log else values, np.nan)
    count = usable.sum(axis=0)
    seeds = values.shape[0] if seeds is None else seeds
    kind = "IQR" if seeds >= IQR_MIN_SEEDS else "min-max"
    center = np.full(values.shape[1], np.nan)
    low = np.full(values.shape[1], np.nan)
    high = np.full(values.shape[1], np.nan)
    some = count > 0
    if some.any():
        cols = work[:, some]
        center[some] = np.nanmedian(cols, axis=0)
        if kind == "IQR":
            low[some], high[some] = np.nanquantile(cols, [0.25, 0.75], axis=0)
        else:
            low[some], high[some] = np.nanmin(cols, axis=0), np.nanmax(cols, axis=0)
    if log:
        center, low, high = 10.0 ** center, 10.0 ** low, 10.0 ** high
    return Band(center=center, low=low, high=high, count=count, kind=kind)


@dataclass
class AlignedSeries:
    """A group's seeds on a common grid of keys (steps, or epochs for epochs.csv values)."""

    key: np.ndarray
    x: np.ndarray  # median x over seeds at each key (differs between seeds only for time)
    y: np.ndarray  # seeds x keys, NaN where a seed has no value


def align(series: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> AlignedSeries:
    """Align ``(key, x, y)`` per seed on the union of keys."""
    keys = np.unique(np.concatenate([np.asarray(k, dtype=float) for k, _, _ in series])) if series else np.array([])
    xs = np.full((len(series), len(keys)), np.nan)
    ys = np.full((len(series), len(keys)), np.nan)
    for row, (key, x, y) in enumerate(series):
        index = np.searchsorted(keys, np.asarray(key, dtype=float))
        xs[row, index] = x
        ys[row, index] = y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a key where no seed has an x
        x_center = np.nanmedian(xs, axis=0) if len(series) else keys
    return AlignedSeries(key=keys, x=x_center, y=ys)
