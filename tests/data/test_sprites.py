"""Sprites benchmark: composition from the LPC sheets, split, loading, validation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from motionbits.data import sprites as S
from motionbits.errors import MotionbitsError

from motionbits.assets import SPRITE_SHEETS as SHEETS

# 3 train + 3 test characters of the seed-0 split; enough to cover both files.
_TRAIN, _TEST = S.split_characters(0)
SUBSET = [int(c) for c in list(_TRAIN[:3]) + list(_TEST[:3])]


@pytest.fixture(scope="module")
def composed(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sprites")
    manifest = S.compose_sprites(SHEETS, out, seed=0, characters=SUBSET, progress=False)
    return out, manifest


def _clip(split: S.SpritesSplit, character: int, motion: int) -> np.ndarray:
    (idx,) = np.nonzero((split.character == character) & (split.motion == motion))
    assert len(idx) == 1
    return split.frames[idx[0]]  # [8,64,64,3]


def _reference_tile(character: int, row: int, col: int) -> np.ndarray:
    """Independent reference: PIL alpha_composite of the five layers, one tile."""
    body, bottom, top, hair = S.character_attributes(character)
    img = Image.new("RGBA", S.SHEET_SIZE, (0, 0, 0, 255))
    for layer, option in [("body", body), ("shoes", 1), ("bottomwear", bottom), ("topwear", top), ("hair", hair)]:
        img = Image.alpha_composite(img, Image.open(SHEETS / layer / f"{option}.png").convert("RGBA"))
    box = (col * 64, row * 64, col * 64 + 64, row * 64 + 64)
    return np.asarray(img.crop(box).convert("RGB"))


# ----------------------------------------------------------------------------- labels, split


def test_constants_and_ids():
    assert S.MOTION_NAMES[0] == "spellcast-front" and S.MOTION_NAMES[4] == "walk-left"
    assert len(S.MOTION_NAMES) == S.NUM_MOTIONS == 9
    assert S.character_id(1, 2, 3, 4) == ((1 * 6 + 2) * 6 + 3) * 6 + 4
    for c in (0, 7, 645, 1295):
        assert S.character_id(*S.character_attributes(c)) == c
    with pytest.raises(MotionbitsError):
        S.character_attributes(1296)


def test_split_full_permutation():
    train, test = S.split_characters(0)
    assert len(train) == 1000 and len(test) == 296
    assert not set(train.tolist()) & set(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(1296))
    again, _ = S.split_characters(0)
    assert np.array_equal(train, again)
    other, _ = S.split_characters(1)
    assert not np.array_equal(train, other)


def test_shapes_dtypes_labels(composed):
    out, manifest = composed
    for split, ids in (("train", SUBSET[:3]), ("test", SUBSET[3:])):
        d = S.load_sprites(out, split)
        assert len(d) == 3 * 9
        assert d.frames.shape == (27, 8, 64, 64, 3) and d.frames.dtype == np.uint8
        assert d.attributes.shape == (27, 4) and d.attributes.dtype == np.int64
        assert d.motion.dtype == np.int64 and d.character.dtype == np.int64
        assert sorted(set(d.character.tolist())) == sorted(ids)
        for c in ids:
            rows = d.character == c
            assert sorted(d.motion[rows].tolist()) == list(range(9))
            assert (d.attributes[rows] == S.character_attributes(c)).all()
    assert manifest["clips"] == {"train": 27, "test": 27}
    assert manifest["motion_names"] == list(S.MOTION_NAMES)
    assert "CC-BY-SA 3.0" in manifest["credit"] and "GPL 3.0" in manifest["credit"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert not list(out.glob("*.tmp"))  # atomic writes left no temp files


def test_subset_membership_matches_full_split(composed):
    out, _ = composed
    train = S.load_sprites(out, "train")
    test = S.load_sprites(out, "test")
    assert set(train.character.tolist()) <= set(_TRAIN.tolist())
    assert set(test.character.tolist()) <= set(_TEST.tolist())


# ----------------------------------------------------------------------------- pixels


def test_tiles_match_independent_composite(composed):
    out, _ = composed
    d = S.load_sprites(out, "train")
    c = SUBSET[0]
    # walk-left: row 8 + 1 (left), columns 1..8 (column 0 is the standing pose)
    clip = _clip(d, c, S.MOTION_NAMES.index("walk-left"))
    for t in (0, 7):
        ref = _reference_tile(c, 9, 1 + t)
        assert np.abs(clip[t].astype(int) - ref.astype(int)).max() <= 1
    # slash-front: row 12 + 2 (front), column 0
    clip = _clip(d, c, S.MOTION_NAMES.index("slash-front"))
    assert np.abs(clip[0].astype(int) - _reference_tile(c, 14, 0).astype(int)).max() <= 1


def test_motions_differ_but_share_colours(composed):
    out, _ = composed
    d = S.load_sprites(out, "train")
    c = SUBSET[0]
    clips = [_clip(d, c, m) for m in range(9)]
    for a in range(9):
        for b in range(a + 1, 9):
            assert not np.array_equal(clips[a], clips[b]), (S.MOTION_NAMES[a], S.MOTION_NAMES[b])

    def shared(x: np.ndarray, ref: np.ndarray) -> float:
        """Fraction of x's non-black pixels whose colour occurs somewhere in ref."""
        palette = set(map(tuple, ref.reshape(-1, 3).tolist()))
        px = [tuple(p) for p in x.reshape(-1, 3).tolist() if any(p)]
        return float(np.mean([p in palette for p in px]))

    # Same character: nearly every pixel colour recurs across motions (poses expose a
    # few different shading pixels, hence not exactly 1).
    for m in range(1, 9):
        assert shared(clips[m], clips[0]) > 0.85, S.MOTION_NAMES[m]
    # Another character (different clothes/hair) shares far fewer.
    assert shared(_clip(d, SUBSET[1], 0), clips[0]) < 0.75


