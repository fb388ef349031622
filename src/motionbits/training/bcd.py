"""Training the BCD model: `motionbits train --config NAME` (single process or torchrun DDP).

Follow one batch from disk to loss:
    data/<root>  ──load_clips──► ClipSet: uint8 clips [N, T, H, W, 3] + the tokenizer's cached latents
    BCDModel.draw ──► Draws: which clips, noise levels, noise, Gumbel noise, augmentation draws
    BCDTask.loss: clips.latents(draws.index) ──► z [b, T, C, h, w] ──► BCDModel(z, draws) ──► loss
    (with train.augment_clip_colors, each clip's latents from one recoloured copy: data/colour_copies.py)
and training/loop.py does the rest (optimizer, schedule, EMA, checkpoints, logs, DDP).

Before the first step, what the data decides is written into the run's config: the clips' frame
rate (video) and the latents' standard deviation (diffusion.sigma_data, unless the config sets it).
With train.init_from a stage-1 run's weights start the model (the paper's second stage: temporal
layers added, starting at zero).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from motionbits.atomic_files import atomic_path, write_text_atomic
from motionbits.config import Config, config_changes
from motionbits.data.clips import ClipSet, load_clips
from motionbits.data.colour_copies import colour_copies
from motionbits.data.folders import dataset_manifest
from motionbits.data.latent_cache import frames_key
from motionbits.data.video import video_dataset_fps
from motionbits.errors import MotionbitsError
from motionbits.lip_points import LIP_FEATURES, lip_shapes
from motionbits.models.bcd import BCDModel, Draws, SameVideoClips
from motionbits.reliance import RelianceClips, scalars
from motionbits.training import checkpoint as ckpt_io
from motionbits.training.loop import Schedule, Task, Trainer, learning_rate, setup_distributed


# Decoder reliance goes to TensorBoard every this many log lines (every 500 steps at log_every 50):
# a few clips, 20 forward passes, about the cost of two training steps.
RELIANCE_EVERY_LOGS = 10


def lip_cache_path(root: str | Path, frames: np.ndarray | torch.Tensor) -> Path:
    """Where the lip points of a dataset's training frames [N, T, H, W, 3] are cached: under a key
    of the frames, so a rebuilt dataset never reads another's lips."""
    return Path(root) / f"lip_shapes-train-{frames_key(frames)}.npy"


def cached_lip_shapes(cfg: Config, clips: ClipSet) -> np.ndarray:
    """Every training frame's aligned lip points [N, T, 40] (dlib, about 10 ms a face frame), cached
    beside the clips (lip_cache_path; recoloured copies share them)."""
    path = lip_cache_path(cfg.data.root, clips.frames)
    if path.exists():
        lips = np.load(path)
        if lips.shape == (len(clips), clips.frames.shape[1], LIP_FEATURES):
            return lips
    frames = clips.frames.numpy()
    print(f"reading the lips of {frames.shape[0] * frames.shape[1]} training frames (dlib, once)")
    lips = np.concatenate([lip_shapes(frames[i:i + 64]) for i in range(0, len(frames), 64)])
    if np.isnan(lips[..., 0]).all():
        raise MotionbitsError(f"{cfg.data.root}: dlib finds no face in any training frame, so model.lip_groups has no "
                              "lips to read (make the dataset with `data video --crop face`, or set lip_groups: 0)")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, lips)
    return lips


def person_weights(cfg: Config, clips: ClipSet) -> torch.Tensor:
    """[N] how often each training clip is drawn: train.person's clips train.person_weight times as
    often as the others'."""
    names = dataset_manifest(cfg.data.root, "train", "video")[1]["identities"]
    person = names.index(cfg.train.person) if cfg.train.person in names else -1
    own = torch.from_numpy(clips.labels["identity"] == person)                  # [N] bool
    if not own.any():
        raise MotionbitsError(f"{cfg.data.root}: train.person {cfg.train.person!r} has no training clips "
                              f"(its people: {', '.join(names)})")
    return torch.where(own, cfg.train.person_weight, 1.0)


def schedule_of(cfg: Config) -> Schedule:
    t = cfg.train
    return Schedule(steps=t.steps, batch_size=t.batch_size, lr=t.lr, warmup_steps=t.warmup_steps,
                    grad_accum=t.grad_accum, weight_decay=t.weight_decay, grad_clip=t.grad_clip,
                    ema_decay=t.ema_decay, seed=t.seed, amp=t.amp, compile=t.compile, log_every=t.log_every,
                    checkpoint_every=t.checkpoint_every, checkpoint_minutes=t.checkpoint_minutes)


