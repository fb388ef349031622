"""Sprites judge: a small supervised classifier that scores generated or swapped clips.

As in the sequential-disentanglement papers (DSVAE, S3VAE, C-DSVAE, SKD), content
(body, bottomwear, topwear, hair; 6 classes each) and motion (3 actions x 3 directions)
of a clip are read by a classifier trained on real Sprites; its accuracy on transferred
clips measures disentanglement. A per-frame CNN feeds an attribute head (time-averaged
features: content is constant over the clip), a temporal-conv motion head (the action
needs the pose sequence, the direction is visible in every frame) and a pose head that reads
each frame alone. The class head can name a class from one frame's pose, so it also names it
for a clip frozen on one frame; a clip counts as showing a motion only when, besides the class,
its frames show that motion's poses in that motion's order (`transferred`).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from motionbits.atomic_files import atomic_path
from motionbits.models.tokenizer import frames_to_float
from motionbits.errors import MotionbitsError
from motionbits.runtime import autocast, pick_device, use_bf16
from motionbits.training.loop import Schedule, Task, Trainer

ARCH_VERSION = "sprites-judge-v2"  # v2: the per-frame pose head
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
    """Frames [B, T, 3, 64, 64] in [-1, 1] -> {"attributes": [B, 4, 6], "motion": [B, 9],
    "poses": [B, T, n_poses]} logits; the pose of frame t is read from frame t alone."""

    def __init__(
        self,
        width: int = 16,
        feat_dim: int = 256,
        n_attributes: int = 4,
        n_attribute_classes: int = 6,
        n_motions: int = 9,
        image_size: int = 64,
        n_poses: int = 72,
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
            n_poses=n_poses,
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
        # One linear read of each frame's motion features, before any temporal mixing: a frame's
        # pose cannot borrow from its neighbours, so a frozen clip shows one pose all through.
        self.pose_out = nn.Linear(feat_dim, n_poses)
        # Filled by train_judge / load_judge / save_judge(accuracies=...): measured test accuracies.
        self.accuracies: dict[str, float] = {}

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        b, t = frames.shape[:2]
        x = frames.reshape(b * t, *frames.shape[2:])  # [B*T, 3, H, W]
        h = self.encoder(x).flatten(1).reshape(b, t, -1)  # [B, T, 4w*s*s]
        # Content is constant over the clip: average the frame features before the head.
        attributes = self.attr_head(h.mean(1)).reshape(b, self.n_attributes, self.n_attribute_classes)
        m = self.motion_proj(h)  # [B, T, D]
        poses = self.pose_out(m)  # [B, T, n_poses]
        m = self.motion_temporal(m.transpose(1, 2))  # [B, 128, T]
        motion = self.motion_out(m.mean(2))  # [B, n_motions]
        return {"attributes": attributes, "motion": motion, "poses": poses}


@dataclass
class JudgeDraws:
    index: torch.Tensor      # [B] training clips
    shift: torch.Tensor      # [B, 2] translation (dx, dy) of each clip, 0..2*max_shift

    def shard(self, part: int, parts: int) -> "JudgeDraws":
        size = self.index.shape[0] // parts
        return JudgeDraws(self.index[part * size:(part + 1) * size], self.shift[part * size:(part + 1) * size])


def shift_clips(x: torch.Tensor, shift: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Translate each clip x [B, T, 3, H, W] (all frames alike) by shift [B, 2] - max_shift pixels,
    padding with the background value -1: the judge then tolerates small misplacements."""
    if max_shift <= 0:
        return x
    b, t, c, h, w = x.shape
    p = max_shift
    padded = F.pad(x.reshape(b, t * c, h, w), (p, p, p, p), value=-1.0)
    out = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dx, dy) in enumerate(shift.tolist())])
    return out.reshape(b, t, c, h, w)


