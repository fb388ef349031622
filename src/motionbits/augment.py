"""Whole-clip colour augmentation (train.augment_clip_colors, pixels only).

With few people in the training set the motion codes can name the person, and the denoiser then
paints that person's colours, background and clothes from memory, so a transfer copies the driver
(README, talking heads). Recolouring each training clip at random, target included, gives every
person many looks; combined with train.augment_motion_colors (the motion frames' channels permuted
on top, so the codes cannot see which recolouring was drawn) the look can only come from the
content.

The recolouring is a rotation of the chroma plane of YIQ by a random angle, with random gains on
luma and chroma: it keeps the picture's structure and moves its colours anywhere on the hue
circle.
"""
from __future__ import annotations

import math

import torch

# RGB -> YIQ (NTSC); its inverse is computed once.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                            [0.596, -0.274, -0.322],
                            [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def random_color_matrices(n: int, generator: torch.Generator, luma: float = 0.25,
                          chroma: float = 0.5) -> torch.Tensor:
    """n random RGB -> RGB colour matrices [n, 3, 3]: hue angle uniform on the circle, luma gain in
    [1 - luma, 1 + luma], chroma gain in [1 - chroma, 1 + chroma]."""
    angle = torch.rand(n, generator=generator) * 2 * math.pi
    luma_gain = 1 + luma * (2 * torch.rand(n, generator=generator) - 1)
    chroma_gain = 1 + chroma * (2 * torch.rand(n, generator=generator) - 1)
    cos, sin = angle.cos() * chroma_gain, angle.sin() * chroma_gain
    zero = torch.zeros(n)
    yiq = torch.stack([torch.stack([luma_gain, zero, zero], -1),
                       torch.stack([zero, cos, -sin], -1),
                       torch.stack([zero, sin, cos], -1)], -2)                     # [n, 3, 3] in YIQ
    return _YIQ_TO_RGB @ yiq @ _RGB_TO_YIQ


def recolor(clips: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """clips [B, T, 3, H, W] in [-1, 1], matrices [B, 3, 3] -> recoloured clips in [-1, 1]."""
    unit = (clips.float() + 1) / 2
    out = torch.einsum("bij,btjhw->btihw", matrices.to(unit.device, unit.dtype), unit)
    return (out.clamp(0, 1) * 2 - 1).to(clips.dtype)
