"""Video datasets: folders of real video (mp4, avi, mov, webm, gif) and of image frames made into clips.

Reading one file or frame folder is data/media.py's; this module finds the sources, crops, cuts,
splits and stores them.

- `build_video_dataset`: a folder of videos and/or frame folders -> fixed-length clips, split by
  identity, written to OUT/{split}_frames.npy + OUT/{split}.npz + OUT/manifest.json.
- `load_video_clips`: reads a split back, frames memory-mapped.

Storage: frames go to a plain uncompressed `.npy` per split (uint8 [N, T, S, S, 3]), labels to a
small `.npz`. A `.npy` can be memory-mapped, so loading is instant, RAM holds only the pages
a batch touches, and random batches cost one memcpy per clip; frames inside an `.npz` (a zip)
would have to be read (and with compression inflated) whole on every load, and zlib saves little
on video frames anyway.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from motionbits.atomic_files import atomic_path, remove_temporary_files, write_text_atomic
from motionbits.data.folders import SPLITS, dataset_manifest, read_npz
from motionbits.data.media import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, UnusableFile, center_square, folder_items, natural_key,
                                   resample, to_image, unusable_reason, video_items)
from motionbits.errors import MotionbitsError

if TYPE_CHECKING:
    from motionbits.data.faces import FaceCropSettings

LABEL_KEYS = ("video", "identity", "start")
FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------------
# Finding sources and their identities


@dataclass
class _Source:
    path: Path
    rel: str              # path relative to src (posix), the name used in the manifest
    identity: str
    is_folder: bool       # a folder of image frames rather than a video file
    # filled while decoding
    clips: int = 0
    frames_read: int = 0
    offset: int = 0       # index of its first clip in the temporary clip file
    starts: list[int] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    track: object | None = None   # a data.faces.FaceTrack: only these frames, cropped to the face


def _identity_of(rel: PurePosixPath, is_folder: bool, pattern: re.Pattern | None, root_name: str) -> str:
    if pattern is not None:
        m = pattern.search(rel.as_posix())
        if m:
            name = m.group(1) if pattern.groups else m.group(0)
            if name:
                return name
    if len(rel.parts) > 1:      # identity folders: src/<identity>/.../<video>
        return rel.parts[0]
    if not rel.parts:           # src itself is a frame folder
        return root_name
    return rel.name if is_folder else rel.stem


def _find_sources(src: Path, identity_regex: str | None, exclude: Path | None) -> tuple[list[_Source], int]:
    """Video files and frame folders under src (recursive), sorted; plus the number of other files."""
    pattern = None
    if identity_regex is not None:
        try:
            pattern = re.compile(identity_regex)
        except re.error as err:
            raise MotionbitsError(f"identity_regex {identity_regex!r} is not a valid regular expression ({err})") from None
    exclude = exclude.resolve() if exclude is not None else None
    sources, ignored = [], 0
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        # Hidden folders (.git, .cache) and the output folder (when it lies inside src) are not data.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() != exclude)
        files = [f for f in filenames if not f.startswith(".")]
        rel_dir = PurePosixPath(here.relative_to(src).as_posix())
        if rel_dir == PurePosixPath("."):
            rel_dir = PurePosixPath()
        if any(Path(f).suffix.lower() in IMAGE_SUFFIXES for f in files):
            sources.append(_Source(here, rel_dir.as_posix() if rel_dir.parts else ".",
                                   _identity_of(rel_dir, True, pattern, src.resolve().name), True))
        for f in files:
            suffix = Path(f).suffix.lower()
            if suffix in VIDEO_SUFFIXES:
                rel = rel_dir / f
                identity = _identity_of(rel, False, pattern, src.name)
                sources.append(_Source(here / f, rel.as_posix(), identity, False))
            elif suffix not in IMAGE_SUFFIXES:
                ignored += 1
    sources.sort(key=lambda s: natural_key(s.rel))
    return sources, ignored


# ---------------------------------------------------------------------------------------------
# Decoding: (timestamp, frame) streams -> resampled frames -> fixed-length clips


def _cut_clips(frames_in: Iterator[object], to_array: Callable[[object], np.ndarray], frames: int,
               stride: int, info: dict) -> Iterator[tuple[int, np.ndarray]]:
    """(start, clip uint8 [frames, S, S, 3]) for clips starting every `stride` frames."""
    window: list[np.ndarray] = []   # frames start .. start+len-1 of the next clip
    start = 0
    for i, obj in enumerate(frames_in):
        info["frames_read"] = i + 1
        if stride > frames and i % stride >= frames:
            continue  # a frame in the gap between clips: skip the costly conversion
        window.append(to_array(obj))
        if len(window) == frames:
            yield start, np.stack(window)
            start += stride
            window = window[stride:] if stride < frames else []


def _to_array_fn(size: int, is_folder: bool) -> Callable[[object], np.ndarray]:
    def convert(obj) -> np.ndarray:
        return np.asarray(center_square(to_image(obj, is_folder), size))  # [S, S, 3] uint8
    return convert


def _source_frames(source: _Source, fps: float | None, info: dict) -> Iterator[object]:
    """The frames of a source (av.VideoFrame or image path), resampled to fps when given."""
    items = folder_items(source.path, info) if source.is_folder else video_items(source.path, info)
    if fps is None:
        return (obj for _, obj in items)
    if source.is_folder:
        info["fps_note"] = "frame folder has no timestamps: every frame used, fps not applied"
        return (obj for _, obj in items)
    return resample(items, fps, info)


def _clips_of(source: _Source, size: int, frames: int, stride: int,
              fps: float | None) -> Iterator[tuple[int, np.ndarray]]:
    info = source.info
    frames_in = _source_frames(source, fps, info)
    if source.track is not None:             # --crop face: this track's frames, cropped to the face
        from motionbits.data.faces import cropped_frames

        frames_in = cropped_frames(frames_in, lambda obj: to_image(obj, source.is_folder), source.track, size)
        yield from _cut_clips(frames_in, np.asarray, frames, stride, info)
        return
    yield from _cut_clips(frames_in, _to_array_fn(size, source.is_folder), frames, stride, info)


def face_track_sources(sources: list, fps: float | None, min_frames: int, skipped: list[dict],
                       progress: bool = True, settings: FaceCropSettings | None = None) -> list:
    """`data video --crop face`: each video source -> one source per face track of its main person
    (rel `<path>#face<k>`, the same identity). Videos without a usable track are added to `skipped`
    with one warning line each."""
    from motionbits.data.faces import find_face_tracks
    from motionbits.face_models import face_models

    models = face_models()
    out = []
    bar = tqdm(sources, desc="finding faces", unit="video", disable=not progress, file=sys.stderr)
    for source in bar:
        info: dict = {}
        try:
            items = _source_frames(source, fps, info)
            search = find_face_tracks((to_image(obj, source.is_folder) for obj in items),
                                      fps or info.get("source_fps"), min_frames, settings, models)
        except Exception as err:  # a broken file: skip it, keep the job going
            reason = unusable_reason(err)
        else:
            if search.tracks:
                for k, track in enumerate(search.tracks):
                    out.append(dataclasses.replace(source, rel=f"{source.rel}#face{k}", track=track,
                                       info={"source_path": source.rel, **track.describe()}, starts=[]))
                bar.set_postfix(tracks=len(out), refresh=False)
                continue
            reason = (f"no face found in {search.searched} searched frames" if not search.found else
                      f"no face track of {min_frames} frames (faces in {search.found} of {search.searched} searched "
                      f"frames, {search.cuts} shot changes)")
        skipped.append({"path": source.rel, "reason": reason})
        tqdm.write(f"skipped {source.path}: {reason}", file=sys.stderr)
    return out


# ---------------------------------------------------------------------------------------------
# Splitting and writing


def _split(sources: list[_Source], test_fraction: float, seed: int,
           test_videos: str | None = None) -> tuple[dict[str, str], str, str | None]:
    """{identity or video rel: split}, what was split ("identity" | "video" | "chosen" | "none"), a note."""
    identities = sorted({s.identity for s in sources}, key=natural_key)
    rng = np.random.default_rng(seed)
    if test_videos is not None:  # the user chose: videos whose path matches go to test
        pattern = re.compile(test_videos)
        chosen = {s.rel: "test" if pattern.search(s.rel) else "train" for s in sources}
        if len(set(chosen.values())) < 2:
            raise MotionbitsError(f"--test-videos {test_videos!r} puts {'every' if 'test' in chosen.values() else 'no'} "
                                  "video in the test split; it must leave both splits some")
        both = sorted({s.identity for s in sources if chosen[s.rel] == "test"}
                      & {s.identity for s in sources if chosen[s.rel] == "train"})
        note = f"people in both splits (other videos of them): {', '.join(both)}" if both else None
        return chosen, "chosen", note

    def pick(names: list[str]) -> set[str]:
        n_test = min(max(math.floor(test_fraction * len(names) + 0.5), 1), len(names) - 1)
        return {names[i] for i in rng.permutation(len(names))[:n_test]}

    if len(identities) >= 2:
        test = pick(identities)
        return {s.rel: "test" if s.identity in test else "train" for s in sources}, "identity", None
    if len(sources) >= 2:
        test = pick([s.rel for s in sources])
        note = (f"only one identity ({identities[0]}): split by video, so train and test show the "
                "same person; identity-transfer scores on this test split are optimistic")
        return {s.rel: "test" if s.rel in test else "train" for s in sources}, "video", note
    note = "only one video: every clip is in train and the test split is empty"
    return {s.rel: "train" for s in sources}, "none", note


def _count(n: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


def _write_split(out: Path, split: str, members: list[_Source], raw: np.ndarray | None,
                 shape: tuple[int, ...], identity_index: dict[str, int], video_index: dict[str, int],
                 chunk: int = 256) -> int:
    """Copy the split's clips from the temporary clip file into {split}_frames.npy; labels to {split}.npz."""
    n = sum(s.clips for s in members)
    with atomic_path(out / f"{split}_frames.npy", shared=True) as tmp:
        if n:
            # open_memmap writes the .npy header and maps the data: the split never sits in RAM.
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, *shape))
            pos = 0
            for s in members:
                for a in range(s.offset, s.offset + s.clips, chunk):
                    b = min(a + chunk, s.offset + s.clips)
                    arr[pos:pos + b - a] = raw[a:b]
                    pos += b - a
            arr.flush()
            del arr
        else:
            with open(tmp, "wb") as f:
                np.save(f, np.zeros((0, *shape), np.uint8))

    labels = {
        "video": np.array([video_index[s.rel] for s in members for _ in range(s.clips)], np.int64),
        "identity": np.array([identity_index[s.identity] for s in members for _ in range(s.clips)], np.int64),
        "start": np.array([st for s in members for st in s.starts], np.int64),
    }
    with atomic_path(out / f"{split}.npz", shared=True) as tmp, open(tmp, "wb") as f:
        np.savez(f, **labels)  # a file object: np.savez would append ".npz" to a bare name
    return n


