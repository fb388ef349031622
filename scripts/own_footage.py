"""A person's own model, measured the way issue 31 asks: their held-back video rebuilt, and the
person driven by people the model never saw.

    python scripts/own_footage.py --checkpoint RUN --person NAME [--drivers DATASET] --out DIR

The run's dataset (a `motionbits data video` folder made with --test-videos, so the person has
videos in both splits) gives:
- reconstruction: every window of 32 frames (4 clips of 8) of the person's held-back test videos,
  content and codes from the window itself (pipe.transfer(window, window)), against the window;
  rows "model", "still" (its first frame held), "tokenizer only" (the ceiling) and "null"
  (another window of the person: what a moving face that is not this one gives); landmark signals
  pooled with a 95 % bootstrap interval (evaluation/face_motion.py), AKD and PSNR;
- the same for windows of the person's training videos (seen): a rebuild that follows there what
  it misses on the held-back video has learnt the footage, not how the face moves;
- transfer: the person's first held-back clip as the content, driven by windows of the test split's
  people the run never trained on (or of --drivers, a dataset of footage from elsewhere; or, with
  --seen-drivers, of the other people the run trained on, in their training clips): motion r
  against the driver, CSIM to the person (dlib descriptors of the person's held-back frames) and the
  share of frames recognised as them (descriptor distance below 0.6).
Intervals resample whole drivers' videos; the reconstruction resamples windows, since a person
usually has one or two held-back videos (the report says how many).
Writes own_footage.json, own_footage.md and strip.png (driver above, result below).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from motionbits.api import MotionBits
from motionbits.atomic_files import write_json_atomic, write_text_atomic
from motionbits.data.video import dataset_manifest, load_video_clips
from motionbits.errors import MotionbitsError
from motionbits.evaluation.face_motion import MotionFollowing
from motionbits.evaluation.face_protocol import video_windows
from motionbits.evaluation.faces import akd, held, identity_to, read_faces
from motionbits.evaluation.metrics import psnr
from motionbits.face_models import face_models

WINDOW = 32


def windows_of(frames: np.ndarray, labels: dict, keep: np.ndarray, most: int) -> list[tuple[int, list[int]]]:
    """Back-to-back windows of WINDOW frames from the clips where `keep` is true, at most `most`."""
    found = video_windows(labels["video"], labels["start"], frames.shape[1], WINDOW)
    return [w for w in found if keep[w[1][0]]][:most]


def stack(frames: np.ndarray, tiles: list[int]) -> np.ndarray:
    return np.concatenate([np.asarray(frames[t]) for t in tiles])               # [L, H, W, 3]


def measure(pipe: MotionBits, root: str, person: str, drivers_root: str | None, most: int, steps: int | None,
            seed: int, seen_drivers: bool = False) -> tuple[dict, list[np.ndarray]]:
    models = face_models()
    names = dataset_manifest(root, "test", "video")[1]["identities"]
    if person not in names:
        raise MotionbitsError(f"{root}: no person {person!r} (its people: {', '.join(names)})")
    frames, labels = load_video_clips(root, "test")
    frames = frames[:, : pipe.cfg.data.frames]
    t_frames, t_labels = load_video_clips(root, "train")
    t_frames = t_frames[:, : pipe.cfg.data.frames]
    train_ids = np.unique(t_labels["identity"])
    own = labels["identity"] == names.index(person)
    if names.index(person) not in train_ids or not own.any():
        raise MotionbitsError(f"{root}: {person} needs videos in both splits (make it with --test-videos)")
    held_back = windows_of(frames, labels, own, most)
    if len(held_back) < 2:
        raise MotionbitsError(f"{root}: {person}'s held-back videos give {len(held_back)} windows of {WINDOW} frames; "
                              "need 2 or more")
    # the first held-back window's descriptors are the person's reference for the transfers below
    held_back_rebuilt, readings, strip = rebuild(pipe, frames, held_back, models, steps, seed, describe_first=True)
    strips = [strip]
    # The same on the person's training videos: a decoder that draws there what it misses on the
    # held-back video has learnt the training footage, not the motion.
    seen_windows = windows_of(t_frames, t_labels, t_labels["identity"] == names.index(person), most)
    seen = rebuild(pipe, t_frames, seen_windows, models, steps, seed)[0] if seen_windows else None

    content = np.asarray(frames[held_back[0][1][0]])[None]
    reference = readings[0].mean_embedding()
    if seen_drivers:  # the other people the run trained on, in their training clips
        d_frames, d_labels = t_frames, t_labels
        d_keep = t_labels["identity"] != names.index(person)
    elif drivers_root is not None:
        d_frames, d_labels = load_video_clips(drivers_root, "train")
        d_frames = d_frames[:, : pipe.cfg.data.frames]
        d_keep = np.ones(len(d_frames), bool)
    else:
        d_frames, d_labels = frames, labels
        d_keep = ~np.isin(labels["identity"], train_ids)
    drivers = windows_of(d_frames, d_labels, d_keep, most)
    if not drivers:
        raise MotionbitsError(f"{drivers_root or root}: no driver video of {WINDOW} frames or more"
                              + (" of another training person" if seen_drivers else ""))
    transfer = MotionFollowing()
    identity = {"model": [], "still": [], "copy driver": []}
    driver_marks = []
    for i, (video, tiles) in enumerate(drivers):
        driving = stack(d_frames, tiles)[None]
        out = pipe.transfer(content, driving, steps=steps, seed=seed + i)[0].numpy()
        d = read_faces(driving[0], models, embed_every=4)
        o = read_faces(out, models, embed_every=4)
        transfer.add("model", video, o.landmarks, d.landmarks)
        driver_marks.append((video, d.landmarks))
        identity["model"].append(identity_to(o, reference))
        identity["copy driver"].append(identity_to(d, reference))
        if i == 0:
            strips.append(np.concatenate([driving[0], out], axis=1))
    still = read_faces(content[0][:1], models, embed_every=1)
    identity["still"].append(identity_to(still, reference))
    for i, (video, marks) in enumerate(driver_marks):
        other = next((m for v, m in driver_marks[i + 1:] + driver_marks[:i] if v != video), None)
        if other is not None:
            transfer.add("null", video, other, marks)

    report = {
        "person": person, "data": Path(root).name,
        "drivers": ("the other people of the training split (seen in training)" if seen_drivers
                    else Path(drivers_root).name if drivers_root else "unseen people of the test split"),
        "drivers_seen": seen_drivers,
        "window_frames": WINDOW, "sample_steps": steps or pipe.cfg.diffusion.sample_steps,
        "reconstruction": held_back_rebuilt,
        "reconstruction_seen": seen,
        "transfer": {"windows": len(drivers), "videos": len(set(w[0] for w in drivers)),
                     "following": transfer.summary(seed=seed),
                     "identity": {k: {key: _mean([r[key] for r in v]) for key in ("csim", "same_person")}
                                  for k, v in identity.items()}},
    }
    return report, strips


def rebuild(pipe, frames: np.ndarray, windows: list[tuple[int, list[int]]], models, steps: int | None, seed: int,
            describe_first: bool = False) -> tuple[dict, list, np.ndarray]:
    """Each window rebuilt from its own content and codes (pipe.transfer(window, window)), against
    the window: rows model, tokenizer only, still and null (another window, where there are two).
    Returns the summary, each window's face readings and the first window's strip (window above,
    rebuild below). describe_first: the first window's readings carry identity descriptors."""
    read = lambda clip: read_faces(np.asarray(clip), models, embed=False)    # noqa: E731
    following = MotionFollowing()
    akds = {"model": [], "still": [], "tokenizer only": []}
    psnrs = {name: [] for name in akds}
    readings, strip = [], None
    for i, (_, tiles) in enumerate(windows):
        window = stack(frames, tiles)[None]                                       # [1, L, H, W, 3]
        out = pipe.transfer(window, window, steps=steps, seed=seed + i)[0].numpy()
        through = pipe.to_frames(pipe.to_latents(window))[0].numpy()
        target = read_faces(window[0], models, embed_every=4) if i == 0 and describe_first else read(window[0])
        readings.append(target)
        rows = {"model": read(out), "tokenizer only": read(through), "still": held(target, len(target.found))}
        for name, r in rows.items():
            following.add(name, i, r.landmarks, target.landmarks)
            akds[name].append(akd(r, target)["akd"])
        for name, frames_out in (("model", out), ("tokenizer only", through), ("still", window[0][:1])):
            psnrs[name].append(window_psnr(frames_out, window[0]))
        if i == 0:
            strip = np.concatenate([window[0], out], axis=1)                      # [L, 2H, W, 3]
    if len(windows) > 1:
        for i in range(len(windows)):                                             # null: another window
            following.add("null", i, readings[(i + 1) % len(windows)].landmarks, readings[i].landmarks)
    summary = {"windows": len(windows), "videos": len(set(w[0] for w in windows)),
               "following": following.summary(seed=seed),
               "akd": {k: _mean(vs) for k, vs in akds.items()},
               "psnr_db": {k: _mean(vs) for k, vs in psnrs.items()}}
    return summary, readings, strip


