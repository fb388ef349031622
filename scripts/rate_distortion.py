"""Rate against distortion, the codec way: motionbits beside x264, x265 and SVT-AV1.

    python scripts/rate_distortion.py --runs RUN [RUN ...] (--video FILE [FILE ...] | --data DATA)
        --out FOLDER [--prior PRIOR] [--content-bytes N [N ...]] [--content compact image] [--crf-steps 4]
        [--frames N]

The material: a person's held-back video given directly (--video, read at the model's size and
frame rate, as `motionbits encode` reads it), or the test split of a `motionbits data video`
dataset (--data: each test video's back-to-back clips joined into sequences of --frames frames).

motionbits codes each sequence as a call would: a StreamEncoder fed one frame at a time (batch 1),
the bytes `motionbits encode` writes (header, the content once, a motion packet per window, end),
under --prior or else the adaptive tables; a StreamDecoder fed those packets renders the frames, as
`motionbits decode` does. One series per run and content coding (--content: compact values, or a
key-frame model's key frame as an AV1 picture), a point per --content-bytes budget (runs trained
at different targets: several series). The codecs (evaluation/video_codecs.py) at their usual presets
and at their low-delay call settings, each its own series, at CRFs from the highest down in 6s.

Each point: the clip's total kbps, and the total for 10 s, 60 s and 10 min calls, with what is paid
once (motionbits: header, content and end; a codec: its first, intra frame) spread over the call and
the rest (the motion packets; the later frames) at its per-second rate from the clip (no further
intra frames assumed: a call codec with intra refresh). PSNR, SSIM; with the faces extra CSIM (to
the original's mean face descriptor), AED, AKD, and mouth and head-pose r (face_motion.py, pooled
over the sequences). Encode and decode frames per second, and the encoder's delay in frames. Then
BD-rate (evaluation/bd_rate.py) of every series against x265 on AKD and on CSIM, and the issue-33
check: the best AKD and CSIM motionbits reaches at a third of x265 CRF 51's kbps. For scale, the
same measures of each original's first frame held (what a coder sending no motion would score).
Written to FOLDER: rd.json (every measurement), rd.md (the tables), rd.png (plots only).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from motionbits.api import MotionBits
from motionbits.atomic_files import write_json_atomic, write_text_atomic
from motionbits.codec.stream import StreamDecoder, StreamEncoder, look_ahead
from motionbits.data.video import load_video_clips, video_dataset_fps
from motionbits.errors import MotionbitsError
from motionbits.evaluation.bd_rate import bd_rate
from motionbits.evaluation.metrics import psnr, ssim
from motionbits.evaluation.video import long_sequences
from motionbits.evaluation.video_codecs import CODECS, code_with
from motionbits.models.tokenizer import frames_to_float
from motionbits.visualize import line_chart

CALLS = {"10 s": 10.0, "60 s": 60.0, "10 min": 600.0}     # call lengths the totals are recomputed for
REFERENCE = "x265"                                       # BD-rate against this series
BD_METRICS = ("akd", "csim")
# metric: (label in the table and plot, better high)
MEASURES = {"psnr_db": ("PSNR dB", True), "ssim": ("SSIM", True), "csim": ("CSIM", True), "aed": ("AED", False),
            "akd": ("AKD", False), "mouth_r": ("mouth r", True), "pose_r": ("head-pose r", True)}


# ---- material ----------------------------------------------------------------------------------
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


def video_sequences(paths: list[str], pipe, frames: int | None) -> tuple[list[np.ndarray], float]:
    """Each video whole (or its first `frames`), read at the model's size and rate as encode reads it."""
    from motionbits.data.inputs import read_timed_clip

    reads = [read_timed_clip(p, pipe.cfg.data.image_size, frames, pipe.cfg.data.fps) for p in paths]
    rates = {r.fps for r in reads}
    if len(rates) > 1:
        raise MotionbitsError(f"--video: the videos play at different rates ({sorted(rates)} fps) and the model has "
                              "none of its own to read them at: give videos of one rate")
    return [r.frames.numpy() for r in reads], rates.pop()


# ---- distortion ----------------------------------------------------------------------------------
def face_scorer():
    """The faces extra's models (docs/faces.md), or None where the extra is not installed."""
    from motionbits.face_models import face_models, faces_available

    return face_models() if faces_available() else None


