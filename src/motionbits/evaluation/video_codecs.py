"""Standard video codecs through PyAV, for rate-distortion comparisons with the motion bitstream.

`code_with` encodes uint8 frames [T, H, W, 3] with libx264, libx265 or SVT-AV1 at a constant rate
factor (CRF: higher is fewer bits), counts the coded bytes (the packets' payload, no container) with
the first frame's apart (the intra frame, like motionbits' content sent once), and decodes them back.
The lowest rate a codec reaches is at its highest CRF (51 for x264 and x265, 63 for SVT-AV1).
Each codec comes twice: at its usual preset (x264 / x265 medium, SVT-AV1 8), and as a call would
run it (`LOW_DELAY`: x264 / x265 ultrafast with the zerolatency tune, no B-frames nor look-ahead;
SVT-AV1 preset 12 with its low-delay prediction structure), where each packet leaves the encoder
as soon as its frame is in. Encode and decode are timed apart (`encode_s`, `decode_s`).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

CODECS = {  # name: (PyAV encoder, highest CRF, options)
    "x264": ("libx264", 51, {"preset": "medium"}),
    "x265": ("libx265", 51, {"preset": "medium", "x265-params": "log-level=error"}),
    "av1": ("libsvtav1", 63, {"preset": "8"}),
    "x264 low-delay": ("libx264", 51, {"preset": "ultrafast", "tune": "zerolatency"}),
    "x265 low-delay": ("libx265", 51, {"preset": "ultrafast", "tune": "zerolatency", "x265-params": "log-level=error"}),
    "av1 low-delay": ("libsvtav1", 63, {"preset": "12", "svtav1-params": "pred-struct=1"}),   # 1: low delay
}
LOW_DELAY = ("x264 low-delay", "x265 low-delay", "av1 low-delay")


@dataclass
class Coded:
    codec: str
    crf: int
    bytes: int               # every packet's payload
    first_frame_bytes: int   # the packets up to the first frame's (the intra frame)
    frames: np.ndarray       # decoded uint8 [T, H, W, 3]
    encode_s: float = 0.0    # wall seconds in the encoder (RGB to YUV included), every frame
    decode_s: float = 0.0    # wall seconds in the decoder (YUV to RGB included), every frame
    delay_frames: int = 0    # the most frames fed to the encoder and not yet out as packets (its look-ahead)

    def kbps(self, fps: float, frames: int) -> float:
        return 8 * self.bytes * fps / frames / 1000

    def kbps_after_first(self, fps: float, frames: int) -> float:
        return 8 * (self.bytes - self.first_frame_bytes) * fps / max(frames - 1, 1) / 1000


def code_with(frames: np.ndarray, codec: str, crf: int, fps: float) -> Coded:
    """Encode and decode `frames` (even sides) with one codec at one CRF."""
    import time

    import av

    name, highest, options = CODECS[codec]
    if not 0 <= crf <= highest:
        raise ValueError(f"{codec} takes CRF 0..{highest}, got {crf}")
    os.environ.setdefault("SVT_LOG", "1")   # SVT-AV1: errors only on stderr
    frames = np.ascontiguousarray(frames)
    sizes: list[int] = []
    first = None
    encode_s, fed, delay = 0.0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "coded.mkv")
        with av.open(path, "w") as container:
            stream = container.add_stream(name, rate=Fraction(fps).limit_denominator(1000))
            stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            stream.options = {**options, "crf": str(crf)}
            for frame in [*frames, None]:          # None: flush the encoder
                start = time.perf_counter()
                packets = stream.encode(None if frame is None else av.VideoFrame.from_ndarray(frame, format="rgb24"))
                encode_s += time.perf_counter() - start
                fed += frame is not None
                delay = max(delay, fed - len(sizes) - len(packets))
                for packet in packets:
                    sizes.append(packet.size)
                    container.mux(packet)
                    if first is None and packet.is_keyframe:
                        first = packet.size
        with av.open(path) as container:
            start = time.perf_counter()
            decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
            decode_s = time.perf_counter() - start
    return Coded(codec, crf, int(sum(sizes)), int(first or 0), decoded, encode_s, decode_s, delay)
