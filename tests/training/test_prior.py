"""Training the motion prior: learning a deterministic code rule (from content or from a label),
sliding-window generation, exact resume, bad checkpoint files, codes from a trained model."""
import numpy as np
import pytest
import torch
import yaml

import motionbits.training.prior as pt
from motionbits.checkpoints import load_prior, read_checkpoint
from motionbits.errors import MotionbitsError
from motionbits.prior_config import is_prior_config, read_prior_run
from tests.prior_codes import CC, K, K_E, N, T, content_data, follows_rule, label_data, rule_codes, rule_hits, small_cfg

# tiny models: a second thread only adds synchronisation (conftest.one_thread)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def content_prior(tmp_path_factory):
    codes, content, _ = content_data(512, 0)
    val = content_data(128, 1)[:2] + (None,)
    prior, metrics = pt.train_prior(codes, content, None, small_cfg(), steps=250, batch_size=32, lr=6e-3,
                                    out_dir=tmp_path_factory.mktemp("content_prior"), progress=False, val=val,
                                    warmup_steps=20, log_every=50, checkpoint_every=1000, ema_decay=0.9)
    return prior, metrics


# ---- learning -----------------------------------------------------------------------------------------
def test_learns_content_rule_and_generates_it(content_prior):
    prior, metrics = content_prior
    uniform = N * np.log2(K_E)                           # 12 bits per frame
    # frame 0 is uniform (12 bits), the 7 others are determined: ideal = 12 / 8 = 1.5 bits per frame
    assert metrics["uniform_bits_per_frame"] == uniform
    assert metrics["val_bits_per_frame"] < 2.5, metrics
    codes, content, step = content_data(64, 2)
    assert pt.test_nll_bits(prior, codes, content) < 2.5
    # sampled at temperature 1, each code is right with p ~ 0.95, so check codes, not whole clips
    sampled = prior.generate(content, T, generator=torch.Generator().manual_seed(0))
    assert rule_hits(sampled, step).float().mean() > 0.9
    assert follows_rule(prior.generate(content, T, temperature=0), step).float().mean() > 0.9


def test_sliding_window_keeps_the_rule(content_prior):
    prior, _ = content_prior
    _, content, step = content_data(32, 3)
    gen = prior.generate(content, 3 * T, temperature=0)                     # 24 frames, trained on 8
    assert gen.shape == (32, 3 * T, N)
    assert follows_rule(gen, step).float().mean() > 0.9
    short = prior.generate(content, 2 * T, window=4, temperature=0)         # a shorter context works too
    assert follows_rule(short, step).float().mean() > 0.9


def test_prompt_is_continued(content_prior):
    prior, _ = content_prior
    codes, content, step = content_data(32, 4)
    gen = prior.generate(content, 12, prompt=codes[:, :3], temperature=0)
    assert torch.equal(gen[:, :3], codes[:, :3])
    assert follows_rule(gen, step).float().mean() > 0.9


def test_label_conditioning(tmp_path):
    codes, content, label, _ = label_data(512, 0)
    prior, metrics = pt.train_prior(codes, content, label, small_cfg(num_classes=2), steps=250, batch_size=32,
                                    lr=6e-3, out_dir=tmp_path, progress=False, warmup_steps=20,
                                    checkpoint_every=1000, ema_decay=0.9)
    # ideal: 12 bits for frame 0 over 8 frames = 1.5; without the label frame 1's increment is a
    # coin flip, one bit per group: (12 + 4) / 8 = 2.0
    assert metrics["train_bits_per_frame"] < 1.8, metrics
    assert metrics["train_bits_per_frame_nolabel"] > metrics["train_bits_per_frame"] + 0.3, metrics
    content = torch.randn(64, K, CC)
    for lab, step in ((0, 1), (1, 3)):
        label, step = torch.full((64,), lab), torch.full((64,), step)
        sampled = prior.generate(content, T, label=label, generator=torch.Generator().manual_seed(lab))
        assert rule_hits(sampled, step).float().mean() > 0.9, lab
        assert follows_rule(prior.generate(content, T, label=label, temperature=0), step).float().mean() > 0.9, lab


