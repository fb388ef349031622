"""Code sequences with a known rule, for the motion prior's tests: a prior that learned the rule
predicts every frame but the first; the rule's increment is written in the content or the label."""
import torch

from motionbits.models.prior import PriorConfig

N, K_E, T, K, CC = 4, 8, 8, 2, 16   # groups, codebook, frames, content tokens, content width


def small_cfg(**kw) -> PriorConfig:
    values = dict(width=48, depth=2, heads=2, max_frames=T, groups=N, codebook_size=K_E, content_dim=CC,
                  dropout=0.0, label_dropout=0.2)
    values.update(kw)
    return PriorConfig(**values)


def rule_codes(step: torch.Tensor, offset: torch.Tensor, frames: int = T) -> torch.Tensor:
    """codes[b, t, g] = (offset[b, g] + t * step[b]) mod K_e: frame 0 is random, the rest follows.
    Offsets are independent per group because the prior samples a frame's groups independently."""
    t = torch.arange(frames)[None, :, None]
    return (offset[:, None, :] + t * step[:, None, None]) % K_E


def rule_hits(codes: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """[B, T-1, N] bool: the code is the previous frame's plus `step` (mod K_e)."""
    return (codes[:, 1:] - codes[:, :-1]) % K_E == step[:, None, None]


def follows_rule(codes: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """[B] bool: every frame is the previous one plus `step`, in every group."""
    return rule_hits(codes, step).flatten(1).all(1)


def content_data(n: int, seed: int):
    """The increment (1 or 3) is written in the content; offsets are random."""
    gen = torch.Generator().manual_seed(seed)
    step = torch.tensor([1, 3])[torch.randint(0, 2, (n,), generator=gen)]
    content = torch.randn(n, K, CC, generator=gen) * 0.1
    content[:, 0, 0] += torch.where(step == 1, 1.0, -1.0)
    return rule_codes(step, torch.randint(0, K_E, (n, N), generator=gen)), content, step


def label_data(n: int, seed: int):
    """The increment is given only by the label (0 -> 1, 1 -> 3); the content is noise."""
    gen = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 2, (n,), generator=gen)
    step = torch.where(label == 0, 1, 3)
    content = torch.randn(n, K, CC, generator=gen)
    return rule_codes(step, torch.randint(0, K_E, (n, N), generator=gen)), content, label, step
