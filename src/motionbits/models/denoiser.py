"""The conditional denoiser: a DiT over one frame's latent patches.

Per frame t of a clip:
    noisy latent z_t [C, h, w] ──patchify──► L patch tokens (+ fixed 2D sin-cos positions)
    content c [K, Cc] ──linear──► K content tokens, concatenated in front of the patch tokens
    condition = embed(noise level) + embed(quantized motion m̂_t) + embed(mean content token)
                (per-frame adaLN-Zero; the pooled content gives the look a direct path)
    DiT blocks ──► per-patch output ──unpatchify──► [C, h, w]   (the raw network output F of EDM)

Frames are independent given (content, motion), so a batch is flattened to B*T frames, unless
temporal attention is on: then each block also attends across the T frames at each token position,
with a learned relative-position bias (clips longer than in training work) and a zero-initialised
output, so a model with these layers added computes exactly what the model without them did
(the paper's second training stage starts there).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
from einops import rearrange

from motionbits.models.layers import MLP, Attention, RelativePositionBias, sincos_2d


class NoiseLevelEmbedder(nn.Module):
    """Scalar c_noise (EDM: ln(sigma)/4) -> width, via sinusoidal features and an MLP."""

    def __init__(self, width: int, features: int = 256):
        super().__init__()
        self.features = features
        self.mlp = nn.Sequential(nn.Linear(features, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        half = self.features // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=c_noise.device) / half)
        angles = 1000 * c_noise.float()[:, None] * freqs[None]  # scaled so ln(sigma)/4 spans many periods
        return self.mlp(torch.cat([angles.cos(), angles.sin()], dim=1))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class TemporalAttention(nn.Module):
    """Attention across the frames of a clip at each token position, zero-initialised."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.attn = Attention(width, heads)
        self.position_bias = RelativePositionBias(heads)
        nn.init.zeros_(self.attn.out.weight)   # adds exactly 0 until trained
        nn.init.zeros_(self.attn.out.bias)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """x [B*T, L, W] -> the same, each token having seen its position in the other frames."""
        xt = rearrange(x, "(b t) l w -> (b l) t w", t=frames)
        xt = xt + self.attn(self.norm(xt), self.position_bias(frames, x.device))
        return rearrange(xt, "(b l) t w -> (b t) l w", l=x.shape[1])


class DiTBlock(nn.Module):
    def __init__(self, width: int, heads: int, temporal: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = MLP(width)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.ada[1].weight)  # adaLN-Zero: every block starts as the identity
        nn.init.zeros_(self.ada[1].bias)
        self.temporal = TemporalAttention(width, heads) if temporal else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor, frames: int) -> torch.Tensor:
        """x [B*T, L, W], cond [B*T, W]."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(cond).chunk(6, dim=1)
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1))
        if self.temporal is not None:
            x = self.temporal(x, frames)
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class Denoiser(nn.Module):
    def __init__(self, latent_channels: int, latent_size: int, patch_size: int, width: int,
                 depth: int, heads: int, content_dim: int, motion_dim: int, temporal_attention: bool = False,
                 content_in_place: bool = False, content_mlp: bool = False):
        super().__init__()
        if latent_size % patch_size:
            raise ValueError(f"latent size {latent_size} is not a multiple of patch size {patch_size}")
        self.patch_size, self.channels = patch_size, latent_channels
        self.grid = latent_size // patch_size
        self.patch_in = nn.Linear(latent_channels * patch_size ** 2, width)
        self.register_buffer("positions", sincos_2d(width, self.grid), persistent=False)
        # content_mlp (model.draw_change): the content is the key frame's raw latent patches, embedded here.
        self.content_in = (nn.Sequential(nn.Linear(content_dim, width), nn.GELU(), nn.Linear(width, width))
                           if content_mlp else nn.Linear(content_dim, width))
        self.content_type = nn.Parameter(torch.zeros(1, 1, width))
        # content_in_place (content_reader: key_frame): one content token per patch of the frame,
        # added where it lies, so the key frame's background and light are copied patch by patch.
        self.content_in_place = content_in_place
        self.noise_embed = NoiseLevelEmbedder(width)
        self.motion_embed = nn.Sequential(nn.Linear(motion_dim, width), nn.SiLU(), nn.Linear(width, width))
        # Attention to the content tokens learns slowly from noise-only inputs; the pooled content in
        # the adaLN condition gives appearance (colours) a direct path, like class labels in DiT.
        self.content_embed = nn.Sequential(nn.Linear(content_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(DiTBlock(width, heads, temporal_attention) for _ in range(depth))
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.patch_out = nn.Linear(width, latent_channels * patch_size ** 2)
        for layer in (self.final_ada[1], self.patch_out):  # the network starts by predicting zero
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, z: torch.Tensor, c_noise: torch.Tensor, motion: torch.Tensor,
                content: torch.Tensor) -> torch.Tensor:
        """z [B, T, C, h, w] (already scaled by c_in), c_noise [B, T], motion [B, T, Cm],
        content [B, K, Cc] -> F(z) [B, T, C, h, w]."""
        b, t = z.shape[:2]
        p = self.patch_size
        x = rearrange(z, "b t c (gh p) (gw q) -> (b t) (gh gw) (c p q)", p=p, q=p)
        x = self.patch_in(x) + self.positions.to(x.dtype)                       # [B*T, L, W]
        ctx = self.content_in(content) + self.content_type                     # [B, K, W]
        ctx = ctx.repeat_interleave(t, dim=0)                                  # [B*T, K, W]
        if self.content_in_place:                                              # K = L
            x, k = x + ctx, 0
        else:
            k = ctx.shape[1]
            x = torch.cat([ctx, x], dim=1)                                     # [B*T, K+L, W]
        cond = (self.noise_embed(c_noise.flatten()) + self.motion_embed(motion.flatten(0, 1))
                + self.content_embed(content.mean(1)).repeat_interleave(t, dim=0))      # [B*T, W]
        for block in self.blocks:
            x = block(x, cond, t)
        shift, scale = self.final_ada(cond).chunk(2, dim=1)
        x = self.patch_out(modulate(self.final_norm(x[:, k:]), shift, scale))  # [B*T, L, C*p*p]
        return rearrange(x, "(b t) (gh gw) (c p q) -> b t c (gh p) (gw q)",
                         b=b, gh=self.grid, p=p, q=p)
