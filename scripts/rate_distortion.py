"""Rate against distortion: motionbits runs at several bitrates beside x264, x265 and SVT-AV1.

    python scripts/rate_distortion.py --runs RUN [RUN ...] --data DATA --out FOLDER
        [--frames 32] [--videos 8] [--crf-steps 4] [--prior PRIOR]

The test split of a `motionbits data video` dataset is the material (clips no run trained on):
each test video's back-to-back clips are joined into sequences of --frames frames at the dataset's
size and frame rate. Every sequence is coded by each run (`motionbits encode`'s bitstream: content
once + range-coded motion; decoded as `motionbits decode` does) and by each codec at CRFs from its
highest (its lowest rate) down. For both, the first frame's cost is counted apart from the rest:
the codecs' intra frame against motionbits' content, the codecs' later frames against the motion
stream. Written to FOLDER: rd.json (every measurement), rd.md (a table) and rd.png (kbps against
PSNR, and against face identity and landmark distance when the faces extra is installed).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from motionbits.api import MotionBits
from motionbits.codec import decode_file, encode_clip
from motionbits.models.tokenizer import frames_to_float
from motionbits.data.video import load_video_clips, video_dataset_fps
from motionbits.evaluation.metrics import psnr, ssim
from motionbits.evaluation.video import long_sequences
from motionbits.evaluation.video_codecs import CODECS, code_with
from motionbits.visualize import line_chart


def test_sequences(root: str, frames: int, videos: int, only: str | None = None) -> list[np.ndarray]:
    """Up to `videos` sequences of `frames` frames, one per test video (whose manifest path matches
    `only`, a regular expression, when given), from back-to-back clips."""
    import re

    clips, labels = load_video_clips(root, "test")
    paths = [v["path"] for v in json.loads((Path(root) / "manifest.json").read_text())["videos"]]
    keep = np.array([only is None or re.search(only, paths[v]) is not None for v in labels["video"]])
    tiles = long_sequences(np.where(keep, labels["video"], -1), labels["start"], clips.shape[1], frames)
    tiles = [t for t in tiles if keep[t[0]]]
    return [np.concatenate([clips[i] for i in t])[:frames] for t in tiles if len(t) * clips.shape[1] >= frames][:videos]


def source_fps(root: str) -> float:
    """The frame rate of a dataset built without --fps: its first video's."""
    manifest = json.loads((Path(root) / "manifest.json").read_text())
    return float(next((v["source_fps"] for v in manifest["videos"] if v.get("source_fps")), 25.0))


def face_scorer():
    """The faces extra's models (docs/faces.md), or None where the extra is not installed."""
    from motionbits.face_models import face_models, faces_available

    return face_models() if faces_available() else None


def distortion(decoded: np.ndarray, original: np.ndarray, faces) -> dict:
    """PSNR and SSIM; with the face models also CSIM (to the original's mean face descriptor), AED
    and AKD of the decoded sequence against the original (docs/faces.md has the definitions)."""
    real, fake = frames_to_float(torch.from_numpy(original)), frames_to_float(torch.from_numpy(decoded))
    out = {"psnr_db": psnr(fake, real), "ssim": ssim(fake, real)}
    if faces is not None:
        from motionbits.evaluation.faces import aed, akd, identity_to, read_faces

        truth, coded = read_faces(original, faces), read_faces(decoded, faces)
        out.update({"csim": identity_to(coded, truth.mean_embedding())["csim"], "aed": aed(coded, truth),
                    "akd": akd(coded, truth)["akd"]})
    return out


