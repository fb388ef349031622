"""The face measures of the talking-head protocol (evaluation/video.py), each next to its baselines.

Metric definitions: evaluation/faces.py. What is compared:
- reconstruction (content from a video's first clip, motion from a later clip; target = the later
  clip): AKD and AED of the model's output, of "still" (the first clip's first frame held: the
  right person, no motion), of "tokenizer only" (the target through the tokenizer's encoder and
  decoder: the ceiling of image quality) and of "copy driver" (in reconstruction the driver is
  the target: 0, the ceiling of everything);
- cross-identity transfer (content of person A, driver of person B): CSIM to A's clip, the share
  of frames that are A for dlib (L2 < 0.6) and motion following of B, for the model's output,
  "still" (A's first frame held: CSIM near 1, motion r = 0) and "copy driver" (B's frames: motion
  r = 1, the wrong person). A transfer counts when it follows the driver better than still does
  (mean r > 0) AND is closer to A than the driver is (CSIM above copy driver's); `counts` is the
  share of pairs that do (a pair whose output shows no face does not count).
Values are means over pairs of per-pair means over frames, over the pairs where they are defined.
- face motion over long sequences (long_face_motion): whole test videos in windows of 32 frames or
  more, each reconstructed from its own codes and transferred onto another person; landmark signals
  against the driver's, pooled with bootstrap intervals over videos (face_motion.py), beside the
  tokenizer-only ceiling and a null row (another person's window against the driver).
"""
from __future__ import annotations

import numpy as np

from motionbits.evaluation.face_motion import BOOTSTRAP_DRAWS, LONG_FRAMES, MotionFollowing
from motionbits.evaluation.faces import (EMBED_EVERY, FaceReadings, akd, aed, held, identity_to,
                                         motion_following, read_faces, SIGNALS)
from motionbits.face_models import FaceModels, face_models


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


class ReconstructionFaces:
    """AKD / AED of reconstructions against their targets, for the model and the baselines."""

    def __init__(self, models: FaceModels | None = None, embed_every: int = EMBED_EVERY):
        self.models, self.embed_every = models or face_models(), embed_every
        self.rows: dict[str, list[dict]] = {}
        self.target_found: list[float] = []

    def read(self, clip) -> FaceReadings:
        return read_faces(np.asarray(clip), self.models, self.embed_every)

    def add(self, target, outputs: dict, first) -> None:
        """target [B, T, H, W, 3]; outputs {name: [B, T, H, W, 3]}; first [B, T, H, W, 3]: the clips
        whose first frame is the still baseline."""
        for b in range(len(target)):
            gt = self.read(target[b])
            self.target_found.append(gt.detection_rate)
            readings = {name: self.read(o[b]) for name, o in outputs.items()}
            readings["still"] = held(self.read(np.asarray(first[b])[:1]), len(gt.found))
            for name, r in readings.items():
                self.rows.setdefault(name, []).append({**akd(r, gt), "aed": aed(r, gt), "found": r.detection_rate})

    def summary(self) -> dict:
        out = {name: {key: _mean([r[key] for r in rows]) for key in ("akd", "akd_px256", "aed", "found")}
               for name, rows in self.rows.items()}
        out["copy driver"] = {"akd": 0.0, "akd_px256": 0.0, "aed": 0.0, "found": _mean(self.target_found)}
        return {**out, "clips": len(self.target_found), "target_found": _mean(self.target_found)}


class TransferFaces:
    """Identity and motion following of cross-identity transfers, the model against still and copy driver."""

    def __init__(self, models: FaceModels | None = None, embed_every: int = EMBED_EVERY):
        self.models, self.embed_every = models or face_models(), embed_every
        self.rows: dict[str, list[dict]] = {"model": [], "still": [], "copy driver": []}
        self.counts: list[bool] = []
        self.found = {"content": [], "driver": []}

    def add(self, content, driver, output) -> None:
        """content, driver, output: uint8 [B, T, H, W, 3]; pair b = content[b] driven by driver[b]."""
        for b in range(len(output)):
            read = lambda clip: read_faces(np.asarray(clip), self.models, self.embed_every)  # noqa: E731
            c, d, o = read(content[b]), read(driver[b]), read(output[b])
            self.found["content"].append(c.detection_rate)
            self.found["driver"].append(d.detection_rate)
            reference = c.mean_embedding()
            scores = {name: {**identity_to(r, reference), **motion_following(r, d), "found": r.detection_rate}
                      for name, r in (("model", o), ("still", held(c, len(o.found))), ("copy driver", d))}
            for name, s in scores.items():
                self.rows[name].append(s)
            m, still, copy = scores["model"], scores["still"], scores["copy driver"]
            self.counts.append(m["motion"] is not None and m["motion"] > (still["motion"] or 0.0)
                               and m["csim"] is not None and copy["csim"] is not None and m["csim"] > copy["csim"])

    def summary(self) -> dict:
        keys = ("csim", "same_person", "motion", *SIGNALS, "found")
        out = {name: {key: _mean([r[key] for r in rows]) for key in keys} for name, rows in self.rows.items()}
        return {**out, "counts": _mean(self.counts), "pairs": len(self.counts),
                "content_found": _mean(self.found["content"]), "driver_found": _mean(self.found["driver"])}