class BCDTask(Task):
    name = "train"
    shown_metrics = ("diffusion_loss", "rate_bits", "code_entropy_bits", "static_code_bits", "entries_used_min")

    def __init__(self, cfg: Config, clips: ClipSet, colour_copies: list[ClipSet] = ()):
        self.cfg, self.clips = cfg, clips
        self.clip_sets = [clips, *colour_copies]   # train.augment_clip_colors: the clips, then their recoloured copies
        self.model = BCDModel(cfg, clips.latent_channels, clips.latent_size)
        # (validate() allows content_from_video on video data only, whose clips always carry their video)
        self.same_video = None
        if cfg.train.content_from_video > 0:
            gap = round(cfg.train.content_gap_seconds * (cfg.data.fps or 0))
            self.same_video = SameVideoClips(clips.labels["video"], clips.labels["start"], gap)
        self.clip_weights = person_weights(cfg, clips) if cfg.train.person else None
        self.reliance_clips = None       # the decoder-reliance clips' latents, made on first use
        self.lips = None                 # model.lip_groups: the clips' lip points [N, T, 40], found once, cached
        if cfg.model.lip_groups:
            self.lips = torch.from_numpy(cached_lip_shapes(cfg, clips)).float()
            self.model.lip_encoder.set_statistics(self.lips)

    def draw(self, generator: torch.Generator, batch_size: int) -> Draws:
        return self.model.draw(len(self.clips), batch_size, generator, self.same_video, self.clip_weights)

    def loss(self, module, draws: Draws, device: torch.device) -> dict[str, torch.Tensor]:
        z = self.latents(draws.index, draws.colour_copy)                          # [b, T, C, h, w]
        if draws.content_index is not None:  # the content half from another moment of the video
            half = z.shape[1] // 2
            z = torch.cat([self.latents(draws.content_index, draws.colour_copy)[:, :half], z[:, half:]], dim=1)
        if self.lips is None:
            return module(z, draws.to(device))
        lips = self.lips[draws.index.cpu()]                  # [b, T, 40] (recolouring moves no lip point)
        if draws.content_index is not None:
            lips = torch.cat([self.lips[draws.content_index.cpu()][:, :half], lips[:, half:]], dim=1)
        return module(z, draws.to(device), lips.to(device))

    def latents(self, index: torch.Tensor, colour_copy: torch.Tensor | None) -> torch.Tensor:
        """index [b] -> latents [b, T, C, h, w], each clip from its recoloured copy (None: all as they are)."""
        if colour_copy is None:
            return self.clips.latents(index)
        out = None
        for copy, clips in enumerate(self.clip_sets):
            rows = (colour_copy == copy).nonzero().flatten()
            if len(rows):
                part = clips.latents(index[rows])
                if out is None:
                    out = part.new_empty((len(index), *part.shape[1:]))
                out[rows.to(out.device)] = part
        return out

    def describe(self) -> dict:
        return {"config": self.cfg.to_dict(),
                "latent": {"channels": self.clips.latent_channels, "size": self.clips.latent_size}}

    def check_resume(self, checkpoint: dict) -> None:
        ckpt_io.check_compatible(checkpoint, self.cfg)
        before = ckpt_io.checkpoint_config(checkpoint)
        changes = config_changes(before, self.cfg)
        if changes:  # allowed (typically more --steps), but said out loud
            step = checkpoint["step"]
            print(f"settings differ from the checkpoint's run, the new ones apply from step {step}: " + "; ".join(changes))
            print(f"learning rate now {learning_rate(schedule_of(self.cfg), step):.3g} "
                  f"(was {learning_rate(schedule_of(before), step):.3g} under the old schedule)")

    def log_extras(self) -> dict[str, float]:
        return self.model.quantizer.usage_stats()

    def log_pictures(self, writer, step: int) -> None:
        if step % (RELIANCE_EVERY_LOGS * self.cfg.train.log_every) == 0:
            try:
                self.log_reliance(writer, step)
            except Exception as err:  # an instrument must not stop a training: its log comes before the checkpoint
                print(f"warning: decoder reliance not logged at step {step} ({type(err).__name__}: {err}); "
                      "training goes on", file=sys.stderr)
        every = self.cfg.train.sample_every
        if not every or step % every:
            return
        from motionbits.api import MotionBits
        from motionbits.visualize import grid_image

        pipe = MotionBits(self.trainer.inference_model, self.clips.tokenizer, self.cfg)
        frames = self.clips.frames_u8(torch.arange(min(4, len(self.clips))))
        recon = pipe.reconstruct(frames, seed=0)
        swapped = pipe.transfer(frames, frames.roll(1, dims=0), seed=0)
        writer.add_image("samples/input|reconstruction|transfer", grid_image([frames, recon, swapped]), step,
                         dataformats="HWC")

    def log_reliance(self, writer, step: int) -> None:
        """Decoder reliance (reliance.py) of the EMA model on a few fixed training and test
        clips: how much worse it denoises with wrong codes. The clips are encoded once, on first use."""
        if self.reliance_clips is None:
            self.reliance_clips = RelianceClips.of_dataset(self.cfg, self.clips.tokenizer, self.clips.device)
        training = self.model.training      # without an EMA, inference_model is the model being trained
        try:
            report = self.reliance_clips.measure(self.trainer.inference_model)
        finally:
            self.model.train(training)
        for name, value in scalars(report).items():
            writer.add_scalar(f"reliance/{name}", value, step)