class Scorer:
    """Scores decoded sequences against the originals; the originals' face readings are read once."""

    def __init__(self, sequences: list[np.ndarray], faces):
        from motionbits.evaluation.faces import read_faces

        self.sequences, self.faces = sequences, faces
        self.truth = [read_faces(s, faces) for s in sequences] if faces is not None else None

    def still(self) -> dict:
        """Each original's first frame held over its later frames (frame 0 itself left out: PSNR
        would be infinite there): what a coder that sends no motion scores."""
        from motionbits.evaluation.faces import FaceReadings, held

        later = [s[1:] for s in self.sequences]
        truth = [FaceReadings(t.found[1:], t.landmarks[1:], t.embeddings[1:], t.size) for t in self.truth or []]
        readings = [held(t, len(s)) for t, s in zip(self.truth, later)] if self.truth else None
        return self.point([np.repeat(s[:1], len(s) - 1, axis=0) for s in self.sequences], readings, later, truth)

    def point(self, decoded: list[np.ndarray], readings: list | None = None, originals: list | None = None,
              truths: list | None = None) -> dict:
        """decoded[i]: uint8 [T, H, W, 3] of sequence i -> means over sequences (mouth and pose r
        pooled); readings: the decoded frames' face readings where known; originals / truths: other
        originals and their readings than the sequences'."""
        rows, following = [], None
        for i, (fake, real) in enumerate(zip(decoded, originals or self.sequences)):
            a, b = frames_to_float(torch.from_numpy(real)), frames_to_float(torch.from_numpy(fake))
            row = {"psnr_db": psnr(b, a), "ssim": ssim(b, a)}
            if self.faces is not None:
                from motionbits.evaluation.face_motion import MotionFollowing
                from motionbits.evaluation.faces import aed, akd, identity_to, read_faces

                truth = (truths or self.truth)[i]
                coded = readings[i] if readings else read_faces(fake, self.faces)
                row.update({"csim": identity_to(coded, truth.mean_embedding())["csim"], "aed": aed(coded, truth),
                            "akd": akd(coded, truth)["akd"]})
                following = following or MotionFollowing()
                following.add("coded", i, coded.landmarks, truth.landmarks)
            rows.append(row)
        out = mean_rows(rows)
        if following is not None:
            groups = following.summary(draws=200)["coded"]["groups"]
            out.update({"mouth_r": groups["mouth"]["r_pooled"], "pose_r": groups["head pose"]["r_pooled"]})
        return out


def mean_rows(rows: list[dict]) -> dict:
    """Means over sequences; a face measure no sequence had (no face found) stays None."""
    keys = dict.fromkeys(k for r in rows for k in r)
    values = {k: [r[k] for r in rows if r.get(k) is not None] for k in keys}
    return {k: float(np.mean(v)) if v else None for k, v in values.items()}


# ---- rate ----------------------------------------------------------------------------------------
def rates(once: list[int], later: list[int], later_frames: list[int], frames: list[int], fps: float) -> dict:
    """Per sequence: bytes paid once, bytes of the rest, the frames the rest covers, all frames ->
    the clip's kbps, the rest's kbps, and the total for each call length in CALLS."""
    later_kbps = 8 * sum(later) * fps / max(sum(later_frames), 1) / 1000
    once_bytes = float(np.mean(once))
    return {"kbps": 8 * (sum(once) + sum(later)) * fps / sum(frames) / 1000, "once_bytes": once_bytes,
            "later_kbps": later_kbps, "calls": {name: 8 * once_bytes / s / 1000 + later_kbps for name, s in CALLS.items()}}


def code_motionbits(pipe, prior, seq: np.ndarray, fps: float, content_bytes: int | None, content: str = "compact") -> dict:
    """One sequence through the stream coder at batch 1: the packets' bytes by kind, the decoded
    frames and the seconds spent encoding and decoding."""
    encoder = StreamEncoder(pipe, prior, fps, content=content, content_bytes=content_bytes)
    packets, start = [], time.perf_counter()
    with torch.inference_mode():
        for frame in torch.from_numpy(seq):
            packets.append(encoder.feed(frame[None]))
        packets.append(encoder.finish())
        encode_s = time.perf_counter() - start
        decoder, decoded, start = StreamDecoder(pipe, prior), [], time.perf_counter()
        for packet in packets:
            decoded.append(decoder.feed(packet))
        decoder.finish()
        decode_s = time.perf_counter() - start
    sizes: dict[str, int] = {}
    for kind, _, size in encoder.packets:
        sizes[kind] = sizes.get(kind, 0) + size
    assert sum(sizes.values()) == sum(map(len, packets)), "the packets listed are the bytes sent"
    return {"bytes": b"".join(packets), "once": sum(sizes.values()) - sizes.get("motion", 0),
            "motion": sizes.get("motion", 0), "frames": torch.cat(decoded).numpy(), "encode_s": encode_s,
            "decode_s": decode_s}


