"""Example clips for the page: three Sprites test characters, each in another motion, made from the
LPC sheets the package ships (no binaries in the repository) into a folder the app owns.

Each clip is its 8 frames played twice (16 frames, 2 s at 8 fps) as an mp4, the format an upload
would have; the art's credit is shown on the page (data/sprites.py CREDIT).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

# (test character, motion name): three looks, three motions.
EXAMPLES = ((0, "walk-front"), (1, "slash-left"), (2, "spellcast-right"))
FPS = 8.0


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
