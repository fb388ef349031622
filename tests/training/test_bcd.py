"""Training the BCD model on a few real Sprites clips: loss, resume, schedule changes, stage 2."""
import json

import numpy as np
import pytest
import torch

from motionbits.api import MotionBits
from motionbits.errors import MotionbitsError
from motionbits.training import checkpoint as ckpt_io
from motionbits.training.bcd import BCDTask, schedule_of, train
from motionbits.training.loop import Trainer
from motionbits.data.clips import load_clips
from motionbits.data.folders import dataset_manifest
from tests.helpers import tiny_config


def sprites_cfg(root, model=None, **train):
    # Sprites are 64x64: the tiny model patchifies 16x16 pixels.
    return tiny_config(data={"root": str(root), "image_size": 64}, model={"patch_size": 16, **(model or {})},
                       train=train)


def test_training_decreases_loss(sprites_root, tmp_path):
    cfg = sprites_cfg(sprites_root, steps=30, batch_size=8, lr=2e-3, warmup_steps=2)
    task = BCDTask(cfg, load_clips(cfg, "train", torch.device("cpu")))
    trainer = Trainer(task, schedule_of(cfg), tmp_path / "run", torch.device("cpu"), progress=False)
    first = [trainer.train_step()["diffusion_loss"].item() for _ in range(5)]
    for _ in range(20):
        trainer.train_step()
    last = [trainer.train_step()["diffusion_loss"].item() for _ in range(5)]
    assert np.mean(last) < np.mean(first)


@pytest.mark.parametrize("demo_features", [False, True])
def test_resume_is_exact(sprites_root, tmp_path, demo_features):
    model = {"content_reader": "patch_pool"} if demo_features else {}
    extra = dict(render_frames=2, augment_content_flip=True, augment_motion_colors=True) if demo_features else {}
    cfg = sprites_cfg(sprites_root, model, steps=4, checkpoint_every=2, **extra)
    train(cfg, tmp_path / "straight", progress=False)
    train(cfg, tmp_path / "resumed", progress=False, max_steps=2)     # "killed" after step 2
    assert ckpt_io.read_checkpoint(tmp_path / "resumed")["step"] == 2
    train(cfg, tmp_path / "resumed", progress=False)                  # the same command again: resumes
    a, b = ckpt_io.read_checkpoint(tmp_path / "straight"), ckpt_io.read_checkpoint(tmp_path / "resumed")
    assert a["step"] == b["step"] == 4
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name}"
    assert torch.equal(a["optimizer"]["state"][0]["exp_avg"], b["optimizer"]["state"][0]["exp_avg"])
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) == [2, 4]                      # each logged step once


def test_resume_with_more_steps_says_what_changed(sprites_root, tmp_path, capsys):
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


