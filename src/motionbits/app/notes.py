"""What the model does to an upload before it sees it, in words for the page: a frame that is not
square is cropped to its centre square, any other size is scaled, a video is resampled to the
model's frame rate, and an image or a clip shorter than the encoder's window is held still.

Nothing is padded: the model reads square frames of its own size, and the crop is centred like
`motionbits transfer`'s (data/video.py center_square).
"""
from __future__ import annotations

from motionbits.app.inputs import Upload


def reading_notes(upload: Upload, what: str, size: int, fps: float | None, frames_read: int,
                  window: int | None) -> list[str]:
    """One line for each change made to `upload` (checked by inputs.check_upload) as it was read
    into `frames_read` frames of size x size at `fps` (None: its own rate), held for `window`."""
    notes = []
    w, h = upload.width, upload.height
    side = min(w, h)
    if w != h and side:
        cut = "left and right" if w > h else "top and bottom"
        notes.append(f"{what} is {w}x{h}, not square: only its centre {side}x{side} is used "
                     f"({abs(w - h)} pixels cut off {cut})")
    if side and side != size:
        how = "enlarged with nearest neighbour (pixels stay sharp)" if side < size else "reduced"
        notes.append(f"{what}: {side} pixels a side {how} to the model's {size}")
    if fps and upload.fps and abs(upload.fps - fps) > 1e-3:
        notes.append(f"{what}: resampled from {upload.fps:g} to {fps:g} fps, the model's rate "
                     f"({upload.frames} frames became {frames_read})")
    if window and frames_read < window:
        what_it_is = "an image" if upload.frames == 1 and upload.fps is None else \
            f"{frames_read} frame{'s' * (frames_read != 1)}, fewer than the {window} the encoder reads at once"
        notes.append(f"{what} is {what_it_is}: its first frame is held still for {window} frames, "
                     "so it does not move")
    return notes
