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
    def __init__(self, motion_dim: int, depth: int, width: int = 128, heads: int = 4, previous: bool = False):
        super().__init__()
        self.inp = nn.Linear(motion_dim, width)
        # model.context_previous_window: the previous window's codes are read too, in front; before a
        # clip's first window a learnt stand-in takes their place.
        self.no_previous = nn.Parameter(torch.zeros(width)) if previous else None
        self.blocks = nn.ModuleList(EncoderBlock(width, heads) for _ in range(depth))
        self.position_bias = RelativePositionBias(heads)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, motion_dim)
        nn.init.zeros_(self.out.weight)   # adds exactly 0 until trained
        nn.init.zeros_(self.out.bias)

    def forward(self, motion: torch.Tensor, previous: torch.Tensor | None = None,
                has_previous: torch.Tensor | None = None) -> torch.Tensor:
        """motion [B, T, Cm] (one window) -> [B, T, Cm], each frame having seen the others (and with
        `no_previous`, the previous window's [B, T, Cm] where has_previous [B] says there is one;
        None: there is none)."""
        x = self.inp(motion)                                                     # [B, T, W]
        if self.no_previous is not None:
            before = self.no_previous.expand_as(x)
            if previous is not None:
                read = self.inp(previous)
                before = read if has_previous is None else torch.where(has_previous[:, None, None], read, before)
            x = torch.cat([before, x], dim=1)                                    # [B, 2T, W]
        bias = self.position_bias(x.shape[1], motion.device)
        for block in self.blocks:
            x = block(x, bias)
        return motion + self.out(self.norm(x[:, -motion.shape[1]:]))