def test_sigma_data_is_measured_on_the_training_data_and_kept(sprites_root, tmp_path):
    cfg = sprites_cfg(sprites_root, steps=1)
    cfg.diffusion.sigma_data = None
    train(cfg, tmp_path / "run", progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["diffusion"]["sigma_data"]
    from motionbits.models.tokenizer import frames_to_float
    from motionbits.data.sprites import load_sprites

    pixels = frames_to_float(torch.from_numpy(load_sprites(sprites_root, "train").frames))
    assert saved == pytest.approx(pixels.std().item(), abs=0.02)     # measured on (a spread of) the clips
    assert MotionBits.from_checkpoint(tmp_path / "run").cfg.diffusion.sigma_data == saved
    set_by_hand = sprites_cfg(sprites_root, steps=1)                  # a config value still wins
    train(set_by_hand, tmp_path / "run2", progress=False)
    assert json.loads((tmp_path / "run2" / "config.json").read_text())["diffusion"]["sigma_data"] == 0.5


def test_checkpoint_from_another_config_is_refused(sprites_root, tmp_path):
    train(sprites_cfg(sprites_root, steps=1), tmp_path / "run", progress=False)
    other = sprites_cfg(sprites_root, steps=2)
    other.model.denoiser_width = 64
    with pytest.raises(MotionbitsError, match="differs"):
        train(other, tmp_path / "run", progress=False)


def test_stage_two_starts_exactly_where_stage_one_ended(sprites_root, tmp_path, capsys):
    stage1 = sprites_cfg(sprites_root, steps=3)
    train(stage1, tmp_path / "stage1", progress=False)
    stage2 = sprites_cfg(sprites_root, {"temporal_attention": True}, steps=1, init_from=str(tmp_path / "stage1"))
    # Step 0 of stage 2 is stage 1: the same model outputs, the temporal layers listed as new.
    from motionbits.training.bcd import init_from_stage1
    from motionbits.models.bcd import BCDModel

    model = BCDModel(stage2, 3, 64).eval()
    new = init_from_stage1(model, tmp_path / "stage1")
    assert new == [f"denoiser.blocks.{i}.temporal" for i in range(2)]
    one = MotionBits.from_checkpoint(tmp_path / "stage1")
    two = MotionBits(model, one.tokenizer, stage2)
    clips = torch.from_numpy(np.load(sprites_root / "test.npz")["frames"][:2])
    assert torch.equal(one.reconstruct(clips, seed=3), two.reconstruct(clips, seed=3))
    train(stage2, tmp_path / "stage2", progress=False)
    assert "new modules (starting at zero): denoiser.blocks.0.temporal, denoiser.blocks.1.temporal" in capsys.readouterr().out
    # Anything else that differs is refused with one line.
    wider = sprites_cfg(sprites_root, {"temporal_attention": True, "denoiser_width": 64}, steps=1,
                        init_from=str(tmp_path / "stage1"))
    with pytest.raises(MotionbitsError, match="differs from this one beyond added temporal layers"):
        train(wider, tmp_path / "stage2-wide", progress=False)


def test_pipeline_transfer_and_reconstruct(sprites_root, tmp_path):
    train(sprites_cfg(sprites_root, steps=1), tmp_path / "run", progress=False)
    pipe = MotionBits.from_checkpoint(tmp_path / "run")
    from motionbits.data.sprites import load_sprites

    clips = torch.from_numpy(load_sprites(sprites_root, "test").frames[:2])
    out = pipe.transfer(clips[0], clips[1])
    assert out.shape == (1, 8, 64, 64, 3) and out.dtype == torch.uint8
    assert torch.equal(pipe.reconstruct(clips), pipe.render(pipe.encode_content(clips), pipe.encode_motion(clips)))
    with pytest.raises(MotionbitsError, match="64x64"):
        pipe.reconstruct(torch.zeros(8, 32, 32, 3, dtype=torch.uint8))


def test_same_video_clips_draws_only_from_the_clip_s_own_video():
    from motionbits.models.bcd import SameVideoClips

    video = np.array([3, 0, 3, 1, 0, 3, 1])
    picker = SameVideoClips(video)
    gen = torch.Generator().manual_seed(0)
    index = torch.tensor([0, 1, 3, 5] * 200)
    drawn = picker.draw(index, gen)
    assert (video[drawn.numpy()] == video[index.numpy()]).all()
    assert set(drawn[index == 0].tolist()) == {0, 2, 5}          # every clip of video 3, itself included


def test_same_video_clips_keeps_the_gap_and_draws_every_far_clip():
    from motionbits.models.bcd import SameVideoClips

    rng = np.random.default_rng(0)
    # video 2 is too short for the gap and sorts last: its draws must not index past the clips
    video = np.repeat([0, 2, 1], [20, 3, 30])
    start = np.concatenate([np.arange(20), np.arange(3), np.arange(30)]) * 2     # clips every 2 frames
    shuffle = rng.permutation(len(video))
    video, start = video[shuffle], start[shuffle]
    picker = SameVideoClips(video, start, min_gap=10)
    gen = torch.Generator().manual_seed(0)
    index = torch.arange(len(video)).repeat(300)
    drawn = picker.draw(index, gen).numpy()
    index = index.numpy()
    assert (video[drawn] == video[index]).all()
    short = video[index] == 2                                    # 3 clips over 6 frames: none 10 frames away
    assert (drawn[short] == index[short]).all()
    assert (np.abs(start[drawn] - start[index])[~short] >= 10).all()
    first = int(np.flatnonzero((video == 0) & (start == 0))[0])
    assert set(start[drawn[index == first]].tolist()) == set(range(10, 40, 2))   # every clip far enough, evenly
    with pytest.raises(MotionbitsError, match="content_gap_seconds needs train.content_from_video"):
        tiny_config(train={"content_gap_seconds": 1.0})


def two_people_clips(tmp_path, **train):
    """A tiny config on a video dataset of two people, 5 clips of 8 frames each."""
    from motionbits.data.video import build_video_dataset
    from tests.data.test_video import moving_square, write_video

    src = tmp_path / "src"
    for person in ("anna", "ben"):
        write_video(src / person / "take.mp4", moving_square(40, seed=len(person)))
    root = tmp_path / "clips"
    build_video_dataset(src, root, size=16, frames=8, stride=8, test_fraction=0.5, progress=False)
    return tiny_config(data={"kind": "video", "root": str(root), "image_size": 16},
                       train={"steps": 1, "batch_size": 16, "content_from_video": 1.0, **train})


def test_content_from_video_reads_the_content_half_from_another_clip_of_the_video(tmp_path):
    cfg = two_people_clips(tmp_path)
    task = BCDTask(cfg, load_clips(cfg, "train", torch.device("cpu")))
    trainer = Trainer(task, schedule_of(cfg), tmp_path / "run", torch.device("cpu"), progress=False)
    state = trainer.generator.get_state()
    batch = task.draw(trainer.generator, 16)
    video = task.clips.labels["video"]
    assert (video[batch.content_index.numpy()] == video[batch.index.numpy()]).all()
    assert (batch.content_index != batch.index).any()            # 5 clips a video: most draws are others
    seen = []
    trainer.forward = lambda z, draws: seen.append(z) or trainer.model(z, draws)
    trainer.generator.set_state(state)
    trainer.train_step()
    z, own, other = seen[0], task.clips.latents(batch.index), task.clips.latents(batch.content_index)
    torch.testing.assert_close(z[:, :4], other[:, :4])          # content half: the other clip's first half
    torch.testing.assert_close(z[:, 4:], own[:, 4:])            # motion half (and target): the clip's own
    with pytest.raises(MotionbitsError, match="content_from_video needs data.kind: video"):
        tiny_config(train={"content_from_video": 0.5})


def test_clip_colour_copies_read_content_and_target_from_one_recolouring_of_their_video(tmp_path):
    from motionbits.data.colour_copies import colour_copies, recoloured

    cfg = two_people_clips(tmp_path, augment_clip_colors=2)
    clips = load_clips(cfg, "train", torch.device("cpu"))
    # one draw per video: equal pixels anywhere in a video stay equal, and the copy is not the clip
    video = clips.labels["video"]
    frames = np.zeros((4, 2, 4, 4, 3), np.uint8) + np.array([200, 100, 30], np.uint8)
    again = recoloured(frames, np.array([0, 0, 1, 1]), copy=1, seed=0)
    assert (again[0] == again[1]).all() and (again[2] == again[3]).all() and not (again[0] == again[2]).all()
    assert not (again[0] == frames[0]).all()
    task = BCDTask(cfg, clips, colour_copies(cfg, clips))
    trainer = Trainer(task, schedule_of(cfg), tmp_path / "run", torch.device("cpu"), progress=False)
    state = trainer.generator.get_state()
    batch = task.draw(trainer.generator, 16)
    assert set(batch.colour_copy.tolist()) == {0, 1, 2}
    seen = []
    trainer.forward = lambda z, draws: seen.append(z) or trainer.model(z, draws)
    trainer.generator.set_state(state)
    trainer.train_step()
    for row, (clip, other, copy) in enumerate(zip(batch.index, batch.content_index, batch.colour_copy)):
        read = task.clip_sets[copy].latents
        torch.testing.assert_close(seen[0][row, :4], read(other[None])[0, :4])   # the content: the same copy
        torch.testing.assert_close(seen[0][row, 4:], read(clip[None])[0, 4:])    # motion and target
    assert (video[batch.content_index.numpy()] == video[batch.index.numpy()]).all()
    with pytest.raises(MotionbitsError, match="augment_clip_colors needs data.kind: video"):
        tiny_config(train={"augment_clip_colors": 1})


def test_a_persons_clips_are_drawn_person_weight_times_as_often(tmp_path):
    from motionbits.data.video import build_video_dataset
    from tests.data.test_video import moving_square, write_video

    for person, seconds in (("anna", 40), ("ben", 24), ("carla", 24)):     # anna and ben train, carla tests
        write_video(tmp_path / "src" / person / "take.mp4", moving_square(seconds, seed=len(person)))
    build_video_dataset(tmp_path / "src", tmp_path / "clips", size=16, frames=8, stride=8, test_videos="carla",
                        progress=False)
    config = lambda **train: tiny_config(data={"kind": "video", "root": str(tmp_path / "clips"),  # noqa: E731
                                               "image_size": 16}, train=train)
    cfg = config(person="ben", person_weight=9.0)
    clips = load_clips(cfg, "train", torch.device("cpu"))
    ben = dataset_manifest(cfg.data.root, "train", "video")[1]["identities"].index("ben")
    own = clips.labels["identity"] == ben
    task = BCDTask(cfg, clips)
    drawn = task.draw(torch.Generator().manual_seed(0), 4000).index.numpy()
    expected = 9 * own.sum() / (9 * own.sum() + (~own).sum())
    assert abs(own[drawn].mean() - expected) < 0.03 and 0.2 < own.mean() < 0.8
    plain = BCDTask(config(), clips)
    assert abs(own[plain.draw(torch.Generator().manual_seed(0), 4000).index.numpy()].mean() - own.mean()) < 0.03
    with pytest.raises(MotionbitsError, match="train.person 'carla' has no training clips"):
        BCDTask(config(person="carla"), clips)                                  # a test person only
    with pytest.raises(MotionbitsError, match="person_weight needs train.person"):
        tiny_config(train={"person_weight": 2.0})


def test_lip_points_are_read_once_and_follow_the_clips_their_halves_come_from(tmp_path, monkeypatch):
    # model.lip_groups: every training frame's lip points are found once (dlib, here a stand-in that
    # tells clips and frames apart), cached beside the clips, and each half of a clip reads the lips
    # of the clip its latents come from (content_from_video).
    import motionbits.training.bcd as training_bcd

    calls = []

    def stand_in(clips):                                             # uint8 [B, T, H, W, 3] -> [B, T, 40]
        calls.append(len(clips))
        return np.repeat(clips.astype(np.float64).mean((2, 3, 4))[..., None], 40, axis=-1)

    monkeypatch.setattr(training_bcd, "lip_shapes", stand_in)
    cfg = two_people_clips(tmp_path, lip_bits=1.0)
    cfg.model.content_reader, cfg.model.content_queries, cfg.model.lip_groups = "patch_pool", 4, 1
    clips = load_clips(cfg, "train", torch.device("cpu"))
    task = BCDTask(cfg, clips)
    assert sum(calls) == len(clips) and task.lips.shape == (len(clips), 8, 40)
    BCDTask(cfg, clips)                                               # the second run reads the cache
    assert sum(calls) == len(clips)
    clips.frames[0, 0, 0, 0, 0] ^= 1                                  # other frames: their own lips
    BCDTask(cfg, clips)
    assert sum(calls) == 2 * len(clips)
    clips.frames[0, 0, 0, 0, 0] ^= 1
    trainer = Trainer(task, schedule_of(cfg), tmp_path / "run", torch.device("cpu"), progress=False)
    state = trainer.generator.get_state()
    batch = task.draw(trainer.generator, 16)
    seen = []
    trainer.forward = lambda z, draws, lips: seen.append(lips) or trainer.model(z, draws, lips)
    trainer.generator.set_state(state)
    out = trainer.train_step()
    expected = stand_in(clips.frames.numpy())
    torch.testing.assert_close(seen[0][:, :4], torch.from_numpy(expected[batch.content_index.numpy(), :4]).float())
    torch.testing.assert_close(seen[0][:, 4:], torch.from_numpy(expected[batch.index.numpy(), 4:]).float())
    assert "lip_bits" in out
    monkeypatch.setattr(training_bcd, "lip_shapes", lambda clips: np.full((*clips.shape[:2], 40), np.nan))
    for cached in (tmp_path / "clips").glob("lip_shapes-train-*.npy"):
        cached.unlink()
    with pytest.raises(MotionbitsError, match="finds no face in any training frame"):
        BCDTask(cfg, clips)