def test_group_autoregressive_samples_coherent_frames(tmp_path):
    # One offset for all groups: codes[t, g] = (o + t * c + g) mod K_e. Frame 0 is uncertain but its
    # groups must agree (g apart): only the within-frame autoregressive head can sample that.
    gen = torch.Generator().manual_seed(0)
    step = torch.tensor([1, 3])[torch.randint(0, 2, (512,), generator=gen)]
    offset = torch.randint(0, K_E, (512, 1), generator=gen) + torch.arange(N)
    content = torch.randn(512, K, CC, generator=gen) * 0.1
    content[:, 0, 0] += torch.where(step == 1, 1.0, -1.0)
    prior, metrics = pt.train_prior(rule_codes(step, offset), content, None, small_cfg(group_autoregressive=True),
                                    steps=250, batch_size=32, lr=6e-3, out_dir=tmp_path, progress=False,
                                    warmup_steps=20, checkpoint_every=1000, ema_decay=0.9)
    assert metrics["train_bits_per_frame"] < 1.0, metrics   # ideal: log2(8) bits for the clip / 8 frames
    sampled = prior.generate(content[:64], T, generator=torch.Generator().manual_seed(1))
    coherent = ((sampled[:, :, 1:] - sampled[:, :, :-1]) % K_E == 1).flatten(1).all(1)
    assert coherent.float().mean() > 0.8
    assert rule_hits(sampled, step[:64]).float().mean() > 0.9


# ---- training loop and files --------------------------------------------------------------------------
def test_resume_is_exact(tmp_path):
    codes, content, label, _ = label_data(64, 0)
    cfg = small_cfg(width=32, depth=1, num_classes=2, dropout=0.1)   # dropouts use the RNG: it must resume too
    kw = dict(steps=4, batch_size=8, lr=1e-3, progress=False, warmup_steps=2, checkpoint_every=2)
    pt.train_prior(codes, content, label, cfg, out_dir=tmp_path / "straight", **kw)
    pt.train_prior(codes, content, label, cfg, out_dir=tmp_path / "resumed", max_steps=2, **kw)  # "killed"
    assert read_checkpoint(tmp_path / "resumed", pt.PRIOR_FORMAT)["step"] == 2
    ema, _ = pt.train_prior(codes, content, label, cfg, out_dir=tmp_path / "resumed", **kw)     # same again
    a, b = (read_checkpoint(tmp_path / name / "prior.pt", pt.PRIOR_FORMAT) for name in ("straight", "resumed"))
    assert a["step"] == b["step"] == 4
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name}"
    assert torch.equal(a["optimizer"]["state"][0]["exp_avg"], b["optimizer"]["state"][0]["exp_avg"])
    loaded = load_prior(tmp_path / "resumed" / "prior.pt")
    assert loaded.cfg == cfg and not loaded.training
    for (name, p), q in zip(loaded.state_dict().items(), ema.state_dict().values()):
        assert torch.equal(p, q), name
    # other hyper-parameters on the same folder: refused rather than silently mixed
    with pytest.raises(MotionbitsError, match="fresh"):
        pt.train_prior(codes, content, label, cfg, out_dir=tmp_path / "resumed", **{**kw, "lr": 2e-3})


def test_a_kill_mid_save_leaves_no_temporary_file_and_the_log_holds_each_step_once(tmp_path):
    """prior.pt is treated as a model's last.pt: what a kill during a save leaves (a temporary file,
    log lines past the checkpoint, a line cut in half) is cleaned up when the run starts again."""
    import json

    codes, content, _ = content_data(32, 0)
    kw = dict(steps=4, batch_size=8, progress=False, warmup_steps=1, checkpoint_every=2, log_every=1)
    pt.train_prior(codes, content, None, small_cfg(width=32, depth=1), out_dir=tmp_path, max_steps=2, **kw)
    stale = tmp_path / ".prior.pt.k3j2x9.tmp"                       # the kill hit a save of step 4
    stale.write_bytes(b"half a checkpoint")
    with open(tmp_path / "metrics.jsonl", "a") as log:              # step 3 was logged, step 4 cut off
        log.write(json.dumps({"step": 3, "loss": 1.0}) + '\n{"step": 4, "lo')
    pt.train_prior(codes, content, None, small_cfg(width=32, depth=1), out_dir=tmp_path, **kw)
    assert not stale.exists() and read_checkpoint(tmp_path, pt.PRIOR_FORMAT)["step"] == 4
    logged = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4]


