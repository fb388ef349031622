"""Video dataset building and loading on tiny synthetic videos written with PyAV."""
from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np

import pytest
import torch
from PIL import Image

from motionbits.data.media import read_clip
from motionbits.data.video import build_video_dataset, load_video_clips
from motionbits.errors import MotionbitsError

W, H = 32, 24


def moving_square(n: int, seed: int = 0) -> np.ndarray:
    """uint8 [n, H, W, 3]: a bright square moving 1 px per frame over a coloured background."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, H, W, 3), np.uint8)
    frames[:] = rng.integers(30, 120, size=3, dtype=np.uint8)
    for t in range(n):
        x = t % (W - 6)
        frames[t, 8:14, x:x + 6] = 255
    return frames


def write_video(path: Path, frames: np.ndarray, fps: int = 10, codec: str = "libx264",
                pix_fmt: str = "yuv420p") -> Path:
    """frames uint8 [T, H, W, 3] (or [T, H, W] for gray) -> a video file."""
    gray = frames.ndim == 3
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for f in frames:
            frame = av.VideoFrame.from_ndarray(f, format="gray" if gray else "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_gif(path: Path, frames: np.ndarray, ms: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=ms, loop=0)
    return path


def write_frame_folder(folder: Path, frames: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:04d}.png")
    return folder


def n_clips(n: int, frames: int, stride: int) -> int:
    return 0 if n < frames else (n - frames) // stride + 1


def test_read_clip_each_kind(tmp_path):
    kinds = {
        "mp4": write_video(tmp_path / "a.mp4", moving_square(12)),
        "avi": write_video(tmp_path / "a.avi", moving_square(12), codec="mpeg4"),
        "gif": write_gif(tmp_path / "a.gif", moving_square(12)),
        "frames": write_frame_folder(tmp_path / "frames", moving_square(12)),
        "gray": write_video(tmp_path / "g.avi", moving_square(12)[..., 0], codec="ffv1", pix_fmt="gray"),
    }
    for kind, path in kinds.items():
        clip = read_clip(path, 16)
        assert clip.shape == (12, 16, 16, 3) and clip.dtype == np.uint8, kind
        assert read_clip(path, 8, max_frames=5).shape == (5, 8, 8, 3), kind
    gray = read_clip(kinds["gray"], 16)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


@pytest.fixture
def mixed_src(tmp_path) -> Path:
    """Three identity folders holding an mp4, an avi, a gif and a frame folder of various lengths."""
    src = tmp_path / "src"
    write_video(src / "alice" / "one.mp4", moving_square(20, 1))
    write_video(src / "alice" / "two.avi", moving_square(13, 2), codec="mpeg4")
    write_gif(src / "bob" / "wave.gif", moving_square(16, 3))
    write_frame_folder(src / "carol" / "take1", moving_square(11, 4))
    write_video(src / "dave" / "x" / "deep.mp4", moving_square(9, 5))
    (src / "notes.txt").write_text("not a video")
    return src


def test_build_counts_shapes_labels_and_split(mixed_src, tmp_path):
    out = tmp_path / "out"
    man = build_video_dataset(mixed_src, out, size=16, frames=8, stride=4, progress=False)
    lengths = {"alice/one.mp4": 20, "alice/two.avi": 13, "bob/wave.gif": 16, "carol/take1": 11, "dave/x/deep.mp4": 9}
    assert {v["path"]: v["clips"] for v in man["videos"]} == {p: n_clips(n, 8, 4) for p, n in lengths.items()}
    assert man["identities"] == ["alice", "bob", "carol", "dave"] and man["split_by"] == "identity"
    assert man["ignored_files"] == 1 and man["skipped"] == []
    train_ids, test_ids = man["split_identities"]["train"], man["split_identities"]["test"]
    assert train_ids and test_ids and not set(train_ids) & set(test_ids)
    assert sorted(train_ids + test_ids) == man["identities"]

    seen = 0
    for split in ("train", "test"):
        frames, labels = load_video_clips(out, split)
        assert frames.dtype == np.uint8 and frames.shape == (man["counts"][split], 8, 16, 16, 3)
        assert {k: v.dtype for k, v in labels.items()} == {"video": np.int64, "identity": np.int64, "start": np.int64}
        names = {man["identities"][i] for i in labels["identity"]}
        assert names == set(man["split_identities"][split])
        for v, i, s in zip(labels["video"], labels["identity"], labels["start"]):
            entry = man["videos"][v]
            assert entry["split"] == split and man["identities"][i] == entry["identity"]
            assert s % 4 == 0 and s + 8 <= entry["frames_read"]
        seen += len(frames)
        torch.from_numpy(frames)[torch.tensor([0])]  # what ClipSet does; must not fail on the memmap
    assert seen == sum(man["counts"].values()) == sum(n_clips(n, 8, 4) for n in lengths.values())
    assert json.loads((out / "manifest.json").read_text())["counts"] == man["counts"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_clip_content_matches_read_clip_and_stride_gaps(tmp_path):
    path = write_video(tmp_path / "src" / "v.mp4", moving_square(20))
    # stride > frames: frames in the gaps are skipped, clips start at 0, 7, 14
    man = build_video_dataset(tmp_path / "src", tmp_path / "out", size=16, frames=5, stride=7, progress=False)
    frames, labels = load_video_clips(tmp_path / "out", "train")
    assert man["split_by"] == "none" and man["counts"] == {"train": 3, "test": 0}
    assert labels["start"].tolist() == [0, 7, 14]
    full = read_clip(path, 16)
    for clip, s in zip(frames, labels["start"]):
        np.testing.assert_array_equal(clip, full[s:s + 5])


def test_identity_regex_and_stem_fallback(tmp_path):
    src = tmp_path / "src"
    for name in ("mead_A01_front_happy_001", "mead_A01_front_sad_001", "mead_B7_front_happy_001", "lp_d1", "lp_d2"):
        write_video(src / f"{name}.mp4", moving_square(8))
    man = build_video_dataset(src, tmp_path / "out", size=8, frames=4, stride=4, test_fraction=0.4,
                              identity_regex=r"mead_(\w+?)_", progress=False)
    assert man["identities"] == ["A01", "B7", "lp_d1", "lp_d2"]
    assert len(man["split_identities"]["test"]) == 2  # round(0.4 * 4)
    by_id = {}
    for v in man["videos"]:
        by_id.setdefault(v["identity"], set()).add(v["split"])
    assert all(len(splits) == 1 for splits in by_id.values())
    # no regex: each file is its own identity
    man = build_video_dataset(src, tmp_path / "out2", size=8, frames=4, stride=4, progress=False)
    assert len(man["identities"]) == 5
    with pytest.raises(MotionbitsError, match="identity_regex"):
        build_video_dataset(src, tmp_path / "out3", identity_regex="(", progress=False)
    # the same from the command line
    from motionbits.cli import main
    main(["data", "video", str(src), str(tmp_path / "out4"), "--size", "8", "--frames", "4", "--stride", "4",
          "--test-fraction", "0.4", "--identity-regex", r"mead_(\w+?)_", "--max-clips-per-video", "1"])
    man = json.loads((tmp_path / "out4" / "manifest.json").read_text())
    assert man["identities"] == ["A01", "B7", "lp_d1", "lp_d2"]
    assert all(v["clips"] == 1 for v in man["videos"])
    # --seed picks another split of the same identities, and the manifest records it
    tests = set()
    for seed in range(4):
        main(["data", "video", str(src), str(tmp_path / f"seed{seed}"), "--size", "8", "--frames", "4",
              "--stride", "4", "--test-fraction", "0.4", "--identity-regex", r"mead_(\w+?)_", "--seed", str(seed)])
        man = json.loads((tmp_path / f"seed{seed}" / "manifest.json").read_text())
        assert man["seed"] == seed and len(man["split_identities"]["test"]) == 2
        tests.add(tuple(man["split_identities"]["test"]))
    assert len(tests) > 1


def test_single_identity_splits_by_video(tmp_path, capsys):
    for i in range(3):
        write_video(tmp_path / "src" / "person" / f"v{i}.mp4", moving_square(8, i))
    man = build_video_dataset(tmp_path / "src", tmp_path / "out", size=8, frames=4, stride=4, progress=False)
    assert man["split_by"] == "video" and "one identity" in man["note"]
    assert man["counts"]["train"] > 0 and man["counts"]["test"] > 0
    assert "note: only one identity" in capsys.readouterr().err


def test_fps_resampling_halves_and_doubles(tmp_path):
    path = write_video(tmp_path / "src" / "v.mp4", moving_square(20), fps=10)
    half = build_video_dataset(tmp_path / "src", tmp_path / "half", size=16, frames=4, stride=4, fps=5, progress=False)
    assert half["videos"][0]["frames_read"] == 10 and half["counts"]["train"] == n_clips(10, 4, 4)
    frames, labels = load_video_clips(tmp_path / "half", "train")
    full = read_clip(path, 16)
    np.testing.assert_array_equal(frames.reshape(-1, 16, 16, 3), full[0::2][: len(frames) * 4])  # every other frame
    double = build_video_dataset(tmp_path / "src", tmp_path / "double", size=8, frames=4, stride=4, fps=20,
                                 progress=False)
    assert double["videos"][0]["frames_read"] == 40


def test_grayscale_video_gives_three_equal_channels(tmp_path):
    write_video(tmp_path / "src" / "g.avi", moving_square(10)[..., 1], codec="ffv1", pix_fmt="gray")
    build_video_dataset(tmp_path / "src", tmp_path / "out", size=16, frames=4, stride=4, progress=False)
    frames, _ = load_video_clips(tmp_path / "out", "train")
    assert frames.shape[-1] == 3 and frames.std() > 0
    assert (frames[..., 0] == frames[..., 1]).all() and (frames[..., 0] == frames[..., 2]).all()


def write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def test_bad_files_are_skipped_with_one_warning_each(tmp_path, capsys):
    src = tmp_path / "src"
    write_video(src / "good1.mp4", moving_square(12))
    write_video(src / "good2.mp4", moving_square(12, 1))
    (src / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (src / "empty.mp4").write_bytes(b"")
    write_video(src / "short.mp4", moving_square(2))
    write_audio_only(src / "sound.mp4")
    man = build_video_dataset(src, tmp_path / "out", size=8, frames=4, stride=4, progress=False)
    err = capsys.readouterr().err
    reasons = {s["path"]: s["reason"] for s in man["skipped"]}
    assert set(reasons) == {"corrupt.mp4", "empty.mp4", "short.mp4", "sound.mp4"}
    assert reasons["empty.mp4"] == "empty file (0 bytes)" and reasons["sound.mp4"] == "no video stream"
    assert reasons["short.mp4"].startswith("only 2 frames,") and "cannot be decoded" in reasons["corrupt.mp4"]
    for name, reason in reasons.items():
        assert len(re.findall(rf"^skipped .*{re.escape(name)}: ", err, re.M)) == 1
        assert f"skipped {src / name}: {reason}" in err
    assert "skipped 4 of 6 files" in err
    assert man["counts"]["train"] + man["counts"]["test"] == 2 * n_clips(12, 4, 4)


def test_no_videos_and_all_skipped_are_errors(tmp_path, capsys):
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    with pytest.raises(MotionbitsError, match=rf"^{re.escape(str(empty))}: no videos"):
        build_video_dataset(empty, tmp_path / "out", progress=False)
    with pytest.raises(MotionbitsError, match="no such folder"):
        build_video_dataset(tmp_path / "missing", tmp_path / "out", progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.mp4").write_bytes(b"not a video at all")
    (bad / "b.avi").write_bytes(b"")
    with pytest.raises(MotionbitsError, match="all 2 videos were skipped") as err:
        build_video_dataset(bad, tmp_path / "out", progress=False)
    assert "a.mp4: cannot be decoded" in str(err.value) and "b.avi: empty file (0 bytes)" in str(err.value)
    assert capsys.readouterr().err == ""   # the reasons are in the error's one line, not printed before it
    assert not (tmp_path / "out").exists()  # the folder it created is removed again


def test_max_clips_per_video_and_frame_folder_in_src_root(tmp_path):
    write_frame_folder(tmp_path / "shots", moving_square(20))
    man = build_video_dataset(tmp_path / "shots", tmp_path / "out", size=8, frames=4, stride=2,
                              max_clips_per_video=3, progress=False)
    assert man["counts"]["train"] == 3 and man["videos"][0]["identity"] == "shots"
    _, labels = load_video_clips(tmp_path / "out", "train")
    assert labels["start"].tolist() == [0, 2, 4]


def test_load_video_clips_validation(tmp_path):
    with pytest.raises(MotionbitsError, match="does not exist"):
        load_video_clips(tmp_path / "nope", "train")
    with pytest.raises(MotionbitsError, match="no manifest.json; build it with `motionbits data video SRC"):
        load_video_clips(tmp_path, "train")
    with pytest.raises(MotionbitsError, match="unknown video split"):
        load_video_clips(tmp_path, "val")
    for i in range(2):
        write_video(tmp_path / "src" / f"p{i}.mp4", moving_square(8, i))
    out = tmp_path / "out"
    build_video_dataset(tmp_path / "src", out, size=8, frames=4, stride=4, progress=False)
    (out / "test.npz").unlink()
    with pytest.raises(MotionbitsError, match=re.escape(f"{out / 'test.npz'}: split file is missing")):
        load_video_clips(out, "test")
    (out / "train_frames.npy").write_bytes(b"garbage")
    with pytest.raises(MotionbitsError, match="train_frames.npy: not a readable"):
        load_video_clips(out, "train")
    (out / "manifest.json").write_text('{"counts": {}}')
    with pytest.raises(MotionbitsError, match="not a video dataset folder"):
        load_video_clips(out, "train")


def test_building_again_removes_what_a_killed_build_left(tmp_path):
    write_video(tmp_path / "src" / "a.mp4", moving_square(12))
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".clips-99999.tmp", out / ".train_frames.npy.k3j2x9.tmp"]   # the clip file, a split
    for path in stale:
        path.write_bytes(b"left by a kill")
    build_video_dataset(tmp_path / "src", out, size=8, frames=4, stride=4, progress=False)
    assert not any(path.exists() for path in stale) and not list(out.glob(".*"))


def test_test_videos_chooses_the_test_split(tmp_path):
    src = tmp_path / "src"
    for person, takes in (("me", 3), ("ann", 1), ("bob", 1)):
        for take in range(takes):
            write_video(src / person / f"take{take}.mp4", moving_square(16, seed=take + len(person)))
    man = build_video_dataset(src, tmp_path / "out", size=16, frames=8, stride=8, progress=False,
                              test_videos=r"bob/|me/take2")
    splits = {v["path"]: v["split"] for v in man["videos"]}
    assert splits == {"ann/take0.mp4": "train", "bob/take0.mp4": "test", "me/take0.mp4": "train",
                      "me/take1.mp4": "train", "me/take2.mp4": "test"}
    assert man["split_by"] == "chosen" and "me" in man["note"]             # the person the model is for, in both
    assert man["split_identities"]["test"] == ["bob", "me"]
    with pytest.raises(MotionbitsError, match="puts no video in the test split"):
        build_video_dataset(src, tmp_path / "out2", size=16, frames=8, progress=False, test_videos="nobody")
    with pytest.raises(MotionbitsError, match="not a valid regular expression"):
        build_video_dataset(src, tmp_path / "out3", size=16, frames=8, progress=False, test_videos="(")
