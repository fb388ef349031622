"""Face metrics on real faces (tests/face_media.py): identity, AKD, motion following, baselines, `score`."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from motionbits.evaluation.face_protocol import TransferFaces
from motionbits.evaluation.face_signals import POSE_MODEL, POSE_POINTS, head_pose
from motionbits.evaluation.faces import (FaceReadings, akd, aed, identity_to, motion_following, read_faces,
                                         score_pair)
from tests.face_media import carphone, grace_clip


@pytest.fixture(scope="module")
def man() -> FaceReadings:
    """Landmarks of all 120 carphone frames."""
    return read_faces(carphone(), embed=False)


def test_identity_separates_one_person_from_another(man):
    early, late = read_faces(carphone()[:24], embed_every=8), read_faces(carphone()[90:114], embed_every=8)
    grace = read_faces(grace_clip(8), embed_every=4)
    same, other = identity_to(late, early.mean_embedding()), identity_to(grace, early.mean_embedding())
    assert same["same_person"] == 1.0 and other["same_person"] == 0.0       # dlib's 0.6 threshold
    assert same["csim"] > 0.95 and same["csim"] > other["csim"] + 0.05
    assert aed(late, early) < 0.6 < aed(read_faces(grace_clip(24), embed_every=8), early)
    assert identity_to(grace, None)["csim"] is None


def test_akd_is_zero_for_the_same_video_and_grows_with_a_shift():
    clip = carphone()[:6]
    gt = read_faces(clip, embed=False)
    assert gt.found.all() and akd(gt, gt)["akd"] == 0.0
    shifted = [akd(read_faces(np.roll(clip, s, axis=2), embed=False), gt) for s in (3, 9)]
    assert 0 < shifted[0]["akd"] < shifted[1]["akd"]
    # 9 px right of a 176-px frame: the landmarks move about 9 px, 13 px of a 256-px frame
    assert 9 < shifted[1]["akd_px256"] < 17


def test_head_pose_recovers_the_angles_of_a_rotated_template():
    for yaw, pitch, roll in ((20, 0, 0), (0, 15, 0), (0, 0, 10), (15, -10, 5)):
        y, p, r = map(math.radians, (yaw, pitch, roll))
        rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
        ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
        rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
        landmarks = np.zeros((68, 2))
        landmarks[POSE_POINTS] = (0.3 * POSE_MODEL @ (rz @ ry @ rx).T)[:, :2] + [100, 80]
        assert np.allclose(head_pose(landmarks), [yaw, pitch, roll], atol=1e-6)


def test_motion_following_is_one_for_the_same_video_and_low_when_shuffled(man):
    assert man.found.mean() > 0.95
    same = motion_following(man, man)
    assert all(same[s] == pytest.approx(1.0) for s in ("mouth", "eyes", "yaw", "pitch", "roll", "motion"))
    order = np.random.default_rng(0).permutation(len(man.found))
    shuffled = FaceReadings(man.found[order], man.landmarks[order], man.embeddings[order], man.size)
    r = motion_following(shuffled, man)
    assert abs(r["mouth"]) < 0.3 and abs(r["motion"]) < 0.3


def test_baselines_land_where_they_must():
    driver, content = carphone()[:16], grace_clip(8)
    report = score_pair(driver, driver, content, embed_every=4)
    rec, t = report["reconstruction"], report["transfer"]
    assert rec["akd"] == 0 and rec["aed"] == 0 and rec["psnr_db"] == float("inf")
    still, copy = t["still"], t["copy driver"]
    assert still["csim"] > 0.97 and still["same_person"] == 1.0 and still["motion"] == 0.0   # the right person, frozen
    assert copy["motion"] == pytest.approx(1.0) and copy["same_person"] == 0.0              # all motion, wrong person
    assert copy["csim"] < still["csim"] - 0.05
    # Neither baseline counts as a transfer: still does not move, copy driver is not nearer the content.
    faces = TransferFaces(embed_every=4)
    faces.add(content[None, :8], driver[None, :8], content[None, :1].repeat(8, axis=1))
    faces.add(content[None, :8], driver[None, :8], driver[None, :8])
    summary = faces.summary()
    assert summary["pairs"] == 2 and summary["counts"] == 0.0
    assert summary["model"]["found"] == 1.0 and summary["content_found"] == 1.0


def test_missing_faces_extra_is_one_line(monkeypatch):
    import importlib.util

    from motionbits import face_models
    from motionbits.errors import MotionbitsError

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert not face_models.faces_available()
    with pytest.raises(MotionbitsError, match=r"pip install 'motionbits\[faces\]'$"):
        face_models.model_folder()


def test_score_command(tmp_path, capsys):
    from motionbits.cli import main
    from tests.helpers import write_video

    a, c = write_video(tmp_path / "a.mp4", carphone()[:12]), write_video(tmp_path / "c.mp4", grace_clip(4))
    b = write_video(tmp_path / "b.mp4", np.roll(carphone()[:12], 6, axis=2))
    assert main(["score", str(a), str(b), "--content", str(c), "--size", "144", "--embed-every", "6", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 12 and report["reconstruction"]["akd"] > 0
    assert report["transfer"]["copy driver"]["motion"] == pytest.approx(1.0)
    long = report["long_motion"]                            # c.mp4 has 4 frames: too short for a null row
    assert list(long) == ["B"] and set(long["B"]["groups"]) == {"mouth", "head pose"}
    assert main(["score", str(a), str(b), "--size", "144", "--embed-every", "6"]) == 0
    printed = capsys.readouterr().out
    assert "| AKD (inter-ocular) |" in printed and "| head pose group |" in printed
    assert main(["score", str(a), str(tmp_path / "missing.mp4")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_evaluate_video_puts_face_measures_beside_their_baselines(tmp_path):
    """A tiny untrained model on face-cropped real clips: its own numbers are noise, but the
    baselines and the columns must be right."""
    from motionbits.api import MotionBits
    from motionbits.data.video import build_video_dataset
    from motionbits.evaluation.video import evaluate_video
    from motionbits.training.bcd import train
    from tests.helpers import tiny_config, write_video

    src = tmp_path / "src"
    clips = {"man_a": carphone()[:24], "man_b": carphone()[60:84], "grace_a": grace_clip(24), "grace_b": grace_clip(24)[::-1]}
    for name, frames in clips.items():
        (src / name).mkdir(parents=True)
        write_video(src / name / "take.mp4", frames, fps=25)
    root = tmp_path / "clips"
    build_video_dataset(src, root, size=96, frames=8, stride=8, test_fraction=0.5, crop="face", progress=False)
    cfg = tiny_config(data={"kind": "video", "root": str(root), "image_size": 96, "frames": 8},
                      model={"patch_size": 8}, train={"steps": 1})
    train(cfg, tmp_path / "run", progress=False)
    report = evaluate_video(MotionBits.from_checkpoint(tmp_path / "run"), tmp_path / "eval", clips=3, steps=1, progress=False,
                            seam_frames=8, face_every=8, long_frames=16)
    faces = report["faces"]
    rec, tra = faces["reconstruction"]["unseen"], faces["transfers"]["unseen"]
    assert rec["target_found"] > 0.9 and rec["tokenizer_only"]["akd"] == 0 and rec["tokenizer_only"]["aed"] == 0
    assert rec["still"]["akd"] > 0 and rec["still"]["aed"] < 0.6                 # the right person, frozen
    assert tra["still"]["csim"] > 0.95 and tra["still"]["motion"] == 0.0
    assert tra["copy driver"]["motion"] == pytest.approx(1.0) and tra["copy driver"]["csim"] < tra["still"]["csim"]
    assert faces["transfers"]["seen"]["pairs"] == tra["pairs"] > 0
    table = (tmp_path / "eval" / "eval.md").read_text()
    assert "| set | method | pairs | CSIM to A (dlib cosine) |" in table and "| copy driver |" in table
    still_row = next(line for line in table.splitlines() if line.startswith("|  | still | ") and "dlib" not in line
                     and f"{tra['still']['csim']:.3f}" in line)
    assert still_row.count("|") == 9                                                # the transfer table's 8 columns
    long = faces["long_motion"]["unseen"]                   # each 24-frame test video: one window of 16 frames
    assert long["windows"] == 2 and long["frames"] == 16 and set(long["transfer"]) == {"model", "tokenizer only", "null"}
    assert "## Face motion over long sequences (windows of 16 frames or more)" in table
    assert "|  | transfer | model | 2 (2) |" in table
