"""An adversary against motion leaking into the content (optional; off in the paper's recipe).

Cross-driving stops the content from copying the frames it must rebuild, but on clips whose motion
class is constant (Sprites: one action in one direction for all 8 frames) the first half still
shows the action and direction, and the content is free to carry them. The denoiser then learns to
read them from the content, and a transfer keeps the content clip's motion.

The probe guesses, from the clip's content, which motion codes the rebuilt frames use (their
average code distribution per group), and learns to guess well. The encoder is trained to make
the probe's guess uninformative: equal to the batch's average code distribution (a "confusion"
loss, Tzeng et al. 2015). Unlike reversing the probe's gradient (tried first: the encoder then
makes the probe confidently wrong by scrambling the whole content, appearance included), this
loss is bounded and vanishes once the content says nothing about the motion, so the appearance,
which does not predict the codes, is left alone. No labels: the targets are the model's own codes.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ContentLeakProbe(nn.Module):
    def __init__(self, content_queries: int, content_dim: int, groups: int, codebook_size: int,
                 hidden: int = 256):
        super().__init__()
        self.groups, self.codebook_size = groups, codebook_size
        self.net = nn.Sequential(nn.Flatten(1), nn.LayerNorm(content_queries * content_dim),
                                 nn.Linear(content_queries * content_dim, hidden), nn.GELU(),
                                 nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, groups * codebook_size))

    def _log_probs(self, content: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        net = self.net
        if frozen:  # the same network, but no gradient reaches its weights
            params = {name: p.detach() for name, p in net.named_parameters()}
            logits = torch.func.functional_call(net, params, (content.float(),))
        else:
            logits = net(content.float())
        return F.log_softmax(logits.view(-1, self.groups, self.codebook_size), dim=-1)

    def forward(self, content: torch.Tensor, code_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """content [B, K, Cc]; code_probs [B, N, K_e], the rebuilt frames' average code distribution
        (a target, no gradient). Returns (probe loss, confusion loss), both in nats per group:
        the first trains only the probe (the content is detached), the second only the encoder."""
        code_probs = code_probs.detach()
        probe_loss = -(code_probs * self._log_probs(content.detach())).sum(-1).mean()
        average = code_probs.mean(0, keepdim=True)                            # [1, N, K_e]
        confusion = -(average * self._log_probs(content, frozen=True)).sum(-1).mean()
        return probe_loss, confusion
