"""An identity adversary on the motion codes (train.identity_adversary; video data with identities).

With few people in the training set the codes can name the person, and the denoiser learns to draw
each person from (content, codes) together: transfers between two people then come out as neither
(README, talking heads). Here a small classifier reads each frame's quantized motion and guesses
whose clip it is; a gradient-reversal layer (Ganin & Lempitsky, 2015) hands the encoder the
opposite of the classifier's gradient, scaled by the weight, so the encoder learns codes the
classifier cannot tell apart by person (as DRNet's scene discriminator does for its pose vectors).
The identities are the dataset's own grouping (folders or `--identity-regex`), not annotations.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; the gradient is multiplied by -scale on the way back."""
    return _ReverseGradient.apply(x, scale)


class IdentityAdversary(nn.Module):
    def __init__(self, code_dim: int, identities: int, width: int = 256):
        super().__init__()
        self.head = nn.Sequential(nn.LayerNorm(code_dim), nn.Linear(code_dim, width), nn.GELU(),
                                  nn.Linear(width, identities))

    def forward(self, codes: torch.Tensor, identity: torch.Tensor, weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        """codes [B, T', Cm] (quantized motion), identity [B] -> (classifier loss, its accuracy).

        The loss trains the classifier; through the reversed gradient it pushes the encoder the
        other way, `weight` times as hard."""
        logits = self.head(reverse_gradient(codes, weight).float())             # [B, T', I]
        target = identity[:, None].expand(-1, codes.shape[1])
        loss = F.cross_entropy(logits.flatten(0, 1), target.flatten())
        accuracy = (logits.argmax(-1) == target).float().mean()
        return loss, accuracy.detach()
