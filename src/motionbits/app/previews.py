"""How the page shows frames: every clip it shows or offers for download is enlarged by a whole
factor with nearest neighbour (as `--scale` does), so a 64x64 Sprite is 256 pixels a side with
sharp pixels instead of a blur the browser or the video's colour subsampling would make of it.
Inputs are previewed as the model sees them (cropped, scaled, resampled, held), as animated GIFs:
exact colours, and they play and loop in an <img> without controls.
"""
from __future__ import annotations

from pathlib import Path

from motionbits.visualize import save_video

DISPLAY_SIDE = 256          # pixels: frames smaller than this are enlarged by a whole factor towards it
PREVIEW_FRAMES = 120        # a preview shows at most this many frames (a long clip's start)


def display_scale(size: int) -> int:
    """The whole factor a frame of `size` pixels is enlarged by on the page: 64 -> 4, 128 -> 2, 256 -> 1."""
    return max(1, DISPLAY_SIDE // size)


def preview_gif(frames, fps: float, path: str | Path) -> Path:
    """The first PREVIEW_FRAMES frames uint8 [T, S, S, 3] as a looping GIF at `fps`, enlarged for the page."""
    return save_video(frames[:PREVIEW_FRAMES], Path(path).with_suffix(".gif"), fps=fps,
                      scale=display_scale(frames.shape[1]))
