"""Recoloured copies of the training clips (train.augment_clip_colors).

A model trained on a few videos can learn each video's colours by heart (its background, its
light) and use the content only to tell which video it is: a new video of the person then comes
out in a training video's colours. In a recoloured copy every clip of a video gets the same draw,
channels permuted and each scaled and shifted, so the content clip and the clip rebuilt from it
agree with each other and with no training video: the colours can only come from the content.
Each copy is encoded once like the clips themselves (its latents cached beside theirs).
"""
from __future__ import annotations

import numpy as np

from motionbits.config import Config
from motionbits.data import latent_cache
from motionbits.data.clips import ClipSet


def recoloured(frames: np.ndarray, video: np.ndarray, copy: int, seed: int) -> np.ndarray:
    """frames [N, T, H, W, 3] uint8 -> the same clips recoloured, one draw per video: the channels
    permuted, each scaled by a gain in [0.7, 1.3] and shifted by up to 25 levels either way."""
    out = np.empty_like(frames)
    for v in np.unique(video):
        rng = np.random.default_rng([seed, copy, int(v)])
        order, gain, offset = rng.permutation(3), rng.uniform(0.7, 1.3, 3), rng.uniform(-25, 25, 3)
        for clip in np.flatnonzero(video == v):    # one clip at a time: float32 copies stay small
            out[clip] = np.clip(frames[clip][..., order] * gain + offset, 0, 255).round().astype(np.uint8)
    return out


def colour_copies(cfg: Config, clips: ClipSet, progress: bool = False) -> list[ClipSet]:
    """train.augment_clip_colors recoloured copies of the training clips, their latents encoded
    (or read from the cache)."""
    frames, video = clips.frames.numpy(), clips.labels["video"]
    copies = []
    for copy in range(1, cfg.train.augment_clip_colors + 1):
        again = recoloured(frames, video, copy, cfg.train.seed)
        cache_file = None
        if clips.cached is not None:
            cache_file = latent_cache.cache_path(cfg.data.root, "train", latent_cache.latent_key(again, clips.tokenizer))
        copies.append(ClipSet(again, clips.tokenizer, clips.device, progress, clips.labels, cache_file=cache_file))
    return copies
