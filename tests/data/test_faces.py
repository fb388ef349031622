"""--crop face on real faces (tests/face_media.py): tracks, cuts, steady centred crops, no-face skips."""
from __future__ import annotations

import json

import numpy as np
import pytest

from motionbits.data.faces import crop_frame, link_tracks, main_chains
from motionbits.data.video import build_video_dataset, load_video_clips
from motionbits.face_models import Face, face_models
from tests.face_media import carphone, grace_clip, on_canvas
from tests.helpers import moving_square_video, write_video


def _face(left: float, top: float, side: float) -> list[Face]:
    return [Face(np.array([left, top, left + side, top + side], float), 1.0)]


def test_linking_follows_a_face_and_breaks_at_jumps_gaps_and_cuts():
    steady = {t: _face(50 + t, 40, 60) for t in range(0, 20, 2)}               # one face drifting slowly
    assert [c.frames for c in link_tracks(steady, [], max_gap=4, min_iou=0.3)] == [list(range(0, 20, 2))]
    jump = {**steady, **{t: _face(200, 40, 60) for t in range(20, 30, 2)}}    # the box leaps away
    assert len(link_tracks(jump, [], 4, 0.3)) == 2
    gap = {**steady, **{t: _face(70, 40, 60) for t in range(30, 40, 2)}}      # lost for 12 frames
    assert len(link_tracks(gap, [], max_gap=4, min_iou=0.3)) == 2
    assert len(link_tracks(gap, [], max_gap=20, min_iou=0.3)) == 1
    assert len(link_tracks(steady, [10], 4, 0.3)) == 2                         # a shot change at frame 10
    # A small face in the background for a while: the main person's track is kept, it is dropped.
    crowd = {t: steady[t] + _face(0, 0, 20) for t in range(0, 12, 2)}
    chains = link_tracks({**steady, **crowd}, [], 4, 0.3)
    assert len(chains) == 2 and [c.frames for c in main_chains(chains, min_frames=4)] == [list(range(0, 20, 2))]


def test_crop_is_black_outside_the_frame():
    image = np.full((20, 20, 3), 200, np.uint8)
    from PIL import Image

    crop = crop_frame(Image.fromarray(image), np.array([0.0, 10.0]), 20, 20)   # half of it left of the frame
    assert crop[:, :8].max() == 0 and crop[:, 12:].min() == 200


def _face_boxes(clips: np.ndarray) -> list[Face | None]:
    models = face_models()
    return [next(iter(models.detect(f)), None) for f in clips.reshape(-1, *clips.shape[2:])]


def test_face_crop_centres_an_off_centre_face_at_a_steady_size(tmp_path, capsys):
    # The talking man pasted into the right-bottom corner of a larger frame: a centre crop misses him.
    clip = on_canvas(carphone()[:48], 288, 352, top=140, left=170)
    src = tmp_path / "src"
    (src / "man").mkdir(parents=True)
    write_video(src / "man" / "talk.mp4", clip, fps=25)
    write_video(src / "man" / "squares.mp4", moving_square_video(24, 64), fps=25)   # no face at all
    man = build_video_dataset(src, tmp_path / "faces", size=96, frames=8, stride=8, crop="face", progress=False)
    err = capsys.readouterr().err
    assert err.count("squares.mp4") == 1 and "no face" in err                      # one warning line
    assert [s["path"] for s in man["skipped"]] == ["man/squares.mp4"]
    (video,) = man["videos"]
    assert video["path"] == "man/talk.mp4#face0" and video["identity"] == "man" and video["face_found"] > 0.9
    clips, _ = load_video_clips(tmp_path / "faces", "train")
    faces = _face_boxes(np.asarray(clips))
    assert sum(f is not None for f in faces) >= 0.95 * len(faces)
    centres = np.array([(f.box[:2] + f.box[2:]) / 2 for f in faces if f is not None]) / 96
    sizes = np.array([f.size for f in faces if f is not None]) / 96
    assert np.abs(centres - 0.5).max() < 0.15                                      # centred...
    assert 0.35 < sizes.mean() < 0.75 and sizes.std() / sizes.mean() < 0.15       # ...filling a steady share
    # The same video centre-cropped: the face sits far off-centre (what the face crop fixed).
    build_video_dataset(src, tmp_path / "centre", size=96, frames=8, stride=8, progress=False)
    centre_clips, _ = load_video_clips(tmp_path / "centre", "train")
    found = [f for f in _face_boxes(np.asarray(centre_clips)[:1]) if f is not None]
    assert all(np.abs((f.box[:2] + f.box[2:]) / 2 / 96 - 0.5).max() > 0.2 for f in found)


def test_a_cut_between_two_people_makes_two_tracks(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_video(src / "interview.mp4", np.concatenate([carphone()[:24], grace_clip(24)]), fps=25)
    man = build_video_dataset(src, tmp_path / "out", size=64, frames=8, stride=8, crop="face", progress=False)
    tracks = man["videos"]
    assert [t["path"] for t in tracks] == ["interview.mp4#face0", "interview.mp4#face1"]
    assert {t["identity"] for t in tracks} == {"interview"}
    assert tracks[0]["first_frame"] == 0 and tracks[1]["first_frame"] >= 24 > tracks[0]["first_frame"] + tracks[0]["frames"] - 1
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["crop"] == "face"


def test_no_face_anywhere_is_an_error_naming_the_skips(tmp_path):
    from motionbits.errors import MotionbitsError

    write_video(tmp_path / "src" / "squares.mp4", moving_square_video(16, 48), fps=25)
    with pytest.raises(MotionbitsError, match="all 1 videos were skipped"):
        build_video_dataset(tmp_path / "src", tmp_path / "out", size=32, frames=4, crop="face", progress=False)
    with pytest.raises(MotionbitsError, match="crop must be 'center' or 'face'"):
        build_video_dataset(tmp_path / "src", tmp_path / "out", crop="faces", progress=False)


def test_voxceleb_layout_identity_is_the_first_folder(tmp_path):
    """idXXXXX/<video>/<clip>.mp4 (VoxCeleb, LRS3): whole people go to one split, tracks keep the path."""
    src = tmp_path / "vox"
    for person, frames in (("id10001", carphone()[:16]), ("id10002", grace_clip(16))):
        for video in ("yt_a", "yt_b"):
            (src / person / video).mkdir(parents=True)
            write_video(src / person / video / "00001.mp4", frames, fps=25)
    man = build_video_dataset(src, tmp_path / "out", size=64, frames=8, stride=8, test_fraction=0.5, crop="face",
                              progress=False)
    assert man["identities"] == ["id10001", "id10002"] and man["split_by"] == "identity"
    assert sorted(v["path"] for v in man["videos"]) == [f"{p}/{v}/00001.mp4#face0" for p in ("id10001", "id10002")
                                                        for v in ("yt_a", "yt_b")]
    assert {len(man["split_identities"][s]) for s in ("train", "test")} == {1}
