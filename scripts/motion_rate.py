"""The motion stream's rate on one clip, coded against ideal, under each of the codec's tables.

    python scripts/motion_rate.py --checkpoint RUN CLIP [--prior PRIOR] [--packet-windows P ...]

For static tables, adaptive tables (the default without a prior) and the prior (with --prior):
- coded: the bits per frame of the motion packets `motionbits encode` writes (framing, packet
  checks and the coder's ends included; header, content and end packet left out: paid once);
- ideal: the codes' own code length under the same tables, sum over frames and groups of
  -log2 p(code | the codes before), as the coder's tables give it (for the prior: its prediction
  on these very codes, in the 2**-16 steps the coder uses; for adaptive tables: the sequential
  adaptive-count code length);
- coded / ideal.
Every row codes the same codes (the model's argmax codes of the clip). Prints a markdown table.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from motionbits.api import MotionBits
from motionbits.codec.entropy import frame_bits
from motionbits.codec.stream import StreamEncoder, code_model
from motionbits.data.inputs import read_timed_clip
from motionbits.errors import MotionbitsError


def rate_rows(pipe, frames, fps: float, prior=None, packet_windows: int = 1) -> list[dict]:
    """uint8 frames [T, H, W, 3] -> one dict per tables: coded and ideal bits per frame, ratio."""
    import torch

    clip = torch.as_tensor(np.asarray(frames))[None]
    latents, lips = pipe.to_latents(clip), pipe.model.lips_of_frames(clip)    # read once, coded three ways
    runs = [("static", None, "static"), ("adaptive", None, "adaptive")] + ([("prior", prior, "adaptive")] if prior else [])
    rows = []
    for name, with_prior, tables in runs:
        encoder = StreamEncoder(pipe, with_prior, fps, tables=tables, packet_windows=packet_windows)
        file_bytes = len(encoder.feed_latents(latents, lips) + encoder.finish())          # the whole .mbits file
        motion_bytes = sum(size for kind, _, size in encoder.packets if kind == "motion")
        codes = encoder.codes
        model = code_model(pipe, with_prior, encoder.content_values, tables == "adaptive")
        ideal = float(frame_bits(codes, model).sum())
        rows.append({"tables": name, "frames": len(codes), "coded": 8 * motion_bytes / len(codes),
                     "ideal": ideal / len(codes), "file_bytes": file_bytes})
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("clip", help="a video file")
    p.add_argument("--checkpoint", required=True, help="the face model's run folder or checkpoint")
    p.add_argument("--prior", help="its motion prior (adds the prior's row)")
    p.add_argument("--packet-windows", type=int, nargs="+", default=[1],
                   help="windows per motion packet (each P adds its rows; the latency grows to P x window - 1 frames)")
    p.add_argument("--frames", type=int, default=None, help="code the clip's first N frames")
    args = p.parse_args(argv)
    try:
        pipe = MotionBits.from_checkpoint(args.checkpoint, "cpu")
        prior = None
        if args.prior:
            from motionbits.checkpoints import load_prior

            prior = load_prior(args.prior, "cpu")
        read = read_timed_clip(args.clip, pipe.cfg.data.image_size, args.frames, pipe.cfg.data.fps)
        print(f"{len(read.frames)} frames at {read.fps:g} fps, windows of {pipe.model.window} frames\n")
        print("| tables | windows per packet (look-ahead, frames) | coded bits/frame | ideal bits/frame | coded / ideal | file bytes |")
        print("|---|---|---|---|---|---|")
        for windows in args.packet_windows:
            for r in rate_rows(pipe, read.frames, read.fps, prior, windows):
                print(f"| {r['tables']} | {windows} ({windows * pipe.model.window - 1}) | {r['coded']:.2f} | "
                      f"{r['ideal']:.2f} | {r['coded'] / r['ideal']:.3f} | {r['file_bytes']} |", flush=True)
    except MotionbitsError as err:
        sys.exit(f"motion_rate.py: {err}")


if __name__ == "__main__":
    main()
