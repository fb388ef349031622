"""Face metrics of talking-head video: identity, landmark distance and motion following.

Every frame is read by dlib's models (motionbits/face_models.py, the `faces` extra): the largest
face found by the HOG detector, its 68 iBUG landmarks and, on every `embed_every`-th frame (the
embedder is the costly part on a CPU), its 128-d ResNet descriptor. A frame without a face is
counted (detection rate) and left out of the averages, never silently dropped from the counts.

Definitions (frames uint8 [T, H, W, 3]; "both" = the frame has a face in both clips):
- CSIM (identity kept; higher is better): cosine similarity between the descriptor of each
  embedded output frame and the content source's descriptor (the mean descriptor of the content
  clip's embedded frames), averaged over frames. Like the field's CSIM, but with dlib's embedder
  instead of ArcFace, so the scale is compressed: two photos of one person give about 0.95-0.99,
  two different people about 0.8-0.9. `same_person` is the share of those frames closer than
  0.6 (L2) to the content, dlib's verification threshold.
- AED (reconstruction; lower is better): mean L2 distance between the descriptors of the output
  and the ground-truth frame, over frames embedded in both (FOMM's average Euclidean distance,
  with dlib's descriptor instead of OpenFace's).
- AKD (reconstruction; lower is better): mean over frames found in both of the mean distance of
  the 68 landmark pairs, divided by the ground truth's inter-ocular distance (outer eye corners,
  points 36 and 45) in that frame; `akd_px256` is the same distance in pixels of a 256-px frame
  without the division (FOMM's unit).
- motion following (cross-identity transfer; higher is better): Pearson r over time between the
  driver's and the output's signals, each computed from one clip's own landmarks, so the person's
  shape (a wider mouth, smaller eyes) only shifts or scales a signal and r ignores it:
  * mouth: inner-lip opening, mean of |61-67|, |62-66|, |63-65| over the inter-ocular distance;
  * eyes: eye aspect ratio (|37-41| + |38-40|) / (2 |36-39|), averaged with the other eye;
  * yaw, pitch, roll: head angles of a scaled-orthographic fit of a generic 6-point 3D face
    (nose tip, chin, outer eye corners, mouth corners) to those landmarks: least squares for the
    2x3 projection, its nearest scaled rotation (SVD), Euler angles in degrees.
  `motion` is the mean of the five r. A still output gets r = 0 (it does not follow); where the
  driver's signal is constant r is undefined and that signal is left out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from motionbits.evaluation.face_signals import MIN_FRAMES, SIGNALS, inter_ocular, motion_signals
from motionbits.face_models import SAME_PERSON_DISTANCE, FaceModels, face_models

EMBED_EVERY = 4



@dataclass
class FaceReadings:
    """What the face models read in one clip of T frames."""
    found: np.ndarray        # bool [T]: a face was detected
    landmarks: np.ndarray    # float [T, 68, 2], NaN where not found
    embeddings: np.ndarray   # float [T, 128], NaN where not found or not embedded
    size: int                # frame side (the longer one), pixels

    @property
    def detection_rate(self) -> float:
        return float(self.found.mean()) if len(self.found) else 0.0

    def mean_embedding(self) -> np.ndarray | None:
        """The clip's identity: the mean descriptor of its embedded frames, None without one."""
        ok = ~np.isnan(self.embeddings[:, 0])
        return self.embeddings[ok].mean(0) if ok.any() else None


def held(readings: FaceReadings, frames: int) -> FaceReadings:
    """The readings of a clip's first frame held for `frames` frames (the "still" baseline), without
    reading again: identical frames give identical readings."""
    def tile(a: np.ndarray) -> np.ndarray:
        return np.repeat(a[:1], frames, axis=0)
    return FaceReadings(tile(readings.found), tile(readings.landmarks), tile(readings.embeddings), readings.size)


def nth(n: int) -> str:
    """'every frame', 'every 2nd frame', 'every 4th frame'."""
    return "every frame" if n == 1 else f"every {n}{'nd' if n == 2 else 'rd' if n == 3 else 'th'} frame"


def read_faces(frames: np.ndarray, models: FaceModels | None = None, embed_every: int = EMBED_EVERY,
               embed: bool = True) -> FaceReadings:
    """uint8 frames [T, H, W, 3] -> landmarks of every frame, descriptors of every embed_every-th."""
    models = models or face_models()
    frames = np.asarray(frames)
    t = len(frames)
    found = np.zeros(t, bool)
    landmarks = np.full((t, 68, 2), np.nan)
    embeddings = np.full((t, 128), np.nan)
    for i, (frame, face) in enumerate(zip(frames, models.largest_faces(frames))):
        if face is None:
            continue
        found[i] = True
        landmarks[i] = models.landmarks(frame, face)
        if embed and i % embed_every == 0:
            embeddings[i] = models.embedding(frame, face)
    return FaceReadings(found, landmarks, embeddings, int(max(frames.shape[1:3])))


# ---- identity --------------------------------------------------------------------------------
def identity_to(output: FaceReadings, reference: np.ndarray | None) -> dict:
    """CSIM and same-person share of the output's embedded frames against a reference descriptor [128]."""
    ok = ~np.isnan(output.embeddings[:, 0])
    if reference is None or not ok.any():
        return {"csim": None, "same_person": None, "frames": 0}
    e = output.embeddings[ok]
    cos = e @ reference / (np.linalg.norm(e, axis=1) * np.linalg.norm(reference)).clip(1e-12)
    dist = np.linalg.norm(e - reference, axis=1)
    return {"csim": float(cos.mean()), "same_person": float((dist < SAME_PERSON_DISTANCE).mean()),
            "frames": int(ok.sum())}


