"""What every dataset folder of motionbits has: a manifest.json (written last, so its presence means
the split files beside it are whole) and split files, checked with one-line errors."""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from motionbits.errors import MotionbitsError

SPLITS = ("train", "test")
# kind: (the folder's name in messages, what builds it)
KINDS = {"sprites": ("Sprites", "motionbits data sprites --out {root}"),
         "video": ("video dataset", "motionbits data video SRC {root}")}


def dataset_manifest(root: str | os.PathLike, split: str, kind: str) -> tuple[Path, dict]:
    """(root, its manifest) of a `kind` dataset folder holding `split`, or one line saying what is wrong."""
    name, build = KINDS[kind]
    if split not in SPLITS:
        raise MotionbitsError(f"unknown {kind} split {split!r} (expected one of {', '.join(SPLITS)})")
    root = Path(root)
    if not root.exists():
        raise MotionbitsError(f"{root}: {name} folder does not exist")
    if not root.is_dir():
        raise MotionbitsError(f"{root}: not a folder (expected a {name} folder)")
    path = root / "manifest.json"
    if not path.is_file():
        raise MotionbitsError(f"{root}: not a {name} folder (no manifest.json; build it with `{build.format(root=root)}`)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise MotionbitsError(f"{path}: not valid JSON ({err})") from None
    found = manifest.get("kind", manifest.get("dataset")) if isinstance(manifest, dict) else None
    if found != kind:
        other = KINDS.get(found, (str(found),))[0]
        raise MotionbitsError(f"{root}: is a {other} folder, not a {name} folder (set data.kind, or pass the right --data)")
    return root, manifest


def read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named arrays of an .npz split file, or one line saying what is wrong."""
    if not path.is_file():
        raise MotionbitsError(f"{path}: split file is missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise MotionbitsError(f"{path}: missing arrays {', '.join(missing)}")
            return {k: z[k] for k in keys}
    except MotionbitsError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise MotionbitsError(f"{path}: not a readable .npz file ({err})") from None
