"""The command line's front door: Hydra's errors as optbench's errors.

Two parts, both used by ``optbench.cli.main``:

* :func:`check_command_line` reads the arguments with Hydra's own argument parser and
  override grammar (``OverridesParser``) before Hydra runs, and refuses what Hydra
  would get wrong or report badly: a flag it does not know, an override it cannot
  parse, a group optbench chooses itself (``per_dataset``, ``schema``), ``~dataset``,
  ``+optimizer=adam``, ``optimizer.name=adam``, an interpolation that does not resolve.
* :func:`explain` turns an exception that Hydra raised while composing or preparing a
  run (``compat.hydra_errors_raised`` makes Hydra raise instead of printing) into one
  :class:`~optbench.errors.OptbenchError` paragraph naming a fix that works: an unknown
  key gets "did you mean", never Hydra's ``+key`` (which validation would refuse), an
  unknown option gets the options, an unwritable ``hydra.run.dir``/``hydra.sweep.dir``
  gets a folder to use. An exception raised inside the job itself is not Hydra's: it
  is left alone (``None``), so that a bug still shows its traceback.

Nothing here imports torch; the happy path costs one parse of the overrides.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Sequence

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from optbench import compat
from optbench.errors import OptbenchError

GRAMMAR_URL = "https://hydra.cc/docs/advanced/override_grammar/basic/"
#: groups optbench composes itself: never a user's choice
INTERNAL_GROUPS = ("per_dataset", "schema")
#: groups selected with ``group=name`` (in the defaults list)
CHOSEN_GROUPS = ("optimizer", "dataset")
#: groups added with ``+group=name``
ADDED_GROUPS = ("experiment", "hpo")
HELP = "`optbench --help` lists the groups and keys"


def _one_line(text: object) -> str:
    """The first line of an error, as one line (OmegaConf appends ``full_key: ...`` lines)."""
    first = str(text).strip().split("\n    full_key:")[0]
    return " ".join(first.split()).rstrip(".")


# ----------------------------------------------------------------------------- before Hydra


def check_command_line(argv: Sequence[str]) -> argparse.Namespace:
    """Refuse, before Hydra starts, what Hydra would reject or mishandle; return the parsed arguments."""
    args = parse_arguments(argv)
    parsed = [_parse_override(text) for text in args.overrides]
    for text, override in zip(args.overrides, parsed):
        _check_override(text, override)
    if any("${" in text for text in args.overrides):
        _check_interpolations(list(args.overrides), parsed)
    if args.cfg in ("job", "all") and not (args.help or args.hydra_help):
        _check_printed_config(list(args.overrides))
    return args


def _check_printed_config(overrides: list[str]) -> None:
    """``--cfg job`` prints only a config that would run: validation's refusals apply to it too."""
    try:
        cfg = _compose(overrides)
    except Exception:  # Hydra's own error: it reports it (and explain() translates it) when it composes
        return
    from optbench.config.validate import validate

    validate(cfg)


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` read by Hydra's own argument parser, its usage errors as OptbenchErrors."""
    parser = compat.hydra_args_parser()

    def error(message: str):
        if message.startswith("unrecognized arguments") and "=" in message:
            raise OptbenchError(f"{_one_line(message)}: Hydra reads the overrides only after the flags. Fix: put the "
                                "flags first, e.g. `optbench --cfg job dataset=mnist` or `optbench -m optimizer.lr=0.1,1`.")
        raise OptbenchError(f"{_one_line(message)}. Fix: correct the flag; {HELP}, "
                            "and `--cfg job` prints the composed config.")

    parser.error = error  # argparse calls self.error for every usage error
    return parser.parse_args(list(argv))


def _parse_override(text: str):
    from hydra.errors import HydraException

    parser = compat.hydra_overrides_parser()
    try:
        return parser.parse_override(text)
    except HydraException as err:
        raise OptbenchError(_unparsable(text, err)) from None


def _unparsable(text: str, err: BaseException) -> str:
    key, sep, value = text.partition("=")
    reason = _one_line(str(err).split("See https://")[0])
    if not sep:
        return (f"`{text}` is not an override (Hydra: {reason}). Fix: give it a value, e.g. `{text}=...`, "
                f"or, for a flag, spell it with dashes; {HELP}.")
    if not key.isascii():
        return (f"`{text}`: config keys are ASCII names, and `{key}` is not (Hydra: {reason}). Fix: spell the key "
                f"as one of optbench's; {HELP}.")
    if not value.isascii() or any(c in value for c in " ()[]{}'\"\\,:=$"):
        return (f"Hydra cannot read the value of `{text}` unquoted ({reason}). Fix: quote the value inside the "
                f"argument, e.g. `'{key}=\"{value}\"'` (the outer quotes are for the shell); see {GRAMMAR_URL}.")
    return (f"Hydra cannot parse the override `{text}` ({reason}). Fix: write it as key=value, quoting a value "
            f"with spaces or special characters (`'key=\"a value\"'`); see {GRAMMAR_URL}.")


def _check_override(text: str, override) -> None:
    key = override.key_or_group
    if not key:
        raise OptbenchError(f"`{text}` has no key before `=`. Fix: write it as key=value, e.g. `optimizer.lr=0.01`.")
    root = re.split(r"[./]", key)[0]
    if root in INTERNAL_GROUPS:
        raise OptbenchError(
            f"`{text}`: `{root}` is composed by optbench itself (conf/{root}/ holds per-dataset defaults and "
            f"schemas), not chosen on the command line. Fix: remove it and set the values you want directly, "
            f"e.g. `optimizer.lr=0.01`; {HELP}."
        )
    if key in ("optimizer.name", "dataset.name"):
        group = key.split(".")[0]
        value = text.partition("=")[2]
        raise OptbenchError(
            f"`{text}` renames the {group} node but keeps the old {group}'s keys. Fix: choose the {group} with "
            f"`{group}={value}` instead."
        )
    if key in CHOSEN_GROUPS and override.is_delete():
        raise OptbenchError(
            f"`{text}` removes the {key}, and every run needs one. Fix: choose another with `{key}=<name>` "
            f"instead (`optbench --help` lists them)."
        )
    if key in CHOSEN_GROUPS and (override.is_add() or override.is_force_add()):
        value = text.partition("=")[2]
        raise OptbenchError(f"`{text}`: the {key} is chosen, not added. Fix: write `{key}={value}` (without +).")


def _check_interpolations(texts: list[str], parsed: list) -> None:
    """Each ``${...}`` in an override must resolve (a job reads its overrides, and Hydra would fail there)."""
    plain = [t for t, o in zip(texts, parsed) if not o.is_sweep_override()]
    for text, override in zip(texts, parsed):
        if "${" not in text or override.is_hydra_override() or "hydra" in text.partition("=")[2]:
            continue
        if override.is_sweep_override():
            if not override.is_choice_sweep():
                continue
            values = [str(v) for v in override.value().list]
        else:
            values = [override.value()]
        for value in values:
            if "${" not in str(value):
                continue
            candidate = f"{override.get_key_element()}={value}"
            others = [t for t in plain if t != text]
            try:
                cfg = _compose(others + [candidate])
            except Exception:  # another override's error: Hydra reports it, explain() translates it
                return
            try:
                OmegaConf.select(cfg, override.key_or_group, throw_on_resolution_failure=True)
            except OmegaConfBaseException as err:
                raise OptbenchError(
                    f"`{override.key_or_group}={value}` cannot be resolved: {_one_line(getattr(err, 'msg', err))}. "
                    f"Fix: point the interpolation at an existing key (e.g. `{override.key_or_group}="
                    "${optimizer.eps}`) or pass a plain value."
                ) from None