def test_bad_prior_files(tmp_path):
    with pytest.raises(MotionbitsError, match="no such file"):
        load_prior(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(MotionbitsError, match="unreadable or truncated"):
        load_prior(garbage)
    codes, content, _ = content_data(16, 0)
    pt.train_prior(codes, content, None, small_cfg(width=32, depth=1), steps=1, batch_size=4,
                   out_dir=tmp_path / "run", progress=False)
    path = tmp_path / "run" / "prior.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(MotionbitsError, match="unreadable or truncated"):
        load_prior(path)
    other = tmp_path / "other.pt"
    torch.save({"format": "motionbits", "config": {}}, other)     # a BCD checkpoint, not a prior
    with pytest.raises(MotionbitsError, match="not a motion-prior checkpoint"):
        load_prior(other)


def test_extract_codes_matches_pipeline(cfg):
    from motionbits.models.tokenizer import make_tokenizer
    from motionbits.models.bcd import BCDModel
    from motionbits.api import MotionBits

    torch.manual_seed(0)
    pipe = MotionBits(BCDModel(cfg, 3, cfg.data.image_size), make_tokenizer(cfg), cfg)
    frames = np.random.default_rng(0).integers(0, 256, (5, T, 16, 16, 3), dtype=np.uint8)
    codes, content = pt.extract_codes(pipe, frames, batch_size=2, progress=False)
    assert codes.shape == (5, T, cfg.model.groups) and codes.dtype == np.int16
    assert content.shape == (5, cfg.model.content_queries, cfg.model.content_dim) and content.dtype == np.float16
    assert np.array_equal(codes, pipe.encode_motion(frames).numpy())
    assert np.allclose(content, pipe.encode_content(frames).numpy(), atol=2e-3)
    prior_cfg = pt.prior_config_for(cfg, width=32)
    assert (prior_cfg.groups, prior_cfg.codebook_size, prior_cfg.content_dim, prior_cfg.max_frames) == \
        (cfg.model.groups, cfg.model.codebook_size, cfg.model.content_dim, cfg.data.frames)


def test_content_partners_are_other_clips_of_the_same_group():
    groups = np.array([5, 5, 7, 5, 9, 7])
    partner = pt.content_partners(groups)
    assert (groups[partner] == groups).all()
    assert (partner[[0, 1, 2, 3, 5]] != np.array([0, 1, 2, 3, 5])).all()   # never itself when it has company
    assert partner[4] == 4                                                  # alone: itself
    assert sorted(partner[[0, 1, 3]]) == [0, 1, 3]                          # every clip gives its content once


def test_prior_from_config_and_generate(sprites_root, tmp_path):
    from motionbits.api import MotionBits
    from motionbits.cli import main
    from motionbits.training.bcd import train
    from tests.helpers import tiny_config

    cfg = tiny_config(data={"root": str(sprites_root), "image_size": 64}, model={"patch_size": 16},
                      train={"steps": 1})
    train(cfg, tmp_path / "model", progress=False)
    config = tmp_path / "prior.yaml"
    config.write_text(yaml.safe_dump({"name": "prior-test", "prior": {
        "checkpoint": str(tmp_path / "model" / "last.pt"), "labels": "motion", "steps": 3, "batch_size": 8,
        "model": {"width": 32, "depth": 1, "heads": 2}}}))
    path = pt.train_prior_from_config(config, tmp_path / "prior", progress=False)
    prior = load_prior(path)
    pipe = MotionBits.from_checkpoint(tmp_path / "model")
    from motionbits.data.sprites import load_sprites

    clip = torch.from_numpy(load_sprites(sprites_root, "test").frames[0])
    out = pipe.generate(prior, clip, frames=12, prompt_frames=clip[:3], label=4, steps=1)
    assert out.shape == (1, 12, 64, 64, 3) and out.dtype == torch.uint8
    gif = tmp_path / "gen.gif"
    code = main(["generate", "--checkpoint", str(tmp_path / "model"), "--prior", str(path),
                 "--content", f"sprites:{sprites_root}:test:1", "--frames", "10", "--sample-steps", "1",
                 "-o", str(gif)])
    assert code == 0 and gif.stat().st_size > 0
    # the step study is the Sprites swap protocol: asked for with --prior, a one-line refusal
    code = main(["evaluate", "--checkpoint", str(tmp_path / "model"), "--prior", str(path), "--step-study", "1,2"])
    assert code == 2


def test_a_prior_config_inherits_from_its_base(tmp_path):
    config = tmp_path / "my-prior.yaml"
    config.write_text("base: prior-sprites\nprior:\n  checkpoint: elsewhere/last.pt\n")
    assert is_prior_config(config)
    name, run = read_prior_run(config)
    assert name == "my-prior" and run.checkpoint == "elsewhere/last.pt"
    assert run.labels == "motion" and run.model.group_autoregressive is True   # from prior-sprites
