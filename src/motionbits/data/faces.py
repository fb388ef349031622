"""Face tracks of a video and their square crops (`motionbits data video --crop face`).

A video is read twice. The first pass finds the face tracks:
- every `detect_every`-th frame goes through dlib's HOG face detector (on a copy shrunk to at most
  `detect_side` px, searched at twice that size);
- a shot change ends every track, and a detection is searched on the first frame after it. A shot
  change is a frame whose difference from the previous one (mean absolute difference of 32x32 grey
  thumbnails, in [0, 1]) is above `cut_threshold` and `cut_ratio` times the median difference of
  the `CUT_HISTORY` frames before (talking heads change by about 0.003-0.01 a frame and up to
  0.05 in a fast head turn at 10 fps; a cut between two clips of one studio by 0.06-0.1, between
  unrelated clips by 0.2);
- a detection continues the track whose last box it overlaps most (IoU >= `min_iou`); a box that
  jumps further starts a new track, and a track not seen for `max_gap_seconds` ends;
- the main person: tracks are ranked by detections x mean face size and taken greedily when they
  do not overlap in time a track already taken; tracks shorter than a clip are dropped.
Each kept track gets a crop box per frame: its centre is the detected box centre (interpolated
between detections, then smoothed with a Gaussian of `smooth_seconds`), raised by `raise_centre`
of the face size so hair is in and the neck is short; its side is `margin` x the track's median
face size, the same in every frame of the track, so the crop neither jitters nor breathes.

The second pass crops: each frame of a track is cut to its square (black outside the frame) and
resized to the dataset size (bicubic). `data/video.py` turns each track into its own video of the
manifest, with the identity of the file it came from.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from motionbits.face_models import Face, FaceModels, face_models

DEFAULT_FPS = 25.0  # frame folders have no timing: seconds are read at this rate
THUMB = 32
CUT_HISTORY = 25


@dataclass
class FaceCropSettings:
    margin: float = 1.8             # crop side / detected face size (dlib's box: brows to chin)
    raise_centre: float = 0.1       # crop centre above the box centre, in face sizes
    detect_every: int = 2           # frames between detections (interpolated in between)
    detect_side: int = 320          # frames are shrunk to at most this many px before detection
    max_gap_seconds: float = 1.0    # a face unseen for longer ends its track
    smooth_seconds: float = 0.5     # Gaussian sigma of the crop centre's path
    cut_threshold: float = 0.06     # thumbnail difference that can mark a shot change...
    cut_ratio: float = 4.0          # ...when it is also this many times the recent median
    min_iou: float = 0.3            # overlap of consecutive boxes that continues a track


@dataclass
class FaceTrack:
    """One person's face over consecutive frames first..first+len-1 of a (resampled) video."""
    first: int
    centres: np.ndarray             # float [L, 2]: crop centre (x, y) per frame, source pixels
    side: float                     # crop side, source pixels
    detections: int                 # detection frames that found this face
    searched: int                   # detection frames within the track

    @property
    def last(self) -> int:
        return self.first + len(self.centres) - 1

    def describe(self) -> dict:
        return {"first_frame": self.first, "frames": len(self.centres), "crop_side_px": round(self.side, 1),
                "face_found": round(self.detections / max(self.searched, 1), 3)}


@dataclass
class _Chain:
    """A track while it is being linked: the frames where the face was detected and its boxes."""
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    searched: int = 0

    def score(self) -> float:
        return len(self.frames) * float(np.mean([_size(b) for b in self.boxes]))


def _size(box: np.ndarray) -> float:
    return float((box[2] - box[0] + box[3] - box[1]) / 2)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (left, top, right, bottom)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def link_tracks(detections: dict[int, list[Face]], cuts: Iterable[int], max_gap: int,
                min_iou: float) -> list[_Chain]:
    """Detections per searched frame (frame index -> faces) -> chains of the same face.

    A cut at frame c ends every chain before c. A face continues the open chain whose last box
    overlaps it most (IoU >= min_iou, each chain takes one face); a chain whose last detection is
    more than max_gap frames old is closed."""
    cuts = sorted(cuts)
    closed, open_chains = [], []
    next_cut = 0
    for frame in sorted(detections):
        while next_cut < len(cuts) and cuts[next_cut] <= frame:
            closed += open_chains
            open_chains = []
            next_cut += 1
        still_open = []
        for chain in open_chains:
            (still_open if frame - chain.frames[-1] <= max_gap else closed).append(chain)
        open_chains = still_open
        for chain in open_chains:
            chain.searched += 1
        pairs = sorted(((iou(c.boxes[-1], f.box), ci, fi) for ci, c in enumerate(open_chains)
                        for fi, f in enumerate(detections[frame])), reverse=True)
        taken_chains, taken_faces = set(), set()
        for overlap, ci, fi in pairs:
            if overlap < min_iou or ci in taken_chains or fi in taken_faces:
                continue
            open_chains[ci].frames.append(frame)
            open_chains[ci].boxes.append(detections[frame][fi].box)
            taken_chains.add(ci)
            taken_faces.add(fi)
        for fi, face in enumerate(detections[frame]):
            if fi not in taken_faces:
                open_chains.append(_Chain([frame], [face.box], 1))
    return closed + open_chains


