"""The clips a user hands to a trained model: what `motionbits transfer` and the web app read.

A clip comes from 'sprites:ROOT:SPLIT:INDEX', a video or GIF file (resampled to a rate when given),
a still image or a folder of frames; a still image (or a clip shorter than the encoder window) is
held for a whole window. The CLI and the app both read through here, so the same file gives the
same frames, and with the same seed the same result.
"""
from __future__ import annotations

from motionbits.errors import MotionbitsError


def read_input_clip(spec: str, size: int, frames: int | None, fps: float | None = None):
    """uint8 tensor [T, size, size, 3] from a spec (see the module docstring)."""
    import torch

    if spec.startswith("sprites:"):
        from motionbits.data.sprites import load_sprites

        try:
            _, root, split, index = spec.split(":")
            data = load_sprites(root, split)
            return torch.from_numpy(data.frames[int(index)][:frames])
        except ValueError:
            raise MotionbitsError(f"{spec}: expected sprites:ROOT:SPLIT:INDEX") from None
        except IndexError:
            raise MotionbitsError(f"{spec}: index out of range") from None
    from motionbits.data.video import read_clip

    return torch.from_numpy(read_clip(spec, size=size, max_frames=frames, fps=fps))


def hold_still(clip, window: int):
    """A still image (or a clip shorter than the encoder window) held for a whole window: [>=window, H, W, 3]."""
    return clip[:1].expand(window, -1, -1, -1) if clip.shape[0] < window else clip
