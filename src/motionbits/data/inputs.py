"""The clips a user hands to a trained model: what `motionbits transfer` and the web app read.

A clip comes from 'sprites:ROOT:SPLIT:INDEX', a video or GIF file (resampled to a rate when given),
a still image or a folder of frames; a still image (or a clip shorter than the encoder window) is
held for a whole window. The CLI and the app both read through here, so the same file gives the
same frames, and with the same seed the same result.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from motionbits.errors import MotionbitsError
from motionbits.frame_rate import clip_fps, fps_problem


@dataclass
class TimedClip:
    frames: object            # uint8 tensor [T, size, size, 3]
    fps: float                # the rate of these frames (frame_rate.clip_fps): results are written at it
    source_fps: float | None  # the file's own rate (None: an image, a frame folder, a Sprites clip)

    @property
    def resampled(self) -> bool:
        return self.source_fps is not None and self.fps != self.source_fps


def read_input_clip(spec: str, size: int, frames: int | None, fps: float | None = None):
    """uint8 tensor [T, size, size, 3] from a spec (see the module docstring)."""
    return read_timed_clip(spec, size, frames, fps).frames


def read_timed_clip(spec: str, size: int, frames: int | None, fps: float | None = None) -> TimedClip:
    """read_input_clip with the clip's frame rate: `fps` when a video was resampled to it, else the
    video's own rate, else frame_rate.UNTIMED_FPS. A video's own rate outside the range
    frame_rate allows is refused here, before any work."""
    import torch

    if spec.startswith("sprites:"):
        from motionbits.data.sprites import load_sprites

        parts = spec.removeprefix("sprites:").rsplit(":", 2)   # ROOT may hold a colon
        if len(parts) != 3 or not parts[0]:
            raise MotionbitsError(f"{spec}: expected sprites:ROOT:SPLIT:INDEX")
        root, split, index = parts
        if not re.fullmatch(r"[0-9]+", index):   # int() takes -1 (the last clip), " 1" and "1_0"
            raise MotionbitsError(f"{spec}: INDEX {index!r} is not a whole number from 0 "
                                  "(expected sprites:ROOT:SPLIT:INDEX)")
        data = load_sprites(root, split)
        if int(index) >= len(data.frames):
            raise MotionbitsError(f"{spec}: index out of range (the {split} split has {len(data.frames)} clips)")
        return TimedClip(torch.from_numpy(data.frames[int(index)][:frames]), clip_fps(None), None)
    from motionbits.data.media import read_clip_and_source_rate

    clip, source_fps = read_clip_and_source_rate(spec, size=size, max_frames=frames, fps=fps)
    rate = clip_fps(source_fps, fps)
    problem = fps_problem(rate)
    if problem:
        raise MotionbitsError(f"{spec}: frame rate {problem} (--input-fps RATE resamples it)")
    return TimedClip(torch.from_numpy(clip), rate, source_fps)


def hold_still(clip, window: int):
    """A still image (or a clip shorter than the encoder window) held for a whole window: [>=window, H, W, 3]."""
    return clip[:1].expand(window, -1, -1, -1) if clip.shape[0] < window else clip
