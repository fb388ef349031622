"""Reading media: a video file, a GIF, an image or a folder of image frames as RGB frames.

    read_clip(path, size) ──► uint8 [T, size, size, 3], the centred square of each frame
    decode_video(path, fps=...) ──► PIL images, resampled by timestamp when fps is given
    video_items / folder_items ──► (time, frame) streams ──resample──► frames at a rate ──to_image──► RGB

What `motionbits transfer` and the other use verbs read, and what `data/video.py` builds datasets
from; nothing here knows of datasets.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
from PIL import Image

from motionbits.errors import MotionbitsError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
RESAMPLE_SLACK_S = 1e-6  # seconds: slack for float timestamps when resampling



def center_square(frame: Image.Image, size: int, enlarge: int = Image.BICUBIC) -> Image.Image:
    """Crop the largest centred square and resize it to size x size (a square smaller than that
    is enlarged with the `enlarge` filter; a larger one is reduced with bicubic)."""
    w, h = frame.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return frame.crop((left, top, left + side, top + side)).resize((size, size),
                                                                   enlarge if side < size else Image.BICUBIC)


def decode_video(path: Path, max_frames: int | None = None, fps: float | None = None,
                 info: dict | None = None) -> list[Image.Image]:
    """The frames of a video, at the source rate or resampled to `fps` by timestamp (as in
    `motionbits data video --fps`). `info` receives the stream's "source_fps" (None: no rate)."""
    if fps is not None and not fps > 0:
        raise MotionbitsError(f"fps must be positive, got {fps!r}")
    info = {} if info is None else info
    try:
        frames = []
        with closing(video_items(path, info)) as items:   # closes the container when we stop early
            for frame in ((obj for _, obj in items) if fps is None else resample(items, fps, info)):
                frames.append(frame.to_image())
                if max_frames and len(frames) >= max_frames:
                    break
    except UnusableFile as err:
        raise MotionbitsError(f"{path}: {err}") from None
    except Exception as err:  # PyAV raises many error types for broken files
        raise MotionbitsError(f"{path}: cannot be decoded as video ({type(err).__name__}: {str(err)[:80]})") from None
    if not frames:
        raise MotionbitsError(f"{path}: contains no frames")
    return frames


def read_clip(path: str | Path, size: int, max_frames: int | None = None, fps: float | None = None) -> np.ndarray:
    """A clip as uint8 [T, size, size, 3] from a video file, an image (T=1) or a folder of images;
    a video is resampled to `fps` when given (images and frame folders have no timing)."""
    return read_clip_and_source_rate(path, size, max_frames, fps)[0]


def read_clip_and_source_rate(path: str | Path, size: int, max_frames: int | None = None,
                              fps: float | None = None) -> tuple[np.ndarray, float | None]:
    """read_clip, and the source's own frame rate: None for images, frame folders and videos
    without one (frame_rate.clip_fps turns this into the rate of the clip as read)."""
    path = Path(path)
    info: dict = {"source_fps": None}
    if not path.exists():
        raise MotionbitsError(f"{path}: no such file or folder")
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise MotionbitsError(f"{path}: folder has no image frames ({', '.join(IMAGE_SUFFIXES)})")
        images = [open_image(p) for p in files[:max_frames]]
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        images = [open_image(path)]
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        images = decode_video(path, max_frames, fps, info)
    else:
        raise MotionbitsError(f"{path}: unsupported file type (video: {', '.join(VIDEO_SUFFIXES)}; image: {', '.join(IMAGE_SUFFIXES)})")
    # A small input (pixel art, a sprite sheet's cell) is enlarged with nearest neighbour: sharp pixels.
    return (np.stack([np.asarray(center_square(im.convert("RGB"), size, Image.NEAREST)) for im in images]),
            info["source_fps"])


