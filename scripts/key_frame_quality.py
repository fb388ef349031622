"""How close a key frame comes back from its content section: compact values against an AV1 picture.

    python scripts/key_frame_quality.py --checkpoint RUN FRAME.png [--budgets 256 512 1024 2048]

For a model whose content is its key frame's latent patches as they are (`model.draw_change`),
the decoder's key frame is the content read back as a latent and decoded by the tokenizer. For
each byte budget: the compact section's bytes (codec/content.py) and the PSNR of that key frame
against the frame; the AV1 picture's bytes (codec/key_frame.py), the PSNR of the picture itself,
and of the key frame read from it; and the float16 content (what `reconstruct` uses) for scale.
Prints a markdown table.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from motionbits.api import MotionBits
from motionbits.codec.content import encode_content
from motionbits.codec.key_frame import decode_key_frame, encode_key_frame, key_frame_values
from motionbits.data.inputs import read_input_clip
from motionbits.errors import MotionbitsError


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a draw_change model's run folder or last.pt")
    p.add_argument("frame", help="the key frame: an image (read at the model's size)")
    p.add_argument("--budgets", nargs="+", type=int, default=[256, 512, 1024, 2048], metavar="BYTES")
    args = p.parse_args(argv)
    try:
        pipe = MotionBits.from_checkpoint(args.checkpoint, device="cpu")
        if not pipe.cfg.model.draw_change:
            raise MotionbitsError(f"{args.checkpoint}: its content is not the key frame's patches as they are "
                                  "(model.draw_change), so no key frame can be read back from it")
        frame = read_input_clip(args.frame, pipe.cfg.data.image_size, 1)[0].numpy()       # [H, W, 3]
    except MotionbitsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    def key_frame_of(values: np.ndarray) -> np.ndarray:
        key = pipe.model.key_frame(torch.from_numpy(np.asarray(values, np.float32))[None])          # [1, 1, C, h, w]
        return pipe.to_frames(key)[0, 0].numpy()

    exact = pipe.content_of_latents(pipe.to_latents(frame[None, None]))[0].numpy()             # [K, Cc] float16 values
    print(f"| content, budget | bytes | key frame PSNR dB (picture itself) |\n|---|---|---|")
    print(f"| float16 | {exact.size * 2} | {psnr(frame, key_frame_of(exact)):.1f} |")
    for budget in args.budgets:
        section, values = encode_content(exact, budget)
        picture_section = encode_key_frame(frame, budget)
        picture = decode_key_frame(picture_section, frame.shape[0])
        print(f"| compact, {budget} | {len(section)} | {psnr(frame, key_frame_of(values)):.1f} |")
        print(f"| AV1 picture, {budget} | {len(picture_section)} | "
              f"{psnr(frame, key_frame_of(key_frame_values(pipe, picture))):.1f} ({psnr(frame, picture):.1f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
