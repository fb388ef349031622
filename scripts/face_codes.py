"""What a face model's motion codes carry: can the mouth and the head pose be read back from them?

    python scripts/face_codes.py --checkpoint RUN --person NAME [--data DATA] [--windows 24] --out DIR

A rebuilt face that does not follow its video's mouth has lost it somewhere: in the encoder (never
extracted), in the bottleneck (not kept by the codes) or in the decoder (kept, but not drawn). This
asks the codes themselves, without the decoder. For windows of 32 frames of the person's training
videos (the probe's fit) and held-back videos (its test), it reads the codes as a reconstruction
reads them (relative motion: against the window's first model window) and the landmark signals of
the real frames (evaluation/face_signals.py), each as its change since that reference. A ridge
regression from the codes to each signal, fit on the training windows, is applied to the held-back
windows; Pearson r pooled over their frames, with a 95 % bootstrap interval over windows. Rows:

- codes: the codes one-hot (N groups x K entries), what the decoder is given;
- logits: the quantizer's logits before the argmax, what the encoder had to offer the codes;
- shuffled codes: the codes of other held-back frames (the probe's chance level).

High r from the codes with a low rebuilt r (scripts/own_footage.py): the decoder drops what the
codes carry. Low r from the codes but high from the logits: the bottleneck drops it. Low from both:
the encoder never read it. Writes face_codes.json and face_codes.md.
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
from motionbits.evaluation.face_protocol import video_windows
from motionbits.evaluation.face_signals import PLACE_SIGNALS, SIGNALS, motion_signals
from motionbits.evaluation.faces import read_faces
from motionbits.face_models import face_models

WINDOW = 32
RIDGE = 1.0            # the ridge penalty on standardised features: the probe's only setting
DRAWS = 1000


def ridge_fit(x: np.ndarray, y: np.ndarray, penalty: float = RIDGE):
    """Features [M, F] and targets [M] -> a function of features [M', F] -> predictions [M']."""
    mean, std = x.mean(0), x.std(0)
    scale = np.where(std > 1e-8, std, 1.0)          # a feature constant in the fit stays out of the predictions
    xs = (x - mean) / scale
    w = np.linalg.solve(xs.T @ xs + penalty * np.eye(x.shape[1]), xs.T @ (y - y.mean()))
    return lambda new: ((new - mean) / scale) @ w + y.mean()


def pooled_r(pred: list[np.ndarray], true: list[np.ndarray], draws: int = DRAWS, seed: int = 0) -> dict:
    """Pearson r over every frame of every window (pred / true: one array [T] per window, NaN where no
    face), with a 95 % bootstrap interval resampling whole windows."""
    keep = [~(np.isnan(p) | np.isnan(t)) for p, t in zip(pred, true)]
    pred = [p[k] for p, k in zip(pred, keep)]
    true = [t[k] for t, k in zip(true, keep)]

    def r(idx) -> float:
        p, t = np.concatenate([pred[i] for i in idx]), np.concatenate([true[i] for i in idx])
        if len(p) < 3 or p.std() == 0 or t.std() == 0:
            return 0.0
        return float(np.corrcoef(p, t)[0, 1])

    n = len(pred)
    if n == 0:
        return {"r": None, "ci": None, "windows": 0}
    rng = np.random.default_rng(seed)
    boot = [r(rng.integers(0, n, n)) for _ in range(draws)] if n > 1 else []
    return {"r": r(range(n)), "ci": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))] if boot else None,
            "windows": n}


def probe(train: dict[str, list[np.ndarray]], test: dict[str, list[np.ndarray]], signals: list[dict],
          test_signals: list[dict], seed: int = 0) -> dict:
    """Features per window ({row: [T, F] arrays}) and signal changes per window ({signal: [T]}) ->
    {row: {signal: pooled r on the test windows}}."""
    out = {}
    for row in train:
        x_train = np.concatenate(train[row])
        out[row] = {}
        for name in signals[0]:
            y_train = np.concatenate([s[name] for s in signals])
            ok = ~np.isnan(y_train)
            if ok.sum() < 3:
                out[row][name] = {"r": None, "ci": None, "windows": 0}
                continue
            predict = ridge_fit(x_train[ok], y_train[ok])
            out[row][name] = pooled_r([predict(x) for x in test[row]], [s[name] for s in test_signals], seed=seed)
    return out


def changes(landmarks: np.ndarray, reference_frames: int) -> dict[str, np.ndarray]:
    """Landmarks [T, 68, 2] -> each signal's change since the mean of its first frames: [T]."""
    out = {}
    for name, values in motion_signals(landmarks).items():
        ref = values[:reference_frames]
        out[name] = values - (np.nanmean(ref) if (~np.isnan(ref)).any() else np.nan)
    return out


