"""The trained model from Python and from the command line, on tiny video clips."""
import numpy as np
import torch

from motionbits.api import MotionBits
from motionbits.data.video import build_video_dataset
from motionbits.models.bcd import BCDModel
from motionbits.models.tokenizer import PixelTokenizer
from motionbits.training.bcd import train
from tests.data.test_video import moving_square, write_video
from tests.helpers import tiny_config


def test_transfer_feeds_videos_at_the_rate_the_model_trained_on(tmp_path, capsys):
    from PIL import Image

    from motionbits.cli import main
    from motionbits.data.media import read_clip

    src = tmp_path / "src"
    for person in ("anna", "ben"):
        write_video(src / person / "take.mp4", moving_square(24, seed=len(person)), fps=10)
    root = tmp_path / "clips"
    build_video_dataset(src, root, size=16, frames=4, stride=4, fps=5, test_fraction=0.5, progress=False)
    cfg = tiny_config(data={"kind": "video", "root": str(root), "frames": 4, "image_size": 16}, train={"steps": 1})
    train(cfg, tmp_path / "run", progress=False)
    assert MotionBits.from_checkpoint(tmp_path / "run").cfg.data.fps == 5.0     # kept in the checkpoint
    driving = src / "anna" / "take.mp4"
    np.testing.assert_array_equal(read_clip(driving, 16, fps=5), read_clip(driving, 16)[::2])
    for extra, frames in (([], 12), (["--input-fps", "0"], 24)):   # 24 frames at 10 fps = 2.4 s
        out = tmp_path / f"out{len(extra)}.gif"
        assert main(["transfer", "--checkpoint", str(tmp_path / "run"), "--content", str(driving),
                     "--motion", str(src / "ben" / "take.mp4"), "-o", str(out), *extra]) == 0
        with Image.open(out) as gif:
            assert gif.n_frames == frames


def test_pipeline_reads_relative_motion_against_the_given_reference():
    clips = torch.randint(0, 256, (2, 8, 16, 16, 3), dtype=torch.uint8)
    reference = torch.randint(0, 256, (2, 4, 16, 16, 3), dtype=torch.uint8)
    plain_cfg, relative_cfg = tiny_config(), tiny_config(model={"relative_motion": True})
    plain = MotionBits(BCDModel(plain_cfg, 3, 16).eval(), PixelTokenizer(), plain_cfg, torch.device("cpu"))
    assert torch.equal(plain.encode_motion(clips), plain.encode_motion(clips, reference))  # ignored
    relative = MotionBits(BCDModel(relative_cfg, 3, 16).eval(), PixelTokenizer(), relative_cfg, torch.device("cpu"))
    assert torch.equal(relative.encode_motion(clips), relative.encode_motion(clips, clips[:, :4]))
    assert not torch.equal(relative.encode_motion(clips), relative.encode_motion(clips, reference))


