"""Decoder reliance of a trained model: does its denoiser use the motion codes?

    python scripts/reliance.py --checkpoint RUN [--data DATA] [--clips 16] [--seed 0] [--json]

On --clips clips spread over the training split and as many over the test split of the model's
dataset (or DATA, a dataset of the same kind and frame size), prints the denoising loss with the
clips' own codes and the relative gap (loss - own loss) / own loss with the codes shuffled in time,
held at the first frame's, or another person's, at sigma 0.5, 2, 5, 10 and 20, the same noise for
every row (reliance.py; docs/evaluation.md says how to read it).
"""
from __future__ import annotations

import argparse
import json
import sys

from motionbits.api import MotionBits
from motionbits.errors import MotionbitsError
from motionbits.reliance import EVAL_CLIPS, RELIANCE_NOTE, RelianceClips, reliance_lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="last.pt or its run folder")
    p.add_argument("--data", help="dataset folder (default: the checkpoint's)")
    p.add_argument("--clips", type=int, default=EVAL_CLIPS, help="clips of each split")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise and the shuffle")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    args = p.parse_args(argv)
    try:
        pipe = MotionBits.from_checkpoint(args.checkpoint, args.device)
        if args.data:
            pipe.cfg.data.root = args.data
        clips = RelianceClips.of_dataset(pipe.cfg, pipe.tokenizer, pipe.device, args.clips)
        if not clips.splits:
            raise MotionbitsError(f"{pipe.cfg.data.root}: neither a train nor a test split could be read")
        report = clips.measure(pipe.model, args.seed)
    except MotionbitsError as err:
        print(f"reliance.py: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"# Decoder reliance: {pipe.cfg.name} ({pipe.source})\n\n{RELIANCE_NOTE}\n")
        print("\n".join(reliance_lines(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
