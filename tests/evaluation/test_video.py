"""The talking-head protocol's pieces, and training + evaluating on a folder of tiny synthetic videos."""
import json

import numpy as np

from motionbits.data.video import build_video_dataset
import torch

from motionbits.api import MotionBits
from motionbits.evaluation.video import (evaluate_video, long_sequences, looks, movement_follow, nearest_identity,
                                         same_video_pairs, seam_ratio)
from motionbits.training.bcd import train
from tests.data.test_video import moving_square, write_video
from tests.helpers import tiny_config


def test_same_video_pairs_take_first_and_last_clip():
    video = np.array([0, 0, 1, 0, 2, 2])
    start = np.array([8, 0, 0, 16, 4, 0])
    assert same_video_pairs(video, start) == [(1, 3), (5, 4)]


def test_long_sequences_tile_a_video_back_to_back():
    video = np.array([0, 0, 0, 0, 1, 1, 2])
    start = np.array([0, 4, 8, 16, 0, 4, 0])     # video 0: clips at 0, 8, 16 tile 24 frames (clip of 8)
    assert long_sequences(video, start, clip_frames=8, frames=32) == [[0, 2, 3]]
    assert long_sequences(video, start, clip_frames=8, frames=16) == [[0, 2]]
    assert long_sequences(video, start, clip_frames=4, frames=8) == [[0, 1], [4, 5]]


def test_seam_ratio_sees_jumps_at_window_borders_only():
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(16, dtype=torch.float32)
    smooth = (t[None, :, None, None, None] * 8 + torch.zeros(2, 16, 4, 4, 3)).to(torch.uint8)   # steady motion
    assert abs(seam_ratio(smooth, smooth, window=4)["seam_ratio"] - 1) < 1e-6
    jumpy = smooth.clone().float()
    jumpy[:, 4:] += 40                       # a jump between frame 3 and 4 (a window border)
    jumpy[:, 8:] -= 40
    result = jumpy.clamp(0, 255).to(torch.uint8)
    assert seam_ratio(result, smooth, window=4)["seam_ratio"] > 2
    # The same jump inside a window is not a seam.
    inside = smooth.clone().float()
    inside[:, 6:] += 40
    assert seam_ratio(inside.clamp(0, 255).to(torch.uint8), smooth, window=4)["seam_ratio"] < 1
    noisy = torch.randint(0, 255, (2, 16, 4, 4, 3), generator=gen, dtype=torch.uint8)
    assert 0.5 < seam_ratio(noisy, smooth, window=4)["seam_ratio"] < 2


def _square_at(positions: list[int], colour: int) -> torch.Tensor:
    """uint8 [L, 16, 40, 3]: a 12-px square at the given x positions over a dark background."""
    frames = torch.full((len(positions), 16, 40, 3), 20, dtype=torch.uint8)
    for t, x in enumerate(positions):
        frames[t, 2:14, x:x + 12] = colour
    return frames


def test_movement_follow_tells_a_follower_from_a_result_that_returns_every_window():
    rng = np.random.default_rng(0)
    paths = [np.clip(5 + np.cumsum(rng.integers(-2, 3, 16)), 0, 10).tolist() for _ in range(4)]   # stop and go
    driving = torch.stack([_square_at(p, 200) for p in paths])
    follower = torch.stack([_square_at(p, 120) for p in paths])           # another look, the same movement
    faithful = movement_follow(follower, driving)
    assert faithful["change_follow"] > 0.99 and faithful["drift_follow"] > 0.99
    # Drift courses of unrelated walks correlate too (both tend to grow), hence the chance column.
    assert faithful["change_follow_mismatched"] < 0.5 and faithful["drift_follow_mismatched"] < 0.7
    # Moves within each 4-frame window but starts every window from the first position again.
    resetting = torch.stack([_square_at([p[0] + p[t] - p[t - t % 4] for t in range(16)], 120) for p in paths])
    assert movement_follow(resetting, driving)["drift_follow"] < faithful["drift_follow"] - 0.3
    assert movement_follow(driving[:1], driving[:1])["drift_follow_mismatched"] is None


def test_looks_attribute_a_clip_to_the_identity_it_resembles():
    gen = torch.Generator().manual_seed(0)
    red, blue = torch.zeros(4, 8, 32, 32, 3, dtype=torch.uint8), torch.zeros(4, 8, 32, 32, 3, dtype=torch.uint8)
    red[..., 0], blue[..., 2] = 200, 200
    red[:, :, 8:16, 8:16] = 255                              # a bright square, and noise, on top
    red = (red.float() + torch.randint(0, 20, red.shape, generator=gen)).clamp(0, 255).to(torch.uint8)
    gallery = torch.stack([looks(red).mean(0), looks(blue).mean(0)])
    assert looks(red).shape == (4, 3 * 16 * 16)
    ids = np.array([7, 9])
    assert list(nearest_identity(looks(blue), gallery, ids)) == [9] * 4
    moved = red.roll(shifts=2, dims=1)                       # the same clip, frames in another order
    assert list(nearest_identity(looks(moved), gallery, ids)) == [7] * 4


