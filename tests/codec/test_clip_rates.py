"""A clip's frame rate kept from the file read to the file written: encode / decode, reconstruct,
transfer, and the rate assumed for inputs without one."""
import re

import av
import numpy as np
import pytest
from PIL import Image

from motionbits.cli import main
from motionbits.codec import read_file
from motionbits.errors import MotionbitsError
from motionbits.frame_rate import UNTIMED_FPS
from motionbits.visualize import save_video


def _write_clip(path, frames: int, fps: int, side: int = 64):
    """A synthetic clip (a bright block sliding right) written by PyAV at `fps`."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        for t in range(frames):
            frame = np.full((side, side, 3), 60, np.uint8)
            frame[20:30, t % (side - 10):t % (side - 10) + 10] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _rate_and_seconds(path) -> tuple[float, int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return float(stream.average_rate), frames, container.duration / 1e6


@pytest.fixture(scope="module")
def clip30(tmp_path_factory):
    return _write_clip(tmp_path_factory.mktemp("rates") / "clip30.mp4", 120, 30)     # 4 s at 30 fps


def test_a_30_fps_clip_of_4_seconds_stays_30_fps_and_4_seconds(run, clip30, tmp_path, capsys):
    use = ["--checkpoint", str(run), "--device", "cpu"]
    assert main(["encode", str(clip30), *use, "-o", str(tmp_path / "clip.mbits")]) == 0
    said = capsys.readouterr().out
    header = read_file((tmp_path / "clip.mbits").read_bytes(), "clip.mbits").header
    assert header.fps == 30 and header.frames == 120
    total = (tmp_path / "clip.mbits").stat().st_size
    kbps = float(re.search(r"([\d.]+) kbps in all for this 4.00 s clip", said).group(1))
    assert kbps == pytest.approx(8 * total / 4.0 / 1000, abs=1e-3)        # over the real 4 s, not 120 / 25

    assert main(["decode", str(tmp_path / "clip.mbits"), *use, "-o", str(tmp_path / "decoded.mp4")]) == 0
    assert main(["reconstruct", *use, "--input", str(clip30), "-o", str(tmp_path / "rebuilt.mp4")]) == 0
    for name in ("decoded.mp4", "rebuilt.mp4"):
        fps, frames, seconds = _rate_and_seconds(tmp_path / name)
        assert (fps, frames) == (30, 120) and seconds == pytest.approx(4.0, abs=0.05), name


def test_a_resampled_input_comes_out_at_the_new_rate_and_the_same_duration(run, clip30, tmp_path, capsys):
    use = ["--checkpoint", str(run), "--device", "cpu", "--input-fps", "10"]
    assert main(["reconstruct", *use, "--input", str(clip30), "-o", str(tmp_path / "rebuilt.mp4")]) == 0
    assert "40 frames at 10 fps, 4.00 s (resampled from the source's 30 fps" in capsys.readouterr().out
    fps, frames, seconds = _rate_and_seconds(tmp_path / "rebuilt.mp4")
    assert (fps, frames) == (10, 40) and seconds == pytest.approx(4.0, abs=0.05)
    assert main(["encode", str(clip30), *use, "--fps", "50", "-o", str(tmp_path / "c.mbits")]) == 0   # --fps: untimed inputs only
    assert read_file((tmp_path / "c.mbits").read_bytes(), "c.mbits").header.fps == 10


def test_an_input_without_a_rate_gets_the_default_or_encode_s_fps(run, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for t in range(8):
        Image.new("RGB", (64, 64), (10 * t, 50, 90)).save(frames / f"{t:03d}.png")
    use = ["--checkpoint", str(run), "--device", "cpu"]
    assert main(["reconstruct", *use, "--input", str(frames), "-o", str(tmp_path / "r.mp4")]) == 0
    assert _rate_and_seconds(tmp_path / "r.mp4")[:2] == (UNTIMED_FPS, 8)
    assert main(["encode", str(frames), *use, "-o", str(tmp_path / "a.mbits")]) == 0
    assert main(["encode", str(frames), *use, "--fps", "12", "-o", str(tmp_path / "b.mbits")]) == 0
    assert [read_file((tmp_path / n).read_bytes(), n).header.fps for n in ("a.mbits", "b.mbits")] == [UNTIMED_FPS, 12]


@pytest.mark.parametrize("fps", [0.0, float("inf"), float("nan"), -8.0, 0.001])
def test_the_video_writers_refuse_an_unusable_rate(tmp_path, fps):
    for name in ("o.gif", "o.mp4"):
        with pytest.raises(MotionbitsError, match=f"{name}: frame rate"):
            save_video(np.zeros((2, 16, 16, 3), np.uint8), tmp_path / name, fps=fps)
    assert not list(tmp_path.iterdir())


def test_a_transfer_plays_at_its_driver_s_rate(run, clip30, tmp_path, capsys):
    assert main(["transfer", "--checkpoint", str(run), "--device", "cpu", "--content", str(clip30),
                 "--motion", str(clip30), "--frames", "60", "-o", str(tmp_path / "t.mp4")]) == 0
    fps, frames, seconds = _rate_and_seconds(tmp_path / "t.mp4")
    assert (fps, frames) == (30, 60) and seconds == pytest.approx(2.0, abs=0.05)


def test_the_python_api_reads_a_clip_with_its_rate(run, clip30):
    from motionbits.api import MotionBits

    pipe = MotionBits.from_checkpoint(run)
    own, resampled = pipe.read_clip(str(clip30)), pipe.read_clip(str(clip30), input_fps=10)
    assert (own.fps, own.source_fps, len(own.frames)) == (30, 30, 120) and not own.resampled
    assert (resampled.fps, len(resampled.frames)) == (10, 40) and resampled.resampled