class JudgeTask(Task):
    name = "judge"
    shown_metrics = ("attribute_loss", "motion_loss", "pose_loss")

    def __init__(self, judge: "SpritesJudge", frames_u8: torch.Tensor, attributes: torch.Tensor,
                 motion: torch.Tensor, poses: torch.Tensor, max_shift: int):
        self.model, self.frames, self.attributes, self.motion, self.max_shift = judge, frames_u8, attributes, motion, max_shift
        self.poses = poses  # [N, T] pose id of each frame

    def draw(self, generator: torch.Generator, batch_size: int) -> JudgeDraws:
        index = torch.randint(0, len(self.frames), (batch_size,), generator=generator)
        return JudgeDraws(index, torch.randint(0, 2 * self.max_shift + 1, (batch_size, 2), generator=generator))

    def loss(self, module, draws: JudgeDraws, device: torch.device) -> dict[str, torch.Tensor]:
        x = shift_clips(frames_to_float(self.frames.index_select(0, draws.index)), draws.shift, self.max_shift)
        out = module(x.to(device))                                                   # [B, T, 3, H, W] in
        attribute_loss = F.cross_entropy(out["attributes"].float().flatten(0, 1),
                                         self.attributes[draws.index].to(device).flatten())
        motion_loss = F.cross_entropy(out["motion"].float(), self.motion[draws.index].to(device))
        pose_loss = F.cross_entropy(out["poses"].float().flatten(0, 1), self.poses[draws.index].to(device).flatten())
        return {"loss": attribute_loss + motion_loss + pose_loss, "attribute_loss": attribute_loss.detach(),
                "motion_loss": motion_loss.detach(), "pose_loss": pose_loss.detach()}


