"""Shrink a built video dataset to carry it to a lent GPU, and rebuild it there.

A dataset folder (`motionbits data video`) stores every clip's frames, and clips overlap in time
(8 frames every 2), so each frame is stored about four times: 435 MB for 4 minutes of 128x128 faces.
`pack` keeps each video's frames once, as near-lossless H.264 (yuv444p, CRF 6), beside the clip
index; `unpack` decodes them and writes the frames of every clip again. What the model trains on
differs from the original by the codec's rounding (PSNR printed by `pack`: 46 dB on 128x128 faces).
The training frames' lip points (cached by a lip model's training, `model.lip_groups`) travel too,
cached again under the rebuilt frames' key: the lent machine has no dlib to read them.

    python scripts/pack_frames.py pack DATA PACKED      # DATA: a dataset folder; PACKED: new folder
    python scripts/pack_frames.py unpack PACKED DATA    # on the other machine
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import av
import numpy as np

from motionbits.training.bcd import lip_cache_path

SPLITS = ("train", "test")
LIPS = "lip_shapes-train.npy"        # the packed lip points' cache


def unique_frames(index: np.lib.npyio.NpzFile, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each video's frames once, in order, (F, H, W, 3), and each clip's first frame's row in them (N,)."""
    videos, starts = index["video"], index["start"]
    rows, where, offset = [], np.zeros(len(clips), dtype=np.int64), 0
    for v in np.unique(videos):
        members = np.flatnonzero(videos == v)
        length = int(starts[members].max()) + clips.shape[1]
        frames = np.zeros((length, *clips.shape[2:]), dtype=np.uint8)
        for c in members:
            frames[starts[c]:starts[c] + clips.shape[1]] = clips[c]
        rows.append(frames)
        where[members] = offset + starts[members]
        offset += length
    return np.concatenate(rows), where


def write_video(frames: np.ndarray, path: Path) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "6", "preset": "medium"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def read_video(path: Path) -> np.ndarray:
    with av.open(str(path)) as src:
        return np.stack([f.to_ndarray(format="rgb24") for f in src.decode(video=0)])


def pack(data: Path, packed: Path) -> None:
    packed.mkdir(parents=True, exist_ok=True)
    shutil.copy(data / "manifest.json", packed / "manifest.json")
    for split in SPLITS:
        index = np.load(data / f"{split}.npz")
        clips = np.load(data / f"{split}_frames.npy", mmap_mode="r")  # (N, T, H, W, 3)
        frames, where = unique_frames(index, clips)
        rebuilt = frames[where[:, None] + np.arange(clips.shape[1])]
        if not np.array_equal(rebuilt, clips):
            raise SystemExit(f"{data}: the {split} clips do not tile their videos (not a `motionbits data video` folder?)")
        write_video(frames, packed / f"{split}.mp4")
        np.savez(packed / f"{split}.npz", **{k: index[k] for k in index.files}, frame_row=where)
        decoded = read_video(packed / f"{split}.mp4").astype(np.float64)
        mse = np.mean((decoded - frames) ** 2)
        size = (packed / f"{split}.mp4").stat().st_size / 1e6
        print(f"{split}: {len(clips)} clips, {len(frames)} frames once, {size:.1f} MB, "
              f"PSNR {10 * np.log10(255 ** 2 / max(mse, 1e-12)):.1f} dB")
        lips = lip_cache_path(data, clips) if split == "train" else None   # (hashes every frame: once)
        if lips is not None and lips.exists():
            shutil.copy(lips, packed / LIPS)
            print("train: the lip points' cache packed")


def unpack(packed: Path, data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    shutil.copy(packed / "manifest.json", data / "manifest.json")
    clip_len = json.loads((packed / "manifest.json").read_text())["frames"]
    for split in SPLITS:
        index = np.load(packed / f"{split}.npz")
        frames = read_video(packed / f"{split}.mp4")
        clips = frames[index["frame_row"][:, None] + np.arange(clip_len)]  # (N, T, H, W, 3)
        np.save(data / f"{split}_frames.npy", clips)
        if split == "train" and (packed / LIPS).exists():   # the rebuilt frames' own key
            shutil.copy(packed / LIPS, lip_cache_path(data, clips))
        np.savez(data / f"{split}.npz", **{k: index[k] for k in index.files if k != "frame_row"})
        print(f"{split}: {len(clips)} clips rebuilt")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=["pack", "unpack"])
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    args = parser.parse_args()
    (pack if args.verb == "pack" else unpack)(args.source, args.dest)
