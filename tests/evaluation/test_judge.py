"""Sprites judge: shapes, learning a synthetic clip task, telling a real motion from a frozen or
reordered one, save/load, bad files."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from motionbits.errors import MotionbitsError
from motionbits.evaluation.judge import (
    SpritesJudge,
    altered_clips,
    judge_accuracies,
    judge_predict,
    load_judge,
    save_judge,
    train_judge,
    transferred,
)

# Six well-separated colours: attribute class k of every quadrant is drawn in PALETTE[k].
PALETTE = np.array(
    [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]], dtype=np.uint8
)


def synthetic_clips(n: int, t: int = 8, seed: int = 0):
    """Sprite-like 32x32 clips. A 16x16 "body" has four 8x8 quadrants whose colours encode
    4 attributes (6 classes). Motion class = 3 * action + direction, as in Sprites: the
    direction is which white "arms" the body shows (left / both / right, seen in every
    frame); the action is how the body moves over time (still, bobbing up every other frame,
    rising 1 px a frame) and, as a Sprites pose shows its action in one frame, the grey of a
    "leg" under the body that steps 4 px right each frame: the pose of frame f of class m is
    m * t + f. Like Sprites, the body is centred.
    Returns uint8 [n, t, 32, 32, 3], attributes [n, 4], motion [n], poses [n, t]."""
    rng = np.random.default_rng(seed)
    attributes = rng.integers(0, 6, (n, 4))
    motion = rng.integers(0, 9, n)
    frames = np.zeros((n, t, 32, 32, 3), np.uint8)
    for i in range(n):
        action, direction = divmod(int(motion[i]), 3)
        x = 8
        for f in range(t):
            y = 8 + [0, -3 * (f % 2), t // 2 - f][action]
            for q in range(4):
                qy, qx = y + 8 * (q // 2), x + 8 * (q % 2)
                frames[i, f, qy : qy + 8, qx : qx + 8] = PALETTE[attributes[i, q]]
            if direction in (0, 1):
                frames[i, f, y + 4 : y + 12, x - 4 : x - 1] = 255
            if direction in (1, 2):
                frames[i, f, y + 4 : y + 12, x + 17 : x + 20] = 255
            frames[i, f, y + 16 : y + 19, 2 + 4 * f : 4 + 4 * f] = (90, 170, 250)[action]
    return frames, attributes, motion, motion[:, None] * t + np.arange(t)


def test_forward_shapes():
    judge = SpritesJudge(width=8, feat_dim=32).eval()
    out = judge(torch.rand(2, 8, 3, 64, 64) * 2 - 1)
    assert out["attributes"].shape == (2, 4, 6)
    assert out["motion"].shape == (2, 9)
    assert out["poses"].shape == (2, 8, 72)
    # The motion head pools over time, so other clip lengths work too.
    assert judge(torch.zeros(1, 5, 3, 64, 64))["motion"].shape == (1, 9)


def test_predict_accepts_uint8_and_float():
    judge = SpritesJudge(width=8, feat_dim=32, image_size=32)
    frames, _, _, _ = synthetic_clips(5)
    p_u8 = judge_predict(judge, frames, batch_size=2)
    as_float = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float() / 127.5 - 1
    p_f = judge_predict(judge, as_float, batch_size=3)
    assert p_u8["attributes"].shape == (5, 4, 6) and p_u8["motion"].shape == (5, 9)
    assert p_u8["poses"].shape == (5, 8, 72)
    torch.testing.assert_close(p_u8["attributes"].sum(-1), torch.ones(5, 4))
    torch.testing.assert_close(p_u8["motion"], p_f["motion"], atol=2e-2, rtol=0)
    assert judge.training  # predict restores the mode it found


@pytest.fixture(scope="module")
def trained_judge():
    """A judge trained on 400 synthetic clips, shared by the tests below (300 steps: at 150 the pose
    head read 82-93 % of the frames)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    frames, attrs, motion, poses = synthetic_clips(400, seed=1)
    judge = train_judge(
        frames, attrs, motion, poses, steps=300, batch_size=16, lr=3e-3, seed=0, progress=False,
        augment_shift=0, model_kwargs=dict(width=8, feat_dim=256),
    )
    yield judge
    torch.set_num_threads(n)


def test_judge_learns_synthetic_task(trained_judge):
    test_frames, test_attrs, test_motion, test_poses = synthetic_clips(200, seed=2)
    acc = judge_accuracies(trained_judge, test_frames, test_attrs, test_motion, test_poses)
    assert acc["attributes_mean"] > 0.9, acc
    assert acc["motion"] > 0.9 and acc["pose_frames"] > 0.9, acc
    assert acc["motion_time_aware"] > 0.9, acc           # real clips count as their motion
    for name in ("frozen", "shuffled", "reversed"):      # altered ones do not
        assert acc[f"{name}_rejected"] > 0.95, (name, acc)
    assert trained_judge.accuracies == acc


def test_a_frozen_clip_is_not_transferred_though_its_class_is_seen(trained_judge):
    """One real frame held for 8 frames shows the class (the v1 judge counted it) but no motion."""
    frames, _, motion, poses = synthetic_clips(200, seed=3)
    real = judge_predict(trained_judge, frames)
    frozen = judge_predict(trained_judge, np.repeat(frames[:, 3:4], 8, axis=1))
    assert transferred(real, motion, poses).float().mean() > 0.9
    assert (frozen["motion"].argmax(-1) == torch.as_tensor(motion)).float().mean() > 0.8   # the old test passes it
    assert not transferred(frozen, motion, poses).any()


