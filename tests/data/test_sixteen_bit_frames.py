"""16-bit frames (PNG "I;16") are scaled to 8 bits, not clipped at 255, wherever frames are read."""
import numpy as np
from PIL import Image

from motionbits.data.media import read_clip
from motionbits.data.video import build_video_dataset, load_video_clips

RAMP = np.linspace(0, 65535, 32 * 32).round().astype(np.uint16).reshape(32, 32)   # the whole 16-bit range
EXPECTED = np.round(RAMP / 257.0)


def _save_16bit(path, ramp=RAMP):
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode == "I;16"                  # Pillow reads it back as 16-bit grey
    return path


def test_a_16_bit_image_and_frame_folder_are_scaled_to_8_bits(tmp_path):
    image = read_clip(_save_16bit(tmp_path / "still.png"), size=32)                        # [1, 32, 32, 3]
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(3):
        _save_16bit(folder / f"{t}.png")
    clip = read_clip(folder, size=32)                                                       # [3, 32, 32, 3]
    for frames in (image, clip):
        assert (frames == 255).mean() < 0.01                 # clipping made 99.6 % of this ramp white
        assert np.abs(frames[..., 0].astype(int) - EXPECTED).max() <= 1
        assert (frames[..., 0] == frames[..., 2]).all()


def test_a_dataset_of_16_bit_frame_folders_is_scaled(tmp_path):
    for person in ("anna", "ben"):
        (tmp_path / "src" / person).mkdir(parents=True)
        for t in range(4):
            _save_16bit(tmp_path / "src" / person / f"{t}.png")
    build_video_dataset(tmp_path / "src", tmp_path / "data", size=32, frames=4, stride=4, progress=False)
    frames, _ = load_video_clips(tmp_path / "data", "train")
    assert np.abs(frames[0, 0, ..., 1].astype(int) - EXPECTED).max() <= 1
