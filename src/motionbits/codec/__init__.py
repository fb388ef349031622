"""The motion bitstream: `motionbits encode` / `decode`, a clip as content + entropy-coded codes.

    clip ──MotionBits──► content [K, Cc] (float16) + codes [T, N]
    content ──quantised, range-coded to a byte budget (or float16)──► content section (codec/content.py)
    codes ──range coder under the prior (or adaptive / static tables)──► motion stream   (codec/entropy.py)
    header, content packet, a motion packet per window, end ──► clip.mbits             (codec/format.py)
    clip.mbits ──► the same content values and codes ──MotionBits.render──► frames  (codec/stream.py:
    both ends also work window by window, with a look-ahead of window - 1 frames)

The motion is coded under the content the decoder will have (the dequantised values), so encoder
and decoder condition the prior on the same numbers. With float16 content a decoded file gives
exactly the frames `motionbits reconstruct` gives for the clip (same model, seed 0, the model's
sampler); the compact content gives the frames of its quantised content (its cost: docs/bitstream.md).
"""
from __future__ import annotations

import numpy as np

from motionbits.codec import content as content_coding
from motionbits.codec.entropy import frame_bits
from motionbits.codec.format import FIELD_RANGES, MAX_ENTRIES, MAX_FRAMES, Header, MbitsFile, unpack
from motionbits.errors import MotionbitsError

__all__ = ["encode_clip", "decode_file", "read_file", "content_values", "motion_bits_per_frame", "MbitsFile",
           "StreamEncoder", "StreamDecoder"]


def check_codable(cfg, where: str = "this model") -> None:
    """A model whose codes the bitstream can carry: at most MAX_ENTRIES entries per group, and
    sizes its header fields hold."""
    if cfg.model.codebook_size > MAX_ENTRIES:
        raise MotionbitsError(f"{where}: model.codebook_size = {cfg.model.codebook_size}, above {MAX_ENTRIES}, the most "
                              "entries per group the bitstream codes (docs/bitstream.md)")
    for name, value in (("size", cfg.data.image_size), ("groups", cfg.model.groups),
                        ("content_tokens", cfg.model.content_queries), ("content_dim", cfg.model.content_dim)):
        least, most = FIELD_RANGES[name]
        if not least <= value <= most:
            raise MotionbitsError(f"{where}: its {name} {value} is outside {least}..{most}, what the bitstream holds")


def encode_clip(pipe, frames, prior=None, fps: float | None = None, checkpoint_hint: str = "",
                prior_hint: str = "", content: str = content_coding.COMPACT, content_bytes: int | None = None,
                tables: str = "adaptive") -> MbitsFile:
    """uint8 frames [T, H, W, 3] of one clip at `fps` frames per second (None: frame_rate.UNTIMED_FPS)
    -> its .mbits contents (`pack` gives the bytes), coded as a stream would be (codec/stream.py).
    content: "compact" (quantised to fit `content_bytes`, default content.default_budget) or
    "float16"; tables: "adaptive" or "static", for the motion without a prior. checkpoint_hint /
    prior_hint are ignored: a file names its models by fingerprint only."""
    import torch

    from motionbits.codec.stream import StreamEncoder

    encoder = StreamEncoder(pipe, prior, fps, content, content_bytes, tables)
    clip = torch.as_tensor(np.asarray(frames))
    if clip.ndim != 4:
        raise MotionbitsError(f"encode takes one clip of frames [T, H, W, 3], got shape {tuple(clip.shape)}")
    if clip.shape[0] < pipe.model.window:
        raise MotionbitsError(f"the clip has {clip.shape[0]} frames, fewer than the model's window of "
                              f"{pipe.model.window}: nothing to read its motion from")
    if clip.shape[0] > MAX_FRAMES:
        raise MotionbitsError(f"the clip has {clip.shape[0]} frames, more than a bitstream holds ({MAX_FRAMES}): "
                              "--frames N encodes its start")
    encoder.feed_latents(pipe.to_latents(clip[None]))     # the whole clip's latents at once, as reconstruct reads them
    encoder.finish()
    return MbitsFile(encoder.header, encoder.section, encoder.motion)


