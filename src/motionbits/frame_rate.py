"""Frame rates: the range every rate must lie in, and the rate of a source that has none.

A clip keeps its rate from the file it was read from to the file written: a video is read at
its own rate (or resampled to the model's `data.fps` / `--input-fps`), and the result is
written at the rate it was read at, so 4 s in give 4 s out. Images, frame folders and Sprites
clips carry no timing: they play at `UNTIMED_FPS`. Every rate (an option, a source's, a
bitstream's) lies in [MIN_FPS, MAX_FPS]: a rate of 0, inf or 0.001 breaks the GIF and MP4
writers and every seconds or kbps figure.
"""
from __future__ import annotations

import math

from motionbits.errors import MotionbitsError

MIN_FPS = 1.0
MAX_FPS = 240.0
UNTIMED_FPS = 8.0     # images, frame folders, Sprites: the rate the Sprites animations play at


def fps_problem(value: float) -> str | None:
    """What is wrong with a frame rate, or None when it is usable."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return f"{value!r} is not a finite number"
    if not MIN_FPS <= value <= MAX_FPS:
        return f"{value:g} fps is outside {MIN_FPS:g}..{MAX_FPS:g} frames per second"
    return None


def check_fps(value: float, what: str) -> float:
    """`value` as a float, or a one-line error naming `what` (an option, a file)."""
    problem = fps_problem(value)
    if problem:
        raise MotionbitsError(f"{what}: {problem}")
    return float(value)


def clip_fps(source_fps: float | None, resample_fps: float | None = None) -> float:
    """The rate of a clip as read: the rate a timed source was resampled to, else the source's own
    rate, else UNTIMED_FPS (an image, a frame folder, a Sprites clip, a stream without a rate).
    The app and the command line write their results at this rate unless told otherwise."""
    if source_fps:
        return float(resample_fps or source_fps)
    return UNTIMED_FPS
