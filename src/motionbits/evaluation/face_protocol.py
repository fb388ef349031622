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
"""
from __future__ import annotations

import numpy as np

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
