"""Tokenizers: shapes, round trips, training, save/load, taef2 weights and error paths."""
from __future__ import annotations

import importlib.util
import json
import math
import os


import numpy as np
import pytest
import torch

from conftest import SHARED

from motionbits.errors import MotionbitsError
from motionbits.models.tokenizer import (
    TAEF2,
    ConvAutoencoder,
    DiffusersVAE,
    PixelTokenizer,
    Tokenizer,
    build_tokenizer,
    diffusers_vae_class,
    load_tokenizer,
    psnr,
    save_tokenizer,
    train_autoencoder,
)

TAEF2_DIR = os.environ.get("MOTIONBITS_TAEF2_DIR", str(SHARED / "weights" / "taef2"))
needs_taef2 = pytest.mark.skipif(
    not os.path.isfile(os.path.join(TAEF2_DIR, "taef2_encoder.pth")),
    reason=f"taef2 weights not found in {TAEF2_DIR} (set MOTIONBITS_TAEF2_DIR to run these tests)",
)


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




# --- pixels ---------------------------------------------------------------------------------------
def test_pixel_tokenizer_identity():
    tok = PixelTokenizer()
    x = torch.rand(2, 3, 16, 24) * 2 - 1
    z = tok.encode(x)
    assert z.shape == (2, 3, 16, 24)
    assert tok.latent_shape(16) == (3, 16, 16)
    assert torch.equal(tok.decode(z), x)
    assert isinstance(tok, Tokenizer) and not any(p.requires_grad for p in tok.parameters())


