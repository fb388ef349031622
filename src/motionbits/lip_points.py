"""The lips as dlib draws them, with the head taken out: what a model's lip code groups read
(model.lip_groups).

    uint8 frames [T, H, W, 3] ──► dlib's 68 points of the largest face (face_models.py)
        ──► the 20 lip points [T, 40] (x, y interleaved) aligned to the eyes: the lips' centre at 0,
            the eye line level, the eyes' distance 1, so the head's place, size and roll are gone

A frame without a face gives a row of NaN (LipMotionEncoder reads it as the training mean).
`lip_openings` reduces the 40 numbers to five the head's turn changes little (a nod still
foreshortens them): how far the lips part inside and out, how wide the mouth is inside and out, how
high its corners sit.
"""
from __future__ import annotations

import numpy as np
import torch

from motionbits.face_models import face_models

MOUTH_POINTS = slice(48, 68)                           # dlib's 68-point model: the lips
EYES = (slice(36, 42), slice(42, 48))                  # its left and right eye
LIP_FEATURES = 40                                      # 20 points, x and y
OPENINGS = 5                                           # lip_openings' numbers
# Of the 20 lip points (dlib's 48-67 from 0): pairs across the lips, top then bottom, and the corners.
OUTER_PAIRS, INNER_PAIRS = ((2, 10), (3, 9), (4, 8)), ((13, 19), (14, 18), (15, 17))
OUTER_CORNERS, INNER_CORNERS = (0, 6), (12, 16)


def aligned_lips(marks: np.ndarray) -> np.ndarray:
    """dlib's 68 points [T, 68, 2] -> the 20 lip points [T, 40] aligned to the eyes (NaN rows stay NaN)."""
    left, right = marks[:, EYES[0]].mean(1), marks[:, EYES[1]].mean(1)                # [T, 2]
    across = right - left
    distance = np.linalg.norm(across, axis=-1)                                        # [T]
    cos, sin = across[:, 0] / distance, across[:, 1] / distance
    lips = marks[:, MOUTH_POINTS] - marks[:, MOUTH_POINTS].mean(1, keepdims=True)     # [T, 20, 2]
    x = (lips[..., 0] * cos[:, None] + lips[..., 1] * sin[:, None]) / distance[:, None]   # rotated by -roll
    y = (-lips[..., 0] * sin[:, None] + lips[..., 1] * cos[:, None]) / distance[:, None]
    return np.stack([x, y], -1).reshape(len(marks), LIP_FEATURES)


def lip_openings(lips: torch.Tensor) -> torch.Tensor:
    """Aligned lip points [..., 40] -> [..., 5]: the inner and outer opening (bottom lip below top,
    averaged over three pairs), the outer and inner width, the corners' height against the lips'
    centre. All are differences of points, so the change of a shape gives the change of its numbers."""
    x, y = lips[..., 0::2], lips[..., 1::2]                                       # [..., 20] each
    opening = lambda pairs: torch.stack([y[..., b] - y[..., a] for a, b in pairs], -1).mean(-1)  # noqa: E731
    width = lambda corners: x[..., corners[1]] - x[..., corners[0]]                              # noqa: E731
    corners = (y[..., OUTER_CORNERS[0]] + y[..., OUTER_CORNERS[1]]) / 2
    return torch.stack([opening(INNER_PAIRS), opening(OUTER_PAIRS), width(OUTER_CORNERS), width(INNER_CORNERS),
                        corners], -1)


def lip_shapes(clips: np.ndarray) -> np.ndarray:
    """uint8 clips [B, T, H, W, 3] -> each frame's aligned lip points [B, T, 40] (about 20 ms a
    128-px frame on one core)."""
    models = face_models()
    return np.stack([aligned_lips(models.frame_landmarks(clip)) for clip in np.asarray(clips)])
