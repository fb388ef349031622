"""Copies of the training clips that no training video shows (train.augment_clip_colors,
train.augment_clip_mirror).

A model trained on a few videos can learn each video by heart (its background, its light, where
the head sits) and use the content only to tell which video it is: a new video of the person then
comes out in a training video's look. A copy changes every clip of a video alike, so the content
clip and the clip rebuilt from it agree with each other and with no training video:

- recoloured: channels permuted, each scaled and shifted, one draw per video, so the colours can
  only come from the content;
- mirrored left to right: the scene and the head's turns as no video shows them (the lips' points
  are mirrored with the frames: lip_points.mirrored_lips).

Each copy is encoded once like the clips themselves (its latents cached beside theirs): a latent
autoencoder is not mirror-symmetric, so the latents of a mirrored frame are not the mirrored latents.
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


def mirrored(frames: np.ndarray) -> np.ndarray:
    """frames [N, T, H, W, 3] -> the same clips mirrored left to right."""
    return np.ascontiguousarray(frames[..., ::-1, :])


def clip_copies(cfg: Config, clips: ClipSet, progress: bool = False) -> list[ClipSet]:
    """The training clips' copies, their latents encoded (or read from the cache): the
    train.augment_clip_colors recoloured ones, then, with train.augment_clip_mirror, every one of
    those sets (the clips first) mirrored, in the same order. Empty without either setting."""
    if not (cfg.train.augment_clip_colors or cfg.train.augment_clip_mirror):
        return []
    frames, video = clips.frames.numpy(), clips.labels["video"]
    sets = [frames] + [recoloured(frames, video, copy, cfg.train.seed)
                       for copy in range(1, cfg.train.augment_clip_colors + 1)]
    if cfg.train.augment_clip_mirror:
        sets += [mirrored(f) for f in sets]
    copies = []
    for again in sets[1:]:
        cache_file = None
        if clips.cached is not None:
            cache_file = latent_cache.cache_path(cfg.data.root, "train", latent_cache.latent_key(again, clips.tokenizer))
        copies.append(ClipSet(again, clips.tokenizer, clips.device, progress, clips.labels, cache_file=cache_file))
    return copies


def is_mirrored(cfg: Config, copy: int) -> bool:
    """Whether clip set `copy` (0: the clips, then clip_copies' order) is a mirrored one."""
    return cfg.train.augment_clip_mirror and copy > cfg.train.augment_clip_colors

