"""Decoder reliance (reliance.py): 0 for a decoder that ignores its codes, clearly positive
for one that renders what its codes say, logged while training and reported by `evaluate`."""
from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn as nn

from motionbits.reliance import SIGMAS, code_variants, partners, reliance, reliance_lines
from motionbits.models.bcd import BCDModel
from tests.helpers import awake, tiny_config


def tiny_model(**model) -> BCDModel:
    torch.manual_seed(0)
    return awake(BCDModel(tiny_config(model=model), latent_channels=3, latent_size=16))


class NoMotion(nn.Module):
    """The denoiser's motion input, made to say nothing: what a decoder that ignores its codes does."""

    def __init__(self, width: int):
        super().__init__()
        self.width = width

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        return motion.new_zeros(*motion.shape[:-1], self.width)


class CodeRenderer(nn.Module):
    """The best denoiser of frames x0 ~ N(frame_of(codes), tau^2): D = (tau^2 x + s^2 frame_of(m)) / (tau^2 + s^2),
    the noisy frame at low noise, what its codes say at high noise (F solved from D = c_skip x + c_out F)."""

    def __init__(self, frame_of: nn.Module, tau: float, sigma_data: float):
        super().__init__()
        self.frame_of, self.tau, self.sd = frame_of, tau, sigma_data

    def forward(self, x_scaled, c_noise, motion, content):
        s = (4 * c_noise).exp()[..., None, None, None]                           # [B, T, 1, 1, 1]
        c_in, c_skip = 1 / (s ** 2 + self.sd ** 2).sqrt(), self.sd ** 2 / (s ** 2 + self.sd ** 2)
        c_out = s * self.sd / (s ** 2 + self.sd ** 2).sqrt()
        x = x_scaled / c_in
        denoised = (self.tau ** 2 * x + s ** 2 * self.frame_of(motion)) / (self.tau ** 2 + s ** 2)
        return (denoised - c_skip * x) / c_out


def test_a_decoder_that_ignores_its_codes_shows_no_gap():
    model = tiny_model()
    z = torch.randn(4, 8, 3, 16, 16)
    used = reliance(model, z)
    assert max(abs(v) for gaps in used["gap"].values() for v in gaps.values()) > 1e-5   # random weights, a little
    model.denoiser.motion_embed = NoMotion(model.cfg.model.denoiser_width)
    ignored = reliance(model, z)
    assert set(ignored["gap"]) == {"shuffled", "held", "other"}
    assert list(ignored["loss_own"]) == [f"{s:g}" for s in SIGMAS]
    for gaps in ignored["gap"].values():
        assert all(v == 0.0 for v in gaps.values())                # the same noise, so exactly the same loss


def test_a_decoder_that_renders_its_codes_shows_a_clear_gap(monkeypatch):
    """Clips whose frames are made from their codes (plus a little noise the codes do not say):
    the right codes denoise almost perfectly, wrong ones do not."""
    model = tiny_model()
    b, t, n = 4, 8, model.cfg.model.groups
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, model.cfg.model.codebook_size, (b, t, n), generator=gen)     # [B, T, N]
    frame_of = nn.Sequential(nn.Linear(model.quantizer.dim, 3 * 16 * 16), nn.Unflatten(-1, (3, 16, 16)))
    tau = 0.05                                                                   # what the codes do not say
    with torch.no_grad():
        scale = 0.5 / frame_of(model.quantizer.lookup(codes)).std()
        frame_of[0].weight.mul_(scale), frame_of[0].bias.mul_(scale)            # frames of std 0.5 = sigma_data
        z = frame_of(model.quantizer.lookup(codes)) + tau * torch.randn(b, t, 3, 16, 16, generator=gen)
    monkeypatch.setattr(model, "encode_motion", lambda clips, **_: codes)
    model.denoiser = CodeRenderer(frame_of, tau, model.edm.sigma_data)
    report = reliance(model, z)
    for variant, gaps in report["gap"].items():
        assert min(gaps.values()) > 10, (variant, gaps)              # wrong codes: many times the error
        assert gaps["20"] > gaps["0.5"]                               # the codes matter most when the frame is noise