# ---- face motion over long sequences (face_motion.py) ----------------------------------------------
def video_windows(video: np.ndarray, start: np.ndarray, clip_frames: int, min_frames: int = LONG_FRAMES
                  ) -> list[tuple[int, list[int]]]:
    """Each video's back-to-back clips (starts 0, T, 2T, ... while they exist) cut into windows of
    ceil(min_frames / T) clips -> [(video, clip indices of one window)], the videos' windows in turn
    (every video's first window, then every video's second, ...) so a cap keeps many videos."""
    per_clip = max(1, -(-min_frames // clip_frames))
    by_video = []
    for v in np.unique(video):
        idx = np.flatnonzero(video == v)
        by_start = {int(start[i]): int(i) for i in idx}
        tiles = []
        while len(tiles) * clip_frames in by_start:
            tiles.append(by_start[len(tiles) * clip_frames])
        by_video.append([(int(v), tiles[w * per_clip:(w + 1) * per_clip]) for w in range(len(tiles) // per_clip)])
    rounds = max((len(w) for w in by_video), default=0)
    return [w[r] for r in range(rounds) for w in by_video if r < len(w)]


def null_partner(i: int, videos: list[int], identity: list[int]) -> int | None:
    """For window i, the next window of another person (else of another video); None without one."""
    n = len(videos)
    order = [(i + k) % n for k in range(1, n)]
    return next((j for j in order if identity[j] != identity[i]), next((j for j in order if videos[j] != videos[i]), None))


def long_face_motion(pipe, frames: np.ndarray, labels: dict[str, np.ndarray], windows: list[tuple[int, list[int]]],
                     pick_content, steps: int | None, seed: int, progress: bool = False,
                     models: FaceModels | None = None, draws: int = BOOTSTRAP_DRAWS, desc: str = "face motion") -> dict:
    """Every window drives (a) its own reconstruction (content and codes from the window itself) and
    (b) a transfer onto pick_content(first clip)'s content, rendered window by window like any
    transfer; the landmarks of the driver, both results and the driver through the tokenizer are
    read on every frame. Rows, each against the driver: "model", "tokenizer only" (the ceiling) and
    "null" (another person's window: what chance gives) -> {reconstruction, transfer: summaries}."""
    from tqdm import tqdm

    models = models or face_models()
    read = lambda clip: read_faces(np.asarray(clip), models, embed=False).landmarks   # noqa: E731
    rows = {"reconstruction": MotionFollowing(), "transfer": MotionFollowing()}
    drivers, videos, people = [], [], []
    for i, (video, tiles) in enumerate(tqdm(windows, desc=desc, disable=not progress)):
        driving = np.concatenate([np.asarray(frames[t]) for t in tiles])[None]          # [1, L, H, W, 3]
        other = pick_content(tiles[0])
        content = np.asarray(frames[tiles[0] if other is None else other])[None]
        own = pipe.transfer(driving, driving, steps=steps, seed=seed + i)
        moved = pipe.transfer(content, driving, steps=steps, seed=seed + i)
        through = pipe.to_frames(pipe.to_latents(driving))
        d = read(driving[0])
        for kind, result in (("reconstruction", own), ("transfer", moved)):
            rows[kind].add("model", video, read(result[0]), d)
        ceiling = read(through[0])
        for kind in rows:
            rows[kind].add("tokenizer only", video, ceiling, d)
        drivers.append(d)
        videos.append(video)
        people.append(int(labels["identity"][tiles[0]]))
    for i, d in enumerate(drivers):
        j = null_partner(i, videos, people)
        if j is not None:
            for kind in rows:
                rows[kind].add("null", videos[i], drivers[j], d)
    return {"windows": len(windows), "frames": int(len(drivers[0])) if drivers else 0,
            "videos": len(set(videos)), **{kind: r.summary(draws, seed) for kind, r in rows.items()}}
