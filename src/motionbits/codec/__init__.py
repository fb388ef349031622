"""The motion bitstream: `motionbits encode` / `decode`, a clip as content + entropy-coded codes.

    clip ──MotionBits──► content [K, Cc] (float16) + codes [T, N]
    content ──quantised, range-coded to a byte budget (or float16)──► content section (codec/content.py;
              or a key-frame model's key frame as an AV1 picture, codec/key_frame.py)
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
from motionbits.codec.compat import check_codable, check_models, prior_fingerprint, section_values
from motionbits.codec.entropy import frame_bits
from motionbits.codec.format import MAX_FRAMES, MbitsFile, unpack
from motionbits.codec.stream import StreamDecoder, StreamEncoder, code_model
from motionbits.errors import MotionbitsError

__all__ = ["encode_clip", "decode_file", "read_file", "content_values", "motion_bits_per_frame", "MbitsFile",
           "StreamEncoder", "StreamDecoder"]


def encode_clip(pipe, frames, prior=None, fps: float | None = None, checkpoint_hint: str = "",
                prior_hint: str = "", content: str | None = None, content_bytes: int | None = None,
                tables: str = "adaptive", packet_windows: int = 1) -> MbitsFile:
    """uint8 frames [T, H, W, 3] of one clip at `fps` frames per second (None: frame_rate.UNTIMED_FPS)
    -> its .mbits contents (`pack` gives the bytes), coded as a stream would be (codec/stream.py).
    content: "compact" (quantised to fit `content_bytes`, default content.default_budget),
    "float16", or for a model whose content_reader is key_frame "image" (its first frame as an AV1
    picture of at most `content_bytes`, default key_frame.DEFAULT_BUDGET); None:
    content.default_coding. tables: "adaptive" or "static", for the motion without a prior;
    packet_windows: windows per motion packet (a look-ahead of packet_windows x window - 1 frames).
    checkpoint_hint / prior_hint are ignored: a file names its models by fingerprint only."""
    import torch

    encoder = StreamEncoder(pipe, prior, fps, content, content_bytes, tables, packet_windows)
    clip = torch.as_tensor(np.asarray(frames))
    if clip.ndim != 4:
        raise MotionbitsError(f"encode takes one clip of frames [T, H, W, 3], got shape {tuple(clip.shape)}")
    if clip.shape[0] < pipe.model.window:
        raise MotionbitsError(f"the clip has {clip.shape[0]} frames, fewer than the model's window of "
                              f"{pipe.model.window}: nothing to read its motion from")
    if clip.shape[0] > MAX_FRAMES:
        raise MotionbitsError(f"the clip has {clip.shape[0]} frames, more than a bitstream holds ({MAX_FRAMES}): "
                              "--frames N encodes its start")
    encoder.key_frame = clip[0].numpy()
    # the whole clip's latents (and lip points) at once, as reconstruct reads them
    encoder.feed_latents(pipe.to_latents(clip[None]), pipe.model.lips_of_frames(clip[None]))
    encoder.finish()
    return MbitsFile(encoder.header, encoder.section, encoder.motion)


def read_file(data: bytes, where: str) -> MbitsFile:
    return unpack(data, where)


def decode_file(f: MbitsFile, pipe, prior=None, where: str = "bitstream") -> tuple["torch.Tensor", "torch.Tensor"]:
    """-> (content [1, K, Cc], codes [1, T, N]) for pipe.render, after checking that `pipe` (and
    `prior`) are the ones the file was made with: the stream decoder, without rendering."""
    import torch

    from motionbits.codec.format import pack

    check_models(f.header, pipe, prior, where)
    decoder = StreamDecoder(pipe, prior, where, render=False)
    decoder.feed(pack(f))
    decoder.finish()
    return decoder.content, torch.from_numpy(decoder.codes)[None]


def content_values(f: MbitsFile, where: str = "bitstream", pipe=None) -> np.ndarray:
    """The file's content as the decoder renders it: float32 [K, Cc] (a key frame's picture is read
    by its model, `pipe`)."""
    return section_values(f.content, f.header, where, pipe)


def motion_bits_per_frame(pipe, content, codes, prior=None, adaptive: bool = True) -> np.ndarray:
    """Bits each frame's codes [T, N] cost in the motion stream (under `prior`, else the adaptive or
    the static tables), given the clip's content [1, K, Cc]: float64 [T], summing to about 8 x the
    stream's bytes."""
    return frame_bits(codes, code_model(pipe, prior, content, adaptive))