def to_rgb(im: Image.Image) -> Image.Image:
    """An image of any mode as 8-bit RGB. 16-bit grey (PNG "I;16", read as "I") is scaled to 8
    bits (Pillow's convert clips it: every value above 255 became white)."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        wide = np.asarray(im.convert("I") if im.mode != "I" else im, dtype=np.int64)     # [H, W], 0..65535
        return Image.fromarray(((np.clip(wide, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8)).convert("RGB")
    return im.convert("RGB")   # a loaded copy even when already RGB: the file is closed after this


def open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return to_rgb(im)
    except Exception as err:
        raise MotionbitsError(f"{path}: not a readable image ({type(err).__name__})") from None


def natural_key(name: str) -> list:
    # "frame2" before "frame10"; identical to plain sorting for zero-padded names.
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def frame_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir()
             if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


class UnusableFile(Exception):
    """This file cannot be used; the message is the reason shown to the user."""


def video_items(path: Path, info: dict) -> Iterator[tuple[float | None, object]]:
    """(time in seconds, av.VideoFrame) of every frame of the first video stream."""
    import av

    if path.stat().st_size == 0:
        raise UnusableFile("empty file (0 bytes)")
    with av.open(str(path)) as container:
        image = container.format.name.removesuffix("_pipe")   # FFmpeg reads a lone image as a 1-frame "video"
        if image != container.format.name:
            raise UnusableFile(f"is a {image.upper()} image, not a video (an image suffix such as .png reads it as a still)")
        if not container.streams.video:
            raise UnusableFile("no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        info["source_fps"] = round(float(rate), 3) if rate else None
        info["width"], info["height"] = stream.codec_context.width, stream.codec_context.height
        for i, frame in enumerate(container.decode(stream)):
            t = frame.time
            if t is None and rate:
                t = i / float(rate)
            yield t, frame


def folder_items(folder: Path, info: dict) -> Iterator[tuple[None, Path]]:
    files = frame_files(folder)
    info["source_fps"] = None  # frame folders carry no timing
    for p in files:
        yield None, p


def resample(items: Iterator[tuple[float | None, object]], fps: float, info: dict) -> Iterator[object]:
    """Frames at `fps`: for each time k/fps the source frame nearest in time (drops or repeats frames).

    The last source frame is held for one source frame period, so a 2 s video gives 2 * fps
    frames whatever the source rate.
    """
    step = 1.0 / fps
    k, prev, prev_t, t0 = 0, None, 0.0, None
    for t, obj in items:
        if t is None:
            raise UnusableFile("frames have no timestamps, cannot resample to the requested fps")
        if t0 is None:
            t0 = t
        t -= t0
        if prev is not None:
            while k * step < t - RESAMPLE_SLACK_S:
                target = k * step
                yield prev if target - prev_t <= t - target else obj
                k += 1
        prev, prev_t = obj, t
    if prev is None:
        return
    src_fps = info.get("source_fps")   # known once the container is open, i.e. by now
    end = prev_t + (1.0 / src_fps if src_fps else 0.0)
    if k == 0:
        yield prev
        k = 1
    while k * step < end - RESAMPLE_SLACK_S:
        yield prev
        k += 1


def to_image(obj, is_folder: bool) -> Image.Image:
    """A frame of a source (a path in a frame folder, else an av.VideoFrame) as an RGB image."""
    if is_folder:
        try:
            with Image.open(obj) as im:
                return to_rgb(im)            # grayscale (16-bit too) / palette / RGBA -> RGB
        except Exception as err:
            raise UnusableFile(f"{Path(obj).name} is not a readable image ({type(err).__name__})") from None
    im = obj.to_image()                      # libswscale converts any pix_fmt (gray too) to RGB
    return im if im.mode == "RGB" else im.convert("RGB")


def unusable_reason(err: Exception) -> str:
    if isinstance(err, (UnusableFile, MotionbitsError)):
        return str(err)
    text = getattr(err, "strerror", None) or str(err)
    return f"cannot be decoded ({type(err).__name__}: {str(text)[:80]})"
