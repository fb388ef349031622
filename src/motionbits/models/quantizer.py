"""Group vector quantization with a controlled bitrate: the motion bottleneck.

Each per-frame motion vector m_t (N * d) is split into N groups of d; group i picks one of the K_e
entries of its own codebook. While training the choice is a straight-through Gumbel-softmax sample
over logits -alpha * ||m_ti - e_ij||^2; at inference it is the nearest entry. So a frame costs at
most N * log2(K_e) bits, and the rate actually used is the entropy of the codes, estimated from the
average sampling probabilities of each group over the batch (the "histogram"):

    H = sum_i  -sum_j p_ij log2 p_ij       (bits per frame)

The training loss adds lambda * (R - H_target)^2, which holds the rate at the target from both
sides. Which R (`rate_estimate`):
- "marginal": R = H above, the paper's estimate. It can be met by noise: if motion vectors sit
  equidistant from several entries, the Gumbel samples are random, the histogram is spread, and
  the codes carry nothing (measured on Sprites: training estimate 10 bits per frame, argmin codes
  on the test split 0.5 bits, reconstructions useless).
- "information" (default): R = H - E_x[H(p(.|x))], the mutual information between a frame and its
  sampled code (per group, summed). Noise raises the second term and lowers R, so the target can
  only be met by codes that depend on the frame; below the target the penalty pushes information
  into the codes, which is what prevents the motion path from collapsing early in training.
Both are logged.

Collapse guard: the rate penalty is two-sided, so a collapse (H far below the target) is pushed
back up by the loss itself; this is what keeps the codebook alive by default. Optionally
(`dead_code_threshold` > 0), a code whose running usage falls below that fraction of its fair
share (1 / K_e) is re-seeded with a motion vector from the current batch. It is off by default:
with a target well below the ceiling most entries are meant to be idle, and re-seeding them all at
once (measured on sprites-cpu: at step ~690 the rate jumped from 10 to 12.7 bits per frame) only
disturbs training.
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
    quantized: torch.Tensor      # [B, T, N*d], straight-through in training
    codes: torch.Tensor          # [B, T, N] int64
    entropy_bits: torch.Tensor   # scalar: marginal code entropy, bits per frame (the paper's H)
    rate_bits: torch.Tensor      # scalar: the controlled rate (marginal H or mutual information)
    probs: torch.Tensor | None   # [N, K_e] average sampling probabilities (training only)


class GroupQuantizer(nn.Module):
    def __init__(self, groups: int, codebook_size: int, group_dim: int, alpha: float = 1.0,
                 tau: float = 1.0, dead_code_threshold: float = 0.0, usage_decay: float = 0.99,
                 rate_estimate: str = "information"):
        super().__init__()
        if rate_estimate not in ("information", "marginal"):
            raise ValueError(f"rate_estimate must be 'information' or 'marginal', got {rate_estimate!r}")
        self.rate_estimate = rate_estimate
        self.groups, self.codebook_size, self.group_dim = groups, codebook_size, group_dim
        self.alpha, self.tau = alpha, tau
        self.dead_code_threshold = dead_code_threshold
        self.usage_decay = usage_decay
        self.codebook = nn.Parameter(torch.randn(groups, codebook_size, group_dim))  # [N, K_e, d]
        # Running code usage per group, for dead-code revival and for logging.
        self.register_buffer("usage", torch.full((groups, codebook_size), 1.0 / codebook_size))

    @property
    def dim(self) -> int:
        return self.groups * self.group_dim

    @property
    def ceiling_bits(self) -> float:
        return self.groups * math.log2(self.codebook_size)

    def logits(self, motion: torch.Tensor, codebook: torch.Tensor | None = None) -> torch.Tensor:
        """motion [B, T, N*d] -> logits [B, T, N, K_e] = -alpha * squared distance (to `codebook`
        [N, K_e, d] when given, e.g. a detached copy, else to this quantizer's own)."""
        m = rearrange(motion.float(), "b t (n d) -> b t n d", n=self.groups)
        e = (self.codebook if codebook is None else codebook).float()
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
        logits = self.logits(motion)
        if not self.training:
            codes = logits.argmax(-1)
            h = entropy_bits(logits.softmax(-1).mean(dim=(0, 1)))
            return QuantizerOutput(self.lookup(codes), codes, h, h, None)

        if gumbel is None:
            gumbel = -torch.empty_like(logits).exponential_().log()
        soft = ((logits + gumbel) / self.tau).softmax(-1)               # [B,T,N,K_e]
        codes = soft.argmax(-1)
        hard = F.one_hot(codes, self.codebook_size).to(soft.dtype)
        onehot = hard - soft.detach() + soft                            # straight-through
        quantized = torch.einsum("btnk,nkd->btnd", onehot, self.codebook.float())
        probs = _all_reduce_mean(soft.mean(dim=(0, 1)))                 # [N, K_e] sampling histogram
        marginal = entropy_bits(probs)
        rate = marginal
        if self.rate_estimate == "information":
            # E_x H(p(.|x)) of the sampling distribution, summed over groups
            conditional = -(soft * torch.log2(soft.clamp_min(1e-12))).sum(-1).mean(dim=(0, 1)).sum()
            rate = marginal - _all_reduce_mean(conditional)
        self._track_usage(hard.detach(), motion.detach())
        return QuantizerOutput(rearrange(quantized, "b t n d -> b t (n d)"), codes, marginal, rate, probs)

    @torch.no_grad()
    def _track_usage(self, hard: torch.Tensor, motion: torch.Tensor) -> None:
        counts = _all_reduce_mean(hard.float().mean(dim=(0, 1)))          # [N, K_e]
        self.usage.mul_(self.usage_decay).add_(counts, alpha=1 - self.usage_decay)
        dead = self.usage < self.dead_code_threshold / self.codebook_size  # [N, K_e]
        if self.dead_code_threshold <= 0 or not dead.any():
            return
        # Re-seed each dead entry with a random motion vector of the batch (same group), and give it
        # a fair usage so it is not re-seeded again before it had a chance to be picked.
        m = rearrange(motion.float(), "b t (n d) -> (b t) n d", n=self.groups)
        pick = torch.randint(0, m.shape[0], dead.shape, device=m.device)
        candidates = m[pick, torch.arange(self.groups, device=m.device)[:, None]]  # [N, K_e, d]
        self.codebook.data[dead] = candidates[dead].to(self.codebook.dtype)
        self.usage[dead] = 1.0 / self.codebook_size
        _broadcast_from_rank0(self.codebook.data)

    @torch.no_grad()
    def usage_stats(self) -> dict[str, float]:
        """Codebook usage from the running usage: fraction of live codes and mean perplexity."""
        p = self.usage / self.usage.sum(-1, keepdim=True)
        perplexity = torch.exp(-(p * p.clamp_min(1e-12).log()).sum(-1))
        return {"codebook_used": (self.usage > 0.01 / self.codebook_size).float().mean().item(),
                "perplexity": perplexity.mean().item()}


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """probs [N, K_e] (rows sum to 1) -> sum over groups of each group's entropy, in bits."""
    return -(probs * torch.log2(probs.clamp_min(1e-12))).sum()


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    # The rate is a property of the global batch: average the histogram over processes so every
    # rank (and a single process on the same global batch) computes the same entropy.
    if not _distributed():
        return x
    import torch.distributed.nn.functional as dist_fn

    return dist_fn.all_reduce(x) / torch.distributed.get_world_size()


def _broadcast_from_rank0(x: torch.Tensor) -> None:
    if _distributed():
        torch.distributed.broadcast(x, src=0)
