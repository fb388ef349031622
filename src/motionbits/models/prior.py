"""The motion prior: a GPT-2-style causal transformer over per-frame motion codes.

One token per frame; the clip's content (and optionally a class label) sit in front as a prefix:

    content c [K, Cc] ──norm+linear──► K content tokens ┐  prefix: attends to itself only,
    label y (or "no label")          ──embed──► 1 token  ┘  attended by every frame token
    [start] , frame 0 , ... , frame T-2  ──►  frame token = sum of the N group embeddings of
                                               its codes + learned position (0..max_frames-1)
    causal transformer ──► the output at frame slot t ──N heads──► logits of frame t's N codes

So logits[:, t] predicts codes[:, t] from content, label and codes[:, :t]; slot 0 holds the
start token and predicts frame 0 from the prefix alone.

Groups within a frame (`group_autoregressive`):
  False (default): the N groups of a frame are predicted *independently* given the past (one
      linear head per group). One network step per frame keeps training and sampling cheap, and
      once a clip has started the next frame is usually near-deterministic, so little is lost;
      but where a frame is genuinely uncertain (typically frame 0: which phase of the motion?)
      the groups are sampled from their marginals and may not agree with each other. The
      quantizer's rate loss only controls the sum of per-group entropies; nothing makes the
      groups independent, so bits_per_frame is then an upper bound on what a joint model gets.
  True: N sub-steps per frame, but only in a small head: group g's logits see the transformer
      output and the embeddings of the same frame's groups < g (an exclusive cumulative sum), so
      p(frame) = prod_g p(code_g | past, codes_<g) exactly. The transformer still runs once per
      frame; sampling runs the head N times. About +20 % training cost at the default sizes.

Label conditioning trains with label dropout (training/prior.py replaces the label by -1, "no
label", with probability `label_dropout`), so one model samples both with and without a label.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from motionbits.errors import MotionbitsError
from motionbits.models.layers import MLP, Attention


@dataclass
class PriorConfig:
    width: int = 192
    depth: int = 4
    heads: int = 4
    max_frames: int = 8            # longest context, in frames (the training clip length)
    groups: int = 8                # N, motion code groups per frame
    codebook_size: int = 16        # K_e, entries per group
    content_dim: int = 128         # Cc, per content token
    num_classes: int = 0           # 0: no label conditioning
    dropout: float = 0.2           # also fights memorising each clip's codes from its (unique) content
    label_dropout: float = 0.2
    group_autoregressive: bool = False  # see the module docstring

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "prior config") -> "PriorConfig":
        from motionbits.config import build_checked

        cfg = build_checked(cls, values, where)
        cfg.validate(where)
        return cfg

    def validate(self, where: str = "prior config") -> None:
        checks = [
            (self.width % self.heads == 0, f"width={self.width} must be divisible by heads={self.heads}"),
            (self.depth >= 1 and self.max_frames >= 1, "depth and max_frames must be >= 1"),
            (self.groups >= 1 and self.codebook_size >= 2, "groups must be >= 1 and codebook_size >= 2"),
            (self.content_dim >= 1 and self.num_classes >= 0, "content_dim must be >= 1, num_classes >= 0"),
            (0 <= self.dropout < 1 and 0 <= self.label_dropout <= 1, "dropout and label_dropout must be in [0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise MotionbitsError(f"{where}: {message}")


class PriorBlock(nn.Module):
    """Pre-norm GPT-2 block; dropout on each residual branch."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(width), Attention(width, heads)
        self.norm2, self.mlp = nn.LayerNorm(width), MLP(width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), bias))
        return x + self.drop(self.mlp(self.norm2(x)))


