"""The trained model in use, from Python: transfer, reconstruct, generate, encode content and motion.

    from motionbits import MotionBits
    pipe = MotionBits.from_checkpoint("runs/sprites-cpu")
    out = pipe.transfer(content_clip, motion_clip)       # uint8 [B, T, H, W, 3]
    codes = pipe.encode_motion(motion_clip)              # int64 [B, T, N]: the motion, N codes a frame
    driver = pipe.read_clip("driver.mp4")                # .frames [T, H, W, 3] and .fps, the rate it was read at
    save_video(pipe.transfer(content_clip, driver.frames)[0], "transfer.mp4", fps=driver.fps)   # motionbits.visualize

Frames in and out are uint8 [B, T, H, W, 3] (a single clip [T, H, W, 3] is accepted too); in
between, the frozen tokenizer maps them to latents and the EMA model does the work.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from motionbits.checkpoints import checkpoint_config, read_checkpoint
from motionbits.config import Config
from motionbits.errors import MotionbitsError
from motionbits.models.bcd import BCDModel
from motionbits.models.fast_autoencoder import FastTAEF2
from motionbits.models.tokenizer import Tokenizer, float_to_frames, frames_to_float, make_tokenizer
from motionbits.runtime import autocast, keep_freed_memory, pick_device, use_bf16


def weights_fingerprint(state: dict[str, torch.Tensor], config: dict) -> bytes:
    """8 bytes that change with any weight or setting: a bitstream names the model it needs."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().flatten().contiguous().view(torch.uint8).numpy().tobytes())
    return h.digest()[:8]


TOKENIZER_FRAMES = 64   # frames through the tokenizer at once, and through the denoiser:
RENDER_FRAMES = 512     # long clips fit in memory


