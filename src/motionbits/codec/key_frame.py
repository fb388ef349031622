"""The content as a picture: a key-frame model's key frame coded as one AV1 intra frame.

A model with `content_reader: key_frame` reads its content from one frame (KeyFrameContentReader:
its latent patches, embedded, or as they are with `model.draw_change`), so instead of quantising
the content values (codec/content.py) the encoder can send that frame itself through an image
codec made for pictures, and both ends read the content from the decoded picture. SVT-AV1 codes
it (at the finest CRF whose bytes fit the budget), dav1d decodes it (AV1 decoding is exact by the
standard: every decoder gives the same pixels), and the picture goes through the tokenizer and the
content reader in float64 before the values are rounded to float16 as any content is: two
machines or thread counts that order the float64 sums differently land on the same float16
values, so the motion prior sees the very numbers the encoder coded under.

Measured on a held-back talking-head frame at 128x128 (scripts/key_frame_quality.py): the key
frame rebuilt through taef2 at 31.0 dB from 992 bytes of AV1, against 20.1 dB from 986 bytes of
compact values and 32.7 dB from the float16 values (16 KB).

Image section: the AV1 low-overhead bitstream (OBUs: temporal delimiter, sequence header, frame) of
one frame, yuv420p, the model's frame size; no more bytes than its raw RGB pixels.
"""
from __future__ import annotations

import copy
import io
import os

import numpy as np
import torch

from motionbits.errors import MotionbitsError

ENCODER, DECODER, CONTAINER = "libsvtav1", "libdav1d", "obu"
HIGHEST_CRF = 63                     # SVT-AV1's coarsest; the finest that fits the budget is searched
PRESET = "4"                         # about 35 ms a 128x128 frame on 2 cores, each search step; slower presets save little
DEFAULT_BUDGET = 1024


def check_image_content(cfg, where: str = "this model") -> None:
    """A model whose content can be sent as its key frame: content_reader key_frame."""
    if cfg.model.content_reader != "key_frame":
        raise MotionbitsError(f"{where}: --content image sends the key frame as a picture, which only a model that "
                              "reads its content from one frame reads (model.content_reader: key_frame); use "
                              "--content compact")
    if cfg.data.image_size % 2:
        raise MotionbitsError(f"{where}: --content image codes yuv420p pictures, whose sides are even, not "
                              f"{cfg.data.image_size}")


def encode_key_frame(frame: np.ndarray, budget: int | None = None) -> bytes:
    """uint8 frame [H, W, 3] -> the image section: the finest CRF whose bytes fit `budget`
    (DEFAULT_BUDGET when None)."""
    budget = DEFAULT_BUDGET if budget is None else int(budget)
    lo, hi, best = 1, HIGHEST_CRF, None
    while lo <= hi:                       # the size falls as the CRF rises: the lowest CRF that fits
        crf = (lo + hi) // 2
        data = _encode(frame, crf)
        if len(data) <= budget:
            best, hi = data, crf - 1
        else:
            lo = crf + 1
    if best is None:
        raise MotionbitsError(f"content budget {budget} bytes: the key frame takes {len(_encode(frame, HIGHEST_CRF))} "
                              f"bytes at AV1's coarsest (CRF {HIGHEST_CRF}); give --content-bytes more")
    return best


def decode_key_frame(section: bytes, size: int) -> np.ndarray:
    """The image section -> uint8 frame [size, size, 3]; ValueError naming what is wrong."""
    import av

    try:
        decoder = av.CodecContext.create(DECODER, "r")
        with av.open(io.BytesIO(section), format=CONTAINER) as container:
            # (demux ends with an empty packet, which flushes the decoder)
            frames = [f for packet in container.demux(video=0) for f in decoder.decode(packet)]
    except (av.FFmpegError, IndexError) as err:
        raise ValueError(f"its key frame is not an AV1 picture ({err})") from None
    if len(frames) != 1:
        raise ValueError(f"its key frame holds {len(frames)} AV1 pictures, not 1")
    picture = frames[0].to_ndarray(format="rgb24")
    if picture.shape != (size, size, 3):
        raise ValueError(f"its key frame is {picture.shape[1]}x{picture.shape[0]}, the model's frames {size}x{size}")
    return picture


def key_frame_values(pipe, frame: np.ndarray) -> np.ndarray:
    """uint8 frame [H, W, 3] -> the content values [K, Cc] (float32 holding float16 values) the
    model reads from it as its key frame, the same on every machine. Always through the config's
    own tokenizer (not a fast autoencoder the pipe may render with), so a file coded through one
    decodes through the other."""
    from motionbits.models.tokenizer import frames_to_float, make_tokenizer

    tokenizer = make_tokenizer(pipe.cfg).to("cpu", torch.float64)
    reader = copy.deepcopy(pipe.model.content_reader).to("cpu", torch.float64)
    with torch.no_grad():
        z = tokenizer.encode(frames_to_float(torch.from_numpy(np.ascontiguousarray(frame))[None]).double())  # [1, C, h, w]
        content = reader(z[:, None])                                                      # [1, K, Cc] float64
    return content[0].to(torch.float16).float().numpy()


def _encode(frame: np.ndarray, crf: int) -> bytes:
    import av

    os.environ.setdefault("SVT_LOG", "1")   # SVT-AV1: errors only on stderr
    out = io.BytesIO()
    with av.open(out, "w", format=CONTAINER) as container:
        stream = container.add_stream(ENCODER, rate=1)
        stream.width, stream.height, stream.pix_fmt = frame.shape[1], frame.shape[0], "yuv420p"
        stream.options = {"crf": str(crf), "preset": PRESET}
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in [*stream.encode(picture), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()
