"""Training the motion prior on the codes of a trained motionbits model.

    frames uint8 [N, T, H, W, 3] ──extract_codes(pipe)──► codes [N, T, Ng] int16, content [N, K, Cc] fp16
    content of a partner clip (same character / video, other frames) ──┐
    (codes, partner content, labels) ──train_prior (training/loop.py)──► out_dir/prior.pt
    checkpoints.load_prior(out_dir/prior.pt) ──► MotionPrior (EMA weights) ──generate──► codes ──pipe.render──► video

Each clip's codes are paired with the content of ANOTHER clip of the same character (Sprites) or
video, so neither training nor the test NLL can read the motion to predict from the frames it is
predicted for: the prior learns what a content allows, as generation asks of it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motionbits.checkpoints import PRIOR_FORMAT
from motionbits.config import Config
from motionbits.errors import MotionbitsError
from motionbits.models.prior import MotionPrior, PriorConfig
from motionbits.prior_config import PriorRunConfig, read_prior_run
from motionbits.training.loop import Schedule, Task, Trainer

CHECKPOINT_NAME = "prior.pt"


# ---- codes from a trained model --------------------------------------------------------------------
@torch.no_grad()
def extract_codes(pipe, frames_u8: np.ndarray, batch_size: int = 64,
                  progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """frames uint8 [N, T, H, W, 3] (an array or memmap) -> codes int16 [N, T, Ng] and content
    float16 [N, K, Cc], both numpy. `pipe` is a motionbits.api.MotionBits."""
    from tqdm import tqdm

    if not isinstance(frames_u8, np.ndarray) or frames_u8.ndim != 5 or frames_u8.dtype != np.uint8:
        raise MotionbitsError(f"expected uint8 frames [N, T, H, W, 3], got {getattr(frames_u8, 'dtype', type(frames_u8))}")
    codes, content = [], []
    for start in tqdm(range(0, len(frames_u8), batch_size), desc="extract codes", disable=not progress,
                      dynamic_ncols=True):
        frames = np.ascontiguousarray(frames_u8[start:start + batch_size])
        z = pipe.to_latents(frames)                                                      # tokenize once
        content.append(pipe.content_of_latents(z).cpu().numpy().astype(np.float16))
        lips = pipe.model.lips_of_frames(frames)          # None, or their lip points (model.lip_groups)
        codes.append(pipe.motion_of_latents(z, lips=lips).cpu().numpy().astype(np.int16))
    return np.concatenate(codes), np.concatenate(content)


def content_partners(groups: np.ndarray) -> np.ndarray:
    """For each clip, the next clip of its group (character or video), cyclically; a clip alone
    in its group is its own partner."""
    groups = np.asarray(groups)
    partner = np.arange(len(groups))
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        partner[members] = np.roll(members, -1)
    return partner


# ---- data -------------------------------------------------------------------------------------------
def _as_tensors(codes, content, labels) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    codes_t = torch.as_tensor(np.asarray(codes)).long()                       # [N, T, Ng]
    content_t = torch.as_tensor(np.asarray(content)).float()                  # [N, K, Cc]
    labels_t = None if labels is None else torch.as_tensor(np.asarray(labels)).long().reshape(-1)
    if codes_t.ndim != 3 or content_t.ndim != 3 or codes_t.shape[0] != content_t.shape[0]:
        raise MotionbitsError(f"expected codes [N, T, Ng] and content [N, K, Cc] for the same N clips, "
                              f"got {tuple(codes_t.shape)} and {tuple(content_t.shape)}")
    if labels_t is not None and labels_t.shape[0] != codes_t.shape[0]:
        raise MotionbitsError(f"{labels_t.shape[0]} labels for {codes_t.shape[0]} clips")
    return codes_t, content_t, labels_t


def _fingerprint(codes: torch.Tensor, content: torch.Tensor, labels: torch.Tensor | None) -> str:
    """A resumed run must see the same training data, or it would not continue the same run."""
    h = hashlib.sha256()
    for t in (codes.to(torch.int16), content.to(torch.float16), labels):
        if t is not None:
            h.update(str(tuple(t.shape)).encode())
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def prior_config_for(model_cfg: Config, **overrides: Any) -> PriorConfig:
    """A PriorConfig matching a trained motionbits model's config (groups, codebook, content width,
    clip length); `overrides` set the other fields (width, depth, num_classes, ...)."""
    m = model_cfg.model
    values = {"max_frames": model_cfg.data.frames, "groups": m.groups, "codebook_size": m.codebook_size,
              "content_dim": m.content_dim, **overrides}
    return PriorConfig.from_dict(values)


def default_prior_config(codes: torch.Tensor, content: torch.Tensor, labels: torch.Tensor | None) -> PriorConfig:
    """Sizes read off the data: groups, codebook (at least the largest code seen), content width,
    clip length, classes."""
    return PriorConfig(max_frames=codes.shape[1], groups=codes.shape[2],
                       codebook_size=max(16, int(codes.max()) + 1), content_dim=content.shape[2],
                       num_classes=0 if labels is None else int(labels.max()) + 1)


# ---- evaluation -------------------------------------------------------------------------------------
@torch.no_grad()
def test_nll_bits(prior: MotionPrior, codes, content, labels=None, batch_size: int = 1024) -> float:
    """Mean negative log-likelihood of held-out clips, in bits per frame (lower is better; the
    ceiling of a uniform prior is groups * log2(codebook_size))."""
    codes_t, content_t, labels_t = _as_tensors(codes, content, labels)
    device = next(prior.parameters()).device
    was_training = prior.training
    prior.eval()
    total, count = 0.0, 0
    for start in range(0, len(codes_t), batch_size):
        sl = slice(start, start + batch_size)
        label = None if labels_t is None else labels_t[sl].to(device)
        out = prior.loss(codes_t[sl].to(device), content_t[sl].to(device), label)
        total += out["bits_per_frame"].item() * codes_t[sl].shape[0]
        count += codes_t[sl].shape[0]
    prior.train(was_training)
    return total / max(count, 1)


test_nll_bits.__test__ = False  # a library function, not a pytest test, even when imported into one


def unigram_bits(train_codes: torch.Tensor, eval_codes: torch.Tensor, codebook_size: int) -> float:
    """Bits per frame of the per-group code frequencies (add-one smoothed): the baseline a prior
    must beat to have learned anything about motion beyond code usage."""
    n = train_codes.shape[-1]
    counts = torch.stack([torch.bincount(train_codes[..., g].reshape(-1), minlength=codebook_size)
                          for g in range(n)]).double() + 1                        # [Ng, K_e]
    logp = (counts / counts.sum(-1, keepdim=True)).log2()
    flat = eval_codes.reshape(-1, n)
    return float(-logp[torch.arange(n), flat].sum(-1).mean())


def evaluate_prior(prior: MotionPrior, codes: torch.Tensor, content: torch.Tensor, labels: torch.Tensor | None,
                   val: tuple | None, max_clips: int = 2048) -> dict[str, float]:
    """Bits per frame of `prior` on (a slice of) the training clips and on the held-out ones."""
    cfg = prior.cfg
    sets = {"train": (codes[:max_clips], content[:max_clips], None if labels is None else labels[:max_clips])}
    if val is not None:
        sets["val"] = _as_tensors(*val)
    metrics = {"uniform_bits_per_frame": cfg.groups * math.log2(cfg.codebook_size)}
    for name, (c, x, y) in sets.items():
        metrics[f"{name}_bits_per_frame"] = test_nll_bits(prior, c, x, y)
        if cfg.num_classes and y is not None:
            metrics[f"{name}_bits_per_frame_nolabel"] = test_nll_bits(prior, c, x, None)
        metrics[f"{name}_unigram_bits_per_frame"] = unigram_bits(codes, c, cfg.codebook_size)
    return metrics


# ---- training ---------------------------------------------------------------------------------------
@dataclass
class PriorDraws:
    index: torch.Tensor              # [B] clips
    label: torch.Tensor | None       # [B] their labels, -1 where dropped (label dropout)

    def shard(self, part: int, parts: int) -> "PriorDraws":
        size = self.index.shape[0] // parts
        sl = slice(part * size, (part + 1) * size)
        return PriorDraws(self.index[sl], None if self.label is None else self.label[sl])


class PriorTask(Task):
    name = "prior"
    checkpoint_format = PRIOR_FORMAT
    shown_metrics = ("bits_per_frame", "val_bits_per_frame")

    def __init__(self, cfg: PriorConfig, codes: torch.Tensor, content: torch.Tensor, labels: torch.Tensor | None,
                 hparams: dict, val: tuple | None):
        self.cfg, self.codes, self.content, self.labels, self.hparams, self.val = cfg, codes, content, labels, hparams, val
        self.model = MotionPrior(cfg)
        self.trainer: Trainer | None = None

    def draw(self, generator: torch.Generator, batch_size: int) -> PriorDraws:
        index = torch.randint(0, len(self.codes), (batch_size,), generator=generator)
        label = None
        if self.labels is not None:
            dropped = torch.rand(batch_size, generator=generator) < self.cfg.label_dropout
            label = torch.where(dropped, -1, self.labels[index])
        return PriorDraws(index, label)

    def loss(self, module, draws: PriorDraws, device: torch.device) -> dict[str, torch.Tensor]:
        label = None if draws.label is None else draws.label.to(device)
        return module.loss(self.codes[draws.index].to(device), self.content[draws.index].to(device), label)

    def describe(self) -> dict:
        return {"config": self.cfg.to_dict(), "train": self.hparams}

    def check_resume(self, checkpoint: dict) -> None:
        if checkpoint["config"] != self.cfg.to_dict() or checkpoint.get("train") != self.hparams:
            raise MotionbitsError(f"{checkpoint['path']} was made with another prior config, schedule or training "
                                  f"data; use a fresh out_dir (or --fresh) to start over")

    def log_extras(self) -> dict[str, float]:
        if self.val is None or self.trainer is None:
            return {}
        # The EMA on held-out clips: the curve to watch for over-fitting.
        c, x, y = (None if t is None else t[:1024] for t in self.val)
        return {"val_bits_per_frame": test_nll_bits(self.trainer.inference_model, c, x, y)}


def train_prior(codes, content, labels=None, prior_cfg: PriorConfig | None = None, steps: int = 600,
                batch_size: int = 128, lr: float = 1e-3, out_dir: str | Path = "runs/prior", seed: int = 0,
                progress: bool = True, val: tuple | None = None, *, warmup_steps: int = 50,
                weight_decay: float = 0.05, ema_decay: float = 0.995, log_every: int = 50,
                checkpoint_every: int = 250, max_steps: int | None = None, fresh: bool = False,
                device: str | torch.device = "cpu", max_minutes: float | None = None) -> tuple[MotionPrior, dict[str, float]]:
    """Train a MotionPrior; returns (EMA prior in eval mode, metrics).

    codes [N, T, Ng] int, content [N, K, Cc] (of each clip's partner: content_partners), labels [N]
    int (or None); val = (codes, content, labels) held out. out_dir/prior.pt is resumed when present
    (unless fresh). metrics: train/val bits per frame of the EMA model (with and without labels when
    the prior has them), plus the uniform and unigram baselines. The defaults are sized for Sprites
    (9000 clips x 8 frames x 8 groups): 600 steps of 128 clips, about 8 epochs."""
    codes_t, content_t, labels_t = _as_tensors(codes, content, labels)
    cfg = prior_cfg or default_prior_config(codes_t, content_t, labels_t)
    if codes_t.shape[1] > cfg.max_frames or codes_t.shape[2] != cfg.groups or content_t.shape[2] != cfg.content_dim:
        raise MotionbitsError(f"data (clips of {codes_t.shape[1]} frames x {codes_t.shape[2]} groups, content "
                              f"width {content_t.shape[2]}) does not fit the prior config {cfg.to_dict()}")
    if int(codes_t.max()) >= cfg.codebook_size or int(codes_t.min()) < 0:
        raise MotionbitsError(f"codes must lie in 0..{cfg.codebook_size - 1}, found {int(codes_t.min())}..{int(codes_t.max())}")
    if labels_t is not None and (cfg.num_classes == 0 or int(labels_t.max()) >= cfg.num_classes):
        raise MotionbitsError(f"labels need num_classes > {int(labels_t.max())} in the prior config, got {cfg.num_classes}")
    schedule = Schedule(steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup_steps,
                        weight_decay=weight_decay, ema_decay=ema_decay, seed=seed, amp="off",
                        log_every=log_every, checkpoint_every=checkpoint_every)
    hparams = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "warmup_steps": warmup_steps,
               "weight_decay": weight_decay, "ema_decay": ema_decay, "data": _fingerprint(codes_t, content_t, labels_t)}
    torch.manual_seed(seed)
    val_t = None if val is None else _as_tensors(*val)
    task = PriorTask(cfg, codes_t, content_t, labels_t, hparams, val_t)
    trainer = Trainer(task, schedule, out_dir, torch.device(device), fresh=fresh, progress=progress,
                      max_steps=max_steps, max_minutes=max_minutes, checkpoint_name=CHECKPOINT_NAME)
    task.trainer = trainer
    trainer.fit()
    ema = trainer.inference_model
    metrics = evaluate_prior(ema, codes_t, content_t, labels_t, val_t)
    if progress:
        print("prior: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    return ema, metrics


# ---- from a config file ------------------------------------------------------------------------------
def train_prior_from_config(config_path: str | Path, out_dir: str | Path | None = None, fresh: bool = False,
                            progress: bool = True, device: str = "auto") -> Path:
    name, run = read_prior_run(config_path)
    return train_prior_run(name, run, out_dir, fresh, progress, device)


def train_prior_run(name: str, run: PriorRunConfig, out_dir: str | Path | None = None, fresh: bool = False,
                    progress: bool = True, device: str = "auto", max_minutes: float | None = None) -> Path:
    """Train the prior a checked run config describes (prior_config.py); `max_minutes` stops at a
    wall-clock budget, saving the checkpoint."""
    from motionbits.api import MotionBits

    out_dir = Path(out_dir or f"runs/{name}")
    pipe = MotionBits.from_checkpoint(run.checkpoint, device)
    root = run.data or pipe.cfg.data.root
    splits = _labelled_splits(pipe, root, run.labels)
    (train_codes, train_content), (val_codes, val_content) = (extract_codes(pipe, s["frames"], progress=progress)
                                                              for s in splits)
    train_content, val_content = (content[content_partners(s["groups"])]
                                  for content, s in ((train_content, splits[0]), (val_content, splits[1])))
    num_classes = 9 if run.labels else 0
    cfg = prior_config_for(pipe.cfg, num_classes=num_classes, **dataclasses.asdict(run.model))
    _, metrics = train_prior(train_codes, train_content, splits[0]["labels"], cfg, steps=run.steps,
                             batch_size=run.batch_size, lr=run.lr, seed=run.seed, out_dir=out_dir, progress=progress,
                             fresh=fresh, val=(val_codes, val_content, splits[1]["labels"]), device=pipe.device,
                             max_minutes=max_minutes)
    if progress:
        print(f"(bottleneck ceiling {pipe.model.quantizer.ceiling_bits:g} bits/frame)")
    return out_dir / CHECKPOINT_NAME


def _labelled_splits(pipe, root: str, labels: str | None) -> list[dict]:
    """[train, test] of the model's dataset: frames, labels (or None) and the group each clip's
    content partner is drawn from (Sprites: the character; video: the video)."""
    if pipe.cfg.data.kind == "sprites":
        from motionbits.data.sprites import load_sprites

        return [{"frames": s.frames, "labels": s.motion if labels else None, "groups": s.character}
                for s in (load_sprites(root, "train"), load_sprites(root, "test"))]
    from motionbits.data.video import load_video_clips

    if labels is not None:
        raise MotionbitsError("prior.labels is only available for Sprites (video clips have no motion labels)")
    out = []
    for split in ("train", "test"):
        frames, meta = load_video_clips(root, split)
        out.append({"frames": frames[:, :pipe.cfg.data.frames], "labels": None, "groups": meta["video"]})
    return out
