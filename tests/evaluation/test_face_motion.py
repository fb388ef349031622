"""Face motion over long sequences (evaluation/face_motion.py): signals from synthetic landmarks, r pooled
over sequences, and bootstrap intervals over videos that cover the truth and shrink with more videos."""
from __future__ import annotations

import math

import numpy as np
import pytest

from motionbits.evaluation.face_motion import MotionFollowing, following_summary, sums
from motionbits.evaluation.face_signals import POSE_MODEL, POSE_POINTS, motion_signals

TEMPLATE = np.random.default_rng(0).uniform(30, 70, (68, 2))        # points no signal reads stay put


def face(mouth: float, yaw: float = 0.0, shift=(0.0, 0.0), scale: float = 1.0) -> np.ndarray:
    """68 landmarks [68, 2]: the 6 pose points of a generic face turned by `yaw` degrees, inner lips
    `mouth` px apart, the whole face moved by `shift` and scaled about its centre."""
    p = TEMPLATE.copy()
    a = math.radians(yaw)
    turn = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    p[POSE_POINTS] = (POSE_MODEL - POSE_MODEL.mean(0)) @ turn.T[:, :2] / 6 + 50
    for k, x in zip((61, 62, 63), (46, 50, 54)):
        p[k] = (x, 72 - mouth / 2)
    for k, x in zip((67, 66, 65), (46, 50, 54)):
        p[k] = (x, 72 + mouth / 2)
    return (p - 50) * scale + 50 + np.asarray(shift)


def talking(frames: int, seed: int) -> np.ndarray:
    """A driver whose mouth opens and closes and whose head turns and drifts: landmarks [L, 68, 2]."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)
    mouth = 6 + 5 * np.sin(2 * np.pi * t / rng.uniform(5, 9) + rng.uniform(0, 6))
    yaw = 12 * np.sin(2 * np.pi * t / rng.uniform(20, 40) + rng.uniform(0, 6))
    shift = np.cumsum(rng.normal(0, 0.5, (frames, 2)), axis=0)
    scale = 1 + 0.05 * np.sin(2 * np.pi * t / rng.uniform(15, 30))
    return np.stack([face(mouth[i], yaw[i], shift[i], scale[i]) for i in range(frames)])


def test_signals_read_what_the_synthetic_face_does():
    s = motion_signals(np.stack([face(2), face(8), face(8, yaw=15), face(8, shift=(5, -3)), face(8, scale=1.2)]))
    assert s["mouth"][1] > s["mouth"][0] * 3
    assert abs(s["yaw"][2] - s["yaw"][1]) > 10 and abs(s["pitch"][2] - s["pitch"][1]) < 3
    assert np.allclose(s["centre_x"][3] - s["centre_x"][1], 5) and np.allclose(s["centre_y"][3] - s["centre_y"][1], -3)
    assert np.isclose(s["size"][4] / s["size"][1], 1.2)


def test_a_copy_follows_with_r_near_one_and_a_still_output_with_r_zero():
    rows = MotionFollowing()
    for video in range(6):
        driver = talking(40, seed=video)
        copy = driver + np.random.default_rng(10 + video).normal(0, 0.05, driver.shape)
        rows.add("copy", video, copy, driver)
        rows.add("still", video, np.repeat(driver[:1], 40, axis=0), driver)
        rows.add("null", video, talking(40, seed=100 + video), driver)
    out = rows.summary(draws=300)
    copy, still, null = out["copy"], out["still"], out["null"]
    assert copy["videos"] == 6 and copy["sequences"] == 6
    assert copy["groups"]["mouth"]["r_pooled"] > 0.98 and copy["groups"]["head pose"]["r_pooled"] > 0.9
    assert copy["groups"]["mouth"]["ci"][0] > 0.95
    assert still["groups"]["mouth"]["r_pooled"] == 0 and still["groups"]["head pose"]["r_pooled"] == 0
    assert still["signals"]["mouth"]["r_mean"] == 0 and still["signals"]["mouth"]["r_each"] == [0.0] * 6
    assert min(copy["signals"]["mouth"]["r_each"]) > 0.98                       # every sequence, not just the pool
    lo, hi = null["groups"]["mouth"]["ci"]
    assert lo < 0.5 and abs(null["groups"]["mouth"]["r_pooled"]) < 0.5


def correlated_videos(videos: int, rng: np.random.Generator, frames: int = 40) -> list[tuple[int, dict]]:
    """Two sequences a video; each video has its own r (0.2-0.8, mean 0.5 = the truth of the pooled r,
    every signal of unit variance) and its own resting levels, which are not motion."""
    out = []
    for v in range(videos):
        rho, offsets = rng.uniform(0.2, 0.8), rng.normal(0, 5, 2)
        for _ in range(2):
            x = rng.normal(size=frames)
            y = rho * x + math.sqrt(1 - rho ** 2) * rng.normal(size=frames)
            out.append((v, {"mouth": sums(offsets[0] + y, offsets[1] + x)} | {s: None for s in (
                "eyes", "yaw", "pitch", "roll", "centre_x", "centre_y", "size")}))
    return out


def test_the_bootstrap_interval_covers_the_truth_and_shrinks_with_more_videos():
    rng = np.random.default_rng(1)
    covered, widths = {20: 0, 80: 0}, {20: [], 80: []}
    trials = 30
    for trial in range(trials):
        for videos in (20, 80):
            r = following_summary(correlated_videos(videos, rng), draws=400, seed=trial)["signals"]["mouth"]
            lo, hi = r["ci"]
            covered[videos] += lo <= 0.5 <= hi
            widths[videos].append(hi - lo)
            assert r["r_mean_ci"][0] <= r["r_mean"] <= r["r_mean_ci"][1]
    assert covered[20] >= 0.8 * trials and covered[80] >= 0.8 * trials        # 95 % intervals: 28.5 of 30 expected
    assert np.mean(widths[80]) < 0.65 * np.mean(widths[20])                     # 1/sqrt(4) = 0.5 expected


def test_video_windows_tile_each_video_and_take_the_videos_in_turn():
    from motionbits.evaluation.face_protocol import video_windows

    video, start = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2]), np.array([0, 8, 16, 24, 32, 0, 8, 99, 0])
    assert video_windows(video, start, 8, 16) == [(0, [0, 1]), (1, [5, 6]), (0, [2, 3])]
    assert video_windows(video, start, 8, 32) == [(0, [0, 1, 2, 3])]


class CopyPipe:
    """A stand-in model: a reconstruction (content and motion from one video) is the video itself, a
    transfer onto another content holds the driver's first frame still."""

    def transfer(self, content, driving, steps=None, seed=0):
        import torch

        copy = torch.as_tensor(driving).clone()
        return copy if content is driving else copy[:, :1].expand_as(copy).clone()

    def to_latents(self, frames):
        import torch

        return torch.as_tensor(frames)

    def to_frames(self, z):
        return z