def read_file(data: bytes, where: str) -> MbitsFile:
    return unpack(data, where)


def check_models(h: Header, pipe, prior, where: str) -> None:
    """`pipe` (and `prior`) are the ones the header names; one line otherwise."""
    from motionbits.codec.format import header_problem

    problem = header_problem(h)   # a header built in Python rather than read
    if problem:
        raise MotionbitsError(f"{where}: corrupt bitstream ({problem})")
    if h.model_fingerprint != pipe.fingerprint():
        raise MotionbitsError(f"{where}: made by model {h.model_fingerprint.hex()}, but "
                              f"{getattr(pipe, 'source', 'the given model')} is model {pipe.fingerprint().hex()}")
    if h.uses_prior and prior is None:
        raise MotionbitsError(f"{where}: its motion was coded under a motion prior: pass that prior (--prior PRIOR)")
    if h.uses_prior and h.prior_fingerprint != prior_fingerprint(prior):
        raise MotionbitsError(f"{where}: coded under motion prior {h.prior_fingerprint.hex()}, but the prior given "
                              f"is {prior_fingerprint(prior).hex()}")
    # The fingerprint covers the config, so only a forged header (with a valid CRC) differs here.
    m = pipe.cfg.model
    ours = (pipe.cfg.data.image_size, m.groups, m.codebook_size, m.content_queries, m.content_dim, pipe.model.window)
    theirs = (h.size, h.groups, h.codebook_size, h.content_tokens, h.content_dim, h.window)
    if theirs != ours:
        raise MotionbitsError(f"{where}: corrupt bitstream (its header says {h.size}px frames, {h.groups} groups of "
                              f"{h.codebook_size} entries, content {theirs[3]} x {theirs[4]}, windows of {h.window}; "
                              f"its model has {ours[0]}px, {ours[1]} of {ours[2]}, {ours[3]} x {ours[4]}, {ours[5]})")


def decode_file(f: MbitsFile, pipe, prior=None, where: str = "bitstream") -> tuple["torch.Tensor", "torch.Tensor"]:
    """-> (content [1, K, Cc], codes [1, T, N]) for pipe.render, after checking that `pipe` (and
    `prior`) are the ones the file was made with: the stream decoder, without rendering."""
    import torch

    from motionbits.codec.format import pack
    from motionbits.codec.stream import StreamDecoder

    check_models(f.header, pipe, prior, where)
    decoder = StreamDecoder(pipe, prior, where, render=False)
    decoder.feed(pack(f))
    decoder.finish()
    return decoder.content, torch.from_numpy(decoder.codes)[None]


def section_values(section: bytes, h: Header, where: str = "bitstream") -> np.ndarray:
    """A content section as the decoder renders it: float32 [K, Cc]."""
    if h.content_coding == content_coding.FLOAT16:
        return content_coding.float16_values(section, h.content_tokens, h.content_dim)
    try:
        return content_coding.decode_content(section, h.content_tokens, h.content_dim)
    except (ValueError, RuntimeError) as err:
        raise MotionbitsError(f"{where}: corrupt content section ({err})") from None


def content_values(f: MbitsFile, where: str = "bitstream") -> np.ndarray:
    """The file's content as the decoder renders it: float32 [K, Cc]."""
    return section_values(f.content, f.header, where)


def motion_bits_per_frame(pipe, content, codes, prior=None, adaptive: bool = True) -> np.ndarray:
    """Bits each frame's codes [T, N] cost in the motion stream (under `prior`, else the adaptive or
    the static tables), given the clip's content [1, K, Cc]: float64 [T], summing to about 8 x the
    stream's bytes."""
    from motionbits.codec.stream import code_model

    return frame_bits(codes, code_model(pipe, prior, content, adaptive))


def prior_fingerprint(prior) -> bytes:
    if prior is None:
        return bytes(8)
    from motionbits.api import weights_fingerprint

    return weights_fingerprint(prior.state_dict(), prior.cfg.to_dict())


def __getattr__(name: str):
    if name in ("StreamEncoder", "StreamDecoder"):     # lazily: codec/stream.py imports this module
        from motionbits.codec import stream

        return getattr(stream, name)
    raise AttributeError(name)
