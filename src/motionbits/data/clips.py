"""Clips in memory, ready for training: uint8 frames plus the frozen tokenizer's latents.

Every dataset kind ends up as one uint8 array of clips [N, T, H, W, 3] (Sprites: 300 MB for the
train split; video splits are memory-mapped). With the pixel tokenizer, a batch is converted to
[-1, 1] floats on the fly; with a real tokenizer (taef2, a diffusers VAE) the latents of every clip
are computed once up front, because encoding costs far more than a training step on the CPU, and
kept on disk beside the data (`latent_cache.py`) so the next run, resume or sweep reads them back.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from motionbits.config import Config
from motionbits.data import latent_cache
from motionbits.errors import MotionbitsError
from motionbits.models.tokenizer import PixelTokenizer, Tokenizer, frames_to_float, make_tokenizer


class ClipSet:
    def __init__(self, frames: np.ndarray, tokenizer: Tokenizer, device: torch.device,
                 progress: bool = False, labels: dict[str, np.ndarray] | None = None,
                 cache_file: Path | None = None):
        if frames.ndim != 5 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise MotionbitsError(f"clips must be uint8 [N, T, H, W, 3], got {frames.dtype} {frames.shape}")
        self.frames = torch.from_numpy(frames)          # [N, T, H, W, 3] uint8, CPU
        self.tokenizer = tokenizer.to(device).eval()
        self.device = device
        self.labels = labels or {}
        self.latent_std = None
        self.cached = None if isinstance(tokenizer, PixelTokenizer) else self._cached_latents(cache_file, progress)
        c, h, _ = tokenizer.latent_shape(frames.shape[2])
        self.latent_channels, self.latent_size = c, h
        if self.latent_std is None:
            self.latent_std = self._pixel_std()

    def __len__(self) -> int:
        return self.frames.shape[0]

    def _cached_latents(self, cache_file: Path | None, progress: bool) -> torch.Tensor:
        """Latents [N, T, C, h, w] bf16 (and their std, diffusion's sigma_data): read from cache_file
        when it holds them, else encoded (and stored)."""
        if cache_file is not None:
            found = latent_cache.read_latents(cache_file, expected_clips=len(self.frames))
            if found is not None:
                if progress:
                    print(f"latents read from {cache_file}")
                latents, self.latent_std = found
                return latents
        latents = self._encode_all(progress)
        self.latent_std = latent_cache.latent_std(latents)
        if cache_file is not None and latent_cache.write_latents(cache_file, latents, self.latent_std) and progress:
            print(f"latents cached in {cache_file}")
        return latents

    def _pixel_std(self, clips: int = 512) -> float:
        """Std of the pixels in [-1, 1] over an even spread of at most `clips` clips."""
        pick = torch.linspace(0, len(self) - 1, min(clips, len(self))).long()
        return float(frames_to_float(self.frames_u8(pick)).std())

    @torch.no_grad()
    def _encode_all(self, progress: bool, batch: int = 64) -> torch.Tensor:
        flat = self.frames.flatten(0, 1)                # [N*T, H, W, 3]
        # Video clips overlap in time (8 frames every 2: each frame in 4 clips): each distinct frame
        # is encoded once, and its latent goes to every place it appears.
        first_seen: dict[bytes, int] = {}
        where = torch.tensor([first_seen.setdefault(hashlib.blake2b(frame.numpy().tobytes(), digest_size=16).digest(),
                                                    len(first_seen)) for frame in flat])       # [N*T] distinct frame
        one_place = torch.zeros(len(first_seen), dtype=torch.long)
        one_place[where] = torch.arange(len(flat))      # where each distinct frame appears (any of its places)
        distinct = flat.index_select(0, one_place)      # [F, H, W, 3]
        out = []
        for start in tqdm(range(0, len(distinct), batch), desc="encoding latents", disable=not progress):
            x = frames_to_float(distinct[start:start + batch]).to(self.device)
            out.append(self.tokenizer.encode(x).to(torch.bfloat16).cpu())
        z = torch.cat(out).index_select(0, where)       # [N*T, C, h, w]
        return z.reshape(*self.frames.shape[:2], *z.shape[1:])  # [N, T, C, h, w]

    def frames_u8(self, index: torch.Tensor) -> torch.Tensor:
        return self.frames.index_select(0, index)  # several times faster than fancy indexing on uint8

    def change_std(self, clips: int = 512) -> float:
        """Std of the latents' change from their clip's first frame, over an even spread of at most
        `clips` clips (diffusion.sigma_data of a model.draw_change model)."""
        pick = torch.linspace(0, len(self) - 1, min(clips, len(self))).long()
        z = self.latents(pick)                                    # [n, T, C, h, w]
        return float((z[:, 1:] - z[:, :1]).std())

    def latents(self, index: torch.Tensor) -> torch.Tensor:
        """index [B] -> latents [B, T, C, h, w] float32 on the device."""
        if self.cached is not None:
            return self.cached[index].to(self.device, non_blocking=True).float()
        frames = self.frames_u8(index)
        if self.device.type == "cuda":
            frames = frames.pin_memory().to(self.device, non_blocking=True)
        return frames_to_float(frames)


def load_clips(cfg: Config, split: str, device: torch.device, progress: bool = False,
               tokenizer: Tokenizer | None = None) -> ClipSet:
    """The clips of a split of the configured dataset, with their labels where the data has them."""
    tokenizer = tokenizer or make_tokenizer(cfg)
    if cfg.data.kind == "sprites":
        from motionbits.data.sprites import load_sprites

        data = load_sprites(cfg.data.root, split)
        labels = {"attributes": data.attributes, "motion": data.motion, "character": data.character}
        frames = data.frames
    else:
        from motionbits.data.video import load_video_clips

        frames, labels = load_video_clips(cfg.data.root, split)
    if frames.shape[1] < cfg.data.frames:
        raise MotionbitsError(f"{cfg.data.root}: clips have {frames.shape[1]} frames, config wants {cfg.data.frames}")
    frames = frames[:, : cfg.data.frames]
    cache_file = None
    if not isinstance(tokenizer, PixelTokenizer):
        cache_file = latent_cache.cache_path(cfg.data.root, split, latent_cache.latent_key(frames, tokenizer))
    return ClipSet(frames, tokenizer, device, progress, labels, cache_file=cache_file)
