"""Train the Sprites judge the package ships (src/motionbits/assets/sprites_judge/judge.safetensors).

The judge of the default benchmark (every character composed from the shipped LPC sheets with
seed 0) is the same for every run, so the demo loads this one instead of training it again (about
50 s on 2 CPU cores); `motionbits evaluate` measures its accuracy on the test split each time.
It is trained on the training characters only, as evaluation/sprites.py would train it:

    python scripts/make_sprites_judge.py [--data DATA] [--out PATH]

DATA: the default benchmark (`motionbits data sprites --out DATA`); composed into a temporary
folder when not given.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from motionbits.assets import SPRITES_JUDGE
from motionbits.data.sprites import compose_sprites
from motionbits.errors import MotionbitsError
from motionbits.evaluation.judge import save_judge
from motionbits.evaluation.sprites import SHIPPED_JUDGE_STEPS, composed_by_default, measure_judge, trained_judge


def make_judge(data: Path, out: Path) -> dict:
    if not composed_by_default(data):
        raise MotionbitsError(f"{data}: not the default benchmark (every character, the shipped sheets, seed 0)")
    judge = trained_judge(data, SHIPPED_JUDGE_STEPS)
    accuracies = measure_judge(judge, data)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_judge(judge, out)
    return accuracies


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="the default Sprites benchmark (default: composed into a temporary folder)")
    ap.add_argument("--out", default=str(SPRITES_JUDGE))
    args = ap.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(args.data) if args.data else Path(tmp) / "sprites"
            if not args.data:
                compose_sprites(None, data)
            accuracies = make_judge(data, Path(args.out))
    except MotionbitsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v:.3f}" for k, v in accuracies.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
