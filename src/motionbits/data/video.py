"""Reading real video: files (mp4, avi, mov, webm, gif), still images and folders of frames."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from motionbits.errors import MotionbitsError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def center_square(frame: Image.Image, size: int) -> Image.Image:
    """Crop the largest centred square and resize it to size x size."""
    w, h = frame.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return frame.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)


def decode_video(path: Path, max_frames: int | None = None) -> list[Image.Image]:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MotionbitsError(f"{path}: has no video stream")
            frames = []
            for frame in container.decode(video=0):
                frames.append(frame.to_image())
                if max_frames and len(frames) >= max_frames:
                    break
    except MotionbitsError:
        raise
    except Exception as err:  # PyAV raises many error types for broken files
        raise MotionbitsError(f"{path}: cannot be decoded as video ({type(err).__name__}: {str(err)[:80]})") from None
    if not frames:
        raise MotionbitsError(f"{path}: contains no frames")
    return frames


def read_clip(path: str | Path, size: int, max_frames: int | None = None) -> np.ndarray:
    """A clip as uint8 [T, size, size, 3] from a video file, an image (T=1) or a folder of images."""
    path = Path(path)
    if not path.exists():
        raise MotionbitsError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise MotionbitsError(f"{path}: folder has no image frames ({', '.join(IMAGE_SUFFIXES)})")
        images = [_open_image(p) for p in files[:max_frames]]
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        images = [_open_image(path)]
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        images = decode_video(path, max_frames)
    else:
        raise MotionbitsError(f"{path}: unsupported file type (video: {', '.join(VIDEO_SUFFIXES)}; image: {', '.join(IMAGE_SUFFIXES)})")
    return np.stack([np.asarray(center_square(im.convert("RGB"), size)) for im in images])


def _open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except Exception as err:
        raise MotionbitsError(f"{path}: not a readable image ({type(err).__name__})") from None
