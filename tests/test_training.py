"""Training on a few real Sprites clips: it runs, checkpoints atomically and resumes exactly."""
import numpy as np
import pytest
import torch

from motionbits import checkpoint as ckpt_io
from motionbits.errors import MotionbitsError
from motionbits.pipeline import MotionBits
from motionbits.train import Trainer, learning_rate, train

from conftest import tiny_config


def sprites_cfg(root, **train):
    # Sprites are 64x64: the tiny model patchifies 16x16 pixels.
    return tiny_config(data={"root": str(root), "image_size": 64},
                       model={"patch_size": 16}, train=train)


def test_training_decreases_loss(sprites_root, tmp_path):
    cfg = sprites_cfg(sprites_root, steps=30, batch_size=8, lr=2e-3, warmup_steps=2)
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    first = [trainer.train_step()["diffusion_loss"].item() for _ in range(5)]
    for _ in range(20):
        trainer.train_step()
    last = [trainer.train_step()["diffusion_loss"].item() for _ in range(5)]
    assert np.mean(last) < np.mean(first)


@pytest.mark.parametrize("demo_features", [False, True])
def test_resume_is_exact(sprites_root, tmp_path, demo_features):
    cfg = sprites_cfg(sprites_root, steps=4, checkpoint_every=2)
    if demo_features:  # the demo's draws (pooled content reader, frame subset, both augmentations), content dropout
        cfg = tiny_config(data={"root": str(sprites_root), "image_size": 64},
                          model={"patch_size": 16, "content_reader": "patch_pool", "content_dropout": 0.5},
                          train={"steps": 4, "checkpoint_every": 2, "render_frames": 2,
                                 "augment_content_flip": True, "augment_motion_colors": True,
                                 "augment_clip_colors": True})
    straight = tmp_path / "straight"
    train(cfg, straight, progress=False)
    resumed = tmp_path / "resumed"
    train(cfg, resumed, progress=False, max_steps=2)            # "killed" after step 2
    assert ckpt_io.read_checkpoint(resumed)["step"] == 2
    train(cfg, resumed, progress=False)                          # same command again: resumes
    a, b = ckpt_io.read_checkpoint(straight), ckpt_io.read_checkpoint(resumed)
    assert a["step"] == b["step"] == 4
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name}"
    assert torch.equal(a["optimizer"]["state"][0]["exp_avg"], b["optimizer"]["state"][0]["exp_avg"])


def test_resume_with_more_steps_says_what_changed(sprites_root, tmp_path, capsys):
    import json

    cfg = sprites_cfg(sprites_root, steps=2, warmup_steps=1)
    train(cfg, tmp_path / "run", progress=False)
    capsys.readouterr()
    cfg.train.steps = 3                                          # "train it longer"
    train(cfg, tmp_path / "run", progress=False)
    out = capsys.readouterr().out
    assert "train.steps: 2 -> 3" in out and "learning rate now" in out
    assert ckpt_io.read_checkpoint(tmp_path / "run")["step"] == 3
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["steps"] == 3
    train(cfg, tmp_path / "run", progress=False)                 # same settings again: nothing to say
    assert "differ" not in capsys.readouterr().out


def test_time_budget_stops_and_saves(sprites_root, tmp_path, monkeypatch, capsys):
    import motionbits.train as train_module

    clock = iter(range(0, 10_000, 30))  # every look at the clock: 30 s later
    monkeypatch.setattr(train_module.time, "time", lambda: float(next(clock)))
    cfg = sprites_cfg(sprites_root, steps=50)
    train(cfg, tmp_path / "run", progress=False, max_minutes=2)
    step = ckpt_io.read_checkpoint(tmp_path / "run")["step"]
    assert 0 < step < 50                                        # stopped by the clock, and saved
    # and says the schedule was cut short, so a lease run is not read as a finished one
    assert f"at step {step} of 50: stopping with the learning rate" in capsys.readouterr().out


def test_checkpoint_from_another_config_is_refused(sprites_root, tmp_path):
    train(sprites_cfg(sprites_root, steps=1), tmp_path / "run", progress=False)
    other = sprites_cfg(sprites_root, steps=2)
    other.model.denoiser_width = 64
    with pytest.raises(MotionbitsError, match="differs"):
        Trainer(other, tmp_path / "run", progress=False)


def test_truncated_checkpoint_gives_clear_error(sprites_root, tmp_path):
    train(sprites_cfg(sprites_root, steps=1), tmp_path / "run", progress=False)
    path = tmp_path / "run" / "last.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(MotionbitsError, match="unreadable or truncated"):
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


def test_pipeline_transfer_and_reconstruct(sprites_root, tmp_path):
    cfg = sprites_cfg(sprites_root, steps=1)
    train(cfg, tmp_path / "run", progress=False)
    pipe = MotionBits.from_checkpoint(tmp_path / "run")
    from motionbits.data.sprites import load_sprites

    clips = torch.from_numpy(load_sprites(sprites_root, "test").frames[:2])
    out = pipe.transfer(clips[0], clips[1])
    assert out.shape == (1, 8, 64, 64, 3) and out.dtype == torch.uint8
    assert pipe.reconstruct(clips).shape == (2, 8, 64, 64, 3)
    with pytest.raises(MotionbitsError, match="64x64"):
        pipe.reconstruct(torch.zeros(8, 32, 32, 3, dtype=torch.uint8))


def test_guidance_flag_needs_a_null_content(sprites_root, tmp_path, capsys):
    from motionbits.cli import main

    train(sprites_cfg(sprites_root, steps=1), tmp_path / "run", progress=False)
    args = ["reconstruct", "--checkpoint", str(tmp_path / "run"), "--input", f"sprites:{sprites_root}:test:0",
            "-o", str(tmp_path / "x.gif"), "--guidance", "2"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "content_dropout" in err and "\n" not in err
    assert main(args[:-2]) == 0 and (tmp_path / "x.gif").exists()


def test_learning_rate_schedule():
    cfg = tiny_config(train={"steps": 100, "warmup_steps": 10, "lr": 1.0})
    assert learning_rate(cfg, 0) == pytest.approx(0.1)
    assert learning_rate(cfg, 9) == pytest.approx(1.0)
    assert learning_rate(cfg, 100) == pytest.approx(0.1)


def test_keep_freed_memory_on_glibc_and_off_by_environment(monkeypatch):
    import platform

    from motionbits.runtime import keep_freed_memory

    assert keep_freed_memory() == (platform.libc_ver()[0] == "glibc")
    monkeypatch.setenv("MOTIONBITS_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False