def build_video_dataset(src: str | os.PathLike, out: str | os.PathLike, size: int = 128, frames: int = 16,
                        stride: int = 8, fps: float | None = None, test_fraction: float = 0.2, seed: int = 0,
                        max_clips_per_video: int | None = None, progress: bool = True,
                        identity_regex: str | None = None, crop: str = "center",
                        test_videos: str | None = None) -> dict:
    """Turn a folder of videos into fixed-length clips, split by identity; returns the manifest.

    src holds video files (mp4, avi, mov, webm, mkv, gif) and/or frame folders (a folder with
    image files = one video, frames in natural name order), searched recursively; hidden files
    and folders are ignored. Every frame is converted to RGB (grayscale -> 3 equal channels),
    centre-cropped to a square and resized to size x size (bicubic). With `fps`, frames are
    picked by timestamp (nearest frame to each 1/fps tick); frame folders have no timestamps and
    keep every frame. Clips of `frames` frames start every `stride` frames (after resampling);
    `max_clips_per_video` keeps only the first clips of each video (and stops decoding there).
    `crop="face"` instead finds the main person's face tracks (data/faces.py: detection, tracking,
    shot changes, a steady square crop around the face); each track becomes a video of the
    manifest ("<path>#face<k>", the file's identity) and a file without a face is skipped.

    Identity (the unit of the train/test split):
    - `identity_regex`, when given and it matches the path relative to src (e.g.
      "sub/mead_M030_front_happy.mp4"): its first group, or the whole match if it has no
      group. `r"mead_(\\w+?)_"` groups MEAD files by actor. Paths it does not match fall back to:
    - the first-level folder under src for anything nested (VoxCeleb: src/id10001/<video>/...);
    - else the file stem (a frame folder directly in src: its name).

    Whole identities go to test (fraction `test_fraction` of them, seeded; at least one in each
    split when there are >= 2). With one identity the split is by video, with one video there is
    no test clip; the manifest's `split_by` and `note` say so. `test_videos`, a regular expression,
    chooses instead: the videos whose path (relative to src) it matches form the test split, e.g.
    new drivers and held-back videos of the person the model is for.

    Writes OUT/{train,test}_frames.npy (uint8 [N, frames, size, size, 3]), OUT/{train,test}.npz
    (int64 [N] labels: video = index into manifest["videos"], identity = index into
    manifest["identities"], start = first frame of the clip in its (resampled) video) and
    OUT/manifest.json, each atomically. Unusable files (unreadable, empty, no video stream,
    shorter than `frames`) are skipped with one warning line each.
    """
    t_begin = time.time()
    src, out = Path(src), Path(out)
    for name, value in (("size", size), ("frames", frames), ("stride", stride)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise MotionbitsError(f"{name} must be a positive integer, got {value!r}")
    if fps is not None and not fps > 0:
        raise MotionbitsError(f"fps must be positive (or None for the source rate), got {fps!r}")
    if not 0 < test_fraction < 1:
        raise MotionbitsError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction!r}")
    if max_clips_per_video is not None and max_clips_per_video < 1:
        raise MotionbitsError(f"max_clips_per_video must be >= 1 or None, got {max_clips_per_video!r}")
    if crop not in ("center", "face"):
        raise MotionbitsError(f"crop must be 'center' or 'face', got {crop!r}")
    if not src.exists():
        raise MotionbitsError(f"{src}: no such folder")
    if not src.is_dir():
        raise MotionbitsError(f"{src}: not a folder (expected a folder of videos or frame folders)")
    if out.exists() and not out.is_dir():
        raise MotionbitsError(f"{out}: exists and is not a folder")

    if test_videos is not None:
        try:
            re.compile(test_videos)
        except re.error as err:
            raise MotionbitsError(f"--test-videos {test_videos!r} is not a valid regular expression ({err})") from None
    sources, ignored = _find_sources(src, identity_regex, exclude=out)
    if not sources:
        raise MotionbitsError(f"{src}: no videos ({', '.join(VIDEO_SUFFIXES)}) or folders of image frames found")
    files = len(sources)
    skipped: list[dict] = []
    if crop == "face":
        sources = face_track_sources(sources, fps, frames, skipped, progress)

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".clips-*.tmp"):     # what a killed build left behind (GBs of clips)
        stale.unlink(missing_ok=True)
    for name in (*(f"{s}{tail}" for s in SPLITS for tail in ("_frames.npy", ".npz")), "manifest.json"):
        remove_temporary_files(out / name)
    raw_path = out / f".clips-{os.getpid()}.tmp"
    shape = (frames, size, size, 3)
    clip_bytes = math.prod(shape)
    used: list[_Source] = []
    warnings: list[str] = []   # printed once pass 1 made clips; if none, the error says why
    total = 0
    try:
        # Pass 1: decode each source once, appending its clips to one raw temporary file, so
        # memory stays at one window of frames whatever the dataset size.
        with open(raw_path, "wb") as raw_file:
            # the bar on a terminal only: logged or piped stderr keeps just the warnings and errors
            bar = tqdm(sources, desc="videos", unit="video", disable=None if progress else True, file=sys.stderr)
            for source in bar:
                source.offset = total
                gen = _clips_of(source, size, frames, stride, fps)
                error: Exception | None = None
                while max_clips_per_video is None or source.clips < max_clips_per_video:
                    try:
                        item = next(gen)
                    except StopIteration:
                        break
                    except Exception as err:  # a broken file: skip it, keep the job going
                        error = err
                        break
                    start, clip = item
                    raw_file.write(np.ascontiguousarray(clip).data)  # write errors (disk full) propagate
                    source.starts.append(start)
                    source.clips += 1
                gen.close()
                source.frames_read = source.info.get("frames_read", 0)
                if error is None and source.clips == 0:
                    rate = f" at {fps:g} fps" if fps else ""
                    error = UnusableFile(f"only {_count(source.frames_read, 'frame')}{rate}, need {frames} for one clip")
                if error is not None:
                    raw_file.seek(clip_bytes * total)   # drop any clips written before the error
                    raw_file.truncate()
                    reason = unusable_reason(error)
                    skipped.append({"path": source.rel, "reason": reason})
                    warnings.append(f"skipped {source.path}: {reason}")
                    continue
                total += source.clips
                used.append(source)
                bar.set_postfix(clips=total, refresh=False)
        if not used:  # one line with the reasons: no manifest will be written to hold them
            reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped[:3])
            more = f"; {len(skipped) - 3} more" if len(skipped) > 3 else ""
            raise MotionbitsError(f"{src}: all {files} videos were skipped, no clips written ({reasons}{more})")
        for line in warnings:
            print(line, file=sys.stderr)
        if skipped:
            print(f"skipped {len(skipped)} of {files} files (reasons above and in manifest.json)",
                  file=sys.stderr)

        # Pass 2: split the identities that produced clips, then package each split.
        assignment, split_by, note = _split(used, test_fraction, seed, test_videos)
        identities = sorted({s.identity for s in used}, key=natural_key)
        identity_index = {name: i for i, name in enumerate(identities)}
        video_index = {s.rel: i for i, s in enumerate(used)}
        raw = np.memmap(raw_path, dtype=np.uint8, mode="r", shape=(total, *shape))
        counts = {}
        for split in SPLITS:
            members = [s for s in used if assignment[s.rel] == split]
            counts[split] = _write_split(out, split, members, raw, shape, identity_index, video_index)
        del raw
    finally:
        raw_path.unlink(missing_ok=True)
        if created and not any(out.iterdir()):
            out.rmdir()

    fps_notes = sum("fps_note" in s.info for s in used)
    manifest = {
        "kind": "video",
        "format": FORMAT_VERSION,
        "source": str(src.resolve()),
        "size": size, "frames": frames, "stride": stride, "fps": fps,
        "test_fraction": test_fraction, "seed": seed, "identity_regex": identity_regex, "test_videos": test_videos,
        "max_clips_per_video": max_clips_per_video, "crop": crop,
        "split_by": split_by, "note": note,
        "counts": counts,
        "identities": identities,
        "split_identities": {sp: sorted({s.identity for s in used if assignment[s.rel] == sp}, key=natural_key)
                             for sp in SPLITS},
        "files": {sp: {"frames": f"{sp}_frames.npy", "labels": f"{sp}.npz"} for sp in SPLITS},
        "videos": [{"path": s.rel, "identity": s.identity, "split": assignment[s.rel], "clips": s.clips,
                    "frames_read": s.frames_read, **{k: v for k, v in s.info.items() if k != "frames_read"}}
                   for s in used],
        "skipped": skipped,
        "ignored_files": ignored,
        "seconds": round(time.time() - t_begin, 1),
    }
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=1))
    if note:
        print(f"note: {note}", file=sys.stderr)
    if fps_notes:
        print(f"note: {fps_notes} frame folders have no timestamps; fps={fps:g} was not applied to them",
              file=sys.stderr)
    ids = manifest["split_identities"]
    print(f"wrote {out}: {counts['train']} train clips ({_count(len(ids['train']), 'identity')}), "
          f"{counts['test']} test clips ({_count(len(ids['test']), 'identity')}) of {frames}x{size}x{size} "
          f"from {_count(len(used), 'video')} in {manifest['seconds']:.0f} s")
    return manifest


