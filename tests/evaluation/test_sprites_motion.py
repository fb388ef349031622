"""The Sprites report's motion figures: per driver class, class-and-poses against the class alone,
and near-frozen outputs (no model, no training: judge outputs made by hand)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from motionbits.data.sprites import MOTION_NAMES, NUM_POSES, frame_poses
from motionbits.evaluation.sprites import NEAR_FROZEN_BELOW, motion_by_class, motion_lines, near_frozen, poses_by_frame


def judged(motion: torch.Tensor, poses: np.ndarray) -> dict[str, torch.Tensor]:
    """What a judge certain of these classes [N] and poses [N, T] would return."""
    return {"motion": F.one_hot(motion, 9).float(), "poses": F.one_hot(torch.as_tensor(poses), NUM_POSES).float()}


def test_per_class_table_counts_a_class_frozen_on_one_pose_as_not_transferred():
    motion = torch.arange(9).repeat_interleave(2)                     # 2 clips of each class
    poses = frame_poses(motion.numpy())                               # [18, 8]
    poses[motion == MOTION_NAMES.index("walk-right")] = poses[motion == MOTION_NAMES.index("walk-right")][:, :1]
    frozen = motion == MOTION_NAMES.index("walk-right")
    table = motion_by_class(judged(motion, poses), motion, frozen)
    assert list(table) == list(MOTION_NAMES)
    assert table["walk-right"] == {"clips": 2, "motion": 0.0, "motion_class_only": 1.0, "pose_frames": 1 / 8,
                                   "near_frozen": 1.0}
    assert all(c == {"clips": 2, "motion": 1.0, "motion_class_only": 1.0, "pose_frames": 1.0, "near_frozen": 0.0}
               for name, c in table.items() if name != "walk-right")
    report = {"motion_judging": {"misread_frames_allowed": 1, "near_frozen_below": NEAR_FROZEN_BELOW},
              "swap": {"motion_by_class": table}}
    lines = motion_lines(report)
    assert "| walk-right | 2 | 0.0 % | 100.0 % | 12.5 % | 100.0 % |" in lines
    assert sum(line.startswith(f"| {name} |") for name in MOTION_NAMES for line in lines) == 9


def test_near_frozen_compares_the_output_change_with_the_driver_change():
    rng = np.random.default_rng(0)
    driver = torch.from_numpy(rng.integers(0, 256, (3, 8, 4, 4, 3), dtype=np.uint8))
    still = driver[:, :1].expand_as(driver).clone()
    half = driver.clone()
    half[:, 1::2] = half[:, 0::2]                                     # 3 of its 7 steps move: 43 % of the change
    assert near_frozen(still, driver).all()
    assert not near_frozen(driver, driver).any() and not near_frozen(half, driver).any()


def test_poses_by_frame_shows_the_frames_a_decoder_never_learned():
    # The 1.1 demo's failure: every frame shows the last pose of the clip's class.
    motion = torch.arange(9).repeat_interleave(3)
    poses = frame_poses(motion.numpy())
    held_last = np.repeat(poses[:, -1:], 8, axis=1)
    by_frame = poses_by_frame(judged(motion, held_last), motion)
    assert len(by_frame) == 8 and by_frame[-1] == 1.0
    assert by_frame[1] == 0.0 and by_frame[3] == 0.0                  # no class holds pose 1 or 3 at its end
    assert poses_by_frame(judged(motion, poses), motion) == [1.0] * 8