# --- conv autoencoder -----------------------------------------------------------------------------
@pytest.mark.parametrize("f", [4, 8])
def test_conv_autoencoder_shapes(f, one_thread):
    ae = ConvAutoencoder(latent_channels=4, downsample=f, width=16)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    z = ae.encode(x)
    assert z.shape == (2, 4, 32 // f, 32 // f)
    assert ae.latent_shape((32, 48)) == (4, 32 // f, 48 // f)
    y = ae.decode(z)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1


def test_conv_autoencoder_overfits_tiny_batch(one_thread):
    frames = ((smooth_images(4, 32, seed=1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()  # [4,32,32,3]
    ae, stats = train_autoencoder(frames, steps=40, batch_size=4, lr=2e-3, device="cpu", progress=False,
                                  latent_channels=4, downsample=4, width=16, amp="off")
    assert stats["psnr"] > stats["psnr_init"] + 5, stats
    assert stats["psnr"] > 18, stats
    # Frozen afterwards, latents normalised to about unit std.
    assert not any(p.requires_grad for p in ae.parameters()) and not ae.training
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    z = ae.encode(x)
    assert abs(z.std().item() - 1) < 0.05 and abs(z.mean().item()) < 0.05
    assert abs(psnr(ae.decode(z), x) - stats["psnr"]) < 0.1  # decode undoes the normalisation


def test_train_autoencoder_accepts_float_tensor_and_iterator(one_thread):
    x = smooth_images(2, 16)
    ae, stats = train_autoencoder(x, steps=2, batch_size=2, device="cpu", progress=False, width=8, amp="off")
    assert math.isfinite(stats["psnr"])
    frames = [((img.permute(1, 2, 0) + 1) * 127.5).byte().numpy() for img in x]  # iterator of [H,W,3]
    ae, _ = train_autoencoder(iter(frames), steps=1, batch_size=2, device="cpu", progress=False, width=8, amp="off")
    with pytest.raises(MotionbitsError):
        train_autoencoder(np.zeros((2, 16, 16), np.uint8), steps=1, device="cpu", progress=False)
    with pytest.raises(MotionbitsError, match="divisible"):
        train_autoencoder(np.zeros((2, 18, 18, 3), np.uint8), steps=1, device="cpu", progress=False)


def test_frozen_tokenizer_stays_in_eval_inside_a_trained_model():
    tok = PixelTokenizer()
    model = torch.nn.Sequential(tok, torch.nn.Identity())
    model.train()
    assert not tok.training


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    ae = ConvAutoencoder(latent_channels=4, downsample=8, width=16, scale=0.7, shift=0.1).freeze()
    path = tmp_path / "sub" / "ae.safetensors"
    save_tokenizer(ae, str(path))
    back = load_tokenizer(str(path))
    assert isinstance(back, ConvAutoencoder)
    assert (back.latent_channels, back.downsample, back.width, back.scale, back.shift) == (4, 8, 16, 0.7, 0.1)
    for (k, v), (k2, v2) in zip(ae.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    x = smooth_images(1, 32)
    assert torch.equal(ae.encode(x), back.encode(x))
    assert not any(p.requires_grad for p in back.parameters())
    assert isinstance(build_tokenizer("autoencoder", str(path)), ConvAutoencoder)
    # The config is plain JSON in the safetensors metadata.
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        assert json.loads(f.metadata()["motionbits_tokenizer"])["kind"] == "autoencoder"


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(MotionbitsError, match="not found"):
        load_tokenizer(str(tmp_path / "nope.safetensors"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(MotionbitsError, match="not a safetensors file"):
        load_tokenizer(str(junk))
    from safetensors.torch import save_file
    plain = tmp_path / "plain.safetensors"
    save_file({"a": torch.zeros(1)}, str(plain))
    with pytest.raises(MotionbitsError, match="not a motionbits tokenizer"):
        load_tokenizer(str(plain))


# --- taef2 ----------------------------------------------------------------------------------------
@needs_taef2
def test_taef2_loads_strictly_and_round_trips():
    tok = TAEF2.from_folder(TAEF2_DIR)
    assert not any(p.requires_grad for p in tok.parameters()) and not tok.training
    assert sum(p.numel() for p in tok.encoder.parameters()) == pytest.approx(1.34e6, rel=0.02)
    x = smooth_images(1, 64)
    with torch.no_grad():
        z = tok.encode(x)
        assert z.shape == (1, 32, 8, 8) and tok.latent_shape(64) == (32, 8, 8)
        y = tok.decode(z)
    assert y.shape == x.shape
    assert psnr(y, x) > 20


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
    with pytest.raises(MotionbitsError, match="needs the folder"):
        build_tokenizer("taef2")


def test_taef2_shape_mismatch_is_reported(tmp_path):
    enc = TAEF2().encoder.state_dict()
    enc["14.weight"] = torch.zeros(16, 64, 3, 3)
    torch.save(enc, tmp_path / "taef2_encoder.pth")
    with pytest.raises(MotionbitsError, match="shape mismatch 14.weight"):
        TAEF2.from_folder(str(tmp_path))


def test_taef2_architecture_shapes_without_weights():
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


# --- diffusers ------------------------------------------------------------------------------------
def test_diffusers_errors_and_class_detection(tmp_path):
    with pytest.raises(MotionbitsError, match="not found"):
        DiffusersVAE.from_folder(str(tmp_path / "missing"))
    with pytest.raises(MotionbitsError, match="no config.json"):
        build_tokenizer("diffusers", str(tmp_path))
    with pytest.raises(MotionbitsError, match="needs the path"):
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


# --- build_tokenizer --------------------------------------------------------------------------------
def test_build_tokenizer_kinds():
    assert isinstance(build_tokenizer("pixels"), PixelTokenizer)
    ae = build_tokenizer("autoencoder", latent_channels=8, downsample=8, width=16)
    assert isinstance(ae, ConvAutoencoder) and ae.latent_shape(64) == (8, 8, 8)
    with pytest.raises(MotionbitsError, match="valid kinds: pixels, autoencoder, taef2, diffusers"):
        build_tokenizer("vqgan")
    with pytest.raises(MotionbitsError, match="downsample"):
        build_tokenizer("autoencoder", downsample=3)


@needs_taef2
def test_build_taef2_and_save_load(tmp_path):
    tok = build_tokenizer("taef2", TAEF2_DIR)
    assert isinstance(tok, TAEF2)
    save_tokenizer(tok, str(tmp_path / "taef2.safetensors"))
    back = build_tokenizer("taef2", str(tmp_path / "taef2.safetensors"))
    x = smooth_images(1, 32)
    with torch.no_grad():
        assert torch.equal(tok.encode(x), back.encode(x))