class MotionBits:
    def __init__(self, model: BCDModel, tokenizer: Tokenizer, cfg: Config, device: torch.device | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer.eval()
        self.cfg = cfg
        self.device = device or next(model.parameters()).device
        self.bf16 = use_bf16(self.device, cfg.train.amp)
        self.source = "the given model"
        self._fingerprint: bytes | None = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto",
                        fast_autoencoder: str | Path | None = None) -> "MotionBits":
        """The trained model of a checkpoint (last.pt or its run folder), its frames through the
        config's tokenizer or, with `fast_autoencoder`, through that folder's (use_fast_autoencoder)."""
        ckpt = read_checkpoint(path)
        cfg = checkpoint_config(ckpt)
        dev = pick_device(device)
        if dev.type == "cpu":
            # The tokenizer's large activations are freed and re-faulted every call otherwise:
            # taef2 at 128x128 spent 2/3 of its time in the kernel (1.4x slower).
            keep_freed_memory()
        model = BCDModel(cfg, ckpt["latent"]["channels"], ckpt["latent"]["size"])
        try:
            model.load_state_dict(ckpt["ema"])
        except RuntimeError as err:
            raise MotionbitsError(f"checkpoint {ckpt['path']}: weights do not fit its config ({str(err).splitlines()[0]})") from None
        pipe = cls(model.to(dev), make_tokenizer(cfg).to(dev), cfg, dev)
        pipe.source = ckpt["path"]
        return pipe.use_fast_autoencoder(fast_autoencoder) if fast_autoencoder else pipe

    def use_fast_autoencoder(self, folder: str | Path) -> "MotionBits":
        """Encode and render frames through a fast autoencoder distilled from taef2 (models/fast_autoencoder.py).

        The latents are taef2's, so the model, its codes and its files stay the same: a file encoded
        either way decodes either way."""
        if self.cfg.model.tokenizer != "taef2":
            raise MotionbitsError(f"--fast-autoencoder {folder}: a fast autoencoder works in taef2's latent space, "
                                  f"and this model's tokenizer is {self.cfg.model.tokenizer}")
        self.tokenizer = FastTAEF2.from_folder(folder).to(self.device).eval()
        return self

    def fingerprint(self) -> bytes:
        """8 bytes identifying this model (config and EMA weights): codec/format.py."""
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.model.state_dict(), self.cfg.to_dict())
        return self._fingerprint

    def read_clip(self, spec: str, frames: int | None = None, input_fps: float | None = None):
        """A clip for the methods below, with its frame rate (data/inputs.py TimedClip): `.frames`
        uint8 [T, S, S, 3] at the model's size, `.fps` the rate to write results at so the duration
        is kept. A video is resampled to `input_fps` (None: the model's data.fps; 0: kept at its own)."""
        from motionbits.data.inputs import read_timed_clip

        fps = self.cfg.data.fps if input_fps is None else input_fps or None
        return read_timed_clip(spec, self.cfg.data.image_size, frames, fps)

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
        """uint8 frames [B, T, H, W, 3] -> latents [B, T, C, h, w], a chunk of frames at a time."""
        x = self._as_clips(frames)
        b, t = x.shape[:2]
        flat = x.flatten(0, 1)
        z = torch.cat([self.tokenizer.encode(frames_to_float(flat[i:i + TOKENIZER_FRAMES]).to(self.device))
                       for i in range(0, len(flat), TOKENIZER_FRAMES)])
        return z.reshape(b, t, *z.shape[1:]).float()

    @torch.no_grad()
    def to_frames(self, z: torch.Tensor) -> torch.Tensor:
        """latents [B, T, C, h, w] -> uint8 frames [B, T, H, W, 3] on the CPU."""
        b, t = z.shape[:2]
        flat = z.flatten(0, 1)
        x = torch.cat([float_to_frames(self.tokenizer.decode(flat[i:i + TOKENIZER_FRAMES]))
                       for i in range(0, len(flat), TOKENIZER_FRAMES)])
        return x.reshape(b, t, *x.shape[1:])

    # ---- content / motion ---------------------------------------------------------------------
    @torch.no_grad()
    def encode_content(self, frames) -> torch.Tensor:
        """[B, K, Cc] from the first window of each clip."""
        return self.content_of_latents(self.to_latents(frames))

    @torch.no_grad()
    def encode_motion(self, frames, reference=None) -> torch.Tensor:
        """Motion codes [B, T, N] (int64), every frame. With model.relative_motion the codes say how
        the clip moved since `reference` (default: its own first window); other models ignore it."""
        frames = self._as_clips(frames)
        ref = ref_lips = None
        if reference is not None and self.cfg.model.relative_motion:
            reference = self._as_clips(reference)
            ref, ref_lips = self.to_latents(reference), self.model.lips_of_frames(reference)
        return self.motion_of_latents(self.to_latents(frames), ref, self.model.lips_of_frames(frames), ref_lips)

    @torch.no_grad()
    def motion_logits(self, frames) -> torch.Tensor:
        """Code logits [B, T, N, K_e] of every frame (the codes are their argmax), read against the
        clip's own first window."""
        frames = self._as_clips(frames)
        return self.motion_logits_of_latents(self.to_latents(frames), lips=self.model.lips_of_frames(frames))

    # The same from latents [B, T, C, h, w], for callers that read one clip several ways (evaluation).
    @torch.no_grad()
    def content_of_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Content [B, K, Cc], rounded to float16: what the bitstream sends, so a decoded file and a
        reconstruction render the very same content."""
        with autocast(self.device, self.bf16):
            return self.model.encode_content(z).half().float()

    @torch.no_grad()
    def motion_of_latents(self, z: torch.Tensor, reference: torch.Tensor | None = None,
                          lips: torch.Tensor | None = None, reference_lips: torch.Tensor | None = None) -> torch.Tensor:
        return self.motion_logits_of_latents(z, reference, lips, reference_lips).argmax(-1)

    @torch.no_grad()
    def motion_logits_of_latents(self, z: torch.Tensor, reference: torch.Tensor | None = None,
                                 lips: torch.Tensor | None = None,
                                 reference_lips: torch.Tensor | None = None) -> torch.Tensor:
        """Code logits [B, T, N, K_e] (the codes are their argmax; evaluation/rate.py reads them);
        lips: the frames' aligned lip points [B, T, 40], for models with model.lip_groups
        (BCDModel.lips_of_frames)."""
        lips, reference_lips = (None if x is None else x.to(self.device) for x in (lips, reference_lips))
        with autocast(self.device, self.bf16):
            return self.model.motion_logits(z, reference, lips, reference_lips).float()

    @torch.no_grad()
    def render(self, content: torch.Tensor, codes: torch.Tensor, steps: int | None = None,
               sampler: str | None = None, seed: int = 0) -> torch.Tensor:
        """content [B, K, Cc] + codes [B, T, N] -> uint8 frames [B, T, H, W, 3]."""
        b, t = codes.shape[:2]
        gen = torch.Generator().manual_seed(seed)
        shape = (b, t, self.model.latent_channels, self.model.latent_size, self.model.latent_size)
        noise = torch.randn(shape, generator=gen).to(self.device)
        content, codes = content.to(self.device), codes.to(self.device)
        # Frames are independent given content and their motion condition, so a long clip renders in
        # spans of frames (temporal layers see the whole clip instead).
        span = t if self.cfg.model.temporal_attention else max(1, RENDER_FRAMES // b)
        with autocast(self.device, self.bf16):
            motion = self.model.motion_condition(codes)                                 # [B, T, Cm]
            z = torch.cat([self.model.render_condition(content, motion[:, i:i + span], noise[:, i:i + span], steps, sampler)
                           for i in range(0, t, span)], dim=1)
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

    @torch.no_grad()
    def generate(self, prior, content_frames, frames: int, prompt_frames=None, label: int | None = None,
                 temperature: float = 1.0, top_k: int | None = None, seed: int = 0, steps: int | None = None,
                 sampler: str | None = None) -> torch.Tensor:
        """New motion for the given content, sampled by a motion prior (training/prior.py):
        uint8 frames [B, frames, H, W, 3]. prompt_frames: a clip whose motion is continued."""
        content = self.encode_content(content_frames)                        # [B, K, Cc]
        prompt = self.encode_motion(prompt_frames) if prompt_frames is not None else None
        if prompt is not None and prompt.shape[1] >= frames:
            raise MotionbitsError(f"the motion prompt has {prompt.shape[1]} frames: ask for more than that with --frames")
        gen = torch.Generator(device=content.device).manual_seed(seed)
        labels = None if label is None else torch.full((content.shape[0],), label, dtype=torch.long, device=content.device)
        codes = prior.to(content.device).generate(content, frames, prompt=prompt, label=labels, temperature=temperature,
                                                  top_k=top_k, generator=gen)
        return self.render(content, codes, steps=steps, sampler=sampler, seed=seed)
