"""One training loop for the BCD model: single process, or `torchrun` with DistributedDataParallel.

Follow one batch: `sample_batch` draws clip indices for the *global* batch from a seeded generator,
together with the noise levels, the noise and the Gumbel noise; each process keeps its slice and
splits it into `grad_accum` micro-batches; uint8 clips become latents (pixels in [-1, 1], or the
tokenizer's cached latents); `BCDModel.forward` returns the loss. Because all randomness is drawn
for the global batch, N processes compute the same update as one process on the same batch.

Resuming: `run_dir/last.pt` holds model, EMA, optimizer, step and RNG states (atomic writes); a
run started again on the same folder continues from it.
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from motionbits import checkpoint as ckpt_io
from motionbits.atomic_files import write_text_atomic
from motionbits.augment import random_color_matrices
from motionbits.config import Config, config_changes
from motionbits.data.clips import load_clips
from motionbits.data.video import video_dataset_fps
from motionbits.errors import MotionbitsError
from motionbits.models.bcd import BCDModel
from motionbits.runtime import autocast, keep_freed_memory, pick_device, use_bf16


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_name: str) -> tuple[Dist, torch.device]:
    """Reads torchrun's environment; without it, a single process."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return Dist(), pick_device(device_name)
    d = Dist(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    device = pick_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(d.local_rank)
        device = torch.device("cuda", d.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return d, device


def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - decay)
        for e, b in zip(ema.buffers(), model.buffers()):
            e.copy_(b)


def learning_rate(cfg: Config, step: int) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    t = cfg.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    progress = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
    return t.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@dataclass
class Batch:
    index: torch.Tensor   # [B] clip indices
    sigma: torch.Tensor   # [B, T']
    noise: torch.Tensor   # [B, T', C, h, w]
    gumbel: torch.Tensor  # [B, T', N, K_e]
    content_flip: torch.Tensor | None = None     # [B] bool
    motion_channels: torch.Tensor | None = None  # [B, C] channel permutation
    frame_pick: torch.Tensor | None = None       # [B, R] rebuilt frames the loss renders
    content_drop: torch.Tensor | None = None     # [B] bool: rendered from the null content
    swap_noise: torch.Tensor | None = None       # [B, T', C, h, w]: train.swap_consistency renders
    clip_colors: torch.Tensor | None = None      # [B, 3, 3]: train.augment_clip_colors
    content_index: torch.Tensor | None = None    # [B] clip whose first half is the content (train.content_from_video)

    def shard(self, part: int, parts: int) -> "Batch":
        size = self.index.shape[0] // parts
        sl = slice(part * size, (part + 1) * size)
        cut = lambda x: None if x is None else x[sl]  # noqa: E731
        return Batch(self.index[sl], self.sigma[sl], self.noise[sl], self.gumbel[sl],
                     cut(self.content_flip), cut(self.motion_channels), cut(self.frame_pick),
                     cut(self.content_drop), cut(self.swap_noise), cut(self.clip_colors), cut(self.content_index))

    def model_inputs(self, device: torch.device) -> dict[str, torch.Tensor]:
        move = lambda x: None if x is None else x.to(device, non_blocking=True)  # noqa: E731
        return {"sigma": move(self.sigma), "noise": move(self.noise), "gumbel": move(self.gumbel),
                "content_flip": move(self.content_flip), "motion_channels": move(self.motion_channels),
                "frame_pick": move(self.frame_pick), "content_drop": move(self.content_drop),
                "swap_noise": move(self.swap_noise), "clip_colors": move(self.clip_colors)}


class SameVideoClips:
    """Draws, for clip indices, a random clip of the same video (the clip itself included)."""

    def __init__(self, video: np.ndarray):
        video = torch.as_tensor(video)
        self.order = torch.argsort(video, stable=True)              # [N] clip indices grouped by video
        grouped = video[self.order]
        self.start = torch.searchsorted(grouped, video)              # [N] where each clip's video begins
        self.count = torch.searchsorted(grouped, video, right=True) - self.start

    def draw(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        offset = (torch.rand(index.shape, generator=generator) * self.count[index]).long()
        return self.order[self.start[index] + offset.clamp(max=self.count[index] - 1)]


def sample_batch(model: BCDModel, num_clips: int, batch_size: int, generator: torch.Generator,
                 same_video: SameVideoClips | None = None) -> Batch:
    """Every random draw of one global training step: which of the num_clips clips, noise levels,
    noise, Gumbel noise and the augmentation draws (`motionbits bench` times steps on these too).
    same_video (needed by train.content_from_video) finds the clips that may give the content."""
    cfg = model.cfg
    t_out = model.rebuilt_frames(cfg.data.frames)
    t_render = cfg.train.render_frames or t_out
    c, s = model.latent_channels, model.latent_size
    index = torch.randint(0, num_clips, (batch_size,), generator=generator)
    sigma = model.edm.sample_sigma((batch_size, t_render), generator)
    noise = torch.randn((batch_size, t_render, c, s, s), generator=generator)
    uniform = torch.rand((batch_size, t_out, cfg.model.groups, cfg.model.codebook_size), generator=generator)
    gumbel = -(-uniform.clamp(1e-10, 1 - 1e-7).log()).log()
    flip = torch.rand(batch_size, generator=generator) < 0.5 if cfg.train.augment_content_flip else None
    channels = (torch.argsort(torch.rand(batch_size, c, generator=generator), dim=1)
                if cfg.train.augment_motion_colors else None)
    pick = (torch.argsort(torch.rand(batch_size, t_out, generator=generator), dim=1)[:, :t_render].sort(dim=1).values
            if cfg.train.render_frames else None)
    drop = (torch.rand(batch_size, generator=generator) < cfg.model.content_dropout
            if cfg.model.content_dropout > 0 else None)
    swap_noise = (torch.randn((batch_size, t_out, c, s, s), generator=generator)
                  if cfg.train.swap_consistency > 0 else None)
    colors = random_color_matrices(batch_size, generator) if cfg.train.augment_clip_colors else None
    content_index = None
    if cfg.train.content_from_video > 0:
        if same_video is None:
            raise MotionbitsError("train.content_from_video needs the clips' videos (sample_batch(same_video=...))")
        other = torch.rand(batch_size, generator=generator) < cfg.train.content_from_video
        content_index = torch.where(other, same_video.draw(index, generator), index)
    return Batch(index, sigma, noise, gumbel, flip, channels, pick, drop, swap_noise, colors, content_index)


class Trainer:
    def __init__(self, cfg: Config, run_dir: str | Path, fresh: bool = False, progress: bool = True,
                 max_steps: int | None = None, max_minutes: float | None = None):
        self.cfg = cfg
        self.max_seconds = max_minutes * 60 if max_minutes else None
        self.run_dir = Path(run_dir)
        self.dist, self.device = setup_distributed(cfg.train.device)
        self.progress = progress and self.dist.main
        self.stop_at = min(cfg.train.steps, max_steps) if max_steps else cfg.train.steps
        t = cfg.train
        if t.batch_size % (self.dist.world * t.grad_accum):
            raise MotionbitsError(f"train.batch_size={t.batch_size} is not divisible by "
                                  f"processes x grad_accum = {self.dist.world} x {t.grad_accum}")
        torch.manual_seed(t.seed + self.dist.rank)
        if self.device.type == "cpu":
            torch.set_flush_denormal(True)  # tiny optimizer moments turn denormal and crawl on CPUs
            keep_freed_memory()
        if (t.augment_content_flip or t.augment_motion_colors or t.augment_clip_colors) and cfg.model.tokenizer != "pixels":
            raise MotionbitsError("train.augment_content_flip / augment_motion_colors / augment_clip_colors act on pixels: "
                                  f"turn them off with model.tokenizer={cfg.model.tokenizer!r}")
        self.clips = load_clips(cfg, "train", device=self.device, progress=self.progress)
        if cfg.data.kind == "video" and cfg.data.fps is None:
            # Kept in the checkpoint, so `motionbits transfer` feeds videos at the rate trained on.
            cfg.data.fps = video_dataset_fps(cfg.data.root)
        self.identities = self._identities()
        # (validate() allows content_from_video on video data only, whose clips always carry their video)
        self.same_video = SameVideoClips(self.clips.labels["video"]) if t.content_from_video > 0 else None
        # [N] identity of every training clip, for the identity adversary (looked up every step)
        self.clip_identity = torch.as_tensor(self.clips.labels["identity"]) if self.identities else None
        self.model = BCDModel(cfg, self.clips.latent_channels, self.clips.latent_size, self.identities).to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False).eval()
        fused = self.device.type == "cuda"
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=t.lr, weight_decay=t.weight_decay,
                                           betas=(0.9, 0.99), fused=fused)
        self.bf16 = use_bf16(self.device, t.amp)
        self.step = 0
        self.generator = torch.Generator().manual_seed(t.seed)
        self._resume_or_start(fresh)
        self.ddp = (DistributedDataParallel(self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
                    if self.dist.world > 1 else self.model)
        self.forward = torch.compile(self.ddp) if t.compile else self.ddp
        self.writer = None
        if self.dist.main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    def _identities(self) -> int:
        """How many identity classes the identity adversary tells apart (0 when it is off)."""
        if self.cfg.train.identity_adversary <= 0:
            return 0
        if "identity" not in self.clips.labels:
            raise MotionbitsError(f"train.identity_adversary needs clips with identities (a video dataset); "
                                  f"{self.cfg.data.root} has none")
        return int(self.clips.labels["identity"].max()) + 1

    # ---- state -----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "last.pt"

    def _resume_or_start(self, fresh: bool) -> None:
        if self.checkpoint_path.exists() and not fresh:
            ckpt = ckpt_io.read_checkpoint(self.checkpoint_path)
            ckpt_io.check_compatible(ckpt, self.cfg)
            self.model.load_state_dict(ckpt["model"])
            self.ema.load_state_dict(ckpt["ema"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.step = ckpt["step"]
            self.generator.set_state(ckpt["generator"])
            ckpt_io.set_rng_state(ckpt["rng"])
            if self.dist.main:
                print(f"resuming {self.checkpoint_path} at step {self.step}")
                self._note_changed_settings(ckpt_io.checkpoint_config(ckpt))
        elif self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._save_config()

    def _note_changed_settings(self, before: Config) -> None:
        """Resuming with other settings (typically more --steps) is allowed, but said out loud: the
        cosine schedule is stretched to the new length, so the learning rate jumps back up."""
        changes = config_changes(before, self.cfg)
        if not changes:
            return
        print(f"settings differ from the checkpoint's run, the new ones apply from step {self.step}: "
              + "; ".join(changes))
        print(f"learning rate now {learning_rate(self.cfg, self.step):.3g} "
              f"(was {learning_rate(before, self.step):.3g} under the old schedule)")
        self._save_config()

    def _save_config(self) -> None:
        """The run's settings as trained, readable beside last.pt."""
        write_text_atomic(self.run_dir / "config.json", json.dumps(self.cfg.to_dict(), indent=2))

    def state(self) -> dict:
        return {"format": "motionbits", "version": ckpt_io.FORMAT_VERSION, "config": self.cfg.to_dict(),
                "latent": {"channels": self.clips.latent_channels, "size": self.clips.latent_size},
                "identities": self.identities,
                "model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(), "step": self.step,
                "generator": self.generator.get_state(), "rng": ckpt_io.rng_state()}

    def save(self) -> None:
        if self.dist.main:
            ckpt_io.save_atomic(self.state(), self.checkpoint_path)

    # ---- one optimisation step ---------------------------------------------------------------
    def train_step(self) -> dict[str, torch.Tensor]:
        t = self.cfg.train
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.cfg, self.step)
        batch = sample_batch(self.model, len(self.clips), t.batch_size, self.generator,
                             self.same_video).shard(self.dist.rank, self.dist.world)
        totals: dict[str, torch.Tensor] = {}
        for micro in range(t.grad_accum):
            part = batch.shard(micro, t.grad_accum)
            z = self.clips.latents(part.index)                                   # [b, T, C, h, w]
            if part.content_index is not None:  # the content half from another moment of the video
                half = z.shape[1] // 2
                z = torch.cat([self.clips.latents(part.content_index)[:, :half], z[:, half:]], dim=1)
            inputs = part.model_inputs(self.device)
            if self.identities:
                inputs["identity"] = self.clip_identity[part.index].to(self.device)
            with autocast(self.device, self.bf16):
                out = self.forward(z, **inputs)
            (out["loss"] / t.grad_accum).backward()
            for k, v in out.items():
                totals[k] = totals.get(k, 0) + v.detach() / t.grad_accum
        totals["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        decay = min(t.ema_decay, (1 + self.step) / (10 + self.step))  # short warm-up of the EMA
        update_ema(self.ema, self.model, decay)
        self.step += 1
        return totals

    def fit(self) -> Path:
        t = self.cfg.train
        bar = tqdm(total=self.stop_at, initial=self.step, desc=f"train {self.cfg.name}",
                   disable=not self.progress, dynamic_ncols=True)
        running: dict[str, torch.Tensor] = {}
        count, started = 0, time.time()
        deadline = time.time() + self.max_seconds if self.max_seconds else None
        self.model.train()
        while self.step < self.stop_at:
            if deadline is not None and self._out_of_time(deadline):
                if self.dist.main:
                    tqdm.write(f"time budget of {self.max_seconds / 60:g} min reached at step {self.step} of "
                               f"{self.cfg.train.steps}: stopping with the learning rate at "
                               f"{learning_rate(self.cfg, self.step):.2g} (peak {self.cfg.train.lr:g}); "
                               f"--steps sized to the budget lets the cosine decay finish")
                if count:
                    self._log(running, count, started)
                break
            metrics = self.train_step()
            for k, v in metrics.items():  # accumulate on the device: no host sync per step
                running[k] = running.get(k, 0) + v
            count += 1
            bar.update(1)
            if self.step % t.log_every == 0 or self.step == self.stop_at:
                self._log(running, count, started)
                running, count, started = {}, 0, time.time()
            if self.step % t.checkpoint_every == 0 and self.step < self.stop_at:
                self.save()
            if self.writer is not None and t.sample_every and self.step % t.sample_every == 0:
                self._log_samples()
        bar.close()
        self.save()
        if self.writer is not None:
            self.writer.close()
        return self.checkpoint_path

    def _out_of_time(self, deadline: float) -> bool:
        """Past the wall-clock budget? One process's clock decides for all (broadcast every
        log_every steps), so every DDP rank stops at the same step."""
        if not dist.is_initialized():
            return time.time() >= deadline
        if self.step % self.cfg.train.log_every:
            return False
        late = torch.tensor([float(time.time() >= deadline)], device=self.device)
        dist.broadcast(late, src=0)
        return bool(late.item())

    def _log(self, running: dict[str, torch.Tensor], count: int, started: float) -> None:
        keys = sorted(running)
        stacked = torch.stack([running[k].float() / count for k in keys])
        if dist.is_initialized():  # every process logs the global means
            dist.all_reduce(stacked)
            stacked /= self.dist.world
        means = dict(zip(keys, stacked.tolist()))
        self.last_metrics = dict(means)
        means.update(self.model.quantizer.usage_stats())
        elapsed = time.time() - started
        means["clips_per_s"] = count * self.cfg.train.batch_size / max(elapsed, 1e-9)
        if self.dist.main:
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": self.step, **means}) + "\n")
        if self.writer is not None:
            for k, v in means.items():
                self.writer.add_scalar(f"train/{k}", v, self.step)
            self.writer.add_scalar("train/lr", learning_rate(self.cfg, self.step), self.step)
        if self.progress:
            tqdm.write(f"step {self.step}: loss {means['loss']:.4f} diffusion {means['diffusion_loss']:.4f} "
                       f"rate {means['bits_per_frame']:.2f} bits/frame (marginal {means['marginal_bits']:.2f}) codes used {means['codebook_used']:.2f} "
                       f"perplexity {means['perplexity']:.2f} {means['clips_per_s']:.1f} clips/s")

    def _log_samples(self) -> None:
        from motionbits.pipeline import MotionBits
        from motionbits.visualize import grid_image

        pipe = MotionBits(self.ema, self.clips.tokenizer, self.cfg)
        frames = self.clips.frames_u8(torch.arange(min(4, len(self.clips))))
        recon = pipe.reconstruct(frames, seed=0)
        swapped = pipe.transfer(frames, frames.roll(1, dims=0), seed=0)
        self.writer.add_image("samples/input|reconstruction|transfer",
                              grid_image([frames, recon, swapped]), self.step, dataformats="HWC")


def train(cfg: Config, run_dir: str | Path, fresh: bool = False, progress: bool = True,
          max_steps: int | None = None, max_minutes: float | None = None) -> Path:
    """Train (or resume) to cfg.train.steps; `max_steps` stops early as if killed (tests), and
    `max_minutes` stops at a wall-clock budget (a lent GPU), saving the checkpoint either way."""
    trainer = Trainer(cfg, run_dir, fresh=fresh, progress=progress, max_steps=max_steps, max_minutes=max_minutes)
    path = trainer.fit()
    if dist.is_initialized():
        dist.barrier()
    return path
