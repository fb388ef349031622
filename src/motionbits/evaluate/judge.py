"""Sprites judge: a small supervised classifier that scores generated or swapped clips.

As in the sequential-disentanglement papers (DSVAE, S3VAE, C-DSVAE, SKD), content
(body, bottomwear, topwear, hair; 6 classes each) and motion (3 actions x 3 directions)
of a clip are read by a classifier trained on real Sprites; its accuracy on transferred
clips measures disentanglement. A per-frame CNN feeds an attribute head (time-averaged
features: content is constant over the clip) and a temporal-conv motion head (the action
needs the pose sequence, the direction is visible in every frame).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from motionbits.atomic_files import atomic_path
from motionbits.errors import MotionbitsError
from motionbits.runtime import autocast, pick_device, use_bf16

ARCH_VERSION = "sprites-judge-v1"
METADATA_KEY = "motionbits_judge"


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    # k4 s2 halves the resolution; BatchNorm makes this tiny net converge in a few hundred
    # steps (eval uses running stats, so predictions do not depend on the batch).
    return nn.Sequential(
        nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SpritesJudge(nn.Module):
    """Frames [B, T, 3, 64, 64] in [-1, 1] -> {"attributes": [B, 4, 6], "motion": [B, 9]} logits."""

    def __init__(
        self,
        width: int = 16,
        feat_dim: int = 256,
        n_attributes: int = 4,
        n_attribute_classes: int = 6,
        n_motions: int = 9,
        image_size: int = 64,
    ) -> None:
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {image_size}")
        self.config = dict(
            width=width,
            feat_dim=feat_dim,
            n_attributes=n_attributes,
            n_attribute_classes=n_attribute_classes,
            n_motions=n_motions,
            image_size=image_size,
        )
        self.n_attributes, self.n_attribute_classes = n_attributes, n_attribute_classes
        w = width
        self.encoder = nn.Sequential(  # 64 -> 32 -> 16 -> 8 -> 4
            _conv_block(3, w),
            _conv_block(w, 2 * w),
            _conv_block(2 * w, 4 * w),
            _conv_block(4 * w, 4 * w),
        )
        s = image_size // 16
        flat = 4 * w * s * s
        # Separate projections per head: a shared bottleneck made the attribute head learn
        # slowly (it has to keep colours, the motion head wants pose and position).
        self.attr_head = nn.Sequential(
            nn.Linear(flat, feat_dim), nn.ReLU(inplace=True), nn.Linear(feat_dim, n_attributes * n_attribute_classes)
        )
        self.motion_proj = nn.Sequential(nn.Linear(flat, feat_dim), nn.ReLU(inplace=True))
        # Temporal convs over the frame features, then mean over time: independent of T.
        self.motion_temporal = nn.Sequential(
            nn.Conv1d(feat_dim, 128, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv1d(128, 128, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.motion_out = nn.Linear(128, n_motions)
        # Filled by train_judge / load_judge / save_judge(accuracies=...): measured test accuracies.
        self.accuracies: dict[str, float] = {}

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        b, t = frames.shape[:2]
        x = frames.reshape(b * t, *frames.shape[2:])  # [B*T, 3, H, W]
        h = self.encoder(x).flatten(1).reshape(b, t, -1)  # [B, T, 4w*s*s]
        # Content is constant over the clip: average the frame features before the head.
        attributes = self.attr_head(h.mean(1)).reshape(b, self.n_attributes, self.n_attribute_classes)
        m = self.motion_proj(h)  # [B, T, D]
        m = self.motion_temporal(m.transpose(1, 2))  # [B, 128, T]
        motion = self.motion_out(m.mean(2))  # [B, n_motions]
        return {"attributes": attributes, "motion": motion}


def _u8_to_frames(x_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> float32 [..., 3, H, W] in [-1, 1]."""
    return x_u8.movedim(-1, -3).float().div_(127.5).sub_(1.0)


