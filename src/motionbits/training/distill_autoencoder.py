"""Distil taef2 into the fast autoencoder (models/fast_autoencoder.py) on a video dataset's frames.

A few frames of each training clip are drawn (seeded); taef2 encodes each and decodes its latent
once, and those are the targets: the fast encoder learns taef2's latent of the frame, the fast
decoder taef2's picture of the latent (and of the latent slightly moved, since a diffusion model's latents are never exactly
an encoder's). The layers both keep from taef2 start from its weights. The test split's frames (people
the distillation never saw, when the dataset splits by person) measure the result against taef2.
A killed run resumes from its last state with nothing lost.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from motionbits.assets import TAEF2_WEIGHTS
from motionbits.atomic_files import atomic_path
from motionbits.checkpoints import load_data_only
from motionbits.data.folders import dataset_manifest
from motionbits.data.video import load_video_clips
from motionbits.errors import MotionbitsError
from motionbits.models.fast_autoencoder import FastTAEF2
from motionbits.models.tokenizer import TAEF2, frames_to_unit
from motionbits.training.checkpoint import rng_state, save_atomic, set_rng_state

STATE_FILE = "distill_state.pt"
REPORT_FILE = "distill_report.json"
LATENT_JITTER = 0.3   # the decoder's inputs are moved by up to this fraction of the latents' spread
TEST_FRAMES = 256


def frames_of_clips(data: str | os.PathLike, split: str, count: int | None, seed: int, per_clip: int = 1
                    ) -> torch.Tensor:
    """``per_clip`` frames of each clip of a split (``count`` clips at most), uint8 [N,H,W,3]: from a
    seeded frame on, evenly spaced round the clip."""
    clips, _ = load_video_clips(data, split)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(clips))[:count] if count else np.arange(len(clips))
    length = clips.shape[1]
    starts = rng.integers(0, length, size=len(order))
    return torch.from_numpy(np.stack([clips[i, (t + k * length // per_clip) % length]
                                      for i, t in zip(order, starts) for k in range(per_clip)]))


@torch.no_grad()
def _teacher_targets(teacher: TAEF2, frames: torch.Tensor, batch: int, progress: bool, what: str
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """taef2's raw latents [N,32,h,w] of uint8 frames [N,H,W,3] and its pictures [N,3,H,W] in [0,1]."""
    latents, pictures = [], []
    for i in tqdm(range(0, len(frames), batch), desc=f"taef2 targets ({what})", disable=not progress, leave=False):
        x = frames_to_unit(frames[i:i + batch])
        z = teacher.encoder(x.contiguous(memory_format=torch.channels_last)).contiguous()
        latents.append(z)
        pictures.append(teacher.decoder(z.contiguous(memory_format=torch.channels_last)).contiguous().to(torch.float16))
    return torch.cat(latents), torch.cat(pictures)