def measure_motionbits(run: str, pipe, prior, sequences, fps, content_bytes, scorer: Scorer, fast: bool = False,
                       content: str = "compact") -> dict:
    coded = [code_motionbits(pipe, prior, s, fps, content_bytes, content)
             for s in tqdm(sequences, desc=f"motionbits {Path(run).name} {content} content {content_bytes or 'default'}")]
    frames = [len(s) for s in sequences]
    series = (f"motionbits {Path(run).name}" + (" + prior" if prior is not None else "")
              + (" (fast autoencoder)" if fast else "") + (", key frame as AV1" if content == "image" else ""))
    return {"series": series, "setting": f"content {coded[0]['once']} B once "
                                         f"({'budget ' + str(content_bytes) if content_bytes else 'default budget'}), "
                                         f"target {pipe.cfg.train.target_bits:g} bits/frame",
            **rates([c["once"] for c in coded], [c["motion"] for c in coded], frames, frames, fps),
            **scorer.point([c["frames"] for c in coded]),
            "encode_fps": sum(frames) / sum(c["encode_s"] for c in coded),
            "decode_fps": sum(frames) / sum(c["decode_s"] for c in coded), "delay_frames": look_ahead(pipe)}


def measure_codec(codec: str, crf: int, sequences, fps, scorer: Scorer) -> dict:
    coded = [code_with(s, codec, crf, fps) for s in sequences]
    frames = [len(s) for s in sequences]
    return {"series": codec, "setting": f"CRF {crf}",
            **rates([c.first_frame_bytes for c in coded], [c.bytes - c.first_frame_bytes for c in coded],
                    [f - 1 for f in frames], frames, fps),
            **scorer.point([c.frames for c in coded]),
            "encode_fps": sum(frames) / sum(c.encode_s for c in coded),
            "decode_fps": sum(frames) / sum(c.decode_s for c in coded),
            "delay_frames": max(c.delay_frames for c in coded)}


# ---- comparisons ---------------------------------------------------------------------------------
def rate_of(row: dict, call: str) -> float:
    return row["kbps"] if call == "clip" else row["calls"][call]


def bd_rates(results: list[dict]) -> list[dict]:
    """Every series' BD-rate against REFERENCE on each of BD_METRICS, over the clip and each call."""
    reference = [r for r in results if r["series"] == REFERENCE]
    out = []
    for series in dict.fromkeys(r["series"] for r in results):
        if series == REFERENCE or not reference:
            continue
        rows = [r for r in results if r["series"] == series]
        for metric in BD_METRICS:
            if metric not in results[0]:
                continue
            entry = {"series": series, "metric": metric}
            for call in ["clip", *CALLS]:
                bd = bd_rate([(rate_of(r, call), r[metric]) for r in reference],
                             [(rate_of(r, call), r[metric]) for r in rows], metric.upper())
                entry[call] = {"percent": bd.percent, "note": bd.note}
                entry["overlap"] = bd.overlap             # the same for every call: the metric does not change
            out.append(entry)
    return out


def third_of_x265(results: list[dict]) -> list[dict]:
    """For the clip and each call: x265 at its highest CRF, and the best AKD and CSIM of the
    motionbits points at no more than a third of its kbps (issue 33's check)."""
    top = [r for r in results if r["series"] == REFERENCE]
    ours = [r for r in results if r["series"].startswith("motionbits")]
    if not top or not ours or "akd" not in top[0]:
        return []
    x265 = max(top, key=lambda r: int(r["setting"].split()[-1]))          # its highest CRF: its lowest rate
    out = []
    for call in ["clip", *CALLS]:
        budget = rate_of(x265, call) / 3
        within = [r for r in ours if rate_of(r, call) <= budget]
        akds = [r["akd"] for r in within if r.get("akd") is not None]
        csims = [r["csim"] for r in within if r.get("csim") is not None]
        out.append({"call": call, "x265_setting": x265["setting"], "x265_kbps": rate_of(x265, call),
                    "x265_akd": x265.get("akd"), "x265_csim": x265.get("csim"), "third_kbps": budget,
                    "motionbits_points": len(within), "best_akd": min(akds) if akds else None,
                    "best_csim": max(csims) if csims else None,
                    "cheapest_motionbits_kbps": min(rate_of(r, call) for r in ours)})
    return out


