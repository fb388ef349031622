"""Videos, GIFs, pictures, checkpoints and reports are written atomically: a write that fails part
way leaves the old file byte for byte and no temporary file, and the one line names the file.

The failing write is a real one: RLIMIT_FSIZE makes every write past a size fail with EFBIG inside
the real writers (PyAV, Pillow, torch.save), the way ENOSPC does on a full disk (SIGXFSZ, which
would kill the process instead, is ignored).
"""
from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from motionbits.atomic_files import write_text_atomic
from motionbits.training import checkpoint as ckpt_io
from motionbits.visualize import save_video
from tests.helpers import tiny_config

LIMIT = 16384  # bytes: every new output below is larger, every old one smaller
CLI_LIMIT = 4096  # the transfer's 8x upscaled result is above it, a 2-frame 8x8 MP4 below


@contextmanager
def file_size_limit(nbytes: int = LIMIT):
    """Within the block, writing past `nbytes` of any file fails with EFBIG (like a full disk)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def _limit_in_child() -> None:  # preexec_fn: the ignored SIGXFSZ survives exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (CLI_LIMIT, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def noise_clip(frames: int = 16, side: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 [T, side, side, 3] of noise: no codec squeezes it under LIMIT."""
    return np.random.default_rng(seed).integers(0, 256, (frames, side, side, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".png", ".webm", ".avi", ".mov"])
def test_a_video_write_that_fails_keeps_the_old_file_and_leaves_no_temporary(suffix, tmp_path):
    target = save_video(noise_clip(frames=2, side=8), tmp_path / f"keep{suffix}", fps=8)
    old = target.read_bytes()
    assert len(old) < LIMIT
    with pytest.raises(OSError) as failed, file_size_limit():
        save_video(noise_clip(), target, fps=8)
    assert failed.value.errno == errno.EFBIG and failed.value.filename == str(target)
    assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_checkpoint_save_that_fails_keeps_the_old_checkpoint(tmp_path):
    """torch.save reports a failed write as RuntimeError('unexpected pos'): it reaches the user as
    the OSError behind it, naming last.pt."""
    target = tmp_path / "last.pt"
    ckpt_io.save_atomic({"step": 1}, target)
    old = target.read_bytes()
    with pytest.raises(OSError) as failed, file_size_limit(len(old) + 512):
        ckpt_io.save_atomic({"step": 2, "weights": torch.randn(4096)}, target)
    assert failed.value.errno == errno.EFBIG and failed.value.filename == str(target)
    assert target.read_bytes() == old and torch.load(target)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_report_write_that_fails_keeps_the_old_report(tmp_path):
    target = tmp_path / "eval.json"
    write_text_atomic(target, '{"old": true}')
    with pytest.raises(OSError) as failed, file_size_limit():
        write_text_atomic(target, "x" * (2 * LIMIT))
    assert failed.value.filename == str(target) and target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]


def test_transfer_over_an_existing_video_on_a_full_disk_keeps_it_and_says_so_in_one_line(sprites_root, tmp_path):
    """`motionbits transfer -o keep.mp4` when the write fails part way: exit code 2, one line
    naming keep.mp4, the old keep.mp4 byte for byte and nothing else in the folder."""
    from motionbits.cli import main

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(data={"root": str(sprites_root), "image_size": 64},
                                                 model={"patch_size": 16}, train={"steps": 1}).to_dict()))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--device", "cpu"]) == 0
    out = tmp_path / "videos"
    keep = save_video(noise_clip(frames=2, side=8), out / "keep.mp4", fps=8)
    old = keep.read_bytes()
    assert len(old) < CLI_LIMIT
    proc = subprocess.run(
        [sys.executable, "-m", "motionbits.cli", "transfer", "--checkpoint", str(tmp_path / "run"), "--device", "cpu",
         "--content", f"sprites:{sprites_root}:test:0", "--motion", f"sprites:{sprites_root}:test:1",
         "--scale", "8", "-o", str(keep)],
        capture_output=True, text=True, timeout=600, preexec_fn=_limit_in_child,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines() == [f"motionbits: error: {keep}: File too large (the old file, if any, is kept)"]
    assert keep.read_bytes() == old
    assert [p.name for p in out.iterdir()] == ["keep.mp4"]
