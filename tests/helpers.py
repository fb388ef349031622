"""Builders shared by the tests: tiny configs, small datasets made on the spot, wide-awake models."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from motionbits.config import Config, config_from_dict


def tiny_config(**overrides) -> Config:
    """A model small enough to train a few steps in a second (16x16 pixel frames unless changed)."""
    values = {
        "name": "tiny",
        "data": {"frames": 8, "image_size": 16},
        "model": {"encoder_width": 32, "encoder_depth": 1, "encoder_heads": 2, "content_queries": 2,
                  "content_dim": 16, "groups": 4, "codebook_size": 8, "group_dim": 4,
                  "patch_size": 4, "denoiser_width": 32, "denoiser_depth": 2, "denoiser_heads": 2},
        "diffusion": {"sample_steps": 2, "sigma_data": 0.5},
        "train": {"steps": 4, "batch_size": 4, "log_every": 2, "checkpoint_every": 2, "sample_every": 0,
                  "target_bits": 4.0, "warmup_steps": 1, "amp": "off"},
        "eval": {"judge_steps": 5, "clips": 8, "batch_size": 8},
    }
    for section, vals in overrides.items():
        if isinstance(vals, dict):
            values.setdefault(section, {}).update(vals)
        else:
            values[section] = vals
    return config_from_dict(values)


def awake(model: torch.nn.Module, std: float = 0.1) -> torch.nn.Module:
    """adaLN-Zero and zero output layers make a new denoiser ignore its conditions: give every
    weight a value so what reaches what becomes visible."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(std=std)
    return model


def write_video(path: Path, frames: np.ndarray, fps: float = 10.0) -> Path:
    """uint8 frames [T, H, W, 3] to an .mp4 (libx264, near lossless) or .gif."""
    from motionbits.visualize import save_video

    return save_video(frames, path, fps=fps)


def moving_square_video(frames: int = 24, size: int = 48, colour=(220, 60, 40), seed: int = 0) -> np.ndarray:
    """A square of one colour sliding over a textured background: uint8 [T, size, size, 3]."""
    rng = np.random.default_rng(seed)
    background = (rng.random((size, size, 3)) * 60 + 40).astype(np.uint8)
    out = np.repeat(background[None], frames, axis=0)
    side = size // 4
    for t in range(frames):
        x = (t * 2) % (size - side)
        out[t, size // 3: size // 3 + side, x:x + side] = colour
    return out
