"""Bitrate-Controlled Diffusion: encoder + group quantizer + denoiser, and the training loss.

Everything here works on tokenizer latents z [B, T, C, h, w]; the tokenizer (pixels, taef2, a
diffusers VAE) sits outside, frozen (see motionbits.api).

One training batch, cross-driving on (the paper's trick):
    z [B, T]  ──► first half z[:, :T/2] ──encoder──► content c [B, K, Cc]
              └─► second half z[:, T/2:] ──encoder──► motion m [B, T/2, N*d] ──quantizer──► m̂
    loss = EDM loss of denoising z[:, T/2:] given (c, m̂)  +  lambda * (R(m̂) - H_target)^2
The content never sees the frames it must rebuild, so it cannot smuggle their motion through.
Every random draw of a step (which clips, noise levels, noise, Gumbel noise, augmentations) is made
by `BCDModel.draw` into one `Draws` object, so a run is reproducible and N processes compute what
one process computes on the same global batch.
"""
from __future__ import annotations

import math

from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn as nn

from motionbits.config import Config
from motionbits.diffusion import EDM
from motionbits.models.denoiser import Denoiser
from motionbits.errors import MotionbitsError
from motionbits.lip_points import lip_shapes
from motionbits.models.encoder import (KeyFrameContentReader, LipMotionEncoder, MotionContentEncoder,
                                       PatchPoolContentReader)
from motionbits.models.motion_context import MotionContext
from motionbits.models.quantizer import GroupQuantizer, information_bits


@dataclass
class Draws:
    """All randomness of one training step, for B clips (T' = frames rebuilt, R = frames rendered)."""
    index: torch.Tensor                           # [B] training clips
    sigma: torch.Tensor                           # [B, R] noise levels
    noise: torch.Tensor                           # [B, R, C, h, w]
    gumbel: torch.Tensor                          # [B, T', N, K_e]
    content_index: torch.Tensor | None = None     # [B] clip whose first half gives the content (train.content_from_video)
    content_flip: torch.Tensor | None = None      # [B] bool: mirror the content frames
    motion_channels: torch.Tensor | None = None   # [B, C]: channel permutation of the motion frames
    frame_pick: torch.Tensor | None = None        # [B, R]: the rebuilt frames the loss renders (train.render_frames)
    rebuild_first: torch.Tensor | None = None     # [B] bool: the second half gives the content, the first is rebuilt
    colour_copy: torch.Tensor | None = None       # [B] which recoloured copy each clip is read from (0: as it is)

    def shard(self, part: int, parts: int) -> "Draws":
        """The part-th of `parts` equal slices along the batch (a process's or a micro-batch's share)."""
        size = self.index.shape[0] // parts
        return Draws(**{f.name: None if (v := getattr(self, f.name)) is None else v[part * size:(part + 1) * size]
                        for f in fields(self)})

    def to(self, device: torch.device) -> "Draws":
        return Draws(**{f.name: None if (v := getattr(self, f.name)) is None else v.to(device, non_blocking=True)
                        for f in fields(self)})


@dataclass
class MotionReference:
    """What a clip's codes are read against (BCDModel.motion_reference)."""
    offset: torch.Tensor | None          # [B, 1, N*d]: the reference's mean motion feature (model.relative_motion)
    lip_centre: torch.Tensor | None      # [B, 1, 40]: the reference's mean lip points (model.lip_relative)


