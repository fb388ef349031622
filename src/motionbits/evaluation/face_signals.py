"""Motion signals of a face from its 68 landmarks (iBUG 300-W points), one value per frame.

The signals remove the person's shape by construction: each is computed within one clip, and the
measures that read them (faces.motion_following over 8 frames, face_motion.py over long sequences)
compare courses over time, which a wider mouth or smaller eyes only shift or scale:
- mouth: inner-lip opening, mean of |61-67|, |62-66|, |63-65| over the inter-ocular distance;
- eyes: eye aspect ratio (|37-41| + |38-40|) / (2 |36-39|), averaged with the other eye;
- yaw, pitch, roll: head angles of a scaled-orthographic fit of a generic 6-point 3D face (nose
  tip, chin, outer eye corners, mouth corners): least squares for the 2x3 projection, its nearest
  scaled rotation (SVD), Euler angles in degrees;
- centre_x, centre_y, size: the mean of the 68 points (pixels) and their RMS distance from it.
"""
from __future__ import annotations

import math

import numpy as np

SIGNALS = ("mouth", "eyes", "yaw", "pitch", "roll")
# Where the face is and how large (the long-sequence measure, face_motion.py): a head that moves
# in the frame or towards the camera shows here when the angles barely change.
PLACE_SIGNALS = ("centre_x", "centre_y", "size")
MIN_FRAMES = 3           # Pearson r needs at least this many frames with a face in both clips

# Generic 3D face of the 6 points (x right, y down, z away from the camera, arbitrary units):
# the model often used with dlib's points for head pose.
POSE_POINTS = [30, 8, 36, 45, 48, 54]    # nose tip, chin, outer eye corners (image left, right), mouth corners
POSE_MODEL = np.array([[0.0, 0.0, 0.0], [0.0, 330.0, 65.0], [-225.0, -170.0, 135.0], [225.0, -170.0, 135.0],
                       [-150.0, 150.0, 125.0], [150.0, 150.0, 125.0]])


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Outer eye corner distance of landmarks [..., 68, 2] -> [...]."""
    return np.linalg.norm(landmarks[..., 45, :] - landmarks[..., 36, :], axis=-1)


def head_pose(landmarks: np.ndarray) -> np.ndarray:
    """Yaw, pitch, roll in degrees of landmarks [68, 2] (scaled-orthographic fit, see module doc): [3]."""
    x = landmarks[POSE_POINTS] - landmarks[POSE_POINTS].mean(0)             # [6, 2]
    model = POSE_MODEL - POSE_MODEL.mean(0)                                 # [6, 3]
    m = np.linalg.lstsq(model, x, rcond=None)[0].T                          # [2, 3]: x ~ model @ m.T
    u, _, vt = np.linalg.svd(m, full_matrices=False)
    rows = u @ vt                                                           # nearest orthonormal rows
    r = np.stack([rows[0], rows[1], np.cross(rows[0], rows[1])])            # [3, 3] rotation
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return np.array([yaw, pitch, roll])


def motion_signals(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Landmarks [T, 68, 2] (NaN rows: no face) -> {signal: [T]} (NaN where no face): SIGNALS, then
    PLACE_SIGNALS: the centre of the 68 points (x, y in pixels) and their RMS distance from it (size)."""
    p = landmarks
    iod = inter_ocular(p).clip(1e-6)                                        # [T]
    mouth = np.mean([np.linalg.norm(p[:, a] - p[:, b], axis=-1) for a, b in ((61, 67), (62, 66), (63, 65))], 0) / iod

    def ear(e: int) -> np.ndarray:      # e: first point of the eye (36 or 42)
        return ((np.linalg.norm(p[:, e + 1] - p[:, e + 5], axis=-1) + np.linalg.norm(p[:, e + 2] - p[:, e + 4], axis=-1))
                / (2 * np.linalg.norm(p[:, e] - p[:, e + 3], axis=-1).clip(1e-6)))

    pose = np.full((len(p), 3), np.nan)
    for t in np.flatnonzero(~np.isnan(p[:, 0, 0])):
        pose[t] = head_pose(p[t])
    centre = p.mean(axis=1)                                                  # [T, 2] pixels
    size = np.sqrt(((p - centre[:, None]) ** 2).sum(-1).mean(-1))            # [T] RMS distance of the 68 points
    return {"mouth": mouth, "eyes": (ear(36) + ear(42)) / 2, "yaw": pose[:, 0], "pitch": pose[:, 1], "roll": pose[:, 2],
            "centre_x": centre[:, 0], "centre_y": centre[:, 1], "size": size}
