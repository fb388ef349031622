"""Uploads to the app: checked before anything decodes them, then read like the CLI reads files.

An upload is refused with one line naming it (by its file name, never the server's path) when it
is missing, empty, too large, of an unknown type, not decodable, has no frames, or has more frames
or pixels than the limits below; the limits are looked up in the container's header and packet
index (no frame is decoded for it), so an oversized clip costs next to nothing to refuse.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from motionbits.data.inputs import hold_still, read_input_clip
from motionbits.data.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from motionbits.errors import MotionbitsError

MAX_UPLOAD_MB = 50          # gradio refuses larger uploads too (server.py)
MAX_FRAMES = 600
MAX_SIDE = 1920             # pixels, the longer side of a frame


@dataclass
class Upload:
    path: Path
    name: str               # the name the user gave it, for messages
    frames: int             # 1 for an image
    fps: float | None       # the source rate (None: an image, or a video without one)
    width: int = 0          # pixels of a source frame
    height: int = 0


def check_upload(path: str | Path | None, what: str) -> Upload:
    """The limits and the type of one uploaded file; `what` names its role on the page."""
    if not path:
        raise MotionbitsError(f"{what}: no file: upload one or pick an example")
    path = Path(path)
    name = path.name
    size = path.stat().st_size if path.is_file() else 0
    if size == 0:
        raise MotionbitsError(f"{what} {name}: the file is empty (0 bytes)")
    if size > MAX_UPLOAD_MB * 2 ** 20:
        raise MotionbitsError(f"{what} {name}: {size / 2 ** 20:.0f} MB, above the limit of {MAX_UPLOAD_MB} MB")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        width, height = _check_image(path, f"{what} {name}")
        return Upload(path, name, 1, None, width, height)
    if suffix not in VIDEO_SUFFIXES:
        raise MotionbitsError(f"{what} {name}: unsupported file type {suffix or '(none)'!r} (video: "
                              f"{', '.join(VIDEO_SUFFIXES)}; image: {', '.join(IMAGE_SUFFIXES)})")
    frames, fps, width, height = _video_frames(path, f"{what} {name}")
    return Upload(path, name, frames, fps, width, height)


def _check_image(path: Path, where: str) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as im:                       # reads the header only
            width, height = im.size
    except Exception as err:
        raise MotionbitsError(f"{where}: not a readable image ({type(err).__name__})") from None
    if max(width, height) > MAX_SIDE:
        raise MotionbitsError(f"{where}: {max(width, height)} pixels wide or high, above the limit of {MAX_SIDE}")
    return width, height


def _video_frames(path: Path, where: str) -> tuple[int, float | None, int, int]:
    """(frames, source rate, width, height) from the header and the packet index, refusing what is over the limits."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MotionbitsError(f"{where}: has no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            side = max(width, height)
            if side > MAX_SIDE:
                raise MotionbitsError(f"{where}: {side} pixels wide or high, above the limit of {MAX_SIDE}")
            frames = 0
            for packet in container.demux(stream):         # compressed packets: nothing is decoded
                frames += packet.size > 0
                if frames > MAX_FRAMES:
                    raise MotionbitsError(f"{where}: more than {MAX_FRAMES} frames, the limit (trim the clip)")
            rate = stream.average_rate or stream.guessed_rate
    except MotionbitsError:
        raise
    except Exception as err:  # PyAV raises many error types for files that are not video
        raise MotionbitsError(f"{where}: cannot be read as video ({type(err).__name__})") from None
    if frames == 0:
        raise MotionbitsError(f"{where}: contains no frames")
    return frames, float(rate) if rate else None, width, height


def read_upload(upload: Upload, size: int, fps: float | None, window: int | None):
    """The upload's frames as the CLI reads a file (resampled to `fps` when given; a still held for
    `window` frames when given): uint8 [T, size, size, 3]; errors name the upload, not the server's path."""
    try:
        clip = read_input_clip(str(upload.path), size, MAX_FRAMES, fps)
        return hold_still(clip, window) if window else clip
    except MotionbitsError as err:
        raise MotionbitsError(str(err).replace(str(upload.path), upload.name)) from None