def _compose(overrides: list[str], hydra_node: bool = False):
    """The config Hydra composes for ``overrides`` (in-process, outside any run)."""
    from hydra import compose, initialize_config_module

    from optbench.config.schema import register

    register()
    with initialize_config_module("optbench.conf", version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=hydra_node)


# ----------------------------------------------------------------------------- after Hydra raised


def explain(err: BaseException, argv: Sequence[str]) -> OptbenchError | None:
    """One paragraph for an exception Hydra raised; None when it came from inside a job (leave it be)."""
    if isinstance(err, OptbenchError):
        return err
    if _raised_in_job(err):
        return None
    from hydra.errors import (
        ConfigCompositionException,
        HydraException,
        MissingConfigException,
        OverrideParseException,
    )

    try:
        args = parse_arguments(argv)
    except OptbenchError as usage:
        return usage
    overrides = list(args.overrides)
    if isinstance(err, MissingConfigException):
        return _missing_config(err, overrides)
    if isinstance(err, OverrideParseException):
        text = next((t for t in overrides if _fails_to_parse(t)), " ".join(overrides))
        return OptbenchError(_unparsable(text, err))
    if isinstance(err, ConfigCompositionException):
        return _composition(err, overrides)
    for cause in _chain(err):
        if isinstance(cause, OSError) and not isinstance(cause, MissingConfigException):
            return _output_folder(cause, args)
        if isinstance(cause, OmegaConfBaseException):
            key = getattr(cause, "full_key", None)
            where = f" at `{key}`" if key else ""
            return OptbenchError(
                f"The config could not be resolved{where}: {_one_line(getattr(cause, 'msg', cause))}. Fix: correct or "
                "remove the `${...}` interpolation it names on the command line (it must name an existing key)."
            )
    if isinstance(err, HydraException) or not _raised_in_optbench(err):
        return OptbenchError(f"Hydra could not run this command: {_one_line(err)}. Fix: correct the command line; "
                             f"{HELP}.")
    return None