def main_chains(chains: list[_Chain], min_frames: int) -> list[_Chain]:
    """The main person's chains: by detections x face size, each taken when it does not overlap in
    time one already taken and spans at least min_frames; in time order."""
    taken: list[_Chain] = []
    for chain in sorted(chains, key=lambda c: -c.score()):
        first, last = chain.frames[0], chain.frames[-1]
        if last - first + 1 < min_frames:
            continue
        if all(last < t.frames[0] or first > t.frames[-1] for t in taken):
            taken.append(chain)
    return sorted(taken, key=lambda c: c.frames[0])


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of [L, D] along time; the kernel is renormalised at the ends, so the
    path is not pulled towards zero there."""
    if sigma <= 0 or len(values) < 2:
        return values
    radius = int(math.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    n = len(values)

    def centred(x: np.ndarray) -> np.ndarray:     # "same" that keeps length n when the kernel is longer
        return np.convolve(x, kernel, mode="full")[radius:radius + n]

    mass = centred(np.ones(n))
    return np.stack([centred(values[:, d]) / mass for d in range(values.shape[1])], axis=1)


def crop_track(chain: _Chain, settings: FaceCropSettings, fps: float) -> FaceTrack:
    """A chain's detections -> a crop centre for every frame of its span and one crop side."""
    frames = np.array(chain.frames)
    boxes = np.stack(chain.boxes)                                      # [D, 4]
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)  # [D, 2]
    span = np.arange(frames[0], frames[-1] + 1)
    path = np.stack([np.interp(span, frames, centres[:, d]) for d in range(2)], axis=1)          # [L, 2]
    path = _smooth(path, settings.smooth_seconds * fps)
    face = float(np.median([_size(b) for b in boxes]))
    path[:, 1] -= settings.raise_centre * face
    return FaceTrack(int(frames[0]), path, settings.margin * face, len(frames), chain.searched)


def crop_frame(image: Image.Image, centre: np.ndarray, side: float, size: int) -> np.ndarray:
    """The square of `side` px around `centre` (black outside the frame) at size x size: uint8 [size, size, 3]."""
    left, top = int(round(centre[0] - side / 2)), int(round(centre[1] - side / 2))
    s = max(int(round(side)), 1)
    return np.asarray(image.crop((left, top, left + s, top + s)).resize((size, size), Image.BICUBIC))


def _thumb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize((THUMB, THUMB), Image.BILINEAR), np.float32) / 255


@dataclass
class TrackSearch:
    tracks: list[FaceTrack]
    frames: int                     # frames read
    searched: int                   # frames the detector ran on
    found: int                      # of those, frames with at least one face
    cuts: int                       # shot changes
    dropped: int                    # face chains not kept (short, or overlapping the main person's)


def find_face_tracks(images: Iterable[Image.Image], fps: float | None, min_frames: int,
                     settings: FaceCropSettings | None = None, models: FaceModels | None = None) -> TrackSearch:
    """The main person's face tracks of a video given as RGB frames (first pass, see module doc)."""
    settings = settings or FaceCropSettings()
    models = models or face_models()
    fps = fps or DEFAULT_FPS
    detections: dict[int, list[Face]] = {}
    cuts, previous, count, recent = [], None, 0, deque(maxlen=CUT_HISTORY)
    for i, image in enumerate(images):
        count = i + 1
        thumb = _thumb(image)
        cut = False
        if previous is not None:
            change = float(np.abs(thumb - previous).mean())
            cut = change > settings.cut_threshold and (not recent or change > settings.cut_ratio * np.median(recent))
            if cut:
                cuts.append(i)
            else:
                recent.append(change)
        previous = thumb
        if i % settings.detect_every and not cut:
            continue
        scale = min(1.0, settings.detect_side / max(image.size))
        small = image if scale == 1.0 else image.resize((max(1, round(image.width * scale)),
                                                          max(1, round(image.height * scale))), Image.BILINEAR)
        faces = models.detect(np.asarray(small), upsample=1)
        for face in faces:
            face.box = face.box / scale                                # back to source pixels
        detections[i] = faces
    chains = link_tracks(detections, cuts, max_gap=max(1, round(settings.max_gap_seconds * fps)),
                         min_iou=settings.min_iou)
    kept = main_chains(chains, min_frames)
    return TrackSearch([crop_track(c, settings, fps) for c in kept], count, len(detections),
                       sum(bool(f) for f in detections.values()), len(cuts), len(chains) - len(kept))


def cropped_frames(items: Iterable[object], to_image: Callable[[object], Image.Image], track: FaceTrack,
                   size: int) -> Iterator[np.ndarray]:
    """The second pass: the frames of one track, cropped: uint8 [size, size, 3] each. `items` is the
    same frame sequence the track was found in; frames outside the track are not converted."""
    for i, obj in enumerate(items):
        if i < track.first:
            continue
        if i > track.last:
            break
        yield crop_frame(to_image(obj), track.centres[i - track.first], track.side, size)
