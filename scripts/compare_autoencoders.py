"""The fast autoencoder against taef2 on clips: how close its latents and pictures come, with a strip to look at.

    python scripts/compare_autoencoders.py --fast FOLDER CLIP [CLIP ...] [--size 128] [--strip strip.png]

Each clip (a video, GIF or frame folder) is read at --size. Per clip: the fast encoder's latents
against taef2's (mean squared error over their variance), the fast decoder's pictures of taef2's
latents against taef2's own (PSNR), and each autoencoder's round trip against the frames (PSNR).
--strip: for the first clip, 6 frames as rows of the frame, taef2's round trip and the fast one's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from motionbits.data.inputs import read_input_clip
from motionbits.errors import MotionbitsError
from motionbits.models.fast_autoencoder import FastTAEF2
from motionbits.models.tokenizer import build_tokenizer, frames_to_unit
from motionbits.training.distill_autoencoder import compare_with_taef2


@torch.no_grad()
def strip(frames: torch.Tensor, taef2, fast, path: Path, count: int = 6) -> None:
    """Rows: the frames, taef2's round trip, the fast autoencoder's ([0,1] pictures side by side)."""
    pick = frames[np.linspace(0, len(frames) - 1, count).round().astype(int)]
    x = frames_to_unit(pick)
    rows = [x, taef2.decoder(taef2.encoder(x)).clamp(0, 1), fast.decoder(fast.encoder(x)).clamp(0, 1)]
    image = torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)          # [3, 3H, count*W]
    Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clips", nargs="+", help="videos, GIFs or frame folders")
    p.add_argument("--fast", required=True, help="the fast autoencoder's folder (`motionbits distill-autoencoder`)")
    p.add_argument("--size", type=int, default=128, help="side the frames are read at (default 128)")
    p.add_argument("--strip", help="write a picture strip of the first clip here (.png)")
    args = p.parse_args(argv)
    try:
        taef2, fast = build_tokenizer("taef2"), FastTAEF2.from_folder(args.fast)
        clips = [read_input_clip(c, args.size, None) for c in args.clips]
    except MotionbitsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("| clip | frames | latent error (of variance) | fast decoder vs taef2's, dB | round trip fast / taef2, dB |")
    print("|---|---|---|---|---|")
    for name, frames in zip(args.clips, clips):
        r = compare_with_taef2(fast, taef2, frames)
        print(f"| {Path(name).name} | {len(frames)} | {r['latent_error_relative']:.3f} | "
              f"{r['decode_psnr_vs_taef2_db']:.1f} | {r['round_trip_psnr_db']:.1f} / {r['taef2_round_trip_psnr_db']:.1f} |")
    if args.strip:
        strip(clips[0], taef2, fast, Path(args.strip))
        print(f"wrote {args.strip}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
