"""Group vector quantization with a controlled bitrate: the motion bottleneck.

Each per-frame motion vector m_t (N * d) is split into N groups of d; group i picks one of the K_e
entries of its own codebook. A frame therefore costs at most N * log2(K_e) bits.

Code distribution. The logits of group i are l_ij = -alpha * ||m_ti - e_ij||^2 and
p(j | frame) = softmax(l_i)_j. Training draws the hard code by the Gumbel-max trick,
argmax_j (l_ij + g_j) with g Gumbel noise, which is an exact sample from p whatever the temperature;
the straight-through gradient flows through the relaxed sample softmax((l + g) / tau), so tau
shapes only the gradient. Inference takes the nearest entry, argmax_j l_ij.

The rate. The training loss adds lambda * (R - H_target)^2, which holds R at the target from both
sides (a collapse far below the target is pushed back up). Which R (`rate_estimate`), per group,
summed over groups, in bits per frame, over the frames of the (global) batch:
- "information" (default): R = I(frame; code) = H(mean_x p(.|x)) - mean_x H(p(.|x)), the mutual
  information between a frame and its code. Frames that all give the same p carry 0 bits, however
  spread p is; codes that are deterministic and distinct carry log2 of the number used. Only codes
  that depend on the frame count, so the target cannot be met by noise.
- "marginal": R = H(mean_x s), the entropy of the mean relaxed sample s = softmax((l + g) / tau):
  the paper's estimate. It can be met by noise (motion vectors equidistant from several entries
  give random codes that carry nothing; measured on Sprites: 10 bits per frame in training, 0.5 on
  the test split's argmin codes).
Both are batch (plug-in) estimates: H(mean_x p) is biased low by a batch of finitely many frames.
Both are logged, with the plug-in entropy of the hard codes beside them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor        # [B, T, N*d], straight-through in training
    codes: torch.Tensor            # [B, T, N] int64
    rate_bits: torch.Tensor        # scalar: the controlled rate (information or marginal)
    information_bits: torch.Tensor  # scalar: I(frame; code), bits per frame
    marginal_bits: torch.Tensor    # scalar: entropy of the mean relaxed sample (the paper's H)
    code_entropy_bits: torch.Tensor | None = None   # training: plug-in entropy of the batch's hard codes
    static_code_bits: torch.Tensor | None = None    # training: their cost under the running frequencies


class GroupQuantizer(nn.Module):
    def __init__(self, groups: int, codebook_size: int, group_dim: int, alpha: float = 1.0,
                 tau: float = 1.0, rate_estimate: str = "information", usage_decay: float = 0.99):
        super().__init__()
        if rate_estimate not in ("information", "marginal"):
            raise ValueError(f"rate_estimate must be 'information' or 'marginal', got {rate_estimate!r}")
        self.rate_estimate = rate_estimate
        self.groups, self.codebook_size, self.group_dim = groups, codebook_size, group_dim
        self.alpha, self.tau = alpha, tau
        self.usage_decay = usage_decay
        self.codebook = nn.Parameter(torch.randn(groups, codebook_size, group_dim))  # [N, K_e, d]
        # Running frequency of each group's hard codes in training: logged, and the static model of
        # the motion bitstream when a run has no prior (motionbits.codec).
        self.register_buffer("usage", torch.full((groups, codebook_size), 1.0 / codebook_size))

    @property
    def dim(self) -> int:
        return self.groups * self.group_dim

    @property
    def ceiling_bits(self) -> float:
        return self.groups * math.log2(self.codebook_size)

    def logits(self, motion: torch.Tensor) -> torch.Tensor:
        """motion [B, T, N*d] -> logits [B, T, N, K_e] = -alpha * squared distance to each entry."""
        m = rearrange(motion.float(), "b t (n d) -> b t n d", n=self.groups)
        e = self.codebook.float()
        # ||m||^2 - 2 m.e + ||e||^2, per group
        dist = (m.pow(2).sum(-1, keepdim=True)
                - 2 * torch.einsum("btnd,nkd->btnk", m, e)
                + e.pow(2).sum(-1)[None, None])
        return -self.alpha * dist

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T, N] -> quantized motion [B, T, N*d]."""
        gathered = self.codebook[torch.arange(self.groups, device=codes.device), codes]  # [B,T,N,d]
        return rearrange(gathered, "b t n d -> b t (n d)")

    def forward(self, motion: torch.Tensor, gumbel: torch.Tensor | None = None) -> QuantizerOutput:
        """motion [B, T, N*d]. `gumbel` [B, T, N, K_e] may be given to make sampling reproducible."""
        logits = self.logits(motion)                                    # [B, T, N, K_e]
        information = information_bits(logits)
        if not self.training:
            codes = logits.argmax(-1)
            return QuantizerOutput(self.lookup(codes), codes, information, information,
                                   entropy_bits(_all_reduce_mean(logits.softmax(-1).mean(dim=(0, 1)))))
        if gumbel is None:
            gumbel = -torch.empty_like(logits).exponential_().log()
        soft = ((logits + gumbel) / self.tau).softmax(-1)               # [B, T, N, K_e] relaxed sample
        codes = soft.argmax(-1)                                         # = argmax(logits + gumbel): a sample of p
        hard = F.one_hot(codes, self.codebook_size).to(soft.dtype)
        onehot = hard - soft.detach() + soft                            # straight-through
        quantized = torch.einsum("btnk,nkd->btnd", onehot, self.codebook.float())
        marginal = entropy_bits(_all_reduce_mean(soft.mean(dim=(0, 1))))
        with torch.no_grad():
            frequency = _all_reduce_mean(hard.mean(dim=(0, 1)))          # [N, K_e] of the hard codes
            static = self.static_bits(codes)
            self.usage.mul_(self.usage_decay).add_(frequency, alpha=1 - self.usage_decay)
        return QuantizerOutput(rearrange(quantized, "b t n d -> b t (n d)"), codes,
                               information if self.rate_estimate == "information" else marginal,
                               information, marginal, entropy_bits(frequency), static)

    @torch.no_grad()
    def static_bits(self, codes: torch.Tensor) -> torch.Tensor:
        """Mean bits per frame of codes [..., N] under the running per-group frequencies: what the
        motion bitstream's static model (no prior) spends, up to its integer rounding."""
        p = self.usage / self.usage.sum(-1, keepdim=True)                         # [N, K_e]
        cost = -torch.log2(p.clamp_min(1e-12))[torch.arange(self.groups, device=codes.device), codes]
        return cost.sum(-1).float().mean()

    @torch.no_grad()
    def usage_stats(self) -> dict[str, float]:
        """Per-group codebook usage from the running frequencies: entries in use (above 1 % of a
        fair share) and perplexity, as the mean and the smallest over groups."""
        p = self.usage / self.usage.sum(-1, keepdim=True)
        perplexity = torch.exp(-(p * p.clamp_min(1e-12).log()).sum(-1))              # [N]
        used = (self.usage > 0.01 / self.codebook_size).sum(-1).float()               # [N]
        return {"entries_used_mean": used.mean().item(), "entries_used_min": used.min().item(),
                "perplexity_mean": perplexity.mean().item(), "perplexity_min": perplexity.min().item()}


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """probs [..., K] (rows sum to 1) -> the sum over all leading positions of each row's entropy, in bits."""
    return -(probs * torch.log2(probs.clamp_min(1e-12))).sum()


def information_bits(logits: torch.Tensor) -> torch.Tensor:
    """logits [B, T, N, K_e] -> I(frame; code) over the B*T frames, per group, summed: bits per frame.
    H(mean_x p) - mean_x H(p) with p = softmax(logits); the mean runs over every process's frames."""
    p = logits.float().softmax(-1)
    mean_p = _all_reduce_mean(p.mean(dim=(0, 1)))                                     # [N, K_e]
    conditional = -(p * torch.log2(p.clamp_min(1e-12))).sum(-1).mean(dim=(0, 1)).sum()
    return entropy_bits(mean_p) - _all_reduce_mean(conditional)


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    # The rate is a property of the global batch: average over processes so every rank (and one
    # process on the same global batch) computes the same value. Differentiable.
    if not _distributed():
        return x
    import torch.distributed.nn.functional as dist_fn

    return dist_fn.all_reduce(x) / torch.distributed.get_world_size()
