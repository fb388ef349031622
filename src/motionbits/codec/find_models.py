"""Which checkpoint (and prior) a .mbits file needs: found by fingerprint, never by a path in the file.

A bitstream names its model and prior by 8-byte fingerprints only (codec/format.py). `decode`
takes `--checkpoint` / `--prior` when given and refuses one whose fingerprint differs; otherwise it
looks, in the folder of the .mbits file and then in the current folder, at
    every *.pt file there, and the last.pt / prior.pt of every folder directly inside,
and takes the first whose fingerprint is the file's. So a received file cannot make the decoder
load anything but the user's own checkpoints, in the places the user keeps them.
"""
from __future__ import annotations

from pathlib import Path

from motionbits.errors import MotionbitsError

MODEL_KIND, PRIOR_KIND = "motionbits", "motionbits-prior"


def search_folders(mbits_path: str | Path) -> list[Path]:
    """The .mbits file's folder, then the current one (once where they are the same)."""
    return list(dict.fromkeys((Path(mbits_path).resolve().parent, Path.cwd().resolve())))


def candidates(mbits_path: str | Path, run_file: str) -> list[Path]:
    """The files the search reads, in order: *.pt, then */<run_file>, in each search folder."""
    found: list[Path] = []
    for folder in search_folders(mbits_path):
        for path in [*sorted(folder.glob("*.pt")), *sorted(folder.glob(f"*/{run_file}"))]:
            if path.is_file() and path not in found:
                found.append(path)
    return found


def checkpoint_fingerprint(path: Path, kind: str) -> bytes | None:
    """The fingerprint of a model (kind MODEL_KIND) or prior checkpoint, None for any other file."""
    from motionbits.api import weights_fingerprint
    from motionbits.checkpoints import checkpoint_config, read_checkpoint

    try:
        ckpt = read_checkpoint(path, kind)
        if kind == MODEL_KIND:
            config = checkpoint_config(ckpt).to_dict()
        else:
            from motionbits.models.prior import PriorConfig

            config = PriorConfig.from_dict(ckpt["config"], where=str(path)).to_dict()
        return weights_fingerprint(ckpt["ema"], config)
    except (MotionbitsError, KeyError, TypeError):
        return None


def find_checkpoint(fingerprint: bytes, mbits_path: str | Path, kind: str = MODEL_KIND) -> Path:
    """The first checkpoint of the search (module docstring) with this fingerprint, or a one-line error."""
    run_file = "last.pt" if kind == MODEL_KIND else "prior.pt"
    searched = candidates(mbits_path, run_file)
    for path in searched:
        if checkpoint_fingerprint(path, kind) == fingerprint:
            return path
    what, flag = ("model", "--checkpoint RUN") if kind == MODEL_KIND else ("motion prior", "--prior PRIOR")
    places = " and ".join(str(p) for p in search_folders(mbits_path))
    raise MotionbitsError(f"{mbits_path}: needs the {what} with fingerprint {fingerprint.hex()}; none of the "
                          f"{len(searched)} checkpoints in {places} (*.pt, */{run_file}) is it: pass {flag}")