def test_long_face_motion_on_real_faces_puts_a_copy_at_one_and_a_still_result_at_zero():
    """Two people, two 32-frame windows each (the talking man, Grace Hopper's photo sliding in the
    frame): a result that copies its driver follows it with r = 1, one that holds still with r = 0."""
    from motionbits.evaluation.face_protocol import long_face_motion, video_windows
    from tests.face_media import carphone, grace_clip

    frames = np.concatenate([carphone()[:64].reshape(4, 16, 144, 176, 3), grace_clip(64).reshape(4, 16, 144, 176, 3)])
    labels = {"video": np.repeat([0, 1], 4), "start": np.tile([0, 16, 32, 48], 2), "identity": np.repeat([5, 7], 4)}
    windows = video_windows(labels["video"], labels["start"], 16, 32)
    assert len(windows) == 4
    other = lambda i: 4 if i < 4 else 0                                            # noqa: E731
    report = long_face_motion(CopyPipe(), frames, labels, windows, other, steps=None, seed=0, draws=200)
    assert report["windows"] == 4 and report["videos"] == 2 and report["frames"] == 32
    copy, still = report["reconstruction"]["model"], report["transfer"]["model"]
    assert copy["groups"]["head pose"]["r_pooled"] == pytest.approx(1.0)
    assert copy["signals"]["mouth"]["r_pooled"] == pytest.approx(1.0)              # the man's mouth moves
    assert still["groups"]["head pose"]["r_pooled"] == 0.0 and still["groups"]["mouth"]["r_pooled"] == 0.0
    for kind in ("reconstruction", "transfer"):
        assert report[kind]["tokenizer only"]["groups"]["head pose"]["r_pooled"] == pytest.approx(1.0)
        assert report[kind]["null"]["sequences"] == 4                             # each window against the other person
    assert abs(report["transfer"]["null"]["groups"]["head pose"]["r_pooled"]) < 0.9