def mean_rows(rows: list[dict]) -> dict:
    """Means over sequences; a face measure no sequence had (no face found) stays None."""
    keys = dict.fromkeys(k for r in rows for k in r)
    values = {k: [r[k] for r in rows if r.get(k) is not None] for k in keys}
    return {k: float(np.mean(v)) if v else None for k, v in values.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="motionbits run folders (e.g. a sweep's bits_* folders)")
    p.add_argument("--data", required=True, help="a `motionbits data video` dataset: its test split is coded")
    p.add_argument("--out", required=True, help="folder for rd.json, rd.md, rd.png")
    p.add_argument("--frames", type=int, default=32, help="frames per sequence")
    p.add_argument("--videos", type=int, default=8, help="test sequences (one per test video)")
    p.add_argument("--crf-steps", type=int, default=4, help="CRFs per codec, from its highest down in steps of 6")
    p.add_argument("--prior", help="code the motion under this prior (default: each run's static tables)")
    p.add_argument("--only", metavar="REGEX", help="only the test videos whose path matches (e.g. held-back videos "
                                                   "of the person the runs were trained for)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fps = video_dataset_fps(args.data) or source_fps(args.data)
    sequences = test_sequences(args.data, args.frames, args.videos, args.only)
    if not sequences:
        sys.exit(f"{args.data}: no test video has {args.frames} frames of back-to-back clips")
    faces = face_scorer()
    results = []
    for run in args.runs:
        pipe = MotionBits.from_checkpoint(run)
        prior = None
        if args.prior:
            from motionbits.checkpoints import load_prior
            prior = load_prior(args.prior)
        rows = []
        for seq in tqdm(sequences, desc=f"motionbits {Path(run).name}"):
            f = encode_clip(pipe, seq, prior, fps=fps)
            content, codes = decode_file(f, pipe, prior)
            decoded = pipe.render(content, codes)[0].numpy()
            s = f.sizes
            rows.append({"kbps": 8 * s["total"] * fps / len(seq) / 1000,
                         "kbps_after_first": 8 * s["motion"] * fps / len(seq) / 1000,
                         "first_bytes": s["header"] + s["content"], **distortion(decoded, seq, faces)})
        results.append({"method": "motionbits", "setting": f"{Path(run).name} ({pipe.cfg.train.target_bits:g} bits/frame target)",
                        **mean_rows(rows)})
    for codec, (_, highest, _) in CODECS.items():
        for crf in range(highest, max(highest - 6 * args.crf_steps, 0), -6):
            rows = []
            for seq in tqdm(sequences, desc=f"{codec} crf {crf}"):
                coded = code_with(seq, codec, crf, fps)
                rows.append({"kbps": coded.kbps(fps, len(seq)), "kbps_after_first": coded.kbps_after_first(fps, len(seq)),
                             "first_bytes": coded.first_frame_bytes, **distortion(coded.frames, seq, faces)})
            results.append({"method": codec, "setting": f"CRF {crf}", **mean_rows(rows)})
    meta = {"data": str(Path(args.data).resolve()), "only": args.only, "sequences": len(sequences), "frames": args.frames, "fps": fps,
            "size": int(sequences[0].shape[1]), "faces": faces is not None, "prior": args.prior}
    (out / "rd.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    measures = [k for k in ("psnr_db", "ssim", "csim", "aed", "akd") if k in results[0]]
    lines = [f"# Rate and distortion: {meta['sequences']} test sequences of {args.frames} frames, "
             f"{meta['size']}x{meta['size']} at {fps:g} fps", "",
             "kbps: every byte over the sequence; after the first frame: what each further frame costs "
             "(codecs' later frames; motionbits' motion stream), the first frame's cost (codecs' intra frame; "
             "motionbits' header and content) apart.", "",
             "| method | setting | kbps | kbps after the first frame | first frame (bytes) | "
             + " | ".join(measures) + " |", "|---|---|---|---|---|" + "---|" * len(measures)]
    for r in results:
        lines.append(f"| {r['method']} | {r['setting']} | {r['kbps']:.2f} | {r['kbps_after_first']:.3f} | "
                     f"{r['first_bytes']:.0f} | " + " | ".join("n/a" if r.get(k) is None else f"{r[k]:.3f}" for k in measures) + " |")
    (out / "rd.md").write_text("\n".join(lines) + "\n")
    series = lambda key: {m: [(r["kbps_after_first"], r.get(key)) for r in results if r["method"] == m]  # noqa: E731
                          for m in dict.fromkeys(r["method"] for r in results)}
    line_chart([{"title": f"{k} against the rate after the first frame", "x": "kbps", "y": k, "log_x": True,
                 "series": series(k)} for k in measures], out / "rd.png")
    print((out / "rd.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