def _chain(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _frames(err: BaseException):
    tb = err.__traceback__
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def _raised_in_job(err: BaseException) -> bool:
    """Whether the exception went through the job function (``optbench.cli.run_job``'s body)."""
    return any(f.f_code.co_name == "run_job" and f.f_globals.get("__name__") == "optbench.cli" for f in _frames(err))


def _raised_in_optbench(err: BaseException) -> bool:
    """Whether the innermost frame is optbench's own code (a bug there keeps its traceback)."""
    last = None
    for frame in _frames(err):
        last = frame
    return last is not None and str(last.f_globals.get("__name__", "")).startswith("optbench")


def _fails_to_parse(text: str) -> bool:
    try:
        compat.hydra_overrides_parser().parse_override(text)
    except Exception:
        return True
    return False


def _missing_config(err, overrides: list[str]) -> OptbenchError:
    missing = str(getattr(err, "missing_cfg_file", "") or "")
    group, _, name = missing.rpartition("/")
    options = sorted(o for o in (getattr(err, "options", None) or []) if not o.startswith("_"))
    if not group or not options:
        return OptbenchError(
            f"There is no config `{missing or _one_line(err)}`. Fix: choose from optbench's groups: "
            f"{', '.join(f'{g}=<name>' for g in CHOSEN_GROUPS)}, {', '.join(f'+{g}=<name>' for g in ADDED_GROUPS)}, "
            f"hydra/launcher=<name>; {HELP}."
        )
    plus = "+" if group in ADDED_GROUPS else ""
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    hint = f"did you mean `{plus}{group}={close[0]}`? Otherwise " if close else ""
    return OptbenchError(
        f"Unknown {group} {name!r} (there is no conf/{group}/{name}.yaml). Available: {', '.join(options)}. "
        f"Fix: {hint}choose one with `{plus}{group}=<name>`."
    )


def _composition(err, overrides: list[str]) -> OptbenchError:
    message = str(err)
    first = _one_line(message.splitlines()[0] if message else err)
    unknown = re.match(r"Could not override '([^']+)'", message)
    if unknown and "No match in the defaults list" in message:
        group = unknown.group(1)
        value = _value_of(group, overrides)
        if group in ADDED_GROUPS:
            return OptbenchError(f"`{group}` is added, not chosen. Fix: write `+{group}={value}`.")
        return OptbenchError(f"`{group}` is not a config group of optbench. Fix: remove `{group}={value}`; {HELP}.")
    if unknown:
        return _unknown_key(unknown.group(1), overrides)
    multiple = re.match(r"Multiple values for (\S+?)\.", message)
    if multiple:
        group = multiple.group(1)
        return OptbenchError(f"{first}. Fix: choose it once, as `{group}={_value_of(group, overrides)}` (without +).")
    if message.startswith("Ambiguous value for argument"):
        return OptbenchError(
            f"{first}: a comma makes a sweep. Fix: add -m to sweep over the values (`optbench -m ...`), write a list "
            "as key=[a,b], or quote a string: `'key=\"a,b\"'`."
        )
    if "interpolation" in message.lower():
        return OptbenchError(f"{first}. Fix: remove the override that deletes or renames what it names; {HELP}.")
    return OptbenchError(f"{first}. Fix: correct the override it names; {HELP}.")


def _value_of(key: str, overrides: list[str]) -> str:
    for text in reversed(overrides):
        left, _, value = text.partition("=")
        if left.lstrip("+~") == key:
            return value
    return "<value>"


def _unknown_key(key: str, overrides: list[str]) -> OptbenchError:
    value = _value_of(key, overrides)
    keys = _known_keys([t for t in overrides if t.partition("=")[0].lstrip("+~") != key], hydra=key.startswith("hydra."))
    close = _close_keys(key, keys)
    hint = f"did you mean `{close[0]}={value}`" if close else "remove it or spell it as one of optbench's keys"
    others = f" (or {', '.join(f'`{k}`' for k in close[1:])})" if len(close) > 1 else ""
    return OptbenchError(
        f"`{key}` is not a key of this run's config, so `{key}={value}` cannot set it. Fix: {hint}{others}? "
        "(`optbench --cfg job` prints every key.)" if close else
        f"`{key}` is not a key of this run's config, so `{key}={value}` cannot set it. Fix: {hint} "
        "(`optbench --cfg job` prints every key)."
    )


def _known_keys(overrides: list[str], hydra: bool) -> list[str]:
    """Every key of the config these overrides compose (or of the default config)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    usable = []
    for text in overrides:
        try:
            if not parser.parse_override(text).is_sweep_override():
                usable.append(text)
        except Exception:
            continue
    for attempt in (usable, []):
        try:
            cfg = _compose(attempt, hydra_node=hydra)
            break
        except Exception:
            continue
    else:
        return []
    container = OmegaConf.to_container(cfg, resolve=False)
    if not hydra:
        container.pop("hydra", None)
    return list(_flatten(container))


def _flatten(node, prefix: str = ""):
    for key, value in node.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _flatten(value, full + ".")
        else:
            yield full


def _close_keys(key: str, keys: list[str]) -> list[str]:
    """Keys like ``key``: the same last part first (``lr`` -> ``optimizer.lr``), then close spellings.

    Ties keep the config's order (``optimizer.beta`` -> ``beta1`` before ``beta2``).
    """
    leaf = key.rsplit(".", 1)[-1]

    def close(word: str, words: list[str]) -> list[str]:
        scored = [(difflib.SequenceMatcher(None, word, w).ratio(), -i, w) for i, w in enumerate(words)]
        return [w for r, _, w in sorted(scored, reverse=True) if r >= 0.75][:3]

    same_leaf = [k for k in keys if k.rsplit(".", 1)[-1] == leaf]
    by_leaf: dict[str, str] = {}
    for k in keys:
        by_leaf.setdefault(k.rsplit(".", 1)[-1], k)
    close_leaf = [by_leaf[m] for m in close(leaf, list(by_leaf))]
    out = []
    for k in same_leaf + close(key, keys) + close_leaf:
        if k not in out and k != key:
            out.append(k)
    return out[:3]


def _output_folder(err: OSError, args: argparse.Namespace) -> OptbenchError:
    sweep = bool(getattr(args, "multirun", False))
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    where = f" {err.filename}" if err.filename else ""
    return OptbenchError(
        f"Cannot write the {'sweep' if sweep else 'run'} folder{where}: {err.strerror or _one_line(err)}. "
        f"Fix: point {key}=... at a folder you can write (a new or existing folder, not a file), "
        f"e.g. `{key}={'multirun/my-sweep' if sweep else 'outputs/my-run'}`."
    )
