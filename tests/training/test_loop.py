"""The one training loop: schedule, checkpoints (by step and by wall clock), exact resume after a
real kill, clean logs and files afterwards."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from motionbits.errors import MotionbitsError
from motionbits.training import checkpoint as ckpt_io
from motionbits.training.bcd import train
from motionbits.training.loop import Schedule, learning_rate
from tests.helpers import tiny_config


def sprites_cfg(root, **train):
    return tiny_config(data={"root": str(root), "image_size": 64}, model={"patch_size": 16}, train=train)


def test_learning_rate_schedule():
    s = Schedule(steps=100, batch_size=1, lr=1.0, warmup_steps=10)
    assert learning_rate(s, 0) == pytest.approx(0.1)
    assert learning_rate(s, 9) == pytest.approx(1.0)
    assert learning_rate(s, 55) == pytest.approx(0.55)            # half way down the cosine to 10 %
    assert learning_rate(s, 100) == pytest.approx(0.1) == learning_rate(s, 500)


def test_time_budget_stops_and_saves(sprites_root, tmp_path, monkeypatch, capsys):
    import motionbits.training.loop as loop

    clock = iter(range(0, 10_000, 30))  # every look at the clock: 30 s later
    monkeypatch.setattr(loop.time, "time", lambda: float(next(clock)))
    train(sprites_cfg(sprites_root, steps=50), tmp_path / "run", progress=False, max_minutes=2)
    step = ckpt_io.read_checkpoint(tmp_path / "run")["step"]
    assert 0 < step < 50                                        # stopped by the clock, and saved
    assert f"at step {step} of 50: stopping with the learning rate" in capsys.readouterr().out


def test_checkpoints_are_also_written_on_a_wall_clock_interval(sprites_root, tmp_path, monkeypatch):
    import motionbits.training.loop as loop

    saved = []
    clock = iter(range(0, 100_000, 40))                         # 40 s per look at the clock
    monkeypatch.setattr(loop.time, "time", lambda: float(next(clock)))
    original = loop.Trainer.save
    monkeypatch.setattr(loop.Trainer, "save", lambda self: (saved.append(self.step), original(self))[1])
    train(sprites_cfg(sprites_root, steps=6, checkpoint_every=1000, checkpoint_minutes=2), tmp_path / "run",
          progress=False)
    assert saved[-1] == 6 and len(saved) > 1 and all(0 < s < 6 for s in saved[:-1])


def test_stale_temporary_checkpoints_are_removed_on_the_next_start(sprites_root, tmp_path):
    cfg = sprites_cfg(sprites_root, steps=2)
    train(cfg, tmp_path / "run", progress=False, max_steps=1)
    stale = tmp_path / "run" / ".last.pt.k3j2x9.tmp"             # what a kill during a save leaves
    stale.write_bytes(b"half a checkpoint")
    train(cfg, tmp_path / "run", progress=False)
    assert not stale.exists() and ckpt_io.read_checkpoint(tmp_path / "run")["step"] == 2


def test_truncated_checkpoint_gives_clear_error(sprites_root, tmp_path):
    train(sprites_cfg(sprites_root, steps=1), tmp_path / "run", progress=False)
    path = tmp_path / "run" / "last.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(MotionbitsError, match="unreadable or truncated.*--fresh"):
        ckpt_io.read_checkpoint(path)


def test_atomic_save_keeps_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "x.pt"
    ckpt_io.save_atomic({"a": 1}, path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        ckpt_io.save_atomic({"a": Boom()}, path)
    assert torch.load(path)["a"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]  # no temp file left behind


def test_keep_freed_memory_on_glibc_and_off_by_environment(monkeypatch):
    import platform

    from motionbits.runtime import keep_freed_memory

    assert keep_freed_memory() == (platform.libc_ver()[0] == "glibc")
    monkeypatch.setenv("MOTIONBITS_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False


def test_sigkill_mid_run_then_resume_is_bit_identical(sprites_root, tmp_path):
    """A real `kill -9` of `motionbits train` after its first checkpoint; the same command again
    finishes the run exactly as an uninterrupted one, and the log holds every step once."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**tiny_config().to_dict(), "data": {
        "root": str(sprites_root), "frames": 8, "image_size": 64}}
        | {"model": {**tiny_config().to_dict()["model"], "patch_size": 16},
           "train": {**tiny_config().to_dict()["train"], "steps": 40, "checkpoint_every": 4, "log_every": 1}}))
    command = [sys.executable, "-m", "motionbits.cli", "train", "--config", str(config), "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*command, "--out", str(tmp_path / "straight")], check=True, capture_output=True, env=env, timeout=300)
    proc = subprocess.Popen([*command, "--out", str(tmp_path / "killed")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 240
    while not (tmp_path / "killed" / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    step = ckpt_io.read_checkpoint(tmp_path / "killed")["step"]
    assert 0 < step < 40                                        # killed mid-run
    subprocess.run([*command, "--out", str(tmp_path / "killed")], check=True, capture_output=True, env=env, timeout=300)
    a, b = (ckpt_io.read_checkpoint(tmp_path / name) for name in ("straight", "killed"))
    assert a["step"] == b["step"] == 40
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name}"
    logged = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(1, 41))
    assert not list((tmp_path / "killed").glob(".*.tmp"))