def aed(output: FaceReadings, target: FaceReadings) -> float | None:
    """Mean L2 distance of the descriptors of frames embedded in both clips (None: no such frame)."""
    ok = ~np.isnan(output.embeddings[:, 0]) & ~np.isnan(target.embeddings[:, 0])
    return float(np.linalg.norm(output.embeddings[ok] - target.embeddings[ok], axis=1).mean()) if ok.any() else None


# ---- landmarks -------------------------------------------------------------------------------
def akd(output: FaceReadings, target: FaceReadings) -> dict:
    """Landmark distance over frames with a face in both: normalised by the target's inter-ocular
    distance (`akd`) and in pixels of a 256-px frame (`akd_px256`); None without such frames."""
    ok = output.found & target.found
    if not ok.any():
        return {"akd": None, "akd_px256": None, "frames": 0}
    d = np.linalg.norm(output.landmarks[ok] - target.landmarks[ok], axis=-1).mean(-1)   # [F] pixels
    return {"akd": float((d / inter_ocular(target.landmarks[ok]).clip(1e-6)).mean()),
            "akd_px256": float((d * 256 / target.size).mean()), "frames": int(ok.sum())}


def pearson(output: np.ndarray, driver: np.ndarray) -> float | None:
    """r over the frames where both are defined; 0 when the output is constant (it does not follow),
    None when the driver is constant or fewer than MIN_FRAMES frames remain."""
    ok = ~np.isnan(output) & ~np.isnan(driver)
    if ok.sum() < MIN_FRAMES:
        return None
    a, b = output[ok] - output[ok].mean(), driver[ok] - driver[ok].mean()
    if np.abs(b).max() < 1e-9:
        return None
    if np.abs(a).max() < 1e-9:
        return 0.0
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))


def motion_following(output: FaceReadings, driver: FaceReadings) -> dict:
    """Pearson r of each signal of the output against the driver's, and their mean (`motion`)."""
    out, drv = motion_signals(output.landmarks), motion_signals(driver.landmarks)
    rs = {name: pearson(out[name], drv[name]) for name in SIGNALS}
    defined = [v for v in rs.values() if v is not None]
    return {**rs, "motion": float(np.mean(defined)) if defined else None}


# ---- two videos ------------------------------------------------------------------------------
def score_pair(driver: np.ndarray, output: np.ndarray, content: np.ndarray | None = None,
               models: FaceModels | None = None, embed_every: int = EMBED_EVERY) -> dict:
    """`motionbits score A B [--content C]`: B (output) against A (ground truth / driver), uint8
    [T, H, W, 3] each, the same size and length. Reconstruction-style: L1, PSNR, AKD, AED. With
    content C: B's CSIM to C and B's motion following of A, next to the baselines "still" (C's
    first frame held) and "copy driver" (A itself). `long_motion`: the long-sequence signals and
    groups of B against A, and of C's frames against A (the null) when C is as long (face_motion.py)."""
    import torch

    from motionbits.evaluation.face_motion import pair_motion
    from motionbits.models.tokenizer import frames_to_float
    from motionbits.evaluation.metrics import psnr

    models = models or face_models()
    a, b = read_faces(driver, models, embed_every), read_faces(output, models, embed_every)
    real, fake = frames_to_float(torch.from_numpy(driver)), frames_to_float(torch.from_numpy(output))
    report = {"frames": len(driver), "embed_every": embed_every,
              "detection_rate": {"A": a.detection_rate, "B": b.detection_rate},
              "reconstruction": {"l1": (real - fake).abs().mean().item() / 2, "psnr_db": psnr(fake, real),
                                 **akd(b, a), "aed": aed(b, a)}}
    if content is not None:
        c = read_faces(content, models, embed_every)
        still = held(c, len(driver))
        reference = c.mean_embedding()
        report["detection_rate"]["content"] = c.detection_rate
        report["transfer"] = {name: {**identity_to(r, reference), **motion_following(r, a)}
                              for name, r in (("B", b), ("still", still), ("copy driver", a))}
    # The long-sequence signals and groups (face_motion.py), with C's frames as the null when C is a video.
    report["long_motion"] = pair_motion(a.landmarks, b.landmarks, None if content is None else c.landmarks)
    return report


def _cell(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return "inf" if value == float("inf") else f"{value:.{digits}f}"


def score_table(report: dict) -> str:
    """The score verb's report as a markdown table."""
    r, rate = report["reconstruction"], report["detection_rate"]
    lines = [f"{report['frames']} frames; faces found: " + ", ".join(f"{k} {v:.0%}" for k, v in rate.items())
             + f"; identity descriptors on {nth(report['embed_every'])}", "",
             "| B against A (reconstruction) | value |", "|---|---|",
             f"| L1 | {_cell(r['l1'], 4)} |", f"| PSNR (dB) | {_cell(r['psnr_db'], 2)} |",
             f"| AKD (inter-ocular) | {_cell(r['akd'])} |", f"| AKD (px of 256) | {_cell(r['akd_px256'], 2)} |",
             f"| AED | {_cell(r['aed'])} |"]
    if "transfer" in report:
        t = report["transfer"]
        lines += ["", "| transfer: content C, driver A | B | still (C's first frame) | copy driver (A) |", "|---|---|---|---|"]
        rows = [("CSIM to C", "csim"), ("same person as C (L2 < 0.6)", "same_person"),
                ("motion following (mean r)", "motion"), *((f"r {s}", s) for s in SIGNALS)]
        lines += [f"| {label} | " + " | ".join(_cell(t[k][key]) for k in ("B", "still", "copy driver")) + " |"
                  for label, key in rows]
    if "long_motion" in report:
        from motionbits.evaluation.face_motion import pair_motion_lines

        lines += ["", *pair_motion_lines(report["long_motion"])]
    return "\n".join(lines)