def test_train_and_evaluate_on_videos(tmp_path):
    src = tmp_path / "src"
    for person in ("anna", "ben", "cleo", "dora"):
        for take in range(2):
            (src / person).mkdir(parents=True, exist_ok=True)
            write_video(src / person / f"take{take}.mp4", moving_square(24, seed=take + 3 * len(person)))
    root = tmp_path / "clips"
    build_video_dataset(src, root, size=16, frames=8, stride=8, test_fraction=0.5, progress=False)
    cfg = tiny_config(data={"kind": "video", "root": str(root), "image_size": 16},
                      train={"steps": 2, "log_every": 1})
    train(cfg, tmp_path / "run", progress=False)
    pipe = MotionBits.from_checkpoint(tmp_path / "run")
    report = evaluate_video(pipe, tmp_path / "eval", steps=1, progress=False, faces=False)
    rec, tra = report["reconstruction"], report["transfers"]
    assert rec["unseen"]["videos"] == 4 and rec["new_drivers"] is None and rec["seen"]["videos"] == 4   # 2 people x 2 videos
    model, still = rec["unseen"]["model"], rec["unseen"]["still"]
    assert still["psnr_db"] != model["psnr_db"] and rec["unseen"]["tokenizer_only"]["psnr_db"] == float("inf")
    assert json.loads((tmp_path / "eval" / "eval.json").read_text())["config"] == "tiny"
    whose = tra["unseen"]["whose_look"]
    assert abs(whose["content"] + whose["driver"] + whose["other"] - 1) < 1e-6
    assert report["whose_look_instrument"]["identities"] == 4
    # the same transfers between training people, and training people driven by the held-out ones
    assert tra["seen"]["pairs"] == tra["new_drivers"]["pairs"] == tra["unseen"]["pairs"] > 0
    seams = report["window_seams"]             # 24-frame videos: long transfers over 6 windows of 4
    assert seams["frames"] > seams["window"] and seams["seam_ratio"] > 0
    from PIL import Image

    with Image.open(tmp_path / "eval" / "transfers_held_out.png") as png:   # driver + result row per transfer
        rows, columns = 2 * min(4, seams["sequences"]), 1 + 12       # content + every 2nd of 24 frames
        assert png.size == (columns * 16 + (columns - 1) * 2, rows * 16 + (rows - 1) * 2)
    with Image.open(tmp_path / "eval" / "transfers_held_out.gif") as gif:
        assert gif.n_frames == seams["frames"] and gif.size[0] == 3 * 16 + 2 * 2
    assert "transfers_training_people.gif" in (tmp_path / "eval" / "eval.md").read_text()
    reliance = report["decoder_reliance"]             # a few training and test clips, each person's codes
    assert set(reliance) == {"train", "test"} and set(reliance["test"]["gap"]) == {"shuffled", "held", "other"}
    assert "## Decoder reliance" in (tmp_path / "eval" / "eval.md").read_text()




def test_new_videos_of_known_people_count_as_seen(tmp_path):
    """--test-videos holding back one video of a training person and one new driver: the held-back
    video is reconstructed in the seen-people column and driven by the new driver there; the
    unseen column holds only the person never trained on."""
    src = tmp_path / "src"
    for person, takes in (("me", 3), ("ann", 1), ("bob", 1)):
        for take in range(takes):
            write_video(src / person / f"take{take}.mp4", moving_square(24, seed=take + 5 * len(person)))
    root = tmp_path / "clips"
    build_video_dataset(src, root, size=16, frames=8, stride=8, test_videos="bob/|me/take2", progress=False)
    train(tiny_config(data={"kind": "video", "root": str(root), "image_size": 16}, train={"steps": 1}),
          tmp_path / "run", progress=False)
    report = evaluate_video(MotionBits.from_checkpoint(tmp_path / "run"), tmp_path / "eval", steps=1, progress=False,
                            faces=False)
    rec, tra = report["reconstruction"], report["transfers"]
    assert rec["unseen"]["videos"] == 1 and rec["new_drivers"]["videos"] == 1     # bob's video; me/take2
    assert tra["new_drivers"]["pairs"] > 0 and tra["unseen"]["pairs"] > 0
    table = (tmp_path / "eval" / "eval.md").read_text()
    assert "| seen people, new videos / new drivers | model | 1 |" in table
