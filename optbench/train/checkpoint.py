"""checkpoint.pt: everything a run needs to continue exactly where it stopped, as data.

A checkpoint is loaded with ``torch.load(weights_only=True)``: tensors, numbers,
strings and containers only, so loading one never executes code. Before a resume
touches any file, :func:`check_payload` proves the checkpoint belongs to the run: its
format, its config hash, its optimizer, and row counts that the run's CSVs really hold.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import torch

from optbench.run_folder import CHECKPOINT, EPOCHS, LOSSES, RunFolderError, count_rows, write_bytes_atomic
from optbench.train.trainer import LoopState

#: bump when the payload's layout changes; older checkpoints are refused with a message
FORMAT = 2
PAYLOAD_KEYS = ("format", "config_hash", "optimizer", "model", "optimizer_state", "scheduler", "loop", "rng",
                "loss_rows", "epoch_rows")


def save_checkpoint(run_dir: Path, model, optimizer, scheduler, state: LoopState, loss_rows: int, epoch_rows: int,
                    *, config_hash: str, optimizer_name: str) -> None:
    payload = {
        "format": FORMAT,
        "config_hash": config_hash,
        "optimizer": optimizer_name,
        "model": model.state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "loop": state.as_dict(),
        "rng": torch.get_rng_state(),
        "loss_rows": loss_rows,
        "epoch_rows": epoch_rows,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomic(Path(run_dir) / CHECKPOINT, buffer.getvalue())


def _refuse(path: Path, why: str) -> RunFolderError:
    return RunFolderError(
        f"{path} cannot be used to resume: {why}. Nothing was changed. Fix: resume from the folder whose run saved "
        "this checkpoint, or start the run afresh in a new folder (drop resume=)."
    )


def load_checkpoint(run_dir: Path) -> dict:
    """The checkpoint's payload, loaded as data only; RunFolderError if it is corrupt or foreign."""
    path = Path(run_dir) / CHECKPOINT
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise _refuse(path, "it does not exist") from None
    except pickle.UnpicklingError:
        raise _refuse(path, "it holds Python objects besides tensors, numbers and strings, so loading it could run "
                            "code, and it was not loaded") from None
    except Exception as err:  # corrupt or truncated
        raise _refuse(path, f"it is corrupt or truncated ({type(err).__name__})") from None
    if not isinstance(payload, dict) or not set(PAYLOAD_KEYS) <= set(payload):
        raise _refuse(path, "it is not an optbench checkpoint of this version (its keys do not match)")
    if payload.get("format") != FORMAT:
        raise _refuse(path, f"it has format {payload.get('format')!r}, this optbench writes format {FORMAT}")
    return payload


def check_payload(payload: dict, run_dir: Path, config_hash: str, optimizer_name: str) -> None:
    """Refuse a checkpoint of another config or optimizer, or one whose rows the CSVs lack."""
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT
    if payload["config_hash"] != config_hash:
        raise _refuse(path, f"it was saved by config {payload['config_hash']}, and this run is config {config_hash}")
    if payload["optimizer"] != optimizer_name:
        raise _refuse(path, f"it holds {payload['optimizer']!r} state, and this run uses {optimizer_name!r}")
    for name, key in ((LOSSES, "loss_rows"), (EPOCHS, "epoch_rows")):
        rows = payload[key]
        if not isinstance(rows, int) or rows < 0:
            raise _refuse(path, f"its {key} is {rows!r}")
        try:
            have = count_rows(run_dir / name)
        except OSError:
            raise _refuse(path, f"{name} beside it cannot be read") from None
        if have < rows:
            raise _refuse(path, f"it counts {rows} rows of {name}, which holds only {have}")
    try:
        LoopState(**payload["loop"])
    except TypeError:
        raise _refuse(path, "its loop state does not match this optbench version") from None


def restore(payload: dict, model, optimizer, scheduler) -> LoopState:
    """Load the states into a freshly built model, optimizer and scheduler; RunFolderError if they do not fit."""
    try:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer_state"])
        if scheduler is not None and payload["scheduler"] is not None:
            scheduler.load_state_dict(payload["scheduler"])
        torch.set_rng_state(payload["rng"])
        return LoopState(**payload["loop"])
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise RunFolderError(
            f"the checkpoint does not fit this run's model or optimizer ({first}). Nothing was changed. "
            "Fix: resume from the folder whose run saved it, or start afresh in a new folder."
        ) from None
