"""The "Sprites" benchmark (Li & Mandt, ICML 2018), composed from LPC layer sheets.

1296 characters (body x bottomwear x topwear x hair, 6 options each) x 9 motions
(spellcast/walk/slash x front/left/right), 8 frames of 64x64 RGB per clip, split by a
seeded permutation of the characters into 1000 train / 296 test characters.

The art is from the Liberated Pixel Cup and the Universal LPC Spritesheet project (dual licensed
CC-BY-SA 3.0 / GPL 3.0); the package ships the 25 sheets the benchmark needs
(motionbits/assets/lpc_sprites, with the licences and credits), and the manifest written next to
the data credits them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from motionbits.assets import SPRITE_SHEETS
from motionbits.atomic_files import atomic_path, remove_temporary_files, write_text_atomic
from motionbits.data.folders import SPLITS, dataset_manifest, read_npz
from motionbits.errors import MotionbitsError

ATTRIBUTE_NAMES = ("body", "bottomwear", "topwear", "hair")
NUM_ATTRIBUTE_CLASSES = 6
ACTION_NAMES = ("spellcast", "walk", "slash")
DIRECTION_NAMES = ("front", "left", "right")
MOTION_NAMES = tuple(f"{a}-{d}" for a in ACTION_NAMES for d in DIRECTION_NAMES)
NUM_MOTIONS = 9
FRAMES = 8
SIZE = 64

NUM_CHARACTERS = NUM_ATTRIBUTE_CLASSES ** len(ATTRIBUTE_NAMES)  # 1296
NUM_TRAIN_CHARACTERS = 1000
SHEET_SIZE = (832, 1344)  # (width, height) = 13 x 21 tiles
SHOES_OPTION = 1  # every character wears shoes/1.png
# Layer order for "over" compositing, bottom to top.
LAYER_ORDER = ("body", "shoes", "bottomwear", "topwear", "hair")

# Sheet layout: first row of each action, its frame columns (8 per clip), and the row
# offset of each direction within the action (sheet order is back, left, front, right).
_ACTION_ROW = {"spellcast": 0, "walk": 8, "slash": 12}
_ACTION_COLS = {
    "spellcast": (0, 1, 2, 3, 4, 5, 6, 6),  # 7 real frames, last one repeated
    "walk": (1, 2, 3, 4, 5, 6, 7, 8),  # column 0 is a standing pose, skipped
    "slash": (0, 1, 2, 3, 4, 5, 5, 5),  # 6 real frames, last one repeated
}
_DIRECTION_ROW = {"back": 0, "left": 1, "front": 2, "right": 3}

CREDIT = (
    "Sprite art from the Liberated Pixel Cup (http://lpc.opengameart.org) and the "
    "Universal LPC Spritesheet project (https://github.com/jrconway3/Universal-LPC-spritesheet), "
    "via github.com/YingzhenLi/Sprites; dual licensed CC-BY-SA 3.0 / GPL 3.0. "
    "Anything that ships or shows these frames must credit the LPC artists and both projects."
)


# ----------------------------------------------------------------------------- ids, split


def character_id(body: int, bottomwear: int, topwear: int, hair: int) -> int:
    """Character id of one attribute combination (mixed radix 6, body most significant)."""
    return ((body * 6 + bottomwear) * 6 + topwear) * 6 + hair


def character_attributes(cid: int) -> tuple[int, int, int, int]:
    """Inverse of character_id: (body, bottomwear, topwear, hair)."""
    if not 0 <= cid < NUM_CHARACTERS:
        raise MotionbitsError(f"character id {cid} is out of range 0..{NUM_CHARACTERS - 1}")
    cid, hair = divmod(cid, 6)
    cid, top = divmod(cid, 6)
    body, bottom = divmod(cid, 6)
    return body, bottom, top, hair


def split_characters(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train ids [1000], test ids [296]) from a seeded permutation of all 1296 characters.

    Always permutes the full set so a subset's membership matches the full dataset's.
    """
    perm = np.random.default_rng(seed).permutation(NUM_CHARACTERS).astype(np.int64)
    return perm[:NUM_TRAIN_CHARACTERS], perm[NUM_TRAIN_CHARACTERS:]


