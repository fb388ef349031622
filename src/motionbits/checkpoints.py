"""Reading checkpoints: a trained model's or a motion prior's file, as data, for inference and training alike.

A checkpoint (training/checkpoint.py writes it) is a dict of tensors and plain Python values:
format, version, config, the model's weights and their EMA, and for a run's own resume the
optimizer, step and RNG states. It is read with torch.load(weights_only=True): a file whose pickle
would call a function or build an object is refused in one line before any of it runs, so a
checkpoint from elsewhere can carry weights but never code.

    read_checkpoint(run folder or .pt, kind) ──► dict on the CPU (one-line errors otherwise)
    checkpoint_config(ckpt) ──► Config               load_prior(prior.pt) ──► MotionPrior (EMA, eval)
"""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motionbits.config import Config, config_from_dict
from motionbits.errors import MotionbitsError
from motionbits.models.prior import MotionPrior, PriorConfig
from motionbits.runtime import pick_device

FORMAT_VERSION = 2
MODEL_FORMAT = "motionbits"
PRIOR_FORMAT = "motionbits-prior"


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


def read_checkpoint(path: str | Path, kind: str = MODEL_FORMAT) -> dict[str, Any]:
    """A checkpoint file (or the last.pt of a run folder) in memory on the CPU, with one-line
    errors for missing, unreadable, truncated and foreign files. `kind`: the expected format."""
    path = Path(path)
    if path.is_dir() and path.suffix != ".pt":  # a run folder
        path = path / ("prior.pt" if kind == PRIOR_FORMAT else "last.pt")
    what = "prior checkpoint" if kind == PRIOR_FORMAT else "checkpoint"
    if path.is_dir():
        raise MotionbitsError(f"{what} {path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise MotionbitsError(f"{what} {path}: no such file")
    ckpt = load_data_only(path, what)
    if not isinstance(ckpt, dict) or ckpt.get("format") != kind:
        found = ckpt.get("format") if isinstance(ckpt, dict) else None
        hint = {MODEL_FORMAT: "a motionbits model checkpoint", PRIOR_FORMAT: "a motion-prior checkpoint"}
        raise MotionbitsError(f"{what} {path}: not {hint.get(kind, kind)}"
                              + (f" (it is {hint.get(found, found)})" if found in hint else ""))
    if ckpt.get("version") != FORMAT_VERSION:
        raise MotionbitsError(f"{what} {path}: made by another version of motionbits (checkpoint format "
                              f"{ckpt.get('version')}, this version reads {FORMAT_VERSION}); train it again")
    ckpt["path"] = str(path)
    return ckpt


def checkpoint_config(ckpt: dict[str, Any]) -> Config:
    return config_from_dict(ckpt["config"], where=f"checkpoint {ckpt.get('path', '?')} config")


def load_prior(path: str | Path, device: str | torch.device = "cpu") -> MotionPrior:
    """The EMA prior from out_dir/prior.pt (or its folder), in eval mode."""
    ckpt = read_checkpoint(path, PRIOR_FORMAT)
    cfg = PriorConfig.from_dict(ckpt["config"], where=f"prior checkpoint {ckpt['path']} config")
    prior = MotionPrior(cfg)
    try:
        prior.load_state_dict(ckpt["ema"])
    except (RuntimeError, KeyError) as err:
        raise MotionbitsError(f"prior checkpoint {ckpt['path']}: weights do not fit its config "
                              f"({str(err).splitlines()[0]})") from None
    device = pick_device(device) if isinstance(device, str) else device
    return prior.to(device).eval()
