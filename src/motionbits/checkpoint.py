"""Checkpoints: everything a run needs to resume exactly, written atomically.

A checkpoint holds the model, its EMA, the optimizer, the step, every RNG state and the config;
it is written to a temporary file in the same folder and renamed over the old one, so a run
killed mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motionbits.atomic_files import atomic_path
from motionbits.config import Config, config_from_dict
from motionbits.errors import MotionbitsError

FORMAT_VERSION = 1


def save_atomic(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file into memory on the CPU, with one-line errors for bad files."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise MotionbitsError(f"checkpoint {path}: no such file")
    try:
        # weights_only=False: our own files carry numpy RNG states and config dicts.
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        raise MotionbitsError(f"checkpoint {path}: unreadable or truncated ({type(err).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != "motionbits" or "config" not in ckpt:
        raise MotionbitsError(f"checkpoint {path}: not a motionbits checkpoint")
    ckpt["path"] = str(path)
    return ckpt


def checkpoint_config(ckpt: dict[str, Any]) -> Config:
    return config_from_dict(ckpt["config"], where=f"checkpoint {ckpt.get('path', '?')} config")


def check_compatible(ckpt: dict[str, Any], cfg: Config) -> None:
    """A checkpoint resumes only into a run whose model has the same shape."""
    theirs = checkpoint_config(ckpt)
    if theirs.model_fingerprint() != cfg.model_fingerprint():
        raise MotionbitsError(
            f"checkpoint {ckpt.get('path', '?')} was made with config '{theirs.name}', whose model "
            f"differs from '{cfg.name}' (model/data sizes); use a fresh --out folder or the matching config")