def action_and_direction(motion):
    """Motion class (int, array or tensor) -> (action index, direction index): class = action * 3 + direction."""
    return motion // len(DIRECTION_NAMES), motion % len(DIRECTION_NAMES)


def motion_tiles(motion: int) -> tuple[int, tuple[int, ...]]:
    """(sheet row, 8 sheet columns) of one motion class."""
    action, direction = action_and_direction(motion)
    name = ACTION_NAMES[action]
    row = _ACTION_ROW[name] + _DIRECTION_ROW[DIRECTION_NAMES[direction]]
    return row, _ACTION_COLS[name]


# What a single frame shows, for the judge's per-frame pose head: id = motion * FRAMES + the first
# frame of the clip that shows this tile, so a repeated last tile (spellcast's last two frames,
# slash's last three) keeps one pose, and slash's first frame takes spellcast's first pose (the
# same standing pose drawn twice in the sheets: 0.25-0.46 of 255 apart per pixel, while every
# other two poses of a character are at least 1 apart). Ids run to NUM_POSES, some unused.
NUM_POSES = NUM_MOTIONS * FRAMES


def _pose_table() -> np.ndarray:
    table = np.empty((NUM_MOTIONS, FRAMES), np.int64)  # [motion, frame] -> pose id
    for m in range(NUM_MOTIONS):
        cols = motion_tiles(m)[1]
        table[m] = [m * FRAMES + cols.index(c) for c in cols]
    spellcast, slash = ACTION_NAMES.index("spellcast"), ACTION_NAMES.index("slash")
    for d in range(len(DIRECTION_NAMES)):
        table[slash * len(DIRECTION_NAMES) + d, 0] = table[spellcast * len(DIRECTION_NAMES) + d, 0]
    return table


_POSES = _pose_table()


def frame_poses(motion) -> np.ndarray:
    """Motion class (int or int array [...]) -> the pose id of each of its frames, int64 [..., FRAMES]:
    every clip of a class shows the same tiles in the same order, whatever the character."""
    return _POSES[np.asarray(motion, dtype=np.int64)]


# ----------------------------------------------------------------------------- sheets


def _sheet_path(sheets_dir: Path, layer: str, option: int) -> Path:
    return sheets_dir / layer / f"{option}.png"


def _check_sheets_dir(sheets_dir: Path, needed: dict[str, set[int]]) -> None:
    """Fail fast, before any compositing, on the first missing or malformed sheet."""
    if not sheets_dir.exists():
        raise MotionbitsError(f"{sheets_dir}: LPC sheets folder does not exist")
    if not sheets_dir.is_dir():
        raise MotionbitsError(f"{sheets_dir}: not a folder (expected the LPC sheets folder)")
    present = [layer for layer in needed if (sheets_dir / layer).is_dir()]
    if not present:
        raise MotionbitsError(
            f"{sheets_dir}: not an LPC sheets folder (expected subfolders {', '.join(LAYER_ORDER)})"
        )
    for layer in LAYER_ORDER:
        if not (sheets_dir / layer).is_dir():
            raise MotionbitsError(f"{sheets_dir / layer}: layer folder is missing")
        for option in sorted(needed[layer]):
            path = _sheet_path(sheets_dir, layer, option)
            if not path.is_file():
                raise MotionbitsError(f"{path}: layer sheet is missing")
            try:
                with Image.open(path) as im:  # reads the header only
                    size = im.size
            except (OSError, ValueError) as e:
                raise MotionbitsError(f"{path}: not a readable PNG ({e})") from None
            if size != SHEET_SIZE:
                raise MotionbitsError(
                    f"{path}: sheet is {size[0]}x{size[1]}, expected {SHEET_SIZE[0]}x{SHEET_SIZE[1]}"
                )


