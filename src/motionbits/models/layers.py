"""Transformer pieces shared by the encoder, the denoiser and the motion prior."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange


def sincos_2d(width: int, grid: int) -> torch.Tensor:
    """Fixed 2D sin-cos position embedding [grid*grid, width] (as in MAE/DiT)."""
    quarter = width // 4
    freqs = 1.0 / (10000 ** (torch.arange(quarter) / quarter))
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    parts = []
    for coord in (ys.flatten(), xs.flatten()):
        angles = coord[:, None].float() * freqs[None]
        parts += [angles.sin(), angles.cos()]
    emb = torch.cat(parts, dim=1)
    return nn.functional.pad(emb, (0, width - emb.shape[1]))


class RelativePositionBias(nn.Module):
    """T5-style learned attention bias per head for each frame offset, clipped to +-max_distance so
    sequences longer than any seen in training work. `queries` leading tokens without a position
    (content queries) get no bias."""

    def __init__(self, heads: int, max_distance: int = 32):
        super().__init__()
        self.max_distance = max_distance
        self.bias = nn.Embedding(2 * max_distance + 1, heads)

    def forward(self, frames: int, device: torch.device, queries: int = 0) -> torch.Tensor:
        pos = torch.arange(frames, device=device)
        offset = (pos[None, :] - pos[:, None]).clamp(-self.max_distance, self.max_distance)
        frame_bias = rearrange(self.bias(offset + self.max_distance), "i j h -> h i j")   # [H, T, T]
        if not queries:
            return frame_bias
        return F.pad(frame_bias, (queries, 0, queries, 0))                                 # [H, K+T, K+T]


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b l (three h d) -> three b h l d", three=3, h=self.heads)
        y = attend(q, k, v, None if bias is None else bias.to(q.dtype))
        return self.out(rearrange(y, "b h l d -> b l (h d)"))


class CrossAttention(nn.Module):
    """A few query tokens attend to many context tokens (no attention among the context)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """x [B, Q, W], context [B, L, W] -> [B, Q, W]."""
        q = rearrange(self.q(x), "b l (h d) -> b h l d", h=self.heads)
        k, v = rearrange(self.kv(context), "b l (two h d) -> two b h l d", two=2, h=self.heads)
        return self.out(rearrange(attend(q, k, v, None), "b h l d -> b l (h d)"))


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """[B, H, Lq, D] queries over [B, H, L, D] keys/values: the math below on the CPU, torch's
    flash / memory-efficient kernels elsewhere."""
    if q.device.type == "cpu":
        return math_attention(q, k, v, mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def math_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v. On the CPU, for our short sequences (< 100 tokens), this
    is ~3.5x faster forward+backward in bf16 than torch's fused CPU kernel (measured: 128 x 4 heads
    x 68 tokens, 1 thread: 0.074 s vs 0.26 s)."""
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = scores + mask
    return scores.float().softmax(-1).to(v.dtype) @ v


class MLP(nn.Sequential):
    def __init__(self, width: int, ratio: float = 4.0):
        hidden = int(width * ratio)
        super().__init__(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))