def _losses(student: FastTAEF2, teacher: TAEF2, x: torch.Tensor, z: torch.Tensor, picture: torch.Tensor,
            z_spread: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent error (relative to the latents' spread) and picture error (mean squared, [0,1] pixels).

    The second half of the batch is decoded from latents moved by up to LATENT_JITTER of their spread,
    against taef2's picture of the moved latent.
    """
    latent_err = F.mse_loss(student.encoder(x), z) / z_spread ** 2
    half = len(z) // 2
    moved = z[half:] + torch.randn_like(z[half:]) * z_spread * LATENT_JITTER * torch.rand(len(z) - half, 1, 1, 1)
    with torch.no_grad():
        moved_picture = teacher.decoder(moved.contiguous(memory_format=torch.channels_last)).contiguous()
    z_in = torch.cat([z[:half], moved]).contiguous(memory_format=torch.channels_last)
    target = torch.cat([picture[:half].float(), moved_picture])
    return latent_err, F.mse_loss(student.decoder(z_in), target)


def psnr(mse: float) -> float:
    return 10 * math.log10(1 / max(mse, 1e-12))


@torch.no_grad()
def compare_with_taef2(student: FastTAEF2, teacher: TAEF2, frames: torch.Tensor, batch: int = 16) -> dict[str, float]:
    """The fast pair against taef2 on uint8 frames: latents, decoding taef2's latents, and a round trip."""
    z_err = dec_err = trip_err = teacher_trip_err = 0.0
    z2 = 0.0
    for i in range(0, len(frames), batch):
        x = frames_to_unit(frames[i:i + batch])
        z = teacher.encoder(x)
        picture = teacher.decoder(z).clamp(0, 1)
        n = len(x) / len(frames)
        z_err += F.mse_loss(student.encoder(x), z).item() * n
        z2 += z.var().item() * n
        dec_err += F.mse_loss(student.decoder(z).clamp(0, 1), picture).item() * n
        trip_err += F.mse_loss(student.decoder(student.encoder(x)).clamp(0, 1), x).item() * n
        teacher_trip_err += F.mse_loss(picture, x).item() * n
    return {"latent_error_relative": z_err / z2,
            "decode_psnr_vs_taef2_db": psnr(dec_err),
            "round_trip_psnr_db": psnr(trip_err), "taef2_round_trip_psnr_db": psnr(teacher_trip_err)}


def distill_autoencoder(data: str | os.PathLike, out: str | os.PathLike, steps: int = 2500, batch: int = 8,
                        lr: float = 1e-3, clips: int | None = None, frames_per_clip: int = 2, seed: int = 0,
                        tokenizer_path: str | None = None, save_every: int = 250, progress: bool = True) -> dict[str, Any]:
    """Train the fast autoencoder on ``data``'s training frames; write it and its report to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    teacher = TAEF2.from_folder(tokenizer_path or TAEF2_WEIGHTS)
    student = FastTAEF2(teacher)
    student.frozen = False
    for p in student.parameters():
        p.requires_grad_(True)
    student.encoder.train(), student.decoder.train()
    opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))))

    t0 = time.time()
    frames = frames_of_clips(data, "train", clips, seed, frames_per_clip)
    latents, pictures = _teacher_targets(teacher, frames, 16, progress, f"{len(frames)} training frames")
    z_spread = latents.std().item()
    step, log = 0, []
    state_path = out / STATE_FILE
    if state_path.is_file():
        state = load_data_only(state_path, "distillation state")
        if not isinstance(state, dict) or not {"steps", "frames", "step", "encoder", "decoder"} <= set(state):
            raise MotionbitsError(f"{state_path}: not a distillation state; remove it or use another --out")
        if state["steps"] != steps or state["frames"] != len(frames):
            raise MotionbitsError(f"{state_path}: a distillation of {state['steps']} steps on {state['frames']} "
                                  f"frames, not {steps} on {len(frames)}; remove it or use another --out")
        student.encoder.load_state_dict(state["encoder"]), student.decoder.load_state_dict(state["decoder"])
        opt.load_state_dict(state["optimizer"]), schedule.load_state_dict(state["schedule"])
        set_rng_state(state["rng"])
        step, log = state["step"], state["log"]

    bar = tqdm(total=steps, initial=step, desc="distil taef2", disable=not progress)
    while step < steps:
        idx = torch.randint(0, len(frames), (batch,))
        x = frames_to_unit(frames[idx]).contiguous(memory_format=torch.channels_last)
        latent_err, picture_err = _losses(student, teacher, x, latents[idx], pictures[idx], z_spread)
        loss = latent_err + picture_err * 100   # pictures in [0,1]: 1e-3 mean squared is 30 dB
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step(), schedule.step()
        step += 1
        bar.update(1)
        if step % 50 == 0 or step == steps:
            log.append({"step": step, "latent_error": latent_err.item(), "picture_psnr_db": psnr(picture_err.item())})
            bar.set_postfix(latent=f"{latent_err.item():.3f}", picture=f"{psnr(picture_err.item()):.1f} dB")
        if step % save_every == 0 or step == steps:
            save_atomic({"steps": steps, "frames": len(frames), "step": step, "log": log, "rng": rng_state(),
                         "encoder": student.encoder.state_dict(), "decoder": student.decoder.state_dict(),
                         "optimizer": opt.state_dict(), "schedule": schedule.state_dict()}, state_path)
    bar.close()
    student.freeze()
    has_test = dataset_manifest(data, "test", "video")[1].get("counts", {}).get("test", 0) > 0
    test = frames_of_clips(data, "test", TEST_FRAMES, seed) if has_test else frames[:TEST_FRAMES]
    report = {"data": str(data), "steps": steps, "batch": batch, "lr": lr, "frames_per_clip": frames_per_clip,
              "training_frames": len(frames),
              "test_frames": len(test), "test_split": has_test,
              "minutes": round((time.time() - t0) / 60, 1), "log": log,
              "test": compare_with_taef2(student, teacher, test)}
    for name, sd in student.state_dicts().items():
        save_atomic({k: v.contiguous() for k, v in sd.items()}, out / name)
    with atomic_path(out / REPORT_FILE) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=1) + "\n")
    return report

