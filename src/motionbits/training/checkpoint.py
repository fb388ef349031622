"""Checkpoints: everything a run needs to resume exactly, written atomically.

A checkpoint holds the model, its EMA, the optimizer, the step, every RNG state and what the task
describes itself with (the BCD model: its config and latent shape); it is written to a temporary
file in the same folder and renamed over the old one, so a run killed mid-write leaves the previous
checkpoint intact, and the next start removes the temporary file the kill left behind. What it
holds is data only (tensors, plain Python values): it is read with torch.load(weights_only=True),
and a file whose pickle would call code is refused before any of it runs.
"""
from __future__ import annotations

import os
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motionbits.atomic_files import atomic_path, remove_temporary_files
from motionbits.config import Config, config_from_dict
from motionbits.errors import MotionbitsError

FORMAT_VERSION = 2


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


# What torch.load(weights_only=True) may rebuild beyond tensors and plain values: the uint32 numpy
# array older checkpoints held their numpy RNG state in (no other dtype, no objects, no code).
_multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray  # numpy 2 / 1
OLD_NUMPY_RNG = [_multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


# How torch's restricted unpickler says a pickle asked for a function or class it does not allow.
NAMES_CODE = re.compile(r"GLOBAL |allowlisted|call reduce|whose module .* is blocked")


def load_data_only(path: Path, what: str) -> Any:
    """torch.load that refuses pickled code: a file whose pickle names any function or class
    outside tensors, plain values and OLD_NUMPY_RNG is refused before anything in it runs."""
    try:
        with torch.serialization.safe_globals(OLD_NUMPY_RNG):
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        raise MotionbitsError(f"{what} {path}: cannot be read ({err.strerror or err})") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, AttributeError,
            ImportError, IndexError, KeyError, TypeError) as err:
        if isinstance(err, pickle.UnpicklingError) and NAMES_CODE.search(str(err)):
            raise MotionbitsError(f"{what} {path}: holds pickled code, refused; motionbits loads only data") from None
        raise MotionbitsError(f"{what} {path}: unreadable or truncated ({type(err).__name__}); "
                              "train again with --fresh if it was a run's checkpoint") from None


def read_checkpoint(path: str | Path, kind: str = "motionbits") -> dict[str, Any]:
    """A checkpoint file (or the last.pt of a run folder) in memory on the CPU, with one-line
    errors for missing, unreadable, truncated and foreign files. `kind`: the expected format."""
    path = Path(path)
    if path.is_dir() and path.suffix != ".pt":  # a run folder
        path = path / ("prior.pt" if kind == "motionbits-prior" else "last.pt")
    what = "prior checkpoint" if kind == "motionbits-prior" else "checkpoint"
    if path.is_dir():
        raise MotionbitsError(f"{what} {path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise MotionbitsError(f"{what} {path}: no such file")
    ckpt = load_data_only(path, what)
    if not isinstance(ckpt, dict) or ckpt.get("format") != kind:
        found = ckpt.get("format") if isinstance(ckpt, dict) else None
        hint = {"motionbits": "a motionbits model checkpoint", "motionbits-prior": "a motion-prior checkpoint"}
        raise MotionbitsError(f"{what} {path}: not {hint.get(kind, kind)}"
                              + (f" (it is {hint.get(found, found)})" if found in hint else ""))
    if ckpt.get("version") != FORMAT_VERSION:
        raise MotionbitsError(f"{what} {path}: made by another version of motionbits (checkpoint format "
                              f"{ckpt.get('version')}, this version reads {FORMAT_VERSION}); train it again")
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