def window_psnr(frames: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of uint8 frames [T or 1, H, W, 3] against the window [T, H, W, 3], over the whole
    window (one frame is held over all); identical windows give 100 dB, not infinity."""
    held = np.array(np.broadcast_to(frames, target.shape))                   # writable copies for torch
    return min(100.0, psnr(held[None], np.array(target[None]), data_range=255.0))    # the window, one sample


def _mean(values: list) -> float | None:
    """The mean of the values that are defined (None where none is)."""
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _r(x: dict) -> str:
    if x.get("r_pooled") is None:
        return "n/a"
    ci = x.get("ci")
    return f"{x['r_pooled']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _number(x: float | None, digits: int) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def table(report: dict) -> str:
    lines = [f"# Own footage: {report['person']}", "",
             f"Windows of {report['window_frames']} frames, {report['sample_steps']} sampling steps. Pooled r with a "
             "95 % bootstrap interval (reconstruction: over windows; transfer: over the drivers' videos).", "",
             "## The held-back video rebuilt from its own codes", ""]
    lines += rebuild_table(report["reconstruction"])
    if report.get("reconstruction_seen"):
        lines += ["", "## Their training videos rebuilt (seen in training: what the decoder learnt, not what it generalises)", ""]
        lines += rebuild_table(report["reconstruction_seen"])
    tr = report["transfer"]
    who = "the other people it trained on" if report.get("drivers_seen") else "people never seen"
    lines += ["", f"## {report['person']} driven by {who} ({report['drivers']})", "",
              f"{tr['windows']} windows of {tr['videos']} driver videos.", "",
              "| row | mouth r | head pose r | yaw r | CSIM to the person | frames recognised as them |",
              "|---|---|---|---|---|---|"]
    for row in ("model", "null"):
        s = tr["following"].get(row)
        if s is None:
            continue
        ident = tr["identity"].get(row, {})
        lines.append(f"| {row} | {_r(s['groups']['mouth'])} | {_r(s['groups']['head pose'])} | {_r(s['signals']['yaw'])} | "
                     f"{_number(ident.get('csim'), 3)} | {_number(ident.get('same_person'), 2)} |")
    for row, r in (("still", "0"), ("copy driver", "1")):        # r by definition
        ident = tr["identity"][row]
        lines.append(f"| {row} | {r} | {r} | {r} | {ident['csim'] or 0:.3f} | {ident['same_person'] or 0:.2f} |")
    return "\n".join(lines) + "\n"


def rebuild_table(rec: dict) -> list[str]:
    lines = [f"{rec['windows']} windows of {rec['videos']} video(s).", "",
             "| row | mouth r | head pose r | yaw r | AKD | PSNR dB |", "|---|---|---|---|---|---|"]
    for row, s in rec["following"].items():
        a, db = rec["akd"].get(row), rec.get("psnr_db", {}).get(row)
        lines.append(f"| {row} | {_r(s['groups']['mouth'])} | {_r(s['groups']['head pose'])} | "
                     f"{_r(s['signals']['yaw'])} | {_number(a, 3)} | {_number(db, 1)} |")
    return lines


def save_strip(strips: list[np.ndarray], path: Path, every: int = 4) -> None:
    """Each strip [L, 2H, W, 3] (driver above, result below): every `every`-th frame side by side."""
    from PIL import Image

    rows = [np.concatenate(list(s[::every][:10]), axis=1) for s in strips]
    width = max(r.shape[1] for r in rows)
    image = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0)
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(image).save(tmp)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--person", required=True, help="the person's name in the dataset (its identities)")
    ap.add_argument("--data", help="dataset folder (default: the run's data.root)")
    drivers = ap.add_mutually_exclusive_group()
    drivers.add_argument("--drivers", help="a `motionbits data video` folder of drivers from elsewhere (its train split)")
    drivers.add_argument("--seen-drivers", action="store_true",
                         help="drivers: the run's other training people, in their training clips (transfer between "
                              "people seen in training)")
    ap.add_argument("--windows", type=int, default=12, help="at most this many windows per set")
    ap.add_argument("--steps", type=int, help="sampling steps (default: the config's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    try:
        pipe = MotionBits.from_checkpoint(args.checkpoint)
        report, strips = measure(pipe, args.data or pipe.cfg.data.root, args.person, args.drivers, args.windows,
                                 args.steps, args.seed, seen_drivers=args.seen_drivers)
    except MotionbitsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "own_footage.json", report)
    write_text_atomic(out / "own_footage.md", table(report))
    save_strip(strips, out / "strip.png")
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