def test_altered_clips_change_the_pose_sequence():
    frames, _, motion, poses = synthetic_clips(6, seed=4)
    poses[0] = poses[0, 0]  # a clip of one held pose: freezing it changes nothing, so it is left out
    altered = altered_clips(frames, poses, seed=0)
    assert 0 not in altered["frozen"][1] and list(altered["reversed"][1]) == [1, 2, 3, 4, 5]
    clips, which = altered["frozen"]
    assert (clips == clips[:, :1]).all()
    clips, which = altered["reversed"]
    assert np.array_equal(clips, frames[which, ::-1])
    clips, which = altered["shuffled"]
    assert not any(np.array_equal(c, frames[i]) for c, i in zip(clips, which))
    clips, which = altered_clips(frames, poses, seed=0, max_clips=3)["reversed"]  # a subset, indexed in the whole
    assert len(which) <= 3 and np.array_equal(clips, frames[which, ::-1])


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    judge = SpritesJudge(width=8, feat_dim=32, image_size=32).eval()
    # Non-trivial BatchNorm buffers so the round trip covers them too.
    for m in judge.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "judge.safetensors"
    save_judge(judge, path, accuracies={"motion": 0.995})
    loaded = load_judge(path)
    assert loaded.accuracies == {"motion": 0.995}
    assert loaded.config == judge.config
    x = torch.rand(3, 8, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        a, b = judge(x), loaded(x)
    assert torch.equal(a["attributes"], b["attributes"]) and torch.equal(a["motion"], b["motion"])


def test_load_missing_and_corrupt(tmp_path):
    with pytest.raises(MotionbitsError, match="not found"):
        load_judge(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(MotionbitsError, match="not a readable"):
        load_judge(bad)
    # Truncated real file.
    good = tmp_path / "good.safetensors"
    save_judge(SpritesJudge(width=8, feat_dim=32), good)
    data = good.read_bytes()
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(MotionbitsError):
        load_judge(trunc)
    # A valid safetensors file that is not a judge.
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(MotionbitsError, match="metadata"):
        load_judge(other)


def test_bad_inputs():
    judge = SpritesJudge(width=8, feat_dim=32, image_size=32)
    with pytest.raises(ValueError):
        judge_predict(judge, torch.zeros(2, 8, 32, 32, 3))  # float frames must be [N, T, 3, H, W]
    frames, attrs, motion, poses = synthetic_clips(4)
    with pytest.raises(ValueError):
        train_judge(frames.astype(np.float32), attrs, motion, poses, steps=1, progress=False)
    with pytest.raises(ValueError):
        train_judge(frames, attrs[:3], motion, poses, steps=1, progress=False)
    with pytest.raises(ValueError, match="poses must be"):
        train_judge(frames, attrs, motion, poses[:, :5], steps=1, progress=False)
    with pytest.raises(ValueError, match="pose ids"):
        train_judge(frames, attrs, motion, poses + 72, steps=1, progress=False)
    empty = judge_predict(judge, frames[:0])
    assert empty["attributes"].shape == (0, 4, 6) and empty["motion"].shape == (0, 9)


@pytest.mark.slow
def test_judge_on_real_sprites(tmp_path):
    """Trains with the defaults on the whole benchmark composed from the shipped sheets (about two
    minutes on 2 CPU cores; `pytest -m slow`)."""
    from motionbits.data.sprites import compose_sprites, frame_poses, load_sprites

    compose_sprites(None, tmp_path, progress=False)
    train, test = load_sprites(tmp_path, "train"), load_sprites(tmp_path, "test")
    judge = train_judge(train.frames, train.attributes, train.motion, frame_poses(train.motion), progress=False)
    acc = judge_accuracies(judge, test.frames, test.attributes, test.motion, frame_poses(test.motion))
    assert min(v for k, v in acc.items() if not k.endswith("_class_alone")) >= 0.99, acc


def _claim_default(root, tmp_path, **changes):
    """A copy of a Sprites folder whose manifest says it is the whole default benchmark (or `changes`)."""
    import json
    import shutil

    from motionbits.assets import SPRITE_SHEETS

    folder = tmp_path / "claimed"
    shutil.copytree(root, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update({"full": True, "seed": 0, "source": str(SPRITE_SHEETS), **changes})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_the_shipped_judge_is_used_only_on_the_default_benchmark_and_reads_its_test_characters(sprites_root, tmp_path):
    # The demo loads the judge the package ships instead of training one; it must know the
    # benchmark's test characters (which it never trained on) and be re-measured on them.
    from motionbits.evaluation.sprites import composed_by_default, get_judge

    assert not composed_by_default(sprites_root)                               # a subset of the characters
    assert not composed_by_default(_claim_default(sprites_root, tmp_path / "a", seed=1))
    assert not composed_by_default(_claim_default(sprites_root, tmp_path / "b", source=str(tmp_path)))
    default = _claim_default(sprites_root, tmp_path / "c")
    assert composed_by_default(default)
    out = tmp_path / "out"
    judge = get_judge(str(default), None, out, 500, progress=False)
    acc = judge.accuracies                                                   # measured on the 4 test characters
    assert acc["attributes_mean"] > 0.9 and acc["motion_time_aware"] > 0.9 and acc["frozen_rejected"] > 0.9
    assert load_judge(out / "judge.safetensors").accuracies == acc            # the copy beside the report
    # Another number of judge steps asks for another judge: trained, not the shipped one.
    trained = get_judge(str(default), None, tmp_path / "out2", 3, progress=False)
    assert trained.accuracies["attributes_mean"] < 0.9