def test_variants_are_the_clip_s_own_codes_moved_held_or_another_person_s():
    codes = torch.arange(3 * 6).reshape(3, 6, 1)                    # clip b, frame t -> code 6b + t
    v = code_variants(codes, 3, np.array([7, 7, 9]), torch.Generator().manual_seed(0))
    assert v["own"][:, :, 0].tolist() == [[3, 4, 5], [9, 10, 11], [15, 16, 17]]       # the frames rebuilt
    assert v["held"][:, :, 0].tolist() == [[0, 0, 0], [6, 6, 6], [12, 12, 12]]        # the first frame's codes
    assert sorted(v["shuffled"][0, :, 0].tolist()) == [3, 4, 5] and (v["shuffled"] != v["own"]).all()
    assert v["other"][:, 0, 0].tolist() == [15, 15, 3]                                # another identity
    assert partners(None, 3).tolist() == [1, 2, 0] and partners(np.array([1, 1]), 2).tolist() == [1, 0]


def test_the_table_has_a_row_per_variant_and_a_column_per_sigma():
    report = {"train": reliance(tiny_model(), torch.randn(2, 8, 3, 16, 16))}
    lines = reliance_lines(report)
    assert lines[0].count("sigma") == len(SIGMAS) and len(lines) == 2 + 1 + 3
    assert lines[3].startswith("| | shuffled: gap | +") or lines[3].startswith("| | shuffled: gap | -")


def test_training_logs_it_and_evaluate_and_the_script_report_it(sprites_root, tmp_path, capsys, one_thread):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from motionbits.api import MotionBits
    from motionbits.evaluation.sprites import evaluate_sprites
    from motionbits.training.bcd import RELIANCE_EVERY_LOGS, train
    from tests.test_scripts import load_script

    cfg = tiny_config(data={"root": str(sprites_root), "image_size": 64}, model={"patch_size": 16},
                      train={"steps": RELIANCE_EVERY_LOGS, "log_every": 1})
    train(cfg, tmp_path / "run", progress=False)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    logged = [t for t in events.Tags()["scalars"] if t.startswith("reliance/")]
    assert len(logged) == 2 * 3 * len(SIGMAS) and "reliance/test/held/sigma_20" in logged     # splits x variants x sigmas
    assert [e.step for e in events.Scalars("reliance/train/other/sigma_5")] == [RELIANCE_EVERY_LOGS]

    report = evaluate_sprites(MotionBits.from_checkpoint(tmp_path / "run"), tmp_path / "eval", clips=4, progress=False,
                              content_probes=False)
    measured = report["decoder_reliance"]
    assert set(measured) == {"train", "test"} and measured["test"]["clips"] > 4        # more clips than while training
    assert "## Decoder reliance" in (tmp_path / "eval" / "eval.md").read_text()

    script = load_script("reliance")
    assert script.main(["--checkpoint", str(tmp_path / "run"), "--clips", "3", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["train"]["clips"] == 3 and set(printed["test"]["gap"]) == {"shuffled", "held", "other"}
    assert script.main(["--checkpoint", str(tmp_path / "run"), "--data", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_failing_instrument_does_not_stop_the_training(sprites_root, tmp_path, capsys, monkeypatch, one_thread):
    # The reliance log comes before the step's checkpoint: a crash there would lose the steps since the last one.
    from motionbits.reliance import RelianceClips
    from motionbits.training.bcd import RELIANCE_EVERY_LOGS, train

    def broken(self, model, seed=0):
        raise RuntimeError("instrument broke")

    monkeypatch.setattr(RelianceClips, "measure", broken)
    cfg = tiny_config(data={"root": str(sprites_root), "image_size": 64}, model={"patch_size": 16},
                      train={"steps": RELIANCE_EVERY_LOGS + 1, "log_every": 1})
    train(cfg, tmp_path / "run", progress=False)
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] == RELIANCE_EVERY_LOGS + 1
    assert f"decoder reliance not logged at step {RELIANCE_EVERY_LOGS} (RuntimeError: instrument broke)" in capsys.readouterr().err
