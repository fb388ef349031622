"""Bitrate-Controlled Diffusion: encoder + group quantizer + denoiser, and the training loss.

Everything here works on tokenizer latents z [B, T, C, h, w]; the tokenizer (pixels, an
autoencoder, taef2, a diffusers VAE) sits outside, frozen (see motionbits.pipeline).

One training batch, cross-driving on (the paper's trick):
    z [B, T]  ──► first half z[:, :T/2] ──encoder──► content c [B, K, Cc]
              └─► second half z[:, T/2:] ──encoder──► motion m [B, T/2, N*d] ──quantizer──► m̂
    loss = EDM loss of denoising z[:, T/2:] given (c, m̂)  +  lambda * (H(m̂) - H_target)^2
Content never sees the frames it must rebuild, so it cannot smuggle their motion through.
Optionally (train.swap_consistency) part of the batch is also rendered with another clip's codes,
and the render must re-encode to those codes (BCDModel.swap_consistency).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from motionbits.augment import recolor
from motionbits.config import Config
from motionbits.diffusion import EDM
from motionbits.errors import MotionbitsError
from motionbits.models.denoiser import Denoiser
from motionbits.models.identity_adversary import IdentityAdversary
from motionbits.models.encoder import MotionContentEncoder, PatchPoolContentReader, PatchSetContentReader
from motionbits.models.quantizer import GroupQuantizer


class BCDModel(nn.Module):
    def __init__(self, cfg: Config, latent_channels: int, latent_size: int, identities: int = 0):
        """identities: how many identities the training data has (train.identity_adversary only)."""
        super().__init__()
        m = cfg.model
        self.cfg = cfg
        self.latent_channels, self.latent_size = latent_channels, latent_size
        self.quantizer = GroupQuantizer(m.groups, m.codebook_size, m.group_dim, m.gumbel_alpha,
                                        m.gumbel_tau, m.dead_code_threshold, rate_estimate=m.rate_estimate)
        self.encoder = MotionContentEncoder(latent_channels, latent_size, m.encoder_width, m.encoder_depth,
                                            m.encoder_heads, m.content_queries if m.content_reader == "encoder" else 0,
                                            m.content_dim, self.quantizer.dim, m.center_motion)
        self.denoiser = Denoiser(latent_channels, latent_size, m.patch_size, m.denoiser_width,
                                 m.denoiser_depth, m.denoiser_heads, m.content_dim, self.quantizer.dim,
                                 m.mlp_ratio, m.temporal_attention, m.content_adaln)
        self.edm = EDM(cfg.diffusion)
        reader_args = (latent_channels, latent_size, m.content_width or m.encoder_width, 2, m.encoder_heads,
                       m.content_queries, m.content_dim, m.content_patch or None)
        self.content_reader = None  # "encoder": the encoder's queries read the content
        if m.content_reader == "patch_set":
            self.content_reader = PatchSetContentReader(*reader_args)
        elif m.content_reader == "patch_pool":
            self.content_reader = PatchPoolContentReader(*reader_args, rows=m.content_rows)
        # The "no content" the denoiser sees for dropped clips, and the other half of guidance.
        self.null_content = (nn.Parameter(torch.zeros(1, m.content_queries, m.content_dim))
                             if m.content_dropout > 0 else None)
        if cfg.train.identity_adversary > 0 and identities < 2:
            raise MotionbitsError("train.identity_adversary needs training clips of at least 2 identities "
                                  "(a video dataset: identity folders or --identity-regex)")
        self.identity_adversary = (IdentityAdversary(self.quantizer.dim, identities)
                                   if cfg.train.identity_adversary > 0 else None)

    @property
    def window(self) -> int:
        """Frames the encoder reads at once: half a clip when cross-driving, else a whole clip."""
        t = self.cfg.data.frames
        return t // 2 if self.cfg.train.cross_drive else t

    def read_content(self, content_in: torch.Tensor) -> torch.Tensor:
        """The patch-set reader on the first model.content_frames frames (all when 0) -> [B, K, Cc]."""
        frames = self.cfg.model.content_frames or content_in.shape[1]
        return self.content_reader(content_in[:, :frames])

    # ---- training -------------------------------------------------------------------------
    def split_clip(self, z: torch.Tensor, content_flip: torch.Tensor | None = None,
                   motion_channels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z [B, T, ...] -> content [B, K, Cc], motion [B, T', N*d], target [B, T', ...].

        Optional training augmentations of the encoder inputs only (the target is never changed),
        in the spirit of C-DSVAE's content/motion augmentations:
        content_flip [B] bool mirrors the content frames, so the content cannot tell left from right
        and the direction of motion must come through the motion codes; motion_channels [B, C] is a
        per-clip channel permutation of the motion frames, so the codes cannot carry colours and the
        appearance must come through the content."""
        half = z.shape[1] // 2 if self.cfg.train.cross_drive else z.shape[1]
        content_in = z[:, :half]
        motion_in = target = z[:, z.shape[1] - half:]
        if content_flip is not None:
            content_in = torch.where(content_flip[:, None, None, None, None], content_in.flip(-1), content_in)
        if motion_channels is not None:
            index = motion_channels[:, None, :, None, None].expand(-1, motion_in.shape[1], -1, *motion_in.shape[-2:])
            motion_in = motion_in.gather(2, index)
        if (not self.cfg.train.cross_drive and content_flip is None and motion_channels is None
                and self.content_reader is None):
            content, motion = self.encoder(z)
            return content, motion, z
        if self.cfg.model.relative_motion:
            return self._split_relative(z[:, :half], content_in, motion_in, motion_channels, target,
                                        augmented=content_flip is not None or motion_channels is not None)
        if self.content_reader is not None:
            _, motion = self.encoder(motion_in)
            return self.read_content(content_in), motion, target
        # One encoder call for both inputs: stack them along the batch.
        content, motion = self.encoder(torch.cat([content_in, motion_in], dim=0))
        b = z.shape[0]
        return content[:b], motion[b:], target

    def _split_relative(self, reference_in: torch.Tensor, content_in: torch.Tensor, motion_in: torch.Tensor,
                        motion_channels: torch.Tensor | None, target: torch.Tensor, augmented: bool
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """model.relative_motion: motion features minus the mean feature of the content half, read
        unflipped and with the motion half's channel permutation (so the difference holds neither)."""
        if motion_channels is not None:
            index = motion_channels[:, None, :, None, None].expand(-1, reference_in.shape[1], -1, *reference_in.shape[-2:])
            reference_in = reference_in.gather(2, index)
        # Without augmentations the reference is the content half itself: one read serves both.
        same = not augmented
        inputs = [motion_in, reference_in] if same or self.content_reader is not None else [motion_in, reference_in, content_in]
        content, motion = self.encoder(torch.cat(inputs, dim=0))   # one call, halves stacked along the batch
        b = motion_in.shape[0]
        relative = motion[:b] - motion[b:2 * b].mean(dim=1, keepdim=True)       # [B, T', N*d]
        if self.content_reader is not None:
            return self.read_content(content_in), relative, target
        return content[b:2 * b] if same else content[2 * b:], relative, target

    def forward(self, z: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor,
                gumbel: torch.Tensor | None = None, content_flip: torch.Tensor | None = None,
                motion_channels: torch.Tensor | None = None, frame_pick: torch.Tensor | None = None,
                content_drop: torch.Tensor | None = None, swap_noise: torch.Tensor | None = None,
                clip_colors: torch.Tensor | None = None, identity: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """The training loss. z [B,T,C,h,w]; gumbel [B,T',N,K_e] (T' = frames rebuilt), the
        augmentation draws, frame_pick [B,R] (the rebuilt frames the loss renders; None: all, R = T'),
        content_drop [B] bool (clips rendered from the null content), sigma [B,R], noise [B,R,C,h,w],
        swap_noise [B,T',C,h,w] (train.swap_consistency) and clip_colors [B,3,3] (whole-clip
        recolouring, target included: motionbits.augment) come from the caller so runs are
        reproducible; identity [B] (the clips' identities) feeds train.identity_adversary."""
        if clip_colors is not None:
            z = recolor(z, clip_colors)
        content, motion, target = self.split_clip(z, content_flip, motion_channels)
        if content_drop is not None:
            content = torch.where(content_drop[:, None, None], self.null_content.to(content.dtype), content)
        q = self.quantizer(motion, gumbel)          # the rate is measured on every frame
        quantized = q.quantized
        if frame_pick is not None:
            quantized = quantized.gather(1, frame_pick[..., None].expand(-1, -1, quantized.shape[-1]))    # [B, R, Cm]
            target = target.gather(1, frame_pick.view(*frame_pick.shape, 1, 1, 1).expand(-1, -1, *target.shape[2:]))
        per_frame = self.edm.loss(lambda x, c_noise: self.denoiser(x, c_noise, quantized, content),
                                  target, sigma, noise)
        diffusion_loss = per_frame.mean()
        rate_loss = self.cfg.train.bitrate_lambda * (q.rate_bits - self.cfg.train.target_bits) ** 2
        out = {"loss": diffusion_loss + rate_loss, "diffusion_loss": diffusion_loss, "rate_loss": rate_loss,
               "bits_per_frame": q.rate_bits.detach(), "marginal_bits": q.entropy_bits.detach()}
        t = self.cfg.train
        if self.identity_adversary is not None and identity is not None:
            adversary_loss, adversary_accuracy = self.identity_adversary(q.quantized, identity, t.identity_adversary)
            out["loss"] = out["loss"] + adversary_loss
            out.update(adversary_loss=adversary_loss.detach(), adversary_accuracy=adversary_accuracy)
        if t.swap_consistency > 0 and swap_noise is not None:
            n = max(2, round(z.shape[0] * t.swap_fraction))
            swap_loss, agreement = self.swap_consistency(content[:n], motion[:n], swap_noise[:n])
            out["loss"] = out["loss"] + t.swap_consistency * swap_loss
            out.update(swap_loss=swap_loss.detach(), swap_agreement=agreement)
        return out

    def swap_consistency(self, content: torch.Tensor, motion: torch.Tensor,
                         noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Motion-swap consistency: clip i's content rendered with clip i-1's motion codes must
        re-encode to those codes. Plain reconstruction never shows the denoiser a content and codes
        from different clips, so when the content also knows the motion (Sprites: the action can be
        read off a bag of patches) it may follow the content, and a transfer then keeps the content
        clip's motion. This term trains on exactly those mismatched pairs. The render is one denoiser
        call from pure noise at sigma_max (the 1-step sampler); the encoder and codebook are held
        fixed here, so the codes stay what reconstruction made them and only the denoiser (and the
        content path) learn from it. Measured on a leaky CPU recipe (README): the motion moved into
        the codes (36.5 -> 86 %) but the look was lost (66 -> 34 %); a content half that made the
        render re-read as its own content wrecked training and was removed.

        content [S, K, Cc], motion [S, T', N*d] (encoder outputs of the clips' motion frames),
        noise [S, T', C, h, w] -> (cross-entropy of the re-encoded codes, their agreement)."""
        with torch.no_grad():
            codes = self.quantizer.logits(motion).argmax(-1).roll(1, dims=0)    # [S, T', N]: clip i-1's
        driving = self.quantizer.lookup(codes).detach()                          # [S, T', N*d]
        sigma_max = self.cfg.diffusion.sigma_max
        sigma = noise.new_full(noise.shape[:2], sigma_max)                       # [S, T']
        rendered = self.edm.denoise(lambda x, c: self.denoiser(x, c, driving, content), noise * sigma_max, sigma)
        frozen = {name: p.detach() for name, p in self.encoder.named_parameters()}
        _, motion_again = functional_call(self.encoder, frozen, (rendered,))
        logits = self.quantizer.logits(motion_again, self.quantizer.codebook.detach())  # [S, T', N, K_e]
        loss = F.cross_entropy(logits.flatten(0, 2), codes.flatten())
        agreement = (logits.argmax(-1) == codes).float().mean()
        return loss, agreement

    def rebuilt_frames(self, frames: int) -> int:
        return frames // 2 if self.cfg.train.cross_drive else frames

    # ---- inference ------------------------------------------------------------------------
    @torch.no_grad()
    def encode_content(self, z: torch.Tensor) -> torch.Tensor:
        """Content from the first `window` frames of z [B, T, ...] -> [B, K, Cc]."""
        if self.content_reader is not None:
            return self.read_content(z[:, : self.window])
        content, _ = self.encoder(z[:, : self.window])
        return content

    @torch.no_grad()
    def encode_motion(self, z: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """Motion codes of every frame of z [B, T, ...] -> [B, T, N], read in consecutive windows
        of the training length (the last window is shifted back to stay full). With
        model.relative_motion every window is read relative to `reference` [B, T_r, ...] (default:
        z's own first window), so the codes say how z moved since then."""
        t, w = z.shape[1], self.window
        offset = 0.0
        if self.cfg.model.relative_motion:
            reference = z[:, :w] if reference is None else reference[:, :w]
            offset = self.encoder(reference)[1].mean(dim=1, keepdim=True)          # [B, 1, N*d]
        codes = []
        start = 0
        while start < t:
            begin = min(start, max(t - w, 0))
            _, motion = self.encoder(z[:, begin: begin + w])
            logits = self.quantizer.logits(motion - offset)
            codes.append(logits.argmax(-1)[:, start - begin:])
            start = begin + w
        return torch.cat(codes, dim=1)

    @torch.no_grad()
    def render(self, content: torch.Tensor, codes: torch.Tensor, noise: torch.Tensor,
               steps: int | None = None, sampler: str | None = None) -> torch.Tensor:
        """content [B, K, Cc], codes [B, T, N], noise [B, T, C, h, w] -> latents [B, T, C, h, w]."""
        motion = self.quantizer.lookup(codes)
        w = self.cfg.diffusion.guidance
        if w == 1:
            return self.edm.sample(lambda x, c: self.denoiser(x, c, motion, content), noise, steps, sampler)
        if self.null_content is None:
            raise MotionbitsError(f"diffusion.guidance={w} needs a model trained with model.content_dropout > 0")
        # One denoiser call on [with content; null content]; EDM's D is affine in the network
        # output F, so guiding F guides D.
        both = torch.cat([content, self.null_content.expand_as(content)])

        def guided(x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
            out = self.denoiser(x.repeat(2, 1, 1, 1, 1), c_noise.repeat(2, 1), motion.repeat(2, 1, 1), both)
            with_content, without = out.chunk(2)
            return without + w * (with_content - without)

        return self.edm.sample(guided, noise, steps, sampler)
