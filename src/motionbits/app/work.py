"""What each tab of the app computes, without gradio: checked uploads in, files in a request folder
out. Transfer gives the frames `motionbits transfer --side-by-side` gives for the same files and
seed (same reading, same call, same view); Bitrate runs the clip through the .mbits codec as
`motionbits encode` and `decode` do; Generate samples new motion from the prior.

`report(fraction, text)` is told how far the work is (the page shows it as a progress bar).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from motionbits.app.inputs import Upload, read_upload
from motionbits.app.notes import reading_notes
from motionbits.app.plots import bits_per_frame_plot
from motionbits.app.previews import display_scale, preview_gif
from motionbits.app.session import AppSession
from motionbits.data.inputs import hold_still
from motionbits.errors import MotionbitsError
from motionbits.frame_rate import UNTIMED_FPS, clip_fps
from motionbits.visualize import save_video, side_by_side, transfer_view

Report = Callable[[float, str], None]


def _quiet(fraction: float, text: str) -> None:
    pass


def clip_rate(session: AppSession, upload: Upload) -> float:
    """The frame rate of an upload as read, the rate its results are written at (as the CLI does):
    the model's rate when it resamples to one, else the file's own, else 8 (an image)."""
    return clip_fps(upload.fps, session.input_fps)


@dataclass
class Preview:
    gif: Path                      # what the model will see, enlarged for the page
    notes: list[str]               # what was done to the file to get there


def preview(session: AppSession, upload: Upload, what: str, out: Path, hold: bool = True) -> Preview:
    """An upload as the model will read it (held still for the encoder's window when `hold`)."""
    pipe = session.pipe
    window = pipe.model.window if hold else None
    frames = read_upload(upload, pipe.cfg.data.image_size, session.input_fps, window=None)      # [T, S, S, 3]
    notes = reading_notes(upload, what, pipe.cfg.data.image_size, session.input_fps, len(frames), window)
    shown = hold_still(frames, window) if window else frames
    return Preview(preview_gif(shown, clip_rate(session, upload), out / "preview.gif"), notes)


@dataclass
class TransferResult:
    side_by_side: Path             # content | driver | result
    result: Path                   # the result alone
    fps: float                     # the driver's rate as read: the result lasts as long as the driver
    notes: list[str]               # what was done to the inputs (notes.reading_notes)


def transfer(session: AppSession, content: Upload, driver: Upload, steps: int, seed: int, out: Path,
             report: Report = _quiet) -> TransferResult:
    """out/transfer-side-by-side.mp4 (content | driver | result, the frames of `motionbits transfer
    --side-by-side --scale K`) and out/transfer-result.mp4, at the driver's frame rate."""
    pipe = session.pipe
    size, window = pipe.cfg.data.image_size, pipe.model.window
    report(0.0, "reading the clips")
    look = read_upload(content, size, session.input_fps, window=None)               # [Tc, S, S, 3]
    motion = read_upload(driver, size, session.input_fps, window=None)              # [T, S, S, 3]
    notes = (reading_notes(content, "the content", size, session.input_fps, len(look), window)
             + reading_notes(driver, "the driving video", size, session.input_fps, len(motion), window))
    look, motion = hold_still(look, window), hold_still(motion, window)
    report(0.2, f"rendering {len(motion)} frames")
    result = pipe.transfer(look, motion, steps=steps, seed=seed)[0]                 # [T, S, S, 3]
    report(0.9, "writing the videos")
    fps, scale = clip_rate(session, driver), display_scale(size)
    both = save_video(transfer_view(look, motion, result), out / "transfer-side-by-side.mp4", fps=fps, scale=scale)
    alone = save_video(result, out / "transfer-result.mp4", fps=fps, scale=scale)
    return TransferResult(both, alone, fps, notes)


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
    def coder_end_bits(self) -> float:
        """Bits of the motion packets beyond their codes': each packet's length and CRC-8, and the
        end of its code word, which ends each packet on a whole byte (spread over the
        frames in `bits per frame`)."""
        return 8 * self.sizes["motion"] - float(self.bits.sum())

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
    fps = clip_rate(session, clip)
    report(0.1, "encoding")
    encoded = encode_clip(pipe, frames, prior, fps=fps)
    mbits = out / "clip.mbits"
    mbits.write_bytes(pack(encoded))
    report(0.3, "decoding the file")
    decoded = read_file(mbits.read_bytes(), clip.name)
    content, codes = decode_file(decoded, pipe, prior, where=clip.name)
    bits = motion_bits_per_frame(pipe, content, codes[0], prior, adaptive=decoded.header.adaptive)
    report(0.5, f"rendering {len(frames)} decoded frames")
    rendered = pipe.render(content, codes)[0]
    report(0.9, "writing the video and the plot")
    video = save_video(side_by_side([frames, rendered]), out / "original-decoded.mp4", fps=fps,
                       scale=display_scale(pipe.cfg.data.image_size))
    plot = bits_per_frame_plot(bits, out / "bits-per-frame.png", file_bits=8 * encoded.sizes["motion"])
    return BitrateResult(encoded.sizes, len(frames), fps, bits, "the motion prior" if prior else "the adaptive tables",
                         mbits, video, plot)


@dataclass
class GenerateResult:
    side_by_side: Path             # content | generated
    result: Path                   # the generated clip alone
    fps: float


def generate(session: AppSession, content: Upload, prompt: Upload | None, label: int | None, temperature: float,
             frames: int, steps: int, seed: int, out: Path, report: Report = _quiet) -> GenerateResult:
    """out/generate-side-by-side.mp4 (content | generated) and out/generate-result.mp4, as
    `motionbits generate` does; at the rate of the clip continued, else the model's, else 8 fps."""
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
    report(0.9, "writing the videos")
    still = look[:1].expand(len(result), -1, -1, -1)
    fps = clip_rate(session, prompt) if prompt else session.input_fps or UNTIMED_FPS
    scale = display_scale(size)
    both = save_video(side_by_side([still, result]), out / "generate-side-by-side.mp4", fps=fps, scale=scale)
    return GenerateResult(both, save_video(result, out / "generate-result.mp4", fps=fps, scale=scale), fps)