def _load_layer(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(premultiplied rgb float32 [H,W,3] in 0..255, 1 - alpha float32 [H,W,1])."""
    try:
        with Image.open(path) as im:
            # Palette sheets carry their transparency in the tRNS chunk; RGBA applies it.
            rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)  # [1344,832,4]
    except (OSError, ValueError) as e:
        raise MotionbitsError(f"{path}: not a readable PNG ({e})") from None
    alpha = rgba[..., 3:] / 255.0
    return rgba[..., :3] * alpha, 1.0 - alpha


def _over(dst: np.ndarray, layer: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """layer "over" an opaque dst (both [H,W,3] float32, 0..255)."""
    premul, inv_alpha = layer
    return premul + dst * inv_alpha


def _slice_clips(sheet: np.ndarray) -> np.ndarray:
    """Composited RGB uint8 sheet [1344,832,3] -> clips uint8 [9,8,64,64,3]."""
    clips = np.empty((NUM_MOTIONS, FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    for m in range(NUM_MOTIONS):
        row, cols = motion_tiles(m)
        y = row * SIZE
        for t, c in enumerate(cols):
            clips[m, t] = sheet[y : y + SIZE, c * SIZE : (c + 1) * SIZE]
    return clips


# ----------------------------------------------------------------------------- compose


def _write_atomic_npz(path: Path, **arrays: np.ndarray) -> None:
    # Pass a file object: np.savez would append ".npz" to a bare "*.tmp" name.
    with atomic_path(path, shared=True) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def compose_sprites(
    sheets_dir: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    seed: int = 0,
    characters: Iterable[int] | None = None,
    progress: bool = True,
) -> dict:
    """Compose the Sprites benchmark into out_dir/{train,test}.npz + manifest.json.

    sheets_dir: the LPC sheets (None: the ones shipped with the package). characters: optional
    subset of character ids (for tests); its train/test membership still comes from the full
    seeded permutation. Returns the manifest dict.
    """
    sheets_dir = Path(sheets_dir) if sheets_dir is not None else SPRITE_SHEETS
    out_dir = Path(out_dir)
    if characters is None:
        cids = list(range(NUM_CHARACTERS))
    else:
        cids = sorted({int(c) for c in characters})
        for c in cids:
            character_attributes(c)  # range check
    attrs = {c: character_attributes(c) for c in cids}

    needed: dict[str, set[int]] = {layer: set() for layer in LAYER_ORDER}
    needed["shoes"].add(SHOES_OPTION)
    for a in attrs.values():
        for name, option in zip(ATTRIBUTE_NAMES, a):
            needed[name].add(option)
    _check_sheets_dir(sheets_dir, needed)

    train_ids, _ = split_characters(seed)
    train_set = set(train_ids.tolist())
    split_of = {c: ("train" if c in train_set else "test") for c in cids}
    counts = {s: sum(1 for c in cids if split_of[c] == s) for s in SPLITS}

    # Preallocate the outputs: the full train frames are ~0.9 GB, so no list + stack copy.
    arrays = {
        s: {
            "frames": np.empty((counts[s] * NUM_MOTIONS, FRAMES, SIZE, SIZE, 3), np.uint8),
            "attributes": np.empty((counts[s] * NUM_MOTIONS, len(ATTRIBUTE_NAMES)), np.int64),
            "motion": np.empty((counts[s] * NUM_MOTIONS,), np.int64),
            "character": np.empty((counts[s] * NUM_MOTIONS,), np.int64),
        }
        for s in SPLITS
    }
    cursor = {s: 0 for s in SPLITS}

    # Sheets are loaded lazily and cached (25 sheets at most, ~13 MB each as float32).
    layer_cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def layer(name: str, option: int) -> tuple[np.ndarray, np.ndarray]:
        key = (name, option)
        if key not in layer_cache:
            layer_cache[key] = _load_layer(_sheet_path(sheets_dir, name, option))
        return layer_cache[key]

    # Characters are visited in id order (body outermost), so partial composites of the
    # lower layers are reused: body+shoes per body, +bottomwear, +topwear; only hair is
    # composited per character. Same result as compositing all five layers each time.
    prefix: dict[int, tuple[tuple[int, ...], np.ndarray]] = {}

    def partial(depth: int, a: tuple[int, int, int, int]) -> np.ndarray:
        """Composite of body+shoes (depth 1), +bottomwear (2), +topwear (3); [H,W,3] f32."""
        key = a[:depth]
        if depth in prefix and prefix[depth][0] == key:
            return prefix[depth][1]
        if depth == 1:
            black = np.zeros((SHEET_SIZE[1], SHEET_SIZE[0], 3), np.float32)
            img = _over(_over(black, layer("body", a[0])), layer("shoes", SHOES_OPTION))
        else:
            img = _over(partial(depth - 1, a), layer(ATTRIBUTE_NAMES[depth - 1], a[depth - 1]))
        prefix[depth] = (key, img)
        return img

    iterator: Iterable[int] = cids
    if progress:
        from tqdm import tqdm

        iterator = tqdm(cids, desc="composing sprites", unit="char")
    for c in iterator:
        a = attrs[c]
        full = _over(partial(3, a), layer("hair", a[3]))  # [1344,832,3] float32
        sheet = np.clip(np.rint(full), 0, 255).astype(np.uint8)
        s = split_of[c]
        i = cursor[s]
        out = arrays[s]
        out["frames"][i : i + NUM_MOTIONS] = _slice_clips(sheet)
        out["attributes"][i : i + NUM_MOTIONS] = a
        out["motion"][i : i + NUM_MOTIONS] = np.arange(NUM_MOTIONS)
        out["character"][i : i + NUM_MOTIONS] = c
        cursor[s] = i + NUM_MOTIONS

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (*(f"{s}.npz" for s in SPLITS), "manifest.json"):
        remove_temporary_files(out_dir / name)  # what a build killed while writing left behind
    for s in SPLITS:
        _write_atomic_npz(out_dir / f"{s}.npz", **arrays[s])

    manifest = {
        "dataset": "sprites",
        "seed": seed,
        "num_characters": len(cids),
        "full": characters is None,
        "characters": {s: counts[s] for s in SPLITS},
        "clips": {s: counts[s] * NUM_MOTIONS for s in SPLITS},
        "frames_per_clip": FRAMES,
        "size": SIZE,
        "attribute_names": list(ATTRIBUTE_NAMES),
        "num_attribute_classes": NUM_ATTRIBUTE_CLASSES,
        "action_names": list(ACTION_NAMES),
        "direction_names": list(DIRECTION_NAMES),
        "motion_names": list(MOTION_NAMES),
        "shoes": SHOES_OPTION,
        "source": str(sheets_dir.resolve()),
        "credit": CREDIT,
    }
    # Manifest last: a folder with a manifest has complete npz files next to it.
    write_text_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


# ----------------------------------------------------------------------------- load


@dataclass
class SpritesSplit:
    """One split. frames uint8 [N,8,64,64,3]; attributes int64 [N,4]; motion, character int64 [N]."""

    frames: np.ndarray
    attributes: np.ndarray
    motion: np.ndarray
    character: np.ndarray

    def __len__(self) -> int:
        return int(self.frames.shape[0])


_KEYS = ("frames", "attributes", "motion", "character")


def load_sprites(root: str | os.PathLike, split: str) -> SpritesSplit:
    """Load and validate root/{split}.npz of a folder written by compose_sprites."""
    root, _ = dataset_manifest(root, split, "sprites")
    path = root / f"{split}.npz"
    arrs = read_npz(path, _KEYS)

    expected = {
        "frames": (np.uint8, (FRAMES, SIZE, SIZE, 3)),
        "attributes": (np.int64, (len(ATTRIBUTE_NAMES),)),
        "motion": (np.int64, ()),
        "character": (np.int64, ()),
    }
    n = arrs["frames"].shape[0] if arrs["frames"].ndim else -1
    for k, (dtype, tail) in expected.items():
        a = arrs[k]
        if a.dtype != dtype:
            raise MotionbitsError(f"{path}: array {k!r} has dtype {a.dtype}, expected {np.dtype(dtype)}")
        if a.ndim != 1 + len(tail) or a.shape[1:] != tail:
            want = "[N" + "".join(f",{d}" for d in tail) + "]"
            raise MotionbitsError(f"{path}: array {k!r} has shape {list(a.shape)}, expected {want}")
        if a.shape[0] != n:
            raise MotionbitsError(f"{path}: array {k!r} has {a.shape[0]} rows but frames has {n}")
    # Label range checks are cheap and catch files from another dataset.
    if n and (arrs["motion"].min() < 0 or arrs["motion"].max() >= NUM_MOTIONS):
        raise MotionbitsError(f"{path}: motion labels outside 0..{NUM_MOTIONS - 1}")
    if n and (arrs["attributes"].min() < 0 or arrs["attributes"].max() >= NUM_ATTRIBUTE_CLASSES):
        raise MotionbitsError(f"{path}: attribute labels outside 0..{NUM_ATTRIBUTE_CLASSES - 1}")
    return SpritesSplit(**arrs)