def test_short_actions_repeat_last_frame(composed):
    out, _ = composed
    d = S.load_sprites(out, "train")
    c = SUBSET[0]
    for direction in S.DIRECTION_NAMES:
        spell = _clip(d, c, S.MOTION_NAMES.index(f"spellcast-{direction}"))
        assert np.array_equal(spell[7], spell[6])  # 7 real frames
        assert not np.array_equal(spell[6], spell[5])
        slash = _clip(d, c, S.MOTION_NAMES.index(f"slash-{direction}"))
        assert np.array_equal(slash[5], slash[6]) and np.array_equal(slash[5], slash[7])
        walk = _clip(d, c, S.MOTION_NAMES.index(f"walk-{direction}"))
        assert not np.array_equal(walk[7], walk[6])  # 8 real frames


def test_black_background(composed):
    out, _ = composed
    d = S.load_sprites(out, "test")
    assert (d.frames[:, :, 0, 0] == 0).all()
    assert (d.frames[:, :, -1, -1] == 0).all()
    # but the character itself is there
    assert (d.frames.reshape(len(d), 8, -1).max(axis=-1) > 0).all()


# ----------------------------------------------------------------------------- the shipped sheets


def test_the_package_ships_the_sheets_with_their_licences():
    for layer in S.ATTRIBUTE_NAMES:
        assert sorted(p.name for p in (SHEETS / layer).glob("*.png")) == [f"{i}.png" for i in range(6)]
    assert (SHEETS / "shoes" / "1.png").is_file()
    for name in ("CC-BY-SA-3.0-LICENSE", "GNU-GPL-3.0-LICENSE", "CREDITS.md"):
        assert (SHEETS / name).stat().st_size > 1000
    credits = (SHEETS / "CREDITS.md").read_text()
    assert "Liberated Pixel Cup" in credits and "Universal LPC Spritesheet" in credits


def test_default_sheets_are_the_shipped_ones(tmp_path, composed):
    _, manifest = composed
    default = S.compose_sprites(None, tmp_path / "out", characters=SUBSET[:1], progress=False)
    assert default["source"] == manifest["source"] == str(SHEETS.resolve())


# ----------------------------------------------------------------------------- bad sheets


def _fake_sheets(root: Path, character: int = 0) -> Path:
    """A sheets folder holding only what `character` needs (symlinks to the real sheets)."""
    body, bottom, top, hair = S.character_attributes(character)
    for layer, option in [("body", body), ("shoes", 1), ("bottomwear", bottom), ("topwear", top), ("hair", hair)]:
        (root / layer).mkdir(parents=True, exist_ok=True)
        (root / layer / f"{option}.png").symlink_to(SHEETS / layer / f"{option}.png")
    return root


def _compose_error(sheets: Path, out: Path) -> str:
    with pytest.raises(MotionbitsError) as e:
        S.compose_sprites(sheets, out, characters=[0], progress=False)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_compose_missing_sheets_dir(tmp_path):
    msg = _compose_error(tmp_path / "nope", tmp_path / "out")
    assert "nope" in msg and "does not exist" in msg


def test_compose_not_a_sheets_folder(tmp_path):
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "a.txt").write_text("x")
    msg = _compose_error(tmp_path / "random", tmp_path / "out")
    assert "not an LPC sheets folder" in msg


