"""The motion bitstream: `motionbits encode` / `decode`, a clip as content + entropy-coded codes.

    clip ──MotionBits──► content [K, Cc] (float16, sent once) + codes [T, N]
    codes ──range coder under the prior (or the static tables)──► motion stream   (codec/entropy.py)
    header + content + motion stream ──► clip.mbits                               (codec/format.py)
    clip.mbits ──► the same content and codes ──MotionBits.render──► frames

A decoded file gives exactly the frames `motionbits reconstruct` gives for the clip (same model,
seed 0, the model's sampler), because both render the same float16 content and the same codes.
"""
from __future__ import annotations

import numpy as np
import torch

from motionbits.codec.entropy import PriorModel, StaticModel, decode_codes, encode_codes, frame_bits
from motionbits.codec.format import Header, MbitsFile, codes_crc, pack, unpack
from motionbits.errors import MotionbitsError

__all__ = ["encode_clip", "decode_file", "read_file", "motion_bits_per_frame", "MbitsFile"]


def _code_model(pipe, prior, content: torch.Tensor):
    return PriorModel(prior, content) if prior is not None else StaticModel.of(pipe.model.quantizer)


def encode_clip(pipe, frames, prior=None, fps: float | None = None, checkpoint_hint: str = "",
                prior_hint: str = "") -> MbitsFile:
    """uint8 frames [T, H, W, 3] of one clip -> its .mbits contents (`pack` gives the bytes)."""
    clip = torch.as_tensor(np.asarray(frames))
    if clip.ndim != 4:
        raise MotionbitsError(f"encode takes one clip of frames [T, H, W, 3], got shape {tuple(clip.shape)}")
    if clip.shape[0] < pipe.model.window:
        raise MotionbitsError(f"the clip has {clip.shape[0]} frames, fewer than the model's window of "
                              f"{pipe.model.window}: nothing to read its motion from")
    z = pipe.to_latents(clip[None])
    content = pipe.content_of_latents(z)[0].cpu()                                   # [K, Cc], float16 values
    codes = pipe.motion_of_latents(z)[0].cpu().numpy()                              # [T, N]
    motion = encode_codes(codes, _code_model(pipe, prior, content[None]))
    header = Header(prior is not None, pipe.fingerprint(), prior_fingerprint(prior), codes.shape[0], float(fps or 0),
                    pipe.cfg.data.image_size, codes.shape[1], pipe.cfg.model.codebook_size, content.shape[0],
                    content.shape[1], codes_crc(codes), checkpoint_hint, prior_hint)
    return MbitsFile(header, content.numpy().astype(np.float16), motion)


def read_file(data: bytes, where: str) -> MbitsFile:
    return unpack(data, where)


def decode_file(f: MbitsFile, pipe, prior=None, where: str = "bitstream") -> tuple[torch.Tensor, torch.Tensor]:
    """-> (content [1, K, Cc], codes [1, T, N]) for pipe.render, after checking that `pipe` (and
    `prior`) are the ones the file was made with."""
    h = f.header
    if h.model_fingerprint != pipe.fingerprint():
        raise MotionbitsError(f"{where}: made with another checkpoint than {getattr(pipe, 'source', 'this one')} "
                              "(model fingerprints differ)")
    if h.uses_prior and prior is None:
        raise MotionbitsError(f"{where}: its motion was coded under a motion prior: pass that prior (--prior PRIOR)")
    if h.uses_prior and h.prior_fingerprint != prior_fingerprint(prior):
        raise MotionbitsError(f"{where}: coded under another motion prior than the one given")
    content = torch.from_numpy(f.content.astype(np.float32))[None]
    try:
        codes = decode_codes(f.motion, h.frames, h.groups, _code_model(pipe, prior if h.uses_prior else None, content))
    except (ValueError, RuntimeError) as err:
        raise MotionbitsError(f"{where}: corrupt motion stream ({err})") from None
    if codes_crc(codes) != h.codes_crc:
        raise MotionbitsError(f"{where}: the decoded motion codes fail the file's checksum (a corrupt file, or "
                              "this machine's arithmetic differs from the encoder's)")
    return content, torch.from_numpy(codes)[None]


def motion_bits_per_frame(pipe, content: torch.Tensor, codes: torch.Tensor, prior=None) -> np.ndarray:
    """Bits each frame's codes [T, N] cost in the motion stream (under `prior`, else the static
    tables), given the clip's content [1, K, Cc]: float64 [T], summing to about 8 x the stream's bytes."""
    return frame_bits(codes, _code_model(pipe, prior, content))


def prior_fingerprint(prior) -> bytes:
    if prior is None:
        return bytes(8)
    from motionbits.api import weights_fingerprint

    return weights_fingerprint(prior.state_dict(), prior.cfg.to_dict())