def _shift_augment(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each clip (all frames alike) by up to max_shift px, padding with the
    background value -1: the judge then tolerates small misplacements in generated clips."""
    if max_shift <= 0:
        return x
    b, t, c, h, w = x.shape
    p = max_shift
    padded = F.pad(x.reshape(b, t * c, h, w), (p, p, p, p), value=-1.0)
    dx = torch.randint(0, 2 * p + 1, (b,), generator=gen).tolist()
    dy = torch.randint(0, 2 * p + 1, (b,), generator=gen).tolist()
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
    return out.reshape(b, t, c, h, w)


def train_judge(
    frames_u8: np.ndarray,
    attributes: np.ndarray,
    motion: np.ndarray,
    steps: int = 1200,
    batch_size: int = 32,
    lr: float = 3e-3,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
    augment_shift: int = 2,
    amp: str = "auto",
    model_kwargs: dict | None = None,
) -> SpritesJudge:
    """Train a SpritesJudge on in-memory clips.

    frames_u8: [N, T, H, W, 3] uint8; attributes: [N, 4] int; motion: [N] int.
    Random batches are converted to [-1, 1] floats on the fly (the uint8 set stays small);
    AdamW with a one-cycle schedule; bf16 autocast where runtime.use_bf16 says it pays.
    """
    frames_u8 = np.asarray(frames_u8)
    if frames_u8.dtype != np.uint8 or frames_u8.ndim != 5 or frames_u8.shape[-1] != 3:
        raise ValueError(f"frames_u8 must be uint8 [N, T, H, W, 3], got {frames_u8.dtype} {frames_u8.shape}")
    n = frames_u8.shape[0]
    if n == 0 or steps < 1 or batch_size < 1:
        raise ValueError(f"need clips, steps >= 1 and batch_size >= 1 (got N={n}, steps={steps}, batch_size={batch_size})")
    attrs_t = torch.as_tensor(np.asarray(attributes), dtype=torch.long)  # [N, A]
    motion_t = torch.as_tensor(np.asarray(motion), dtype=torch.long)  # [N]
    if attrs_t.shape[0] != n or motion_t.shape != (n,):
        raise ValueError("frames, attributes and motion must have the same number of clips")
    dev = device if isinstance(device, torch.device) else pick_device(device)
    bf16 = use_bf16(dev, amp)

    torch.manual_seed(seed)
    kwargs = dict(image_size=frames_u8.shape[2], n_attributes=attrs_t.shape[1])
    kwargs.update(model_kwargs or {})
    judge = SpritesJudge(**kwargs).to(dev)
    if dev.type == "cpu":
        judge = judge.to(memory_format=torch.channels_last)  # oneDNN convs prefer NHWC
    opt = torch.optim.AdamW(judge.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(seed)
    frames_t = torch.from_numpy(frames_u8)  # shares memory, no copy

    judge.train()
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc="judge", disable=not progress, dynamic_ncols=True)
    for step in bar:
        idx = torch.randint(0, n, (batch_size,), generator=gen)
        x = _shift_augment(_u8_to_frames(frames_t[idx]), augment_shift, gen).to(dev)  # [B, T, 3, H, W]
        ya, ym = attrs_t[idx].to(dev), motion_t[idx].to(dev)
        with autocast(dev, bf16):
            out = judge(x)
        loss_a = F.cross_entropy(out["attributes"].float().flatten(0, 1), ya.flatten())
        loss_m = F.cross_entropy(out["motion"].float(), ym)
        loss = loss_a + loss_m
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress and step % 10 == 0:  # .item() syncs a GPU: not every step
            bar.set_postfix(attr=f"{loss_a.item():.3f}", motion=f"{loss_m.item():.3f}")
    judge.train_seconds = time.perf_counter() - t0
    judge.eval()
    return judge.to(memory_format=torch.contiguous_format)


@torch.no_grad()
def judge_predict(
    judge: SpritesJudge,
    frames: torch.Tensor | np.ndarray,
    batch_size: int = 256,
    amp: str = "auto",
) -> dict[str, torch.Tensor]:
    """Class probabilities for clips: {"attributes": [N, 4, 6], "motion": [N, 9]} (float32, CPU).

    frames: float [N, T, 3, H, W] in [-1, 1], or uint8 [N, T, H, W, 3] (numpy or torch),
    converted batch by batch so a whole uint8 test split never exists as floats.
    """
    frames = torch.as_tensor(frames) if isinstance(frames, np.ndarray) else frames
    is_u8 = frames.dtype == torch.uint8
    if frames.ndim != 5 or (frames.shape[-1] != 3 if is_u8 else frames.shape[2] != 3):
        raise ValueError(f"expected [N, T, 3, H, W] floats or [N, T, H, W, 3] uint8, got {tuple(frames.shape)}")
    was_training = judge.training
    judge.eval()
    dev = next(judge.parameters()).device
    bf16 = use_bf16(dev, amp)
    attrs, motions = [], []
    try:
        for i in range(0, frames.shape[0], batch_size):
            x = frames[i : i + batch_size]
            x = _u8_to_frames(x) if is_u8 else x.float()
            with autocast(dev, bf16):
                out = judge(x.to(dev))
            attrs.append(out["attributes"].float().softmax(-1).cpu())
            motions.append(out["motion"].float().softmax(-1).cpu())
    finally:
        judge.train(was_training)
    if not attrs:
        a, m = judge.n_attributes, judge.config["n_motions"]
        return {"attributes": torch.zeros(0, a, judge.n_attribute_classes), "motion": torch.zeros(0, m)}
    return {"attributes": torch.cat(attrs), "motion": torch.cat(motions)}


def judge_accuracies(
    judge: SpritesJudge,
    frames: torch.Tensor | np.ndarray,
    attributes: torch.Tensor | np.ndarray,
    motion: torch.Tensor | np.ndarray,
    batch_size: int = 256,
) -> dict[str, float]:
    """Per-head accuracy on labelled clips: {"body", "bottomwear", "topwear", "hair", "motion",
    "attributes_mean"}; also stored in judge.accuracies so save_judge records them."""
    probs = judge_predict(judge, frames, batch_size)
    attributes = torch.as_tensor(np.asarray(attributes), dtype=torch.long)
    motion = torch.as_tensor(np.asarray(motion), dtype=torch.long)
    hit = probs["attributes"].argmax(-1) == attributes  # [N, A]
    names = ["body", "bottomwear", "topwear", "hair"]
    names = names if hit.shape[1] == 4 else [f"attribute{i}" for i in range(hit.shape[1])]
    acc = {name: hit[:, i].float().mean().item() for i, name in enumerate(names)}
    acc["attributes_mean"] = hit.float().mean().item()
    acc["motion"] = (probs["motion"].argmax(-1) == motion).float().mean().item()
    judge.accuracies = dict(acc)
    return acc


def save_judge(judge: SpritesJudge, path: str | os.PathLike, accuracies: dict[str, float] | None = None) -> None:
    """Write weights as safetensors; the metadata holds JSON with the architecture version,
    constructor config and measured test accuracies (argument, else judge.accuracies)."""
    from safetensors.torch import save_file

    meta = {
        "arch": ARCH_VERSION,
        "config": judge.config,
        "accuracies": dict(accuracies if accuracies is not None else judge.accuracies),
    }
    state = {k: v.detach().cpu().contiguous() for k, v in judge.state_dict().items()}
    with atomic_path(path, shared=True) as tmp:  # never leave a half-written judge behind
        save_file(state, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})


def load_judge(path: str | os.PathLike, device: str | torch.device = "cpu") -> SpritesJudge:
    """Read a judge written by save_judge (eval mode). Raises MotionbitsError when the file
    is missing, is not a safetensors judge, or does not match this architecture."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise MotionbitsError(f"judge file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several types for truncated/garbled files
        raise MotionbitsError(f"judge file {path} is not a readable safetensors file ({type(e).__name__})") from None
    if raw is None:
        raise MotionbitsError(f"judge file {path} has no '{METADATA_KEY}' metadata: not written by save_judge")
    try:
        meta = json.loads(raw)
        arch = meta["arch"]
        config = meta["config"]
    except (ValueError, KeyError, TypeError):
        raise MotionbitsError(f"judge file {path} has corrupt metadata") from None
    if arch != ARCH_VERSION:
        raise MotionbitsError(f"judge file {path} has architecture {arch!r}, this version reads {ARCH_VERSION!r}")
    try:
        judge = SpritesJudge(**config)
        judge.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MotionbitsError(f"judge file {path} does not match the judge architecture: {first}") from None
    judge.accuracies = {k: float(v) for k, v in (meta.get("accuracies") or {}).items()}
    dev = device if isinstance(device, torch.device) else pick_device(device)
    return judge.to(dev).eval()