class MotionPrior(nn.Module):
    def __init__(self, cfg: PriorConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        w, n, k = cfg.width, cfg.groups, cfg.codebook_size
        self.content_in = nn.Sequential(nn.LayerNorm(cfg.content_dim), nn.Linear(cfg.content_dim, w))
        # Group g's entry e lives at row g*K_e + e: one table, one lookup for all N groups.
        self.code_embed = nn.Embedding(n * k, w)
        self.register_buffer("group_offset", torch.arange(n) * k, persistent=False)
        self.start = nn.Parameter(torch.zeros(w))
        self.position = nn.Embedding(cfg.max_frames, w)
        self.label_embed = nn.Embedding(cfg.num_classes + 1, w) if cfg.num_classes else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(PriorBlock(w, cfg.heads, cfg.dropout) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(w)
        if cfg.group_autoregressive:
            self.group_embed = nn.Embedding(n * k, w)   # the frame being predicted, group by group
            self.group_norm, self.group_mlp = nn.LayerNorm(w), MLP(w, ratio=1.0)
            self.head_weight = nn.Parameter(torch.empty(n, w, k))  # one linear head per group
            self.head_bias = nn.Parameter(torch.zeros(n, k))
        else:
            self.head = nn.Linear(w, n * k)  # N separate linear heads, stacked into one matrix
        self._init_weights()

    def _init_weights(self) -> None:
        # GPT-2: N(0, 0.02) everywhere, residual output projections shrunk by depth so the
        # residual stream's variance does not grow with the number of blocks.
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.start, std=0.02)
        if self.cfg.group_autoregressive:
            nn.init.normal_(self.head_weight, std=0.02)
        for block in self.blocks:
            for proj in (block.attn.out, block.mlp[2]):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * self.cfg.depth))

    @property
    def null_label(self) -> int:
        return self.cfg.num_classes

    # ---- network ------------------------------------------------------------------------------
    def _prefix(self, content: torch.Tensor | None, label: torch.Tensor | None, batch: int) -> torch.Tensor:
        """The conditioning tokens [B, P, W]: content tokens, then the label token if any."""
        parts = []
        if content is not None:
            if content.ndim != 3 or content.shape[-1] != self.cfg.content_dim:
                raise MotionbitsError(f"content must be [B, K, {self.cfg.content_dim}], got {tuple(content.shape)}")
            parts.append(self.content_in(content.to(self.start.dtype)))
        if self.label_embed is not None:
            parts.append(self.label_embed(self._label_index(label, batch))[:, None])
        elif label is not None:
            raise MotionbitsError("this prior was trained without labels (num_classes=0); pass label=None")
        if not parts:
            return self.start.new_zeros(batch, 0, self.cfg.width)
        return torch.cat(parts, dim=1)

    def _label_index(self, label: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Labels [B] -> embedding rows; None or a negative label means "no label"."""
        device = self.start.device
        if label is None:
            return torch.full((batch,), self.null_label, dtype=torch.long, device=device)
        label = torch.as_tensor(label, device=device).long().reshape(-1).expand(batch)
        if (label >= self.cfg.num_classes).any():
            raise MotionbitsError(f"labels must be < num_classes={self.cfg.num_classes}, got {label.max().item()}")
        return torch.where(label < 0, self.null_label, label)

    def _frame_tokens(self, context: torch.Tensor) -> torch.Tensor:
        """context codes [B, S, N] -> input tokens [B, S+1, W]: start, then one token per frame."""
        b, s, n = context.shape
        if n != self.cfg.groups:
            raise MotionbitsError(f"codes must have {self.cfg.groups} groups, got {n}")
        if s + 1 > self.cfg.max_frames:
            raise MotionbitsError(f"{s + 1} frame slots exceed max_frames={self.cfg.max_frames}")
        frames = self.code_embed(context.long() + self.group_offset).sum(dim=2)  # [B, S, W]
        x = torch.cat([self.start.expand(b, 1, -1), frames], dim=1)
        return x + self.position.weight[: s + 1]

    @staticmethod
    def _mask(prefix: int, slots: int, device: torch.device) -> torch.Tensor:
        """Additive attention mask [P+S, P+S]: the prefix sees the prefix, frame slot t sees the
        prefix and slots <= t."""
        total = prefix + slots
        allowed = torch.ones(total, total, dtype=torch.bool, device=device).tril()
        allowed[:prefix, :prefix] = True
        mask = torch.zeros(total, total, device=device)
        return mask.masked_fill(~allowed, float("-inf"))

    def _hidden(self, context: torch.Tensor, content: torch.Tensor | None,
                label: torch.Tensor | None) -> torch.Tensor:
        """context codes [B, S, N] -> transformer outputs [B, S+1, W] of the frame slots."""
        b = context.shape[0]
        prefix = self._prefix(content, label, b)                        # [B, P, W]
        frames = self._frame_tokens(context)                            # [B, S+1, W]
        x = self.drop(torch.cat([prefix, frames], dim=1))
        mask = self._mask(prefix.shape[1], frames.shape[1], x.device)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x[:, prefix.shape[1]:])

    def _head(self, h: torch.Tensor, frame_codes: torch.Tensor | None) -> torch.Tensor:
        """h [B, S, W] -> logits [B, S, N, K_e]. With group_autoregressive, group g also sees
        frame_codes[..., :g] [B, S, N] (the frame being predicted; groups >= g are ignored)."""
        if not self.cfg.group_autoregressive:
            return rearrange(self.head(h), "b s (n k) -> b s n k", n=self.cfg.groups)
        e = self.group_embed(frame_codes.long() + self.group_offset)     # [B, S, N, W]
        x = h[:, :, None] + (e.cumsum(dim=2) - e)                        # exclusive sum: groups < g
        x = x + self.drop(self.group_mlp(self.group_norm(x)))
        return torch.einsum("bsnw,nwk->bsnk", x, self.head_weight) + self.head_bias

    def forward(self, codes: torch.Tensor, content: torch.Tensor | None,
                label: torch.Tensor | None = None) -> torch.Tensor:
        """codes [B, T, N], content [B, K, Cc], label [B] or None -> logits [B, T, N, K_e];
        logits[:, t] predicts codes[:, t] from codes[:, :t] (and, with group_autoregressive,
        logits[:, t, g] also from codes[:, t, :g]): teacher forcing."""
        return self._head(self._hidden(codes[:, :-1], content, label), codes)

    def loss(self, codes: torch.Tensor, content: torch.Tensor | None,
             label: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{"loss": mean cross entropy per code (nats), "bits_per_frame": summed over groups, in bits}."""
        logits = self(codes, content, label)
        ce = F.cross_entropy(rearrange(logits, "b t n k -> (b t n) k").float(), codes.reshape(-1).long())
        return {"loss": ce, "bits_per_frame": ce.detach() * self.cfg.groups / math.log(2)}

    # ---- sampling -----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, content: torch.Tensor | None, frames: int, prompt: torch.Tensor | None = None,
                 label: torch.Tensor | None = None, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None, window: int | None = None) -> torch.Tensor:
        """Sample codes [B, frames, N] frame by frame; the first T0 frames are `prompt` [B, T0, N].

        The model sees at most `window` (<= max_frames) slots: beyond that, the context slides,
        keeping the start token and the last window-1 frames at positions 0..window-1, i.e. every
        step looks like the end of a fresh training clip. temperature 0 or top_k=1: argmax.
        """
        window = window or self.cfg.max_frames
        if not 1 <= window <= self.cfg.max_frames:
            raise MotionbitsError(f"window must be in 1..max_frames={self.cfg.max_frames}, got {window}")
        if content is None and prompt is None and label is None:
            raise MotionbitsError("generate needs content, a prompt or a label to know the batch size")
        b = next((t.shape[0] for t in (content, prompt) if t is not None), None)
        b = b or torch.as_tensor(label).reshape(-1).shape[0]
        device = self.start.device
        codes = torch.zeros(b, 0, self.cfg.groups, dtype=torch.long, device=device)
        if prompt is not None:
            codes = prompt.to(device).long()[:, :frames]
        if content is not None:
            content = content.to(device)
        was_training = self.training
        self.eval()
        try:
            while codes.shape[1] < frames:
                context = codes[:, max(0, codes.shape[1] - (window - 1)):]  # [B, <=window-1, N]
                h = self._hidden(context, content, label)[:, -1:]             # [B, 1, W]
                if self.cfg.group_autoregressive:
                    frame = torch.zeros(b, 1, self.cfg.groups, dtype=torch.long, device=device)
                    for g in range(self.cfg.groups):  # N sub-steps, in the head only
                        logits = self._head(h, frame)[:, 0, g:g + 1].float()  # [B, 1, K_e]
                        frame[:, 0, g] = self._sample(logits, temperature, top_k, generator)[:, 0]
                else:
                    frame = self._sample(self._head(h, None)[:, 0].float(), temperature, top_k, generator)[:, None]
                codes = torch.cat([codes, frame], dim=1)
        finally:
            self.train(was_training)
        return codes

    @staticmethod
    def _sample(logits: torch.Tensor, temperature: float, top_k: int | None,
                generator: torch.Generator | None) -> torch.Tensor:
        """logits [B, N, K_e] -> codes [B, N]."""
        if temperature <= 0 or top_k == 1:
            return logits.argmax(-1)
        logits = logits / temperature
        if top_k is not None and top_k < logits.shape[-1]:
            kth = logits.topk(top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = rearrange(logits.softmax(-1), "b n k -> (b n) k")
        # multinomial with a CPU generator needs CPU probabilities; sample there, move back.
        if generator is not None and generator.device != probs.device:
            picks = torch.multinomial(probs.cpu(), 1, generator=generator).to(probs.device)
        else:
            picks = torch.multinomial(probs, 1, generator=generator)
        return rearrange(picks, "(b n) 1 -> b n", b=logits.shape[0])
