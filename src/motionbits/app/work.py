"""What each tab of the app computes, without gradio: checked uploads in, files in a request folder
out. Transfer gives the frames `motionbits transfer --side-by-side` gives for the same files and
seed (same reading, same call, same view); Bitrate runs the clip through the .mbits codec as
`motionbits encode` and `decode` do; Generate samples new motion from the prior.

`report(fraction, text)` is told how far the work is (the page shows it as a progress bar).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from motionbits.app.inputs import Upload, read_upload
from motionbits.app.plots import bits_per_frame_plot
from motionbits.app.session import AppSession
from motionbits.errors import MotionbitsError
from motionbits.visualize import save_video, side_by_side, transfer_view

Report = Callable[[float, str], None]


def _quiet(fraction: float, text: str) -> None:
    pass


def output_fps(session: AppSession) -> float:
    """The CLI's output rate without --fps: the model's input rate, else 8."""
    return session.input_fps or 8.0


def transfer(session: AppSession, content: Upload, driver: Upload, steps: int, seed: int, out: Path,
             report: Report = _quiet) -> Path:
    """content | driver | result as out/transfer.mp4."""
    pipe = session.pipe
    size, window = pipe.cfg.data.image_size, pipe.model.window
    report(0.0, "reading the clips")
    look = read_upload(content, size, session.input_fps, window)                    # [Tc, S, S, 3]
    motion = read_upload(driver, size, session.input_fps, window)                   # [T, S, S, 3]
    report(0.2, f"rendering {len(motion)} frames")
    result = pipe.transfer(look, motion, steps=steps, seed=seed)[0]                 # [T, S, S, 3]
    report(0.9, "writing the video")
    return save_video(transfer_view(look, motion, result), out / "transfer.mp4", fps=output_fps(session))


@dataclass
class BitrateResult:
    sizes: dict[str, int]          # bytes: header, content, motion, total
    frames: int
    fps: float
    bits: np.ndarray               # [T] bits each frame's codes cost
    coded_under: str
    mbits: Path                    # the .mbits file
    video: Path                    # original | decoded
    plot: Path                     # bits per frame

    @property
    def motion_kbps(self) -> float:
        return 8 * self.sizes["motion"] * self.fps / self.frames / 1000

    @property
    def total_kbps(self) -> float:
        return 8 * self.sizes["total"] * self.fps / self.frames / 1000


def bitrate(session: AppSession, clip: Upload, out: Path, report: Report = _quiet) -> BitrateResult:
    """Encode the clip to .mbits (as `motionbits encode`), read the file back, decode and render it
    (as `motionbits decode`); the file's parts and the bits of each frame."""
    from motionbits.codec import decode_file, encode_clip, motion_bits_per_frame, read_file
    from motionbits.codec.format import pack

    pipe, prior = session.pipe, session.prior
    report(0.0, "reading the clip")
    frames = read_upload(clip, pipe.cfg.data.image_size, session.input_fps, window=None)   # [T, S, S, 3]
    fps = session.input_fps or clip.fps or 25.0
    report(0.1, "encoding")
    encoded = encode_clip(pipe, frames, prior, fps=fps, checkpoint_hint=os.path.abspath(pipe.source),
                          prior_hint=str(session.prior_path or ""))
    mbits = out / "clip.mbits"
    mbits.write_bytes(pack(encoded))
    report(0.3, "decoding the file")
    decoded = read_file(mbits.read_bytes(), clip.name)
    content, codes = decode_file(decoded, pipe, prior, where=clip.name)
    bits = motion_bits_per_frame(pipe, content, codes[0], prior)
    report(0.5, f"rendering {len(frames)} decoded frames")
    rendered = pipe.render(content, codes)[0]
    report(0.9, "writing the video and the plot")
    video = save_video(side_by_side([frames, rendered]), out / "original-decoded.mp4", fps=fps)
    plot = bits_per_frame_plot(bits, out / "bits-per-frame.png")
    return BitrateResult(encoded.sizes, len(frames), fps, bits, "the motion prior" if prior else "the static tables",
                         mbits, video, plot)


def generate(session: AppSession, content: Upload, prompt: Upload | None, label: int | None, temperature: float,
             frames: int, steps: int, seed: int, out: Path, report: Report = _quiet) -> Path:
    """content | generated as out/generated.mp4 (as `motionbits generate`)."""
    pipe = session.pipe
    size = pipe.cfg.data.image_size
    report(0.0, "reading the clips")
    look = read_upload(content, size, session.input_fps, pipe.model.window)
    start = read_upload(prompt, size, session.input_fps, window=None) if prompt else None
    if start is not None and len(start) >= frames:
        raise MotionbitsError(f"the clip to continue has {len(start)} frames: ask for a length above that")
    report(0.2, f"sampling and rendering {frames} frames")
    result = pipe.generate(session.prior, look, frames, prompt_frames=start, label=label, temperature=temperature,
                           seed=seed, steps=steps)[0]                                # [frames, S, S, 3]
    report(0.9, "writing the video")
    still = look[:1].expand(len(result), -1, -1, -1)
    return save_video(side_by_side([still, result]), out / "generated.mp4", fps=output_fps(session))
