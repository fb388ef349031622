"""Each frame's quantized motion read beside the other frames of its window, before it conditions
the denoiser (`model.motion_context`).

    m̂ [B, T', Cm] ──linear──► [B, T', W] ──transformer blocks (relative positions)──► linear ──► + m̂

The denoiser draws frames independently, so a frame whose code tuple is shared by two poses (the
low-rate codes merge similar poses, e.g. a walk's frames 3 and 5) comes out as their average. The
order of the tuples around it tells the two apart (..., 2, 3|5, 4, ... against ..., 4, 3|5, 6, ...),
and the codes stay the same discrete symbols: only the decoder reads them in context. The output
layer starts at zero, so the condition starts as each frame's codes alone.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from motionbits.models.encoder import EncoderBlock
from motionbits.models.layers import RelativePositionBias


class MotionContext(nn.Module):
    def __init__(self, motion_dim: int, depth: int, width: int = 128, heads: int = 4):
        super().__init__()
        self.inp = nn.Linear(motion_dim, width)
        self.blocks = nn.ModuleList(EncoderBlock(width, heads) for _ in range(depth))
        self.position_bias = RelativePositionBias(heads)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, motion_dim)
        nn.init.zeros_(self.out.weight)   # adds exactly 0 until trained
        nn.init.zeros_(self.out.bias)

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        """motion [B, T, Cm] (one window) -> [B, T, Cm], each frame having seen the others."""
        x = self.inp(motion)
        bias = self.position_bias(motion.shape[1], motion.device)
        for block in self.blocks:
            x = block(x, bias)
        return motion + self.out(self.norm(x))