def measure(pipe: MotionBits, root: str, person: str, most: int, seed: int = 0) -> dict:
    models = face_models()
    names = dataset_manifest(root, "test", "video")[1]["identities"]
    if person not in names:
        raise MotionbitsError(f"{root}: no person {person!r} (its people: {', '.join(names)})")
    w, groups, entries = pipe.model.window, pipe.cfg.model.groups, pipe.cfg.model.codebook_size
    sets = {}
    for split in ("train", "test"):
        frames, labels = load_video_clips(root, split)
        frames = frames[:, : pipe.cfg.data.frames]
        own = labels["identity"] == names.index(person)             # identities index the manifest's one list
        windows = [x for x in video_windows(labels["video"], labels["start"], frames.shape[1], WINDOW)
                   if own[x[1][0]]][:most]
        if not windows:
            raise MotionbitsError(f"{root}: {person} has no window of {WINDOW} frames in the {split} split; "
                                  "needs videos in both (make the dataset with --test-videos)")
        feats = {"codes": [], "logits": []}
        signals = []
        for _, tiles in windows:
            clip = np.concatenate([np.asarray(frames[t]) for t in tiles])            # [L, H, W, 3]
            logits = pipe.motion_logits(clip[None])[0].numpy()                             # [L, N, K]
            codes = logits.argmax(-1)                                                      # [L, N]
            feats["codes"].append(np.eye(entries)[codes].reshape(len(clip), groups * entries))
            feats["logits"].append(logits.reshape(len(clip), -1))
            lip_groups = pipe.cfg.model.lip_groups
            if lip_groups:  # the lip groups (the last ones), alone
                feats.setdefault("lip codes", []).append(np.eye(entries)[codes[:, -lip_groups:]].reshape(len(clip), -1))
                feats.setdefault("lip logits", []).append(logits[:, -lip_groups:].reshape(len(clip), -1))
            signals.append(changes(read_faces(clip, models, embed=False).landmarks, w))
        sets[split] = (feats, signals, len(set(v for v, _ in windows)))
    (train, train_signals, train_videos), (test, test_signals, test_videos) = sets["train"], sets["test"]
    rng = np.random.default_rng(seed)
    pool = np.concatenate(test["codes"])
    shuffled = pool[rng.permutation(len(pool))]
    cuts = np.cumsum([len(x) for x in test["codes"]])[:-1]
    train["shuffled codes"], test["shuffled codes"] = train["codes"], np.split(shuffled, cuts)
    return {"person": person, "data": Path(root).name, "window_frames": WINDOW, "ridge": RIDGE,
            "train": {"windows": len(train_signals), "videos": train_videos},
            "test": {"windows": len(test_signals), "videos": test_videos},
            "r": probe(train, test, train_signals, test_signals, seed)}


def _r(x: dict) -> str:
    if x.get("r") is None:
        return "n/a"
    return f"{x['r']:.2f}" + (f" [{x['ci'][0]:.2f}, {x['ci'][1]:.2f}]" if x.get("ci") else "")


def table(report: dict) -> str:
    shown = list(SIGNALS) + list(PLACE_SIGNALS)
    lines = [f"# What the codes carry: {report['person']}", "",
             f"A ridge probe (penalty {report['ridge']}) fit on {report['train']['windows']} windows of "
             f"{report['window_frames']} frames of {report['train']['videos']} training video(s), read on "
             f"{report['test']['windows']} held-back windows of {report['test']['videos']} video(s): Pearson r between "
             "each signal's change and its prediction, pooled over frames, 95 % interval over windows.", "",
             "| features | " + " | ".join(shown) + " |", "|---|" + "---|" * len(shown)]
    for row, by_signal in report["r"].items():
        lines.append(f"| {row} | " + " | ".join(_r(by_signal[s]) for s in shown) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--person", required=True, help="the person's name in the dataset (its identities)")
    ap.add_argument("--data", help="dataset folder (default: the run's data.root)")
    ap.add_argument("--windows", type=int, default=24, help="at most this many windows per split")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    try:
        pipe = MotionBits.from_checkpoint(args.checkpoint)
        report = measure(pipe, args.data or pipe.cfg.data.root, args.person, args.windows, args.seed)
    except MotionbitsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "face_codes.json", report)
    write_text_atomic(out / "face_codes.md", table(report))
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
