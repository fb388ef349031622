"""A copy of a trained run whose inference weights are its last weights, not their average.

    python scripts/last_weights.py RUN OUT
    motionbits evaluate --checkpoint OUT ...        # any use verb: the last weights judged

Inference reads a checkpoint's exponential average of the weights (`train.ema_decay`); a run's
checkpoint keeps its last weights beside it. OUT/last.pt is RUN's checkpoint with the average
replaced by the last weights (the optimizer state left out), next to RUN's config.json, so the
same run can be judged both ways (docs/experiments.md, "The weights' average").
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from motionbits.atomic_files import atomic_path
from motionbits.checkpoints import read_checkpoint
from motionbits.errors import MotionbitsError


def last_weights(run: str | Path, out: str | Path) -> Path:
    """Writes OUT/last.pt (and OUT/config.json where RUN has one); returns the checkpoint's path."""
    ckpt = read_checkpoint(run)
    source = Path(ckpt.pop("path"))
    ckpt["ema"] = ckpt["model"]
    ckpt.pop("optimizer", None)
    out = Path(out)
    if out.resolve() == source.parent.resolve():
        raise MotionbitsError(f"{out}: is the run's own folder; give another")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "last.pt") as tmp:
        torch.save(ckpt, tmp)
    if (source.parent / "config.json").is_file():
        shutil.copyfile(source.parent / "config.json", out / "config.json")
    return out / "last.pt"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="a run folder or checkpoint file")
    ap.add_argument("out", help="the folder to write")
    args = ap.parse_args(argv)
    try:
        print(f"wrote {last_weights(args.run, args.out)}")
    except MotionbitsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
