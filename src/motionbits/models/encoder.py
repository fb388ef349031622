"""The content/motion encoder: a T5-style bidirectional transformer over one token per frame.

    frames' latents z_1..z_T ──► frame embedder (strided convs, flatten) ──► T frame tokens
    [q_1..q_K learnable content queries] ++ frame tokens ──► pre-norm transformer with a learned
    relative-position bias between frames (T5-style; the queries have no position)
    K query outputs ──► content c [B, K, Cc];   T frame outputs ──► motion m [B, T, N*d]

The content is read once per clip; the motion is per frame and goes on to the quantizer (with
model.center_motion, minus its mean over the window).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
from einops import rearrange

from motionbits.errors import MotionbitsError
from motionbits.models.layers import MLP, Attention, CrossAttention


class FrameEmbedder(nn.Module):
    """One latent frame [C, h, w] -> one token: cut into a grid of at most 8x8 patches, embed each
    patch with a small MLP, then flatten the grid, so the token keeps where things are (pose is
    spatial). Per-patch MLPs are ~20x cheaper than a strided conv stem at equal accuracy here."""

    def __init__(self, in_channels: int, size: int, width: int, hidden: int = 64):
        super().__init__()
        self.patch = max(1, size // 8)
        grid = size // self.patch
        self.patch_mlp = nn.Sequential(nn.Linear(in_channels * self.patch ** 2, hidden), nn.GELU(approximate="tanh"),
                                       nn.Linear(hidden, hidden))
        self.proj = nn.Sequential(nn.LayerNorm(grid * grid * hidden), nn.Linear(grid * grid * hidden, width))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, T, C, h, w] -> tokens [B, T, W]."""
        p = self.patch
        patches = rearrange(z, "b t c (gh p) (gw q) -> b t (gh gw) (c p q)", p=p, q=p)
        return self.proj(self.patch_mlp(patches).flatten(2))


class RelativePositionBias(nn.Module):
    """T5-style learned bias per head for each clipped frame offset; zero for content queries."""

    def __init__(self, heads: int, max_distance: int = 32):
        super().__init__()
        self.max_distance = max_distance
        self.bias = nn.Embedding(2 * max_distance + 1, heads)

    def forward(self, queries: int, frames: int, device: torch.device) -> torch.Tensor:
        pos = torch.arange(frames, device=device)
        offset = (pos[None, :] - pos[:, None]).clamp(-self.max_distance, self.max_distance)
        frame_bias = rearrange(self.bias(offset + self.max_distance), "i j h -> h i j")
        full = frame_bias.new_zeros(frame_bias.shape[0], queries + frames, queries + frames)
        full[:, queries:, queries:] = frame_bias
        return full  # [heads, K+T, K+T]


class EncoderBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(width), Attention(width, heads)
        self.norm2, self.mlp = nn.LayerNorm(width), MLP(width)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), bias)
        return x + self.mlp(self.norm2(x))


