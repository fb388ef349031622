"""Upload checks of the app: each bad upload is one line naming the file by its name (not the
server's path), refused before its frames are decoded; a good clip passes with its frames and rate."""
from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from motionbits.app import inputs
from motionbits.app.inputs import MAX_FRAMES, check_upload, read_upload
from motionbits.errors import MotionbitsError
from tests.helpers import moving_square_video, write_video


def refused(path, what: str = "clip") -> str:
    with pytest.raises(MotionbitsError) as err:
        check_upload(path, what)
    message = str(err.value)
    assert "\n" not in message and (path is None or str(path.parent) not in message)
    return message


def test_good_clip_and_image_pass_with_their_frames_and_rate(tmp_path):
    clip = check_upload(write_video(tmp_path / "walk.mp4", moving_square_video(12, 16), fps=8), "clip")
    assert (clip.name, clip.frames, clip.fps) == ("walk.mp4", 12, 8)
    Image.new("RGB", (40, 30)).save(tmp_path / "face.png")
    assert check_upload(tmp_path / "face.png", "content").frames == 1
    assert read_upload(clip, 16, None, window=8).shape == (12, 16, 16, 3)
    assert read_upload(clip, 16, 4.0, window=4).shape == (6, 16, 16, 3)          # resampled to the model's rate
    held = read_upload(clip, 16, None, window=16)               # shorter than the window: its first frame held
    assert held.shape == (16, 16, 16, 3) and (held == held[:1]).all()
    assert read_upload(check_upload(tmp_path / "face.png", "content"), 16, None, window=4).shape == (4, 16, 16, 3)


def test_bad_uploads_are_one_line_each(tmp_path):
    assert "no file" in refused(None, "content")
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert "content empty.mp4: the file is empty" in refused(tmp_path / "empty.mp4", "content")
    (tmp_path / "notes.txt").write_text("hello")
    assert "unsupported file type '.txt'" in refused(tmp_path / "notes.txt")
    (tmp_path / "holiday.mp4").write_text("a text file renamed .mp4")
    assert "holiday.mp4: cannot be read as video" in refused(tmp_path / "holiday.mp4")
    (tmp_path / "photo.png").write_text("not a png")
    assert "photo.png: not a readable image" in refused(tmp_path / "photo.png")


def test_limits_are_checked_before_decoding(tmp_path, monkeypatch):
    big = tmp_path / "big.mp4"
    with open(big, "wb") as f:                                  # sparse: 51 MB of nothing, instantly
        f.truncate(51 * 2 ** 20)
    assert "51 MB, above the limit of 50 MB" in refused(big)
    Image.new("RGB", (2000, 8)).save(tmp_path / "wide.png")
    assert "2000 pixels wide or high" in refused(tmp_path / "wide.png")
    monkeypatch.setattr(av.VideoFrame, "to_image", lambda *a: pytest.fail("a frame was decoded"))
    monkeypatch.setattr(inputs, "MAX_FRAMES", 20)
    long = write_video(tmp_path / "long.mp4", moving_square_video(21, 16))
    assert "more than 20 frames" in refused(long)
    assert check_upload(write_video(tmp_path / "ok.mp4", moving_square_video(20, 16)), "clip").frames == 20


def test_a_video_without_frames_is_refused(tmp_path):
    path = tmp_path / "nothing.avi"
    with av.open(str(path), "w") as container:                  # a stream, but not one frame in it
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        container.start_encoding()
    assert "nothing.avi: contains no frames" in refused(path)


def test_the_default_limits_are_what_the_docs_say():
    assert (inputs.MAX_UPLOAD_MB, MAX_FRAMES, inputs.MAX_SIDE) == (50, 600, 1920)


def test_a_small_image_is_enlarged_with_sharp_pixels_and_the_note_says_so(tmp_path):
    from motionbits.app.notes import reading_notes

    board = np.indices((16, 16)).sum(0) % 2 * 200 + 30                 # a 16x16 checkerboard of two greys
    Image.fromarray(np.repeat(board[..., None], 3, axis=2).astype(np.uint8)).save(tmp_path / "sprite.png")
    upload = check_upload(tmp_path / "sprite.png", "content")
    frames = read_upload(upload, 64, None, window=None).numpy()         # [1, 64, 64, 3]
    assert set(np.unique(frames)) == {30, 230}                          # nearest: no blended greys
    assert (frames[0] == np.kron(board, np.ones((4, 4)))[..., None]).all()
    assert reading_notes(upload, "the content", 64, None, 1, None) == [
        "the content: 16 pixels a side enlarged with nearest neighbour (pixels stay sharp) to the model's 64"]
