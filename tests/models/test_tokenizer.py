"""Tokenizers: shapes, the shipped taef2 weights, and error paths."""
from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch

from motionbits.assets import TAEF2_WEIGHTS
from motionbits.errors import MotionbitsError
from motionbits.evaluation.metrics import psnr
from motionbits.models.tokenizer import TAEF2, DiffusersVAE, PixelTokenizer, Tokenizer, build_tokenizer, diffusers_vae_class


def smooth_images(n: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Smooth synthetic images [n,3,size,size] in [-1,1]: low-frequency sinusoids plus a soft blob."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    imgs = []
    for _ in range(n):
        f, ph = torch.rand(3, 2, generator=g) * 3 + 0.5, torch.rand(3, 2, generator=g) * 6.28
        chans = [0.5 * torch.sin(2 * math.pi * f[c, 0] * xx + ph[c, 0]) * torch.cos(2 * math.pi * f[c, 1] * yy + ph[c, 1])
                 for c in range(3)]
        cx, cy = torch.rand(2, generator=g) * 0.6 + 0.2
        blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.02)
        imgs.append(torch.stack(chans) + 0.4 * blob)
    return torch.stack(imgs).clamp(-1, 1)


def test_pixel_tokenizer_identity():
    tok = PixelTokenizer()
    x = torch.rand(2, 3, 16, 24) * 2 - 1
    z = tok.encode(x)
    assert z.shape == (2, 3, 16, 24) and tok.latent_shape(16) == (3, 16, 16)
    assert torch.equal(tok.decode(z), x)
    assert isinstance(tok, Tokenizer) and not any(p.requires_grad for p in tok.parameters())


def test_frozen_tokenizer_stays_in_eval_inside_a_trained_model():
    tok = PixelTokenizer()
    torch.nn.Sequential(tok, torch.nn.Identity()).train()
    assert not tok.training


def test_shipped_taef2_loads_strictly_and_round_trips():
    tok = build_tokenizer("taef2")                     # no path: the weights shipped in the package
    assert isinstance(tok, TAEF2) and (TAEF2_WEIGHTS / "LICENSE").is_file()
    assert not any(p.requires_grad for p in tok.parameters()) and not tok.training
    assert sum(p.numel() for p in tok.encoder.parameters()) == pytest.approx(1.34e6, rel=0.02)
    x = smooth_images(1, 64)
    with torch.no_grad():
        z = tok.encode(x)
        assert z.shape == (1, 32, 8, 8) and tok.latent_shape(64) == (32, 8, 8)
        y = tok.decode(z)
    assert y.shape == x.shape and psnr(y, x) > 20
    untrained = TAEF2()                                # the same architecture without the weights
    with torch.no_grad():
        assert psnr(untrained.decode(untrained.encode(x)), x) < 10


def test_taef2_channels_last_gives_the_default_layouts_values():
    # the layout is for speed only: the same latents and images, returned in the default layout
    tok = build_tokenizer("taef2")
    plain = build_tokenizer("taef2").to(memory_format=torch.contiguous_format)
    x = smooth_images(2, 64)
    with torch.no_grad():
        z = tok.encode(x)
        z_plain = plain.encoder(x.add(1).mul(0.5)) * plain.scale - plain.shift * plain.scale
        y, y_plain = tok.decode(z), plain.decoder(z / plain.scale + plain.shift).mul(2).sub(1).clamp(-1, 1)
    assert z.is_contiguous() and y.is_contiguous()
    assert torch.allclose(z, z_plain, atol=1e-4) and torch.allclose(y, y_plain, atol=1e-4)


def test_taef2_errors(tmp_path):
    with pytest.raises(MotionbitsError, match="folder not found"):
        TAEF2.from_folder(str(tmp_path / "missing"))
    with pytest.raises(MotionbitsError, match="taef2_encoder.pth"):
        TAEF2.from_folder(str(tmp_path))  # folder exists, files do not
    # A state dict of some other network: names the file and the missing keys.
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "taef2_encoder.pth")
    with pytest.raises(MotionbitsError, match=r"is not a taef2 state dict: missing keys 0\.weight"):
        TAEF2.from_folder(str(tmp_path))
    (tmp_path / "taef2_encoder.pth").write_bytes(b"garbage")
    with pytest.raises(MotionbitsError, match="cannot read"):
        TAEF2.from_folder(str(tmp_path))


def test_taef2_shape_mismatch_is_reported(tmp_path):
    enc = TAEF2().encoder.state_dict()
    enc["14.weight"] = torch.zeros(16, 64, 3, 3)
    torch.save(enc, tmp_path / "taef2_encoder.pth")
    with pytest.raises(MotionbitsError, match="shape mismatch 14.weight"):
        TAEF2.from_folder(str(tmp_path))


def test_taef2_architecture_shapes_and_bad_inputs():
    tok = TAEF2()
    assert len(tok.encoder) == 15 and len(tok.decoder) == 20
    with torch.no_grad():
        z = tok.encode(torch.zeros(1, 3, 32, 48))
        assert z.shape == (1, 32, 4, 6)
        assert tok.decode(z).shape == (1, 3, 32, 48)
    with pytest.raises(MotionbitsError, match="divisible"):
        tok.encode(torch.zeros(1, 3, 30, 32))
    with pytest.raises(MotionbitsError, match=r"\[B,3,H,W\]"):
        tok.encode(torch.zeros(3, 32, 32))
    with pytest.raises(MotionbitsError, match="latents"):
        tok.decode(torch.zeros(1, 4, 4, 4))


def test_diffusers_errors_and_class_detection(tmp_path):
    with pytest.raises(MotionbitsError, match="not found"):
        DiffusersVAE.from_folder(str(tmp_path / "missing"))
    with pytest.raises(MotionbitsError, match="no config.json"):
        build_tokenizer("diffusers", str(tmp_path))
    with pytest.raises(MotionbitsError, match="needs model.tokenizer_path"):
        build_tokenizer("diffusers")
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    with pytest.raises(MotionbitsError, match="supported diffusers VAEs"):
        DiffusersVAE.from_folder(str(tmp_path))
    for cls in ("AutoencoderKL", "AutoencoderTiny"):
        (tmp_path / "config.json").write_text(json.dumps({"_class_name": cls, "latent_channels": 4}))
        assert diffusers_vae_class(str(tmp_path))[0] == cls
    if importlib.util.find_spec("diffusers") is None:
        with pytest.raises(MotionbitsError, match=r"pip install 'motionbits\[diffusers\]'"):
            build_tokenizer("diffusers", str(tmp_path))


def test_build_tokenizer_kinds():
    assert isinstance(build_tokenizer("pixels"), PixelTokenizer)
    with pytest.raises(MotionbitsError, match="valid kinds: pixels, taef2, diffusers"):
        build_tokenizer("vqgan")
