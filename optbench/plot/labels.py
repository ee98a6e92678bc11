"""Legend labels from what differs between curves: ``alpha=0.9``, ``impl=builtin``...

A curve's label lists the config keys whose values differ between the curves of a
figure, read from each run's resolved config (summary.json's ``config``, flattened to
dotted keys; aliases resolved, so a ``gamma`` sweep of RMSProp is labelled ``alpha``)
and ordered as the runs' overrides name them. Keys that only follow from another difference
are left out: choosing ``optimizer=adam`` changes ``optimizer.lr`` and ``optimizer.eps``
too, so those are shown only when a run's overrides set them explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optbench.optimizer_aliases import aliases_of

#: keys that never tell curves apart (output, console and resume settings)
IGNORED_KEYS = frozenset({
    "quiet", "resume", "results_root", "skip_finished", "checkpoint_every", "objective",
    "dataset.root", "dataset.download", "dataset.system_dir",
})
IGNORED_PREFIXES = ("plot.", "hydra.")
#: keys a group choice sets, and the keys such a choice decides
CHOICE_KEYS = {
    "dataset.name": lambda key: key.startswith("dataset.") or key in ("batch_size", "epochs", "log_every", "steps"),
    "optimizer.name": lambda key: key.startswith("optimizer."),
}
#: shown before the keys the overrides name
LEADING_KEYS = ("dataset.name", "optimizer.name", "optimizer.impl")
MISSING = object()


def is_ignored(key: str) -> bool:
    return key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES)


def override_keys(overrides: Sequence[str], flat: dict[str, Any]) -> list[str]:
    """Dotted config keys named by command-line overrides (``optimizer=adam`` -> ``optimizer.name``)."""
    keys = []
    for item in overrides:
        if "=" not in item:
            continue
        key = item.split("=", 1)[0].lstrip("+~").strip()
        if key.startswith("hydra.") or not key:
            continue
        if key not in flat and f"{key}.name" in flat:
            key = f"{key}.name"
        group, _, leaf = key.rpartition(".")
        if group == "optimizer" and leaf in aliases_of(flat.get("optimizer.name")):
            key = f"optimizer.{aliases_of(flat.get('optimizer.name'))[leaf]}"  # optimizer.gamma -> optimizer.alpha
        if key not in keys:
            keys.append(key)
    return keys


def format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def short_names(keys: Sequence[str]) -> dict[str, str]:
    """``optimizer.alpha`` -> ``alpha``, ``optimizer.name`` -> ``optimizer``; full path if ambiguous."""
    def short(key: str) -> str:
        parts = key.split(".")
        if parts[-1] == "name" and len(parts) > 1:
            return parts[-2]
        return parts[-1]

    names = {key: short(key) for key in keys}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {key: (name if counts[name] == 1 else key) for key, name in names.items()}


def differing_keys(flats: Sequence[dict[str, Any]], explicit: Sequence[str] = (), *, drop: Sequence[str] = ()) -> list[str]:
    """Keys whose values differ between ``flats``, minus those a group choice explains.

    ``explicit`` holds the keys any run's overrides set (in order); they are never
    dropped as explained, and they set the order of the result.
    """
    order: list[str] = []
    for flat in flats:
        for key in flat:
            if key not in order:
                order.append(key)
    keys = [
        key for key in order
        if not is_ignored(key) and key not in drop
        and len({_marker(flat.get(key, MISSING)) for flat in flats}) > 1
    ]
    explained = set()
    for choice, decides in CHOICE_KEYS.items():
        if choice not in keys:
            continue
        for key in keys:
            if key == choice or key in explicit or not decides(key):
                continue
            mapping: dict[Any, Any] = {}
            if all(mapping.setdefault(_marker(f.get(choice, MISSING)), _marker(f.get(key, MISSING))) == _marker(f.get(key, MISSING)) for f in flats):
                explained.add(key)
    keys = [key for key in keys if key not in explained]

    def rank(key: str) -> tuple[int, int]:
        if key in LEADING_KEYS:
            return (0, LEADING_KEYS.index(key))
        if key in explicit:
            return (1, list(explicit).index(key))
        return (2, order.index(key))

    return sorted(keys, key=rank)


def _marker(value: Any) -> Any:
    return "<missing>" if value is MISSING else value


def make_labels(flats: Sequence[dict[str, Any]], overrides: Sequence[Sequence[str]] = (), *, drop: Sequence[str] = ()) -> list[str]:
    """One label per entry of ``flats`` from the keys that differ between them.

    With a single entry (or nothing differing) the label names the optimizer.
    """
    explicit: list[str] = []
    for flat, items in zip(flats, overrides):
        for key in override_keys(items, flat):
            if key not in explicit:
                explicit.append(key)
    keys = differing_keys(flats, explicit, drop=drop)
    if not keys:
        keys = [key for key in ("optimizer.name",) if any(key in f for f in flats)]
    names = short_names(keys)
    labels = []
    for flat in flats:
        parts = [f"{names[key]}={format_value(flat[key])}" for key in keys if key in flat]
        labels.append(", ".join(parts) if parts else "run")
    return labels


def with_mark(label: str, marks: Sequence[str | None]) -> str:
    """``alpha=0.9`` + ["diverged"] -> ``alpha=0.9 (diverged)``; ``(2/5 diverged)`` for seed groups."""
    present = [m for m in marks if m]
    if not present:
        return label
    words = []
    for word in dict.fromkeys(present):
        count = present.count(word)
        words.append(word if len(marks) == 1 else f"{count}/{len(marks)} {word}")
    return f"{label} ({', '.join(words)})"


def literal(text: str) -> str:
    """``text`` shown as it is by matplotlib: a ``$`` in a config value or folder name starts no mathtext."""
    return str(text).replace("\\$", "$").replace("$", "\\$")


def mathtext_problem(text: str) -> str | None:
    """Why matplotlib cannot draw ``text`` (a ``$...$`` span that is not valid mathtext), else None."""
    from matplotlib.cbook import is_math_text
    from matplotlib.mathtext import MathTextParser

    if not is_math_text(text):
        return None
    try:
        MathTextParser("path").parse(text)
    except ValueError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        last = lines[-1] if lines else "a parse error"
        last = last.split(": ", 1)[-1] if "Exception: " in last else last
        return last if len(last) <= 100 else last[:97] + "..."
    return None


def check_mathtext(text: str, what: str) -> str:
    """``text`` if matplotlib can draw it; else a PlotError naming ``what`` (``--title``, ``--label``) and the fix."""
    from optbench.plot.runs import PlotError

    problem = mathtext_problem(text)
    if problem is not None:
        raise PlotError(
            f"{what} {text!r} is not valid mathtext ({problem}): text between two $ signs is drawn as math. "
            f"Fix: complete the $...$ expression, or write a literal dollar sign as \\$."
        )
    return text