def video_dataset_fps(root: str | os.PathLike) -> float | None:
    """The frame rate a dataset's clips were resampled to (`--fps`), None when kept at the source rate."""
    try:
        fps = json.loads((Path(root) / "manifest.json").read_text()).get("fps")
    except (OSError, ValueError):
        return None
    return float(fps) if fps else None


def load_video_clips(root: str | os.PathLike, split: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Frames uint8 [N, T, S, S, 3] (memory-mapped) and int64 [N] labels of a build_video_dataset split.

    The frames are mapped copy-on-write: pages are read from disk on first touch, the file is
    never modified, and the array is writable so torch.from_numpy does not warn.
    """
    root, manifest = dataset_manifest(root, split, "video")
    frames_path, labels_path = root / f"{split}_frames.npy", root / f"{split}.npz"
    if not frames_path.is_file():
        raise MotionbitsError(f"{frames_path}: split file is missing")

    try:
        frames = np.load(frames_path, mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise MotionbitsError(f"{frames_path}: not a readable .npy file ({err})") from None
    expected = (manifest.get("frames"), manifest.get("size"), manifest.get("size"), 3)
    if frames.dtype != np.uint8 or frames.ndim != 5 or frames.shape[1:] != expected:
        raise MotionbitsError(f"{frames_path}: expected uint8 [N, {', '.join(map(str, expected))}], "
                              f"got {frames.dtype} {list(frames.shape)}")
    n = frames.shape[0]
    if n != manifest.get("counts", {}).get(split):
        raise MotionbitsError(f"{frames_path}: {n} clips but manifest.json says {manifest.get('counts', {}).get(split)}"
                              " (an interrupted rebuild? build the folder again)")
    if n == 0:
        raise MotionbitsError(f"{frames_path}: the {split} split has no clips ({manifest.get('note') or 'empty'})")

    labels = read_npz(labels_path, LABEL_KEYS)
    for k, a in labels.items():
        if a.dtype != np.int64 or a.shape != (n,):
            raise MotionbitsError(f"{labels_path}: label {k!r} should be int64 [{n}], got {a.dtype} {list(a.shape)}")
    return frames, labels