def init_from_stage1(model: BCDModel, path: str | Path) -> list[str]:
    """Load a stage-1 run's EMA weights into `model`, which may have more modules (temporal
    layers); returns the names of the modules that start from their initialisation. Any other
    difference (a missing or extra weight, another shape) is a one-line error."""
    ckpt = ckpt_io.read_checkpoint(path)
    weights = ckpt["ema"]
    own = model.state_dict()
    new = [k for k in own if k not in weights]
    extra = [k for k in weights if k not in own]
    reshaped = [f"{k} {tuple(weights[k].shape)} -> {tuple(v.shape)}" for k, v in own.items()
                if k in weights and weights[k].shape != v.shape]
    not_temporal = [k for k in new if ".temporal." not in k]
    if extra or reshaped or not_temporal:
        problem = (f"weights this model does not have ({', '.join(extra[:3])})" if extra else
                   f"weights of another shape ({', '.join(reshaped[:3])})" if reshaped else
                   f"no weights for {', '.join(not_temporal[:3])}")
        raise MotionbitsError(f"train.init_from {ckpt['path']}: its model differs from this one beyond added temporal "
                              f"layers: {problem}")
    model.load_state_dict({**own, **weights})
    return sorted({k.rsplit(".temporal.", 1)[0] + ".temporal" for k in new})


def train(cfg: Config, run_dir: str | Path, fresh: bool = False, progress: bool = True,
          max_steps: int | None = None, max_minutes: float | None = None) -> Path:
    """Train (or resume) to cfg.train.steps; `max_steps` stops early as if killed (tests), and
    `max_minutes` stops at a wall-clock budget, saving the checkpoint either way."""
    dist_info, device = setup_distributed(cfg.train.device)
    torch.manual_seed(cfg.train.seed + dist_info.rank)
    clips = load_clips(cfg, "train", device=device, progress=progress and dist_info.main)
    if cfg.data.kind == "video" and cfg.data.fps is None:
        cfg.data.fps = video_dataset_fps(cfg.data.root)    # transfer feeds videos at the rate trained on
    if cfg.diffusion.sigma_data is None:
        cfg.diffusion.sigma_data = round(clips.change_std() if cfg.model.draw_change else clips.latent_std, 4)
    copies = colour_copies(cfg, clips, progress=progress and dist_info.main) if cfg.train.augment_clip_colors else []
    task = BCDTask(cfg, clips, copies)
    run_dir = Path(run_dir)
    resuming = (run_dir / "last.pt").exists() and not fresh
    if cfg.train.init_from and not resuming:
        new = init_from_stage1(task.model, cfg.train.init_from)
        if dist_info.main:
            print(f"started from {cfg.train.init_from}; new modules (starting at zero): {', '.join(new) or 'none'}")
    trainer = Trainer(task, schedule_of(cfg), run_dir, device, dist_info, fresh=fresh, progress=progress,
                      max_steps=max_steps, max_minutes=max_minutes)
    task.trainer = trainer
    if dist_info.main:  # the run's settings as trained, readable beside last.pt
        write_text_atomic(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2))
    return trainer.fit()
