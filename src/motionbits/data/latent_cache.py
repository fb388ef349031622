"""A disk cache of a split's tokenizer latents, so training, sweeps and resumes encode each clip once.

On the CPU, encoding is the slow part of a latent run (taef2 at 128x128 on 2 cores: 3.5 minutes
for the 6,944 frames of our talking-head train split; the 114 MB file reads back in about a second). The file is keyed by
everything that changes the latents: the frames' bytes, the tokenizer's kind, normalisation and
weights. A changed dataset or tokenizer gets a new file; a stale one is never read.

Layout: ``<data root>/latents/<split>-<key>.safetensors`` with one bf16 tensor ``latents``
[N, T, C, h, w] and, in the metadata, their standard deviation ``std`` (training's
diffusion.sigma_data unless the config sets one). Written atomically (a temporary file, then a
rename), so a killed run leaves either the whole file or none.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from motionbits.atomic_files import atomic_path, remove_temporary_files
from motionbits.models.tokenizer import Tokenizer

CACHE_DIR = "latents"


def latent_key(frames: np.ndarray | torch.Tensor, tokenizer: Tokenizer) -> str:
    """16 hex digits that change with the frames [N, T, H, W, 3] or with anything in the tokenizer."""
    h = hashlib.blake2b(digest_size=8)
    h.update(json.dumps(tokenizer.config(), sort_keys=True).encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().flatten().contiguous().view(torch.uint8).numpy().tobytes())
    _hash_frames(h, frames)
    return h.hexdigest()


def frames_key(frames: np.ndarray | torch.Tensor) -> str:
    """16 hex digits that change with the frames [N, T, H, W, 3] (for what is read from frames alone)."""
    h = hashlib.blake2b(digest_size=8)
    _hash_frames(h, frames)
    return h.hexdigest()


def _hash_frames(h, frames: np.ndarray | torch.Tensor) -> None:
    frames = frames.numpy() if isinstance(frames, torch.Tensor) else frames
    h.update(repr(frames.shape).encode())
    # Hash in slices so a memory-mapped split is never copied whole.
    flat = frames.reshape(frames.shape[0], -1)
    for start in range(0, len(flat), 256):
        h.update(np.ascontiguousarray(flat[start:start + 256]).data)


def cache_path(root: str | os.PathLike, split: str, key: str) -> Path:
    return Path(root) / CACHE_DIR / f"{split}-{key}.safetensors"


def latent_std(latents: torch.Tensor, chunk: int = 256) -> float:
    """Standard deviation of every value of latents [N, ...], in float64, a chunk of clips at a time."""
    total = total_sq = 0.0
    for start in range(0, len(latents), chunk):
        x = latents[start:start + chunk].double()
        total, total_sq = total + x.sum().item(), total_sq + x.square().sum().item()
    n = latents.numel()
    return float(max(total_sq / n - (total / n) ** 2, 0.0) ** 0.5)


def read_latents(path: Path, expected_clips: int) -> tuple[torch.Tensor, float] | None:
    """The cached latents and their std, or None when the file is missing or unusable (it is then rebuilt)."""
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            latents, meta = f.get_tensor("latents"), f.metadata() or {}
    except Exception as err:  # truncated or foreign file: rebuild rather than fail the run
        warnings.warn(f"{path}: unreadable latent cache ({type(err).__name__}); encoding again", stacklevel=2)
        return None
    if latents.dim() != 5 or latents.shape[0] != expected_clips:
        warnings.warn(f"{path}: latent cache has shape {tuple(latents.shape)}, expected {expected_clips} clips; "
                      "encoding again", stacklevel=2)
        return None
    try:
        std = float(meta["std"])
    except (KeyError, ValueError):  # a cache written before the std was stored
        std = latent_std(latents)
    return latents, std


def write_latents(path: Path, latents: torch.Tensor, std: float) -> bool:
    """Store latents [N, T, C, h, w] and their std; False (with a warning) when the data folder is not writable."""
    from safetensors.torch import save_file

    try:
        remove_temporary_files(path)  # a run killed while writing the cache left one behind
        with atomic_path(path, shared=True) as tmp:
            save_file({"latents": latents.contiguous()}, str(tmp), metadata={"std": repr(std)})
    except OSError as err:
        warnings.warn(f"{path.parent}: cannot write the latent cache ({err.strerror or err}); "
                      "the next run will encode again", stacklevel=2)
        return False
    return True