class SameVideoClips:
    """Draws, for clip indices, a random clip of the same video starting at least `min_gap` frames
    away (min_gap 0: any clip of the video, itself included). A video too short for the gap
    gives its clip itself."""

    def __init__(self, video: np.ndarray, start: np.ndarray | None = None, min_gap: int = 0):
        video = np.asarray(video, np.int64)
        start = np.zeros_like(video) if start is None else np.asarray(start, np.int64)
        order = np.lexsort((start, video))                  # [N] clip indices by video, then start
        grouped_video, grouped_start = video[order], start[order]
        first = np.searchsorted(grouped_video, video)                                      # [N]
        count = np.searchsorted(grouped_video, video, side="right") - first                # [N]
        # The clips too near each clip form one run [near_lo, near_hi) of its video's sorted clips,
        # found on video-major, start-minor keys spaced so that +-min_gap never reaches another video.
        span = int(start.max(initial=0)) + 2 * min_gap + 2
        sorted_key = grouped_video * span + grouped_start
        own = video * span + start
        if min_gap > 0:
            near_lo = np.searchsorted(sorted_key, own - min_gap, side="right")
            near_hi = np.searchsorted(sorted_key, own + min_gap, side="left")
        else:
            near_lo = near_hi = first
        self.order = torch.from_numpy(order)
        self.first = torch.from_numpy(first)
        self.count = torch.from_numpy(count)
        self.near_lo = torch.from_numpy(near_lo - first)                  # offsets within the video
        self.skip = torch.from_numpy(near_hi - near_lo)

    def draw(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        eligible = self.count[index] - self.skip[index]
        u = torch.rand(index.shape, generator=generator)
        offset = (u * eligible).long().clamp(max=(eligible - 1).clamp(min=0))
        # (a clip with nothing eligible keeps offset 0, a valid place, so the gather below stays in
        # bounds for the last video too; torch.where then gives it itself)
        offset = torch.where((offset >= self.near_lo[index]) & (eligible > 0), offset + self.skip[index], offset)
        return torch.where(eligible > 0, self.order[self.first[index] + offset], index)


MOUTH_ROWS, MOUTH_COLUMNS = (0.65, 0.80), (0.38, 0.62)   # of a `data video --crop face` frame (dlib's mouth points)


def mouth_loss_map(size: int, weight: float) -> torch.Tensor | None:
    """[size, size] weights, `weight` times more on the mouth's cells, mean 1; None for weight 1."""
    if weight == 1:
        return None
    cells = torch.ones(size, size)
    (top, bottom), (left, right) = ((math.floor(a * size), math.ceil(b * size)) for a, b in (MOUTH_ROWS, MOUTH_COLUMNS))
    cells[top:bottom, left:right] = weight
    return cells / cells.mean()


class BCDModel(nn.Module):
    def __init__(self, cfg: Config, latent_channels: int, latent_size: int):
        super().__init__()
        m = cfg.model
        self.cfg = cfg
        self.latent_channels, self.latent_size = latent_channels, latent_size
        self.quantizer = GroupQuantizer(m.groups, m.codebook_size, m.group_dim, m.gumbel_alpha, m.gumbel_tau,
                                        m.rate_estimate)
        reads_content = m.content_reader == "encoder"
        self.encoder = MotionContentEncoder(latent_channels, latent_size, m.encoder_width, m.encoder_depth,
                                            m.encoder_heads, m.content_queries if reads_content else 0,
                                            m.content_dim, (m.groups - m.lip_groups) * m.group_dim)
        self.lip_encoder = (LipMotionEncoder(m.encoder_width, 2, m.encoder_heads, m.lip_groups * m.group_dim,
                                             relative=m.lip_relative, openings=m.lip_reads == "openings")
                            if m.lip_groups else None)
        if m.content_reader == "patch_pool":
            self.content_reader = PatchPoolContentReader(latent_channels, latent_size, m.content_width or m.encoder_width,
                                                         2, m.encoder_heads, m.content_queries, m.content_dim)
        elif m.content_reader == "key_frame":
            grid = latent_size // m.patch_size
            if m.content_queries != grid * grid:
                raise MotionbitsError(f"model.content_reader key_frame puts one content token on each of the "
                                      f"denoiser's {grid}x{grid} patches: content_queries must be {grid * grid}, "
                                      f"not {m.content_queries}")
            self.content_reader = KeyFrameContentReader(latent_channels, latent_size, m.content_width or m.encoder_width,
                                                        m.content_queries, m.content_dim, raw=m.draw_change)
            patch_values = latent_channels * self.content_reader.patch ** 2
            if m.draw_change and m.content_dim != patch_values:
                raise MotionbitsError(f"model.draw_change makes the content the key frame's {grid}x{grid} latent "
                                      f"patches of {patch_values} values: content_dim must be {patch_values}, "
                                      f"not {m.content_dim}")
        else:
            self.content_reader = None
        self.denoiser = Denoiser(latent_channels, latent_size, m.patch_size, m.denoiser_width, m.denoiser_depth,
                                 m.denoiser_heads, m.content_dim, self.quantizer.dim, m.temporal_attention,
                                 content_in_place=m.content_reader == "key_frame", content_mlp=m.draw_change)
        self.motion_context = MotionContext(self.quantizer.dim, m.motion_context) if m.motion_context else None
        self.edm = EDM(cfg.diffusion)
        # Face crops put the mouth in one place; there it moves few pixels, so the loss barely pays for it.
        self.register_buffer("loss_map", mouth_loss_map(latent_size, cfg.train.mouth_loss_weight), persistent=False)

    @property
    def window(self) -> int:
        """Frames the encoder reads at once: half a clip when cross-driving, else a whole clip."""
        t = self.cfg.data.frames
        return t // 2 if self.cfg.train.cross_drive else t

    # ---- training -------------------------------------------------------------------------
    def draw(self, num_clips: int, batch_size: int, generator: torch.Generator,
             same_video: SameVideoClips | None = None, clip_weights: torch.Tensor | None = None) -> Draws:
        """Every random draw of one global training step; same_video (train.content_from_video)
        finds the clips of each clip's video; clip_weights [num_clips] (train.person): how often each
        clip is drawn, relative to the others (None: all alike)."""
        cfg = self.cfg
        t_out, c, s = self.window, self.latent_channels, self.latent_size
        t_render = cfg.train.render_frames or t_out
        index = (torch.randint(0, num_clips, (batch_size,), generator=generator) if clip_weights is None
                 else torch.multinomial(clip_weights, batch_size, replacement=True, generator=generator))
        per_clip = cfg.diffusion.noise_levels == "clip"
        sigma = self.edm.sample_sigma((batch_size, 1 if per_clip else t_render), generator).expand(-1, t_render)
        noise = torch.randn((batch_size, t_render, c, s, s), generator=generator)
        uniform = torch.rand((batch_size, t_out, cfg.model.groups, cfg.model.codebook_size), generator=generator)
        draws = Draws(index, sigma.contiguous(), noise, -(-uniform.clamp(1e-10, 1 - 1e-7).log()).log())
        if cfg.train.content_from_video > 0:
            other = torch.rand(batch_size, generator=generator) < cfg.train.content_from_video
            draws.content_index = torch.where(other, same_video.draw(index, generator), index)
        if cfg.train.rebuild_either_half:
            draws.rebuild_first = torch.rand(batch_size, generator=generator) < 0.5
        if cfg.train.augment_content_flip:
            draws.content_flip = torch.rand(batch_size, generator=generator) < 0.5
        if cfg.train.augment_motion_colors:
            draws.motion_channels = torch.argsort(torch.rand(batch_size, c, generator=generator), dim=1)
        if cfg.train.augment_clip_colors:
            draws.colour_copy = torch.randint(0, cfg.train.augment_clip_colors + 1, (batch_size,), generator=generator)
        if cfg.train.render_frames:
            draws.frame_pick = torch.argsort(torch.rand(batch_size, t_out, generator=generator),
                                             dim=1)[:, :t_render].sort(dim=1).values
        return draws

    def forward(self, z: torch.Tensor, draws: Draws, lips: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The training loss of clips z [B, T, C, h, w] under `draws` (the same B clips); lips
        [B, T, 40]: the frames' aligned lip points (model.lip_groups)."""
        content, motion, target = self.split_clip(z, draws, lips)
        q = self.quantizer(motion, draws.gumbel)        # the rate is measured on every rebuilt frame
        quantized = q.quantized                                                  # [B, T', Cm]
        if self.motion_context is not None:                                      # one window: T' = window
            quantized = self.motion_context(quantized)
        if draws.frame_pick is not None:
            pick = draws.frame_pick
            quantized = quantized.gather(1, pick[..., None].expand(-1, -1, quantized.shape[-1]))        # [B, R, Cm]
            target = target.gather(1, pick.view(*pick.shape, 1, 1, 1).expand(-1, -1, *target.shape[2:]))
        per_frame = self.edm.loss(lambda x, c_noise: self.denoiser(x, c_noise, quantized, content),
                                  self.drawn(target, content), draws.sigma, draws.noise, self.loss_map)  # [B, R]
        diffusion_loss = per_frame.mean()
        lam = self.cfg.train.bitrate_lambda
        if self.lip_encoder is None:
            rate_loss = lam * (q.rate_bits - self.cfg.train.target_bits) ** 2
        else:  # the lip groups (the last ones) have a rate target of their own
            lip_bits = information_bits(self.quantizer.logits(motion)[:, :, -self.cfg.model.lip_groups:])
            rate_loss = (lam * (q.rate_bits - lip_bits - self.cfg.train.target_bits) ** 2
                         + lam * (lip_bits - self.cfg.train.lip_bits) ** 2)
        extra = {} if self.lip_encoder is None else {"lip_bits": lip_bits.detach()}
        return {**extra, "loss": diffusion_loss + rate_loss, "diffusion_loss": diffusion_loss.detach(),
                "rate_loss": rate_loss.detach(), "rate_bits": q.rate_bits.detach(),
                "information_bits": q.information_bits.detach(), "marginal_bits": q.marginal_bits.detach(),
                "code_entropy_bits": q.code_entropy_bits, "static_code_bits": q.static_code_bits}

    def split_clip(self, z: torch.Tensor, draws: Draws,
                   lips: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z [B, T, ...] -> content [B, K, Cc], motion [B, T', N*d], target [B, T', ...].

        The augmentations change only the encoders' inputs, never the target: a mirrored content
        cannot tell left from right (the direction must come through the codes), and permuted
        colour channels in the motion frames keep the colours out of the codes."""
        if (lips is None) != (self.lip_encoder is None):
            raise MotionbitsError("model.lip_groups: the training loss needs the clips' lip points"
                                  if lips is None else "lip points given to a model without model.lip_groups")
        half = self.window
        content_in = reference_in = z[:, :half]                                  # [B, T', C, h, w]
        motion_in = target = z[:, z.shape[1] - half:]        # the second half (cross-driving), else the clip
        lips_reference = lips_motion = None
        if lips is not None:                                                     # [B, T', 40] each
            lips_reference, lips_motion = lips[:, :half], lips[:, lips.shape[1] - half:]
        if draws.rebuild_first is not None:  # the halves trade places: every frame's pose gets rebuilt
            swap = draws.rebuild_first[:, None, None, None, None]
            content_in, target = torch.where(swap, target, content_in), torch.where(swap, content_in, target)
            reference_in, motion_in = content_in, target  # (no relative motion here: config.py)
            if lips is not None:
                swap = draws.rebuild_first[:, None, None]
                lips_reference, lips_motion = (torch.where(swap, lips_motion, lips_reference),
                                               torch.where(swap, lips_reference, lips_motion))
        if draws.content_flip is not None:
            content_in = torch.where(draws.content_flip[:, None, None, None, None], content_in.flip(-1), content_in)
        if draws.motion_channels is not None:  # the reference is read like the motion frames
            motion_in, reference_in = (_permute_channels(x, draws.motion_channels) for x in (motion_in, reference_in))
        relative = self.cfg.model.relative_motion
        # One encoder call for every read, stacked along the batch; without augmentations the
        # relative reference is the content half itself, and one read gives both.
        inputs = [motion_in] + ([reference_in] if relative else [])
        if self.content_reader is None and not (relative and reference_in is content_in):
            inputs.append(content_in)
        content, motion = self.encoder(torch.cat(inputs, dim=0))
        if lips is not None:  # (the encoder reads no content then: config.py, so the reads line up)
            if self.cfg.model.lip_relative:   # their change from the reference
                centre = lips_reference.nanmean(dim=1, keepdim=True)                # [B, 1, 40]
                lips_motion, lips_reference = lips_motion - centre, lips_reference - centre
            lip_reads = torch.cat([lips_motion] + ([lips_reference] if relative else []), dim=0)
            motion = torch.cat([motion, self.lip_encoder(lip_reads)], dim=-1)      # [nB, T', N*d]
        b = z.shape[0]
        motion = motion[:b] - motion[b:2 * b].mean(dim=1, keepdim=True) if relative else motion[:b]   # [B, T', N*d]
        content = self.content_reader(content_in) if self.content_reader is not None else content[-b:]
        return content, motion, target

    def key_frame(self, content: torch.Tensor) -> torch.Tensor | None:
        """model.draw_change: the key frame's latent [B, 1, C, h, w] that what the denoiser draws is
        the change from; None without the setting."""
        return self.content_reader.key_latent(content)[:, None] if self.cfg.model.draw_change else None

    def drawn(self, frames: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """What the denoiser draws for latents frames [B, T, C, h, w]: the frames, or with
        model.draw_change their change from the content's key frame."""
        key = self.key_frame(content)
        return frames if key is None else frames - key.to(frames.dtype)

    # ---- inference ------------------------------------------------------------------------
    @torch.no_grad()
    def encode_content(self, z: torch.Tensor) -> torch.Tensor:
        """Content from the first `window` frames of z [B, T, ...] -> [B, K, Cc]."""
        if self.content_reader is not None:
            return self.content_reader(z[:, : self.window])
        content, _ = self.encoder(z[:, : self.window])
        return content

    def read_motion(self, z: torch.Tensor, lips: torch.Tensor | None = None) -> torch.Tensor:
        """Motion features [B, T, N*d] of frames z [B, T, ...] (and their aligned lip points
        [B, T, 40] for the lip code groups, model.lip_groups)."""
        motion = self.encoder(z)[1]
        if self.lip_encoder is None:
            return motion
        if lips is None:
            raise MotionbitsError("this model reads the motion of the lips too (model.lip_groups): "
                                  "give the frames' lip points (BCDModel.lips_of_frames)")
        return torch.cat([motion, self.lip_encoder(lips)], dim=-1)

    @torch.no_grad()
    def motion_logits(self, z: torch.Tensor, reference: torch.Tensor | None = None, lips: torch.Tensor | None = None,
                      reference_lips: torch.Tensor | None = None) -> torch.Tensor:
        """Code logits [B, T, N, K_e] of every frame of z [B, T, ...], read in consecutive windows of
        the training length (the last window is shifted back to stay full). With
        model.relative_motion every window is read against `reference` [B, T_r, ...] (default: z's
        own first window), so the codes say how z moved since then. lips, reference_lips
        [B, T, 40]: those frames' aligned lip points, for model.lip_groups (lips_of_frames)."""
        t, w = z.shape[1], self.window
        against = self.motion_reference(z, lips) if reference is None else self.motion_reference(reference, reference_lips)
        logits = []
        for begin, new in encoder_windows(t, w):
            window_lips = None if lips is None else lips[:, begin: begin + w]
            logits.append(self.window_logits(z[:, begin: begin + w], window_lips, against)[:, new:])
        return torch.cat(logits, dim=1)

    @torch.no_grad()
    def motion_reference(self, reference: torch.Tensor, reference_lips: torch.Tensor | None = None) -> MotionReference:
        """What every window's codes are read against, from the first window of `reference` [B, T, ...]
        (and its lip points [B, T, 40]): the lips' mean shape (model.lip_relative) and the mean
        motion feature (model.relative_motion); neither for a model with neither."""
        w, m = self.window, self.cfg.model
        centre = None
        if reference_lips is not None and m.lip_relative:
            centre = reference_lips[:, :w].nanmean(dim=1, keepdim=True)                      # [B, 1, 40]
        offset = None
        if m.relative_motion:
            lips = None if reference_lips is None else reference_lips[:, :w] - (0.0 if centre is None else centre)
            offset = self.read_motion(reference[:, :w], lips).mean(dim=1, keepdim=True)     # [B, 1, N*d]
        return MotionReference(offset, centre)

    @torch.no_grad()
    def window_logits(self, z: torch.Tensor, lips: torch.Tensor | None, against: MotionReference) -> torch.Tensor:
        """Code logits [B, W, N, K_e] of one window z [B, W, ...] (and its lips [B, W, 40]) read against
        a motion_reference."""
        if lips is not None and against.lip_centre is not None:
            lips = lips - against.lip_centre
        motion = self.read_motion(z, lips)
        return self.quantizer.logits(motion if against.offset is None else motion - against.offset)

    @torch.no_grad()
    def encode_motion(self, z: torch.Tensor, reference: torch.Tensor | None = None, lips: torch.Tensor | None = None,
                      reference_lips: torch.Tensor | None = None) -> torch.Tensor:
        """Motion codes [B, T, N] of every frame of z (see motion_logits)."""
        return self.motion_logits(z, reference, lips, reference_lips).argmax(-1)

    def lips_of_frames(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor | None:
        """uint8 frames [B, T, H, W, 3] -> their aligned lip points [B, T, 40] for the lip code
        groups (dlib, lip_points.py), None for a model without them."""
        if not self.cfg.model.lip_groups:
            return None
        return torch.from_numpy(lip_shapes(np.asarray(frames))).float()

    @torch.no_grad()
    def motion_condition(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T, N] -> what conditions the denoiser [B, T, Cm]: the codes' vectors, with
        model.motion_context read in the encoder's windows (as motion_logits cuts them)."""
        motion = self.quantizer.lookup(codes)
        if self.motion_context is None:
            return motion
        w = self.window
        return torch.cat([self.motion_context(motion[:, begin: begin + w])[:, new:]
                          for begin, new in encoder_windows(motion.shape[1], w)], dim=1)

    @torch.no_grad()
    def render(self, content: torch.Tensor, codes: torch.Tensor, noise: torch.Tensor,
               steps: int | None = None, sampler: str | None = None) -> torch.Tensor:
        """content [B, K, Cc], codes [B, T, N], noise [B, T, C, h, w] -> latents [B, T, C, h, w]."""
        return self.render_condition(content, self.motion_condition(codes), noise, steps, sampler)

    @torch.no_grad()
    def render_condition(self, content: torch.Tensor, motion: torch.Tensor, noise: torch.Tensor,
                         steps: int | None = None, sampler: str | None = None) -> torch.Tensor:
        """render() from motion_condition's output [B, T, Cm], so a long clip renders in spans of frames."""
        drawn = self.edm.sample(lambda x, c: self.denoiser(x, c, motion, content), noise, steps, sampler)
        key = self.key_frame(content)                                        # draw_change: the change, plus it
        return drawn if key is None else drawn + key.to(drawn.dtype)


def encoder_windows(frames: int, window: int) -> list[tuple[int, int]]:
    """(first frame, frames of it not in an earlier window) of each window the encoder reads a clip
    of `frames` in: consecutive windows, the last shifted back to stay full."""
    out, start = [], 0
    while start < frames:
        begin = min(start, max(frames - window, 0))
        out.append((begin, start - begin))
        start = begin + window
    return out


def _permute_channels(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """x [B, T, C, h, w], order [B, C] -> each clip's channels in its own order."""
    return x.gather(2, order[:, None, :, None, None].expand(-1, x.shape[1], -1, *x.shape[-2:]))