def train_judge(
    frames_u8: np.ndarray,
    attributes: np.ndarray,
    motion: np.ndarray,
    poses: np.ndarray,
    steps: int = 500,
    batch_size: int = 32,
    lr: float = 3e-3,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
    augment_shift: int = 2,
    amp: str = "auto",
    model_kwargs: dict | None = None,
) -> SpritesJudge:
    """Train a SpritesJudge on in-memory clips (training/loop.py, in memory: no checkpoint).

    frames_u8: [N, T, H, W, 3] uint8; attributes: [N, 4] int; motion: [N] int; poses: [N, T] int,
    the pose each frame shows (data.sprites.frame_poses for Sprites). Random batches are
    converted to [-1, 1] floats on the fly (the uint8 set stays small); AdamW, warm-up over the
    first 15 % of the steps then cosine decay; bf16 autocast where runtime.use_bf16 says it pays.
    """
    frames_u8 = np.asarray(frames_u8)
    if frames_u8.dtype != np.uint8 or frames_u8.ndim != 5 or frames_u8.shape[-1] != 3:
        raise ValueError(f"frames_u8 must be uint8 [N, T, H, W, 3], got {frames_u8.dtype} {frames_u8.shape}")
    n = frames_u8.shape[0]
    if n == 0 or steps < 1 or batch_size < 1:
        raise ValueError(f"need clips, steps >= 1 and batch_size >= 1 (got N={n}, steps={steps}, batch_size={batch_size})")
    attrs_t = torch.as_tensor(np.asarray(attributes), dtype=torch.long)  # [N, A]
    motion_t = torch.as_tensor(np.asarray(motion), dtype=torch.long)  # [N]
    poses_t = torch.as_tensor(np.asarray(poses), dtype=torch.long)  # [N, T]
    if attrs_t.shape[0] != n or motion_t.shape != (n,):
        raise ValueError("frames, attributes and motion must have the same number of clips")
    if poses_t.shape != frames_u8.shape[:2]:
        raise ValueError(f"poses must be [N, T] = {list(frames_u8.shape[:2])}, got {list(poses_t.shape)}")
    dev = device if isinstance(device, torch.device) else pick_device(device)
    torch.manual_seed(seed)
    kwargs = dict(image_size=frames_u8.shape[2], n_attributes=attrs_t.shape[1])
    kwargs.update(model_kwargs or {})
    judge = SpritesJudge(**kwargs)
    if poses_t.min() < 0 or poses_t.max() >= judge.config["n_poses"]:
        raise ValueError(f"pose ids must lie in 0..{judge.config['n_poses'] - 1}")
    if dev.type == "cpu":
        judge = judge.to(memory_format=torch.channels_last)  # oneDNN convs prefer NHWC
    task = JudgeTask(judge, torch.from_numpy(frames_u8), attrs_t, motion_t, poses_t, augment_shift)
    schedule = Schedule(steps=steps, batch_size=batch_size, lr=lr, warmup_steps=max(1, int(0.15 * steps)),
                        weight_decay=1e-4, grad_clip=math.inf, ema_decay=None, seed=seed, amp=amp,
                        log_every=max(1, steps // 5))
    t0 = time.perf_counter()
    Trainer(task, schedule, None, dev, progress=progress).fit()
    judge.train_seconds = time.perf_counter() - t0
    return judge.eval().to(memory_format=torch.contiguous_format)


@torch.no_grad()
def judge_predict(
    judge: SpritesJudge,
    frames: torch.Tensor | np.ndarray,
    batch_size: int = 256,
    amp: str = "auto",
) -> dict[str, torch.Tensor]:
    """Class probabilities for clips: {"attributes": [N, 4, 6], "motion": [N, 9],
    "poses": [N, T, n_poses]} (float32, CPU).

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
    attrs, motions, poses = [], [], []
    try:
        for i in range(0, frames.shape[0], batch_size):
            x = frames[i : i + batch_size]
            x = frames_to_float(x) if is_u8 else x.float()
            with autocast(dev, bf16):
                out = judge(x.to(dev))
            attrs.append(out["attributes"].float().softmax(-1).cpu())
            motions.append(out["motion"].float().softmax(-1).cpu())
            poses.append(out["poses"].float().softmax(-1).cpu())
    finally:
        judge.train(was_training)
    if not attrs:
        a, m, p = judge.n_attributes, judge.config["n_motions"], judge.config["n_poses"]
        return {"attributes": torch.zeros(0, a, judge.n_attribute_classes), "motion": torch.zeros(0, m),
                "poses": torch.zeros(0, frames.shape[1], p)}
    return {"attributes": torch.cat(attrs), "motion": torch.cat(motions), "poses": torch.cat(poses)}


# How many frames of a clip the pose head may misread before the clip stops counting as the motion.
# One: a single blurred frame does not sink a transfer, while a clip frozen on one pose matches at
# most the 3 frames Sprites shows one pose in (slash's held end) and fails.
MISREAD_FRAMES = 1


def follows_poses(pose_probs: torch.Tensor, poses: torch.Tensor | np.ndarray,
                  misread_frames: int = MISREAD_FRAMES) -> torch.Tensor:
    """bool [N]: the judged pose of each frame, pose_probs [N, T, P], is the expected one, poses [N, T],
    in all but at most misread_frames frames: the clip moves through the motion's poses in order."""
    poses = torch.as_tensor(np.asarray(poses), dtype=torch.long)
    misses = (pose_probs.argmax(-1) != poses).sum(1)  # [N]
    return misses <= misread_frames


def transferred(probs: dict[str, torch.Tensor], motion: torch.Tensor | np.ndarray,
                poses: torch.Tensor | np.ndarray) -> torch.Tensor:
    """bool [N]: the clip shows motion class `motion` [N] as a real motion: the class head names it
    AND its frames follow the class's poses [N, T] (follows_poses). The class alone (the v1 judge's
    test) also counts a clip frozen on one of the motion's frames."""
    motion = torch.as_tensor(np.asarray(motion), dtype=torch.long)
    return (probs["motion"].argmax(-1) == motion) & follows_poses(probs["poses"], poses)


def altered_clips(frames: np.ndarray, poses: np.ndarray, seed: int = 0,
                  max_clips: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Real clips [N, T, H, W, 3] made into clips that are not their motion, as (clips, which [M]
    of the N clips): "frozen" (one random frame held), "shuffled" (frames in a random order that
    changes the pose sequence) and "reversed" (played backwards), each only for the clips whose
    pose sequence the change alters (a clip of one held pose does not change when frozen), and
    of at most max_clips clips (a seeded choice)."""
    rng = np.random.default_rng(seed)
    n, t = poses.shape
    if max_clips is not None and n > max_clips:
        chosen = np.sort(rng.choice(n, max_clips, replace=False))
        out = altered_clips(frames[chosen], poses[chosen], seed)
        return {name: (clips, chosen[which]) for name, (clips, which) in out.items()}
    held = rng.integers(0, t, n)
    orders = {"frozen": np.repeat(held[:, None], t, 1), "reversed": np.tile(np.arange(t)[::-1], (n, 1)),
              "shuffled": np.stack([rng.permutation(t) for _ in range(n)])}
    for _ in range(20):  # redraw the few permutations that only swap frames of one pose
        same = (np.take_along_axis(poses, orders["shuffled"], 1) == poses).all(1)
        if not same.any():
            break
        orders["shuffled"][same] = np.stack([rng.permutation(t) for _ in range(int(same.sum()))])
    out = {}
    for name, order in orders.items():
        which = np.flatnonzero(~(np.take_along_axis(poses, order, 1) == poses).all(1))
        out[name] = (np.take_along_axis(frames[which], order[which][:, :, None, None, None], 1), which)
    return out


def judge_accuracies(
    judge: SpritesJudge,
    frames: torch.Tensor | np.ndarray,
    attributes: torch.Tensor | np.ndarray,
    motion: torch.Tensor | np.ndarray,
    poses: torch.Tensor | np.ndarray,
    batch_size: int = 256,
) -> dict[str, float]:
    """Per-head accuracy on labelled clips: {"body", "bottomwear", "topwear", "hair", "attributes_mean",
    "motion" (the class head alone), "pose_frames" (frames whose pose is read right), "motion_time_aware"
    (class and poses: `transferred`)}, and on the same clips made frozen, shuffled and reversed
    (altered_clips) the share the time-aware test rejects ("frozen_rejected", ...) and the share
    the class head alone would count ("frozen_class_alone", ...); also stored in judge.accuracies
    so save_judge records them."""
    probs = judge_predict(judge, frames, batch_size)
    attributes = torch.as_tensor(np.asarray(attributes), dtype=torch.long)
    motion = torch.as_tensor(np.asarray(motion), dtype=torch.long)
    hit = probs["attributes"].argmax(-1) == attributes  # [N, A]
    names = ["body", "bottomwear", "topwear", "hair"]
    names = names if hit.shape[1] == 4 else [f"attribute{i}" for i in range(hit.shape[1])]
    acc = {name: hit[:, i].float().mean().item() for i, name in enumerate(names)}
    acc["attributes_mean"] = hit.float().mean().item()
    acc["motion"] = (probs["motion"].argmax(-1) == motion).float().mean().item()
    poses_np = np.asarray(poses)
    acc["pose_frames"] = (probs["poses"].argmax(-1) == torch.as_tensor(poses_np)).float().mean().item()
    acc["motion_time_aware"] = transferred(probs, motion, poses_np).float().mean().item()
    frames_np = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if frames_np.dtype == np.uint8:  # the altered clips are made from uint8 [N, T, H, W, 3] clips
        # 900 of the test split's 2664 clips, about 100 a class, keep the judge's own check short
        for name, (clips, which) in altered_clips(frames_np, poses_np, max_clips=900).items():
            if len(which) == 0:
                continue
            p = judge_predict(judge, clips, batch_size)
            acc[f"{name}_rejected"] = (~transferred(p, motion[which], poses_np[which])).float().mean().item()
            acc[f"{name}_class_alone"] = (p["motion"].argmax(-1) == motion[which]).float().mean().item()
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
        raise MotionbitsError(f"judge file {path} has architecture {arch!r}, this version reads {ARCH_VERSION!r}: "
                              "delete it to train a new judge there")
    try:
        judge = SpritesJudge(**config)
        judge.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MotionbitsError(f"judge file {path} does not match the judge architecture: {first}") from None
    judge.accuracies = {k: float(v) for k, v in (meta.get("accuracies") or {}).items()}
    dev = device if isinstance(device, torch.device) else pick_device(device)
    return judge.to(dev).eval()
