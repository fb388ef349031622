"""Checkpoints: everything a run needs to resume exactly, written atomically.

A checkpoint holds the model, its EMA, the optimizer, the step, every RNG state and what the task
describes itself with (the BCD model: its config and latent shape); it is written to a temporary
file in the same folder and renamed over the old one, so a run killed mid-write leaves the previous
checkpoint intact, and the next start removes the temporary file the kill left behind. What it
holds is data only (tensors, plain Python values), so that motionbits/checkpoints.py, the one
reader, loads it with torch.load(weights_only=True).
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motionbits.atomic_files import atomic_path, remove_temporary_files
# The reader lives below training (inference reads checkpoints too); a resume reads through it.
from motionbits.checkpoints import FORMAT_VERSION, checkpoint_config, read_checkpoint  # noqa: F401
from motionbits.config import Config
from motionbits.errors import MotionbitsError


def save_atomic(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files an interrupted save of `path` left behind."""
    remove_temporary_files(path)


def rng_state() -> dict[str, Any]:
    """Every RNG's state as tensors and plain Python values, so a checkpoint loads with
    torch.load(weights_only=True): numpy's key array becomes an int64 tensor."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached_gaussian)),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys  # a tensor, or an array (older checkpoints)
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_compatible(ckpt: dict[str, Any], cfg: Config) -> None:
    """A checkpoint resumes only into a run whose model has the same shape."""
    theirs = checkpoint_config(ckpt)
    if theirs.model_fingerprint() != cfg.model_fingerprint():
        raise MotionbitsError(
            f"checkpoint {ckpt.get('path', '?')} was made with config '{theirs.name}', whose model "
            f"differs from '{cfg.name}' (model/data sizes); use a fresh --out folder or the matching config")
