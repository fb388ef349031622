"""The content/motion encoder: a T5-style bidirectional transformer over one token per frame.

    frames' latents z_1..z_T ──► frame embedder (per-patch MLP, grid flattened) ──► T frame tokens
    [q_1..q_K learnable content queries] ++ frame tokens ──► pre-norm transformer with a learned
    relative-position bias between frames (T5-style; the queries have no position)
    K query outputs ──► content c [B, K, Cc];   T frame outputs ──► motion m [B, T, N*d]

The content is read once per clip; the motion is per frame and goes on to the quantizer.
`PatchPoolContentReader` and `KeyFrameContentReader` are the alternative content paths of
`model.content_reader: patch_pool` and `key_frame`; `LipMotionEncoder` reads the motion of the
lip code groups (model.lip_groups) from lip points instead of latents.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
from einops import rearrange

from motionbits.lip_points import LIP_FEATURES, OPENINGS, lip_openings
from motionbits.models.layers import MLP, Attention, CrossAttention, RelativePositionBias, sincos_2d


class FrameEmbedder(nn.Module):
    """One latent frame [C, h, w] -> one token: cut into a grid of at most 8x8 patches, embed each
    patch with a small MLP, then flatten the grid, so the token keeps where things are (pose is
    spatial). Per-patch MLPs are ~20x cheaper than a strided conv stem at equal accuracy here."""

    def __init__(self, in_channels: int, size: int, width: int, hidden: int = 64):
        super().__init__()
        self.patch = max(1, size // 8)
        grid = size // self.patch
        self.patch_mlp = nn.Sequential(nn.Linear(in_channels * self.patch ** 2, hidden), nn.GELU(),
                                       nn.Linear(hidden, hidden))
        self.proj = nn.Sequential(nn.LayerNorm(grid * grid * hidden), nn.Linear(grid * grid * hidden, width))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, T, C, h, w] -> tokens [B, T, W]."""
        p = self.patch
        patches = rearrange(z, "b t c (gh p) (gw q) -> b t (gh gw) (c p q)", p=p, q=p)
        return self.proj(self.patch_mlp(patches).flatten(2))


class EncoderBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(width), Attention(width, heads)
        self.norm2, self.mlp = nn.LayerNorm(width), MLP(width)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), bias)
        return x + self.mlp(self.norm2(x))


class MotionContentEncoder(nn.Module):
    def __init__(self, latent_channels: int, latent_size: int, width: int, depth: int, heads: int,
                 content_queries: int, content_dim: int, motion_dim: int):
        """content_queries = 0: motion only (the content is read by a PatchPoolContentReader)."""
        super().__init__()
        self.embed = FrameEmbedder(latent_channels, latent_size, width)
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
        bias = self.position_bias(t, z.device, queries=k)
        for block in self.blocks:
            x = block(x, bias)
        x = self.norm(x)
        motion = self.to_motion(x[:, k:])                                       # [B, T, N*d]
        return (self.to_content(x[:, :k]) if k else None), motion


