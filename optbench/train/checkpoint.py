"""checkpoint.pt: everything a run needs to continue exactly where it stopped."""

from __future__ import annotations

from pathlib import Path

import torch

from optbench.train.trainer import LoopState

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(run_dir: Path, model, optimizer, scheduler, state: LoopState, loss_rows: int, epoch_rows: int) -> None:
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "loop": state.as_dict(),
        "rng": torch.get_rng_state(),
        "loss_rows": loss_rows,
        "epoch_rows": epoch_rows,
    }
    tmp = Path(run_dir) / (CHECKPOINT + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(Path(run_dir) / CHECKPOINT)


def load_checkpoint(run_dir: Path) -> dict:
    return torch.load(Path(run_dir) / CHECKPOINT, weights_only=False)


def restore(payload: dict, model, optimizer, scheduler) -> LoopState:
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None and payload["scheduler"] is not None:
        scheduler.load_state_dict(payload["scheduler"])
    torch.set_rng_state(payload["rng"])
    return LoopState(**payload["loop"])