def test_compose_missing_layer_folder(tmp_path):
    sheets = _fake_sheets(tmp_path / "sheets")
    shutil.rmtree(sheets / "topwear")
    msg = _compose_error(sheets, tmp_path / "out")
    assert "topwear" in msg and "missing" in msg


def test_compose_missing_png(tmp_path):
    sheets = _fake_sheets(tmp_path / "sheets")
    (sheets / "hair" / "0.png").unlink()
    msg = _compose_error(sheets, tmp_path / "out")
    assert str(sheets / "hair" / "0.png") in msg and "missing" in msg


def test_compose_wrong_sheet_size(tmp_path):
    sheets = _fake_sheets(tmp_path / "sheets")
    (sheets / "body" / "0.png").unlink()
    Image.new("RGBA", (64, 64)).save(sheets / "body" / "0.png")
    msg = _compose_error(sheets, tmp_path / "out")
    assert str(sheets / "body" / "0.png") in msg and "832x1344" in msg


def test_compose_corrupt_png(tmp_path):
    sheets = _fake_sheets(tmp_path / "sheets")
    (sheets / "hair" / "0.png").unlink()
    (sheets / "hair" / "0.png").write_bytes(b"not a png")
    msg = _compose_error(sheets, tmp_path / "out")
    assert str(sheets / "hair" / "0.png") in msg


# ----------------------------------------------------------------------------- bad data folders


@pytest.fixture
def tiny_root(tmp_path) -> Path:
    """A minimal valid Sprites folder written by hand (no compositing)."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps({"dataset": "sprites"}))
    _save(root / "train.npz", _arrays(2))
    _save(root / "test.npz", _arrays(1))
    return root


def _arrays(n: int) -> dict[str, np.ndarray]:
    return {
        "frames": np.zeros((n, 8, 64, 64, 3), np.uint8),
        "attributes": np.zeros((n, 4), np.int64),
        "motion": np.zeros((n,), np.int64),
        "character": np.zeros((n,), np.int64),
    }


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _load_error(root: Path, split: str = "train") -> str:
    with pytest.raises(MotionbitsError) as e:
        S.load_sprites(root, split)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_load_tiny_ok(tiny_root):
    assert len(S.load_sprites(tiny_root, "train")) == 2
    assert len(S.load_sprites(tiny_root, "test")) == 1


def test_load_missing_root(tmp_path):
    assert "does not exist" in _load_error(tmp_path / "nope")


def test_load_not_a_sprites_folder(tmp_path):
    assert "not a Sprites folder" in _load_error(tmp_path)


def test_load_bad_split_name(tiny_root):
    assert "valid" in _load_error(tiny_root, "valid")


def test_load_missing_split_file(tiny_root):
    (tiny_root / "test.npz").unlink()
    assert "test.npz" in _load_error(tiny_root, "test")


def test_load_bad_manifest(tiny_root):
    (tiny_root / "manifest.json").write_text("{not json")
    assert "manifest.json" in _load_error(tiny_root)


def test_load_corrupt_npz(tiny_root):
    (tiny_root / "train.npz").write_bytes(b"garbage")
    assert "train.npz" in _load_error(tiny_root)


@pytest.mark.parametrize(
    "change, expect",
    [
        (lambda a: a.pop("motion"), "missing arrays motion"),
        (lambda a: a.__setitem__("frames", a["frames"].astype(np.float32)), "dtype"),
        (lambda a: a.__setitem__("frames", np.zeros((2, 8, 32, 32, 3), np.uint8)), "shape"),
        (lambda a: a.__setitem__("attributes", np.zeros((2, 3), np.int64)), "shape"),
        (lambda a: a.__setitem__("character", np.zeros((3,), np.int64)), "3 rows"),
        (lambda a: a.__setitem__("motion", np.full((2,), 9, np.int64)), "motion labels"),
        (lambda a: a.__setitem__("attributes", np.full((2, 4), 6, np.int64)), "attribute labels"),
    ],
)
def test_load_bad_arrays(tiny_root, change, expect):
    arrays = _arrays(2)
    change(arrays)
    _save(tiny_root / "train.npz", arrays)
    msg = _load_error(tiny_root)
    assert "train.npz" in msg and expect in msg


def test_composing_again_removes_what_a_killed_build_left(tmp_path):
    stale = tmp_path / ".train.npz.k3j2x9.tmp"          # a kill while the split was being written
    stale.write_bytes(b"half an npz")
    S.compose_sprites(None, tmp_path, characters=SUBSET[:1], progress=False)
    assert not stale.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "test.npz",
                                                                                  "train.npz"]