class MotionContentEncoder(nn.Module):
    def __init__(self, latent_channels: int, latent_size: int, width: int, depth: int, heads: int,
                 content_queries: int, content_dim: int, motion_dim: int, center_motion: bool = False):
        super().__init__()
        self.center_motion = center_motion
        self.embed = FrameEmbedder(latent_channels, latent_size, width)
        # content_queries = 0: motion only (the content is read elsewhere, e.g. PatchSetContentReader)
        self.queries = nn.Parameter(torch.randn(content_queries, width) / math.sqrt(width)) if content_queries else None
        self.position_bias = RelativePositionBias(heads)
        self.blocks = nn.ModuleList(EncoderBlock(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.to_content = nn.Linear(width, content_dim) if content_queries else None
        self.to_motion = nn.Linear(width, motion_dim)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """z [B, T, C, h, w] -> content [B, K, Cc] (None without queries), motion [B, T, N*d]."""
        b, t = z.shape[:2]
        x = self.embed(z)                                                       # [B, T, W]
        k = 0 if self.queries is None else self.queries.shape[0]
        if k:
            x = torch.cat([self.queries.expand(b, -1, -1), x], dim=1)          # [B, K+T, W]
        bias = self.position_bias(k, t, z.device)
        for block in self.blocks:
            x = block(x, bias)
        x = self.norm(x)
        motion = self.to_motion(x[:, k:])                                       # [B, T, N*d]
        if self.center_motion:
            # Only the change within the window reaches the codes: a person's constant traits
            # (face, hair, resting pose) cancel out and must come through the content.
            motion = motion - motion.mean(dim=1, keepdim=True)
        return (self.to_content(x[:, :k]) if k else None), motion


def content_patch_embedder(latent_channels: int, latent_size: int, width: int,
                           patch: int | None) -> tuple[int, nn.Module]:
    """(patch side, an MLP embedding one flattened patch [C*p*p] -> [W]) for the content readers."""
    patch = patch or max(1, latent_size // 8)
    if latent_size % patch:
        raise MotionbitsError(f"model.content_patch={patch} does not divide the latent size {latent_size}")
    return patch, nn.Sequential(nn.Linear(latent_channels * patch ** 2, width), nn.GELU(approximate="tanh"),
                                nn.Linear(width, width))


class PatchSetContentReader(nn.Module):
    """An alternative content path (model.content_reader: patch_set): K learnable queries and every
    patch of the content frames, embedded one by one and given NO position, go through a small
    transformer; content = the K query outputs [B, K, Cc]. A function of the set of patches: it can
    read colours and textures but not where they are, so it cannot carry the pose."""

    def __init__(self, latent_channels: int, latent_size: int, width: int, depth: int, heads: int,
                 content_queries: int, content_dim: int, patch: int | None = None):
        super().__init__()
        self.patch, self.embed = content_patch_embedder(latent_channels, latent_size, width, patch)
        self.queries = nn.Parameter(torch.randn(content_queries, width) / math.sqrt(width))
        self.blocks = nn.ModuleList(EncoderBlock(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.to_content = nn.Linear(width, content_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, T, C, h, w] -> content [B, K, Cc]."""
        p = self.patch
        patches = self.embed(rearrange(z, "b t c (gh p) (gw q) -> b (t gh gw) (c p q)", p=p, q=p))  # [B, T*G, W]
        k = self.queries.shape[0]
        x = torch.cat([self.queries.expand(z.shape[0], -1, -1), patches], dim=1)
        for block in self.blocks:
            x = block(x, None)
        return self.to_content(self.norm(x[:, :k]))


class PatchPoolContentReader(nn.Module):
    """A cheaper position-free content path (model.content_reader: patch_pool): every patch of the
    content frames is embedded on its own, and K learnable queries pool them by cross-attention
    (the patches never attend to each other, which is what made patch_set cost as much as the
    denoiser). With model.content_rows each patch also gets an embedding of its row, so the reader
    can tell trousers (low) from hair (high) without learning it from shapes; the columns and frames
    stay unknown, so left/right and the arms' sway are still out of its reach."""

    def __init__(self, latent_channels: int, latent_size: int, width: int, depth: int, heads: int,
                 content_queries: int, content_dim: int, patch: int | None = None, rows: bool = False):
        super().__init__()
        self.patch, self.embed = content_patch_embedder(latent_channels, latent_size, width, patch)
        self.grid = latent_size // self.patch
        self.row_embed = nn.Parameter(torch.zeros(self.grid, width)) if rows else None
        self.queries = nn.Parameter(torch.randn(content_queries, width) / math.sqrt(width))
        self.context_norm = nn.LayerNorm(width)
        self.layers = nn.ModuleList(nn.ModuleDict({"norm1": nn.LayerNorm(width), "attn": CrossAttention(width, heads),
                                                   "norm2": nn.LayerNorm(width), "mlp": MLP(width)})
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.to_content = nn.Linear(width, content_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, T, C, h, w] -> content [B, K, Cc]."""
        p = self.patch
        patches = self.embed(rearrange(z, "b t c (gh p) (gw q) -> b t gh gw (c p q)", p=p, q=p))  # [B, T, G, G, W]
        if self.row_embed is not None:
            patches = patches + self.row_embed[:, None, :].to(patches.dtype)
        context = self.context_norm(patches.flatten(1, 3))                                          # [B, T*G*G, W]
        x = self.queries.expand(z.shape[0], -1, -1)
        for layer in self.layers:
            x = x + layer["attn"](layer["norm1"](x), context)
            x = x + layer["mlp"](layer["norm2"](x))
        return self.to_content(self.norm(x))
