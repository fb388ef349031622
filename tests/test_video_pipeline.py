"""Training and evaluating on a folder of videos: the real-video path end to end, on tiny synthetic clips."""
import json

import numpy as np

from motionbits.data.video import build_video_dataset
from motionbits.evaluate.video_eval import evaluate_video, same_video_pairs
from motionbits.pipeline import MotionBits
from motionbits.train import train

from conftest import tiny_config
from test_video_data import moving_square, write_video


def test_same_video_pairs_take_first_and_last_clip():
    video = np.array([0, 0, 1, 0, 2, 2])
    start = np.array([8, 0, 0, 16, 4, 0])
    assert same_video_pairs(video, start) == [(1, 3), (5, 4)]


def test_train_and_evaluate_on_videos(tmp_path):
    src = tmp_path / "src"
    for person in ("anna", "ben", "cleo"):
        for take in range(2):
            (src / person).mkdir(parents=True, exist_ok=True)
            write_video(src / person / f"take{take}.mp4", moving_square(24, seed=take + 3 * len(person)))
    root = tmp_path / "clips"
    build_video_dataset(src, root, size=16, frames=8, stride=8, test_fraction=0.67, progress=False)
    cfg = tiny_config(data={"kind": "video", "root": str(root), "image_size": 16}, train={"steps": 2})
    train(cfg, tmp_path / "run", progress=False)
    pipe = MotionBits.from_checkpoint(tmp_path / "run")
    report = evaluate_video(pipe, tmp_path / "eval", steps=1, progress=False)
    assert report["test_videos_with_pairs"] >= 1
    assert 0 <= report["same_identity"]["l1"] <= 1 and 0 <= report["cross_identity"]["code_agreement"] <= 1
    assert json.loads((tmp_path / "eval" / "eval.json").read_text())["config"] == "tiny"