# ---- report --------------------------------------------------------------------------------------
def _f(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report_text(meta: dict, results: list[dict], bd: list[dict], check: list[dict], still: dict | None = None) -> str:
    measures = [k for k in MEASURES if k in results[0]]
    calls = list(CALLS)
    lines = [f"# Rate and distortion: {meta['material']}, {meta['size']}x{meta['size']} at {meta['fps']:g} fps", "",
             f"{meta['sequences']} sequence(s), {meta['frames_total']} frames, {meta['seconds']:.1f} s in all. "
             "kbps: every byte over the clip; for a call of 10 s, 60 s, 10 min: what is paid once (motionbits: "
             "header, content, end; a codec: its first, intra frame) spread over the call, plus the rest at its "
             "per-second rate in the clip (no further intra frames). fps: frames per second encoding / decoding "
             f"(motionbits one frame at a time, batch 1; torch threads {meta['torch_threads']}); delay: frames the "
             "encoder holds before a frame's bytes leave.", "",
             "| series | setting | kbps (clip) | " + " | ".join(f"kbps {c}" for c in calls)
             + " | paid once (B) | " + " | ".join(MEASURES[k][0] for k in measures)
             + " | encode fps | decode fps | delay |",
             "|---|---|---|" + "---|" * len(calls) + "---|" + "---|" * len(measures) + "---|---|---|"]
    for r in results:
        lines.append(f"| {r['series']} | {r['setting']} | {r['kbps']:.2f} | "
                     + " | ".join(f"{r['calls'][c]:.2f}" for c in calls) + f" | {r['once_bytes']:.0f} | "
                     + " | ".join(_f(r.get(k)) for k in measures)
                     + f" | {r['encode_fps']:.1f} | {r['decode_fps']:.1f} | {r['delay_frames']} |")
    if still:
        lines += ["", "Each original's first frame held, uncoded (no motion at all): "
                  + ", ".join(f"{MEASURES[k][0]} {_f(still.get(k))}" for k in measures) + "."]
    if bd:
        lines += ["", f"## BD-rate against {REFERENCE} (its usual preset)", "",
                  "Percent more (+) or less (-) rate than x265 for the same metric, over the metric range both "
                  "reach (evaluation/bd_rate.py); n/a where there is no such range, with the reason.", "",
                  "| series | metric | range compared | clip | " + " | ".join(calls) + " |",
                  "|---|---|---|---|" + "---|" * len(calls)]
        notes = []
        for e in bd:
            cells = []
            for c in ["clip", *calls]:
                v = e[c]
                cells.append(f"{v['percent']:+.1f} %" if v["percent"] is not None else "n/a")
                if v["percent"] is None and v["note"] not in notes:
                    notes.append(v["note"])
            span = f"{e['overlap'][0]:.3f}..{e['overlap'][1]:.3f}" if e["overlap"] else "none"
            lines.append(f"| {e['series']} | {e['metric'].upper()} | {span} | " + " | ".join(cells) + " |")
        lines += [""] + [f"- n/a: {n}" for n in notes]
    if check:
        lines += ["", f"## motionbits at a third of {REFERENCE} {check[0]['x265_setting']}'s kbps", "",
                  f"| call | {REFERENCE} kbps | its AKD | its CSIM | a third (kbps) | motionbits points within | "
                  "best AKD there | best CSIM there | cheapest motionbits kbps |", "|---|---|---|---|---|---|---|---|---|"]
        for c in check:
            lines.append(f"| {c['call']} | {c['x265_kbps']:.2f} | {_f(c['x265_akd'])} | {_f(c['x265_csim'])} | "
                         f"{c['third_kbps']:.2f} | {c['motionbits_points']} | {_f(c['best_akd'])} | "
                         f"{_f(c['best_csim'])} | {c['cheapest_motionbits_kbps']:.2f} |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict], call: str, path: Path) -> None:
    measures = [k for k in MEASURES if k in results[0] and k != "aed"]
    series = {s: [r for r in results if r["series"] == s] for s in dict.fromkeys(r["series"] for r in results)}
    line_chart([{"title": f"{MEASURES[k][0]} ({'higher' if MEASURES[k][1] else 'lower'} is better), "
                          f"{call} call", "x": f"kbps over a {call} call", "y": MEASURES[k][0], "log_x": True,
                 "series": {s: [(rate_of(r, call), r.get(k)) for r in rows] for s, rows in series.items()}}
                for k in measures], path, panel_size=(420, 300), columns=3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="motionbits run folders (several: several targets)")
    material = p.add_mutually_exclusive_group(required=True)
    material.add_argument("--video", nargs="+", metavar="FILE", help="held-back video(s) of the person, coded whole")
    material.add_argument("--data", help="a `motionbits data video` dataset: its test split is coded")
    p.add_argument("--out", required=True, help="folder for rd.json, rd.md, rd.png")
    p.add_argument("--frames", type=int, help="frames per sequence (--data: default 32; --video: default all)")
    p.add_argument("--videos", type=int, default=8, help="--data: test sequences (one per test video)")
    p.add_argument("--only", metavar="REGEX", help="--data: only the test videos whose path matches")
    p.add_argument("--crf-steps", type=int, default=4, help="CRFs per codec, from its highest down in steps of 6")
    p.add_argument("--codecs", nargs="+", default=list(CODECS), choices=list(CODECS), metavar="CODEC",
                   help=f"codec series (default all: {', '.join(CODECS)})")
    p.add_argument("--prior", help="code the motion under this prior (default: the adaptive tables)")
    p.add_argument("--content-bytes", nargs="+", type=int, metavar="N",
                   help="motionbits content budgets, a point each (default: the codec's default budget)")
    p.add_argument("--content", nargs="+", default=["compact"], choices=["compact", "image"],
                   help="motionbits content codings, a series each: compact values, or (a key-frame model) the "
                        "key frame as an AV1 picture (default: compact)")
    p.add_argument("--fast-autoencoder", metavar="FOLDER",
                   help="measure each run again through this fast autoencoder (`motionbits distill-autoencoder`)")
    p.add_argument("--plot-call", default="60 s", choices=["clip", *CALLS], help="the rate rd.png plots against")
    args = p.parse_args(argv)
    try:
        pipes = [MotionBits.from_checkpoint(run) for run in args.runs]
        fast_pipes = [MotionBits.from_checkpoint(run, fast_autoencoder=args.fast_autoencoder)
                      for run in args.runs] if args.fast_autoencoder else []
        prior = None
        if args.prior:
            from motionbits.checkpoints import load_prior
            prior = load_prior(args.prior, "cpu")
        if args.video:
            shapes = {(q.cfg.data.image_size, q.cfg.data.fps) for q in pipes}
            if len(shapes) > 1:
                raise MotionbitsError(f"--runs: the models read video at different sizes / rates {sorted(shapes, key=str)}")
            sequences, fps = video_sequences(args.video, pipes[0], args.frames)
            material = f"{len(args.video)} video(s) given ({', '.join(Path(v).name for v in args.video)})"
        else:
            fps = video_dataset_fps(args.data) or source_fps(args.data)
            sequences = test_sequences(args.data, args.frames or 32, args.videos, args.only)
            material = f"the test split of {Path(args.data).name}" + (f" matching {args.only!r}" if args.only else "")
            if not sequences:
                raise MotionbitsError(f"{args.data}: no test video has {args.frames or 32} frames of back-to-back clips")
        short = [len(s) for s in sequences if len(s) < max(q.model.window for q in pipes)]
        if short:
            raise MotionbitsError(f"a sequence of {short[0]} frames is shorter than a model's window")
    except MotionbitsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scorer = Scorer(sequences, face_scorer())
    results = []
    for run, pipe in zip(args.runs, pipes):
        for content in args.content:
            for budget in args.content_bytes or [None]:
                results.append(measure_motionbits(run, pipe, prior, sequences, fps, budget, scorer, content=content))
            if args.fast_autoencoder:
                fast = fast_pipes[args.runs.index(run)]
                for budget in args.content_bytes or [None]:
                    results.append(measure_motionbits(run, fast, prior, sequences, fps, budget, scorer, fast=True,
                                                      content=content))
    for codec in args.codecs:
        highest = CODECS[codec][1]
        for crf in tqdm(range(highest, max(highest - 6 * args.crf_steps, 0), -6), desc=codec):
            results.append(measure_codec(codec, crf, sequences, fps, scorer))
    frames_total = sum(len(s) for s in sequences)
    meta = {"material": material, "sequences": len(sequences), "frames_total": frames_total, "fps": fps,
            "seconds": frames_total / fps, "size": int(sequences[0].shape[1]), "faces": scorer.faces is not None,
            "runs": [Path(r).name for r in args.runs], "prior": Path(args.prior).name if args.prior else None,
            "fast_autoencoder": Path(args.fast_autoencoder).name if args.fast_autoencoder else None,
            "torch_threads": torch.get_num_threads(), "calls_s": CALLS,
            "codec_settings": {c: {"encoder": CODECS[c][0], **CODECS[c][2]} for c in args.codecs}}
    bd, check, still = bd_rates(results), third_of_x265(results), scorer.still()
    write_json_atomic(out / "rd.json", {"meta": meta, "results": results, "bd_rate": bd, "third_of_x265": check,
                                        "first_frame_held": still})
    text = report_text(meta, results, bd, check, still)
    write_text_atomic(out / "rd.md", text)
    plot(results, args.plot_call, out / "rd.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
