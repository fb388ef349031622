"""The trained model in use: reconstruct, transfer and render clips given as uint8 frames.

    pipe = MotionBits.from_checkpoint("runs/sprites-cpu")
    out = pipe.transfer(content_clip, motion_clip)       # uint8 [B, T, H, W, 3]
    save_video(out[0], "transfer.gif")

Frames in and out are uint8 [B, T, H, W, 3] (a single clip [T, H, W, 3] is accepted too); in
between, the frozen tokenizer maps them to latents and the EMA model does the work.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from motionbits import checkpoint as ckpt_io
from motionbits.config import Config
from motionbits.data.clips import float_to_frames, frames_to_float, make_tokenizer
from motionbits.errors import MotionbitsError
from motionbits.models.bcd import BCDModel
from motionbits.models.tokenizer import Tokenizer
from motionbits.runtime import autocast, keep_freed_memory, pick_device, use_bf16


class MotionBits:
    def __init__(self, model: BCDModel, tokenizer: Tokenizer, cfg: Config, device: torch.device | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer.eval()
        self.cfg = cfg
        self.device = device or next(model.parameters()).device
        self.bf16 = use_bf16(self.device, cfg.train.amp)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> "MotionBits":
        ckpt = ckpt_io.read_checkpoint(path)
        cfg = ckpt_io.checkpoint_config(ckpt)
        dev = pick_device(device)
        if dev.type == "cpu":
            # The tokenizer's large activations are freed and re-faulted every call otherwise:
            # taef2 at 128x128 spent 2/3 of its time in the kernel (1.4x slower).
            keep_freed_memory()
        model = BCDModel(cfg, ckpt["latent"]["channels"], ckpt["latent"]["size"], ckpt.get("identities", 0))
        try:
            model.load_state_dict(ckpt["ema"])
        except RuntimeError as err:
            raise MotionbitsError(f"checkpoint {ckpt['path']}: weights do not fit its config ({str(err).splitlines()[0]})") from None
        return cls(model.to(dev), make_tokenizer(cfg).to(dev), cfg, dev)

    # ---- frames <-> latents ---------------------------------------------------------------------
    def _as_clips(self, frames) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(frames)) if not isinstance(frames, torch.Tensor) else frames
        if x.ndim == 4:
            x = x[None]
        if x.ndim != 5 or x.shape[-1] != 3 or x.dtype != torch.uint8:
            raise MotionbitsError(f"expected uint8 frames [B, T, H, W, 3] or [T, H, W, 3], got {x.dtype} {tuple(x.shape)}")
        size = self.cfg.data.image_size
        if x.shape[2] != size or x.shape[3] != size:
            raise MotionbitsError(f"frames are {x.shape[2]}x{x.shape[3]}, this model works at {size}x{size}")
        return x

    @torch.no_grad()
    def to_latents(self, frames) -> torch.Tensor:
        x = self._as_clips(frames)
        b, t = x.shape[:2]
        z = self.tokenizer.encode(frames_to_float(x.flatten(0, 1)).to(self.device))
        return z.reshape(b, t, *z.shape[1:]).float()

    @torch.no_grad()
    def to_frames(self, z: torch.Tensor) -> torch.Tensor:
        b, t = z.shape[:2]
        x = self.tokenizer.decode(z.flatten(0, 1))
        return float_to_frames(x).reshape(b, t, x.shape[2], x.shape[3], 3)  # [B, T, H, W, 3]

    # ---- content / motion ---------------------------------------------------------------------
    @torch.no_grad()
    def encode_content(self, frames) -> torch.Tensor:
        """[B, K, Cc] from the first window of each clip."""
        return self.content_of_latents(self.to_latents(frames))

    @torch.no_grad()
    def encode_motion(self, frames, reference=None) -> torch.Tensor:
        """Motion codes [B, T, N] (int64), every frame. With model.relative_motion the codes say how
        the clip moved since `reference` (default: its own first window); other models ignore it."""
        ref = None if reference is None or not self.cfg.model.relative_motion else self.to_latents(reference)
        return self.motion_of_latents(self.to_latents(frames), ref)

    # The same from latents [B, T, C, h, w], for callers that read one clip several ways (evaluation).
    @torch.no_grad()
    def content_of_latents(self, z: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.bf16):
            return self.model.encode_content(z).float()

    @torch.no_grad()
    def motion_of_latents(self, z: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        with autocast(self.device, self.bf16):
            return self.model.encode_motion(z, reference)

    @torch.no_grad()
    def render(self, content: torch.Tensor, codes: torch.Tensor, steps: int | None = None,
               sampler: str | None = None, seed: int = 0) -> torch.Tensor:
        """content [B, K, Cc] + codes [B, T, N] -> uint8 frames [B, T, H, W, 3]."""
        b, t = codes.shape[:2]
        gen = torch.Generator().manual_seed(seed)
        shape = (b, t, self.model.latent_channels, self.model.latent_size, self.model.latent_size)
        noise = torch.randn(shape, generator=gen).to(self.device)
        with autocast(self.device, self.bf16):
            z = self.model.render(content.to(self.device), codes.to(self.device), noise, steps, sampler)
        return self.to_frames(z.float())

    def reconstruct(self, frames, steps: int | None = None, sampler: str | None = None, seed: int = 0) -> torch.Tensor:
        """Rebuild each clip from its own content and motion codes."""
        return self.render(self.encode_content(frames), self.encode_motion(frames), steps, sampler, seed)

    def transfer(self, content_frames, motion_frames, steps: int | None = None, sampler: str | None = None,
                 seed: int = 0, motion_reference=None) -> torch.Tensor:
        """The look of `content_frames` moving like `motion_frames` (paired clip by clip).
        motion_reference: see encode_motion (relative-motion models; default the driver's start)."""
        content = self.encode_content(content_frames)
        codes = self.encode_motion(motion_frames, motion_reference)
        if content.shape[0] != codes.shape[0]:
            if content.shape[0] != 1:
                raise MotionbitsError(f"{content.shape[0]} content clips for {codes.shape[0]} motion clips")
            content = content.expand(codes.shape[0], -1, -1)
        return self.render(content, codes, steps, sampler, seed)