class LipMotionEncoder(nn.Module):
    """The motion of the lips as dlib draws them (model.lip_groups): each frame's 20 lip points,
    aligned to the eyes (lip_points.py: the head's place, size and roll taken out), standardised
    by the training frames' mean and spread, one token per frame, a few encoder blocks across the
    frames -> motion [B, T, Nl*d] for the lip code groups, whose rate is pulled apart (train.lip_bits).
    With `openings` it reads five numbers of the points instead (lip_points.lip_openings), each
    standardised on its own (they differ in scale; the points share one spread, keeping their shape)."""

    def __init__(self, width: int, depth: int, heads: int, motion_dim: int, relative: bool = False,
                 openings: bool = False):
        super().__init__()
        self.relative = relative      # it reads changes from a reference's mean (model.lip_relative)
        self.openings = openings      # model.lip_reads: openings
        features = OPENINGS if openings else LIP_FEATURES
        self.register_buffer("mean", torch.zeros(features))     # set from the training frames (set_statistics)
        self.register_buffer("spread", torch.ones(features) if openings else torch.ones(()))
        self.embed = nn.Sequential(nn.Linear(features, width), nn.SiLU(), nn.Linear(width, width))
        self.position_bias = RelativePositionBias(heads)
        self.blocks = nn.ModuleList(EncoderBlock(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.to_motion = nn.Linear(width, motion_dim)

    def set_statistics(self, lips: torch.Tensor) -> None:
        """lips [N, T, 40] of the training clips (NaN: no face)."""
        if self.relative:           # the spread of a clip's changes from its own mean
            lips = lips - lips.nanmean(dim=1, keepdim=True)
        lips = lip_openings(lips) if self.openings else lips
        ok = lips[~lips[..., 0].isnan()].reshape(-1, lips.shape[-1]).float()
        self.mean.copy_(ok.mean(0))
        self.spread.copy_((ok - ok.mean(0)).std(0) if self.openings else (ok - ok.mean(0)).std())

    def forward(self, lips: torch.Tensor) -> torch.Tensor:
        """lips [B, T, 40] (NaN where no face: read as the mean) -> motion [B, T, Nl*d]."""
        lips = lip_openings(lips.float()) if self.openings else lips.float()              # [B, T, F]
        lips = torch.where(lips.isnan(), self.mean, lips)
        x = self.embed((lips - self.mean) / self.spread)                              # [B, T, W]
        bias = self.position_bias(lips.shape[1], lips.device, queries=0)
        for block in self.blocks:
            x = block(x, bias)
        return self.to_motion(self.norm(x))


class PatchPoolContentReader(nn.Module):
    """A content path that cannot see the pose (model.content_reader: patch_pool): every 8x8-grid
    patch of the content frames is embedded on its own with NO position, and K learnable queries
    pool them by cross-attention (the patches never attend to each other, so it costs a fraction
    of the denoiser). A function of the set of patches: it reads colours and textures, not where
    they are."""

    def __init__(self, latent_channels: int, latent_size: int, width: int, depth: int, heads: int,
                 content_queries: int, content_dim: int):
        super().__init__()
        self.patch = max(1, latent_size // 8)
        self.embed = nn.Sequential(nn.Linear(latent_channels * self.patch ** 2, width), nn.GELU(),
                                   nn.Linear(width, width))
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
        patches = self.embed(rearrange(z, "b t c (gh p) (gw q) -> b (t gh gw) (c p q)", p=p, q=p))  # [B, T*G*G, W]
        context = self.context_norm(patches)
        x = self.queries.expand(z.shape[0], -1, -1)
        for layer in self.layers:
            x = x + layer["attn"](layer["norm1"](x), context)
            x = x + layer["mlp"](layer["norm2"](x))
        return self.to_content(self.norm(x))


class KeyFrameContentReader(nn.Module):
    """The content as a picture (model.content_reader: key_frame): the first content frame cut into
    K patches, one token each, which the denoiser adds onto its own patch at the same place
    (Denoiser content_in_place), so background, light and the face's look can be copied where they
    are, the way FOMM and LIA take them from a source image; the pose in that frame is wrong for the
    frames rebuilt (train.content_from_video), so it must come from the codes. One frame, so a call
    codec can send it as a key frame. With model.draw_change the content is the patches as they are
    (`raw`): the denoiser embeds them itself and adds the key frame back to what it draws."""

    def __init__(self, latent_channels: int, latent_size: int, width: int, content_queries: int, content_dim: int,
                 raw: bool = False):
        super().__init__()
        grid = math.isqrt(content_queries)
        if grid * grid != content_queries or latent_size % grid:
            raise ValueError(f"content_reader key_frame needs content_queries a square whose root divides the "
                             f"latent size {latent_size}, not {content_queries}")
        self.grid, self.patch = grid, latent_size // grid
        self.raw = raw
        if raw:
            return
        self.embed = nn.Sequential(nn.Linear(latent_channels * self.patch ** 2, width), nn.GELU(),
                                   nn.Linear(width, content_dim))
        self.register_buffer("positions", sincos_2d(content_dim, grid), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, T, C, h, w] -> content [B, K, Cc] from the first frame."""
        p = self.patch
        patches = rearrange(z[:, 0], "b c (gh p) (gw q) -> b (gh gw) (c p q)", p=p, q=p)     # [B, K, C*p*p]
        return patches if self.raw else self.embed(patches) + self.positions.to(patches.dtype)

    def key_latent(self, content: torch.Tensor) -> torch.Tensor:
        """raw content [B, K, C*p*p] -> the key frame's latent [B, C, h, w]."""
        return rearrange(content, "b (gh gw) (c p q) -> b c (gh p) (gw q)", gh=self.grid, p=self.patch, q=self.patch)
