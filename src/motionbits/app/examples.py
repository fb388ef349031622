"""Example clips for the page: three Sprites test characters, each in another motion, made from the
LPC sheets the package ships (no binaries in the repository) into a folder the app owns.

Each clip is its 8 frames played twice (16 frames, 2 s at 8 fps) as an mp4, the format an upload
would have; the art's credit is shown on the page (data/sprites.py CREDIT). The page shows them as
animated thumbnails (GIFs enlarged with nearest neighbour, previews.py): each clip, and each
(content, driver) pair of the Transfer tab as the content's first frame beside the driver.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

# (test character, motion name): three looks, three motions.
EXAMPLES = ((0, "walk-front"), (1, "slash-left"), (2, "spellcast-right"))
FPS = 8.0
TRANSFER_PAIRS = ((0, 1), (1, 2), (2, 0))          # (content, driver) indices into the examples


def make_examples(folder: str | Path) -> list[Path]:
    """Write the example clips into `folder` (once: kept when already there); their paths."""
    from motionbits.data.sprites import MOTION_NAMES, compose_sprites, load_sprites, split_characters
    from motionbits.visualize import save_video

    folder = Path(folder)
    paths = [folder / f"character{c}-{motion}.mp4" for c, motion in EXAMPLES]
    if all(p.is_file() for p in paths):
        return paths
    _, test_ids = split_characters(0)
    chosen = [int(test_ids[c]) for c, _ in EXAMPLES]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as work:    # the composed dataset is only a step
        compose_sprites(None, work, characters=chosen, progress=False)
        test = load_sprites(work, "test")
        for path, cid, (_, motion) in zip(paths, chosen, EXAMPLES):
            index = np.flatnonzero((test.character == cid) & (test.motion == MOTION_NAMES.index(motion)))[0]
            written = save_video(np.concatenate([test.frames[index]] * 2), Path(work, path.name), fps=FPS)
            os.replace(written, path)                       # whole files only: a killed app leaves none half-written
    return paths


def _frames(path: Path) -> np.ndarray:
    from motionbits.data.media import read_clip

    return read_clip(path, size=64)                     # [16, 64, 64, 3]: the clips are 64x64


def clip_thumbnails(paths: list[Path], folder: str | Path) -> list[Path]:
    """One looping GIF per example clip (for the Bitrate and Generate tabs)."""
    from motionbits.app.previews import preview_gif

    return [preview_gif(_frames(p), FPS, Path(folder) / f"{p.stem}-thumbnail.gif") for p in paths]


def pair_thumbnails(paths: list[Path], folder: str | Path) -> list[Path]:
    """content's first frame | driver, one GIF per TRANSFER_PAIRS entry (for the Transfer tab)."""
    from motionbits.app.previews import preview_gif
    from motionbits.visualize import side_by_side

    out = []
    for i, (c, d) in enumerate(TRANSFER_PAIRS):
        driver = _frames(paths[d])
        still = np.broadcast_to(_frames(paths[c])[:1], driver.shape)
        out.append(preview_gif(side_by_side([still, driver]), FPS, Path(folder) / f"pair{i}-thumbnail.gif"))
    return out


def describe(path: Path) -> str:
    """'character 0, walk-front' from an example's file name."""
    character, motion = path.stem.removeprefix("character").split("-", 1)
    return f"character {character}, {motion}"
