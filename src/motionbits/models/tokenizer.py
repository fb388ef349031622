"""Frozen per-frame image tokenizers: pixels <-> latents that the diffusion model works on.

Every tokenizer maps images [B,3,H,W] in [-1,1] to normalised latents [B,C,H/f,W/f] and back.
Normalisation: ``z = (raw - shift) * scale``, chosen so that latents have roughly unit std
(the diffusion noise schedule assumes it). ``decode`` undoes it before the real decoder.

Kinds:
- ``PixelTokenizer``: identity (C=3, f=1), for tiny images where the denoiser patchifies pixels.
- ``ConvAutoencoder``: a small conv autoencoder trained by the project (``train_autoencoder``).
- ``TAEF2``: the pre-trained taef2 tiny autoencoder (32 x H/8 x W/8), weights from a local folder.
- ``DiffusersVAE``: a local diffusers ``AutoencoderKL`` / ``AutoencoderTiny`` folder (optional extra).
"""
from __future__ import annotations

import json
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from motionbits.errors import MotionbitsError
from motionbits.runtime import autocast, pick_device, use_bf16

__all__ = [
    "Tokenizer",
    "PixelTokenizer",
    "ConvAutoencoder",
    "TAEF2",
    "DiffusersVAE",
    "train_autoencoder",
    "save_tokenizer",
    "load_tokenizer",
    "build_tokenizer",
    "psnr",
    "TOKENIZER_KINDS",
]

TOKENIZER_KINDS = ("pixels", "autoencoder", "taef2", "diffusers")
_META_KEY = "motionbits_tokenizer"


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR in dB of two image batches in [-1,1] (peak-to-peak range 2)."""
    mse = F.mse_loss(x.float().clamp(-1, 1), y.float().clamp(-1, 1)).item()
    return float("inf") if mse == 0 else 10.0 * math.log10(4.0 / mse)


class Tokenizer(nn.Module, ABC):
    """Common interface: ``encode`` [B,3,H,W] in [-1,1] -> normalised z [B,C,H/f,W/f]; ``decode`` back."""

    kind: str = ""
    latent_channels: int
    downsample: int

    def __init__(self, latent_channels: int, downsample: int, scale: float = 1.0, shift: float = 0.0):
        super().__init__()
        self.latent_channels = int(latent_channels)
        self.downsample = int(downsample)
        self.scale = float(scale)
        self.shift = float(shift)
        self.frozen = False

    # --- subclasses implement the raw (unnormalised) maps --------------------------------------
    @abstractmethod
    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] in [-1,1] -> raw latent [B,C,h,w]."""

    @abstractmethod
    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """raw latent [B,C,h,w] -> [B,3,H,W], roughly in [-1,1] (not clamped)."""

    # --- public API -----------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self._check_images(x)
        return (self.encode_raw(x) - self.shift) * self.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 4 or z.shape[1] != self.latent_channels:
            raise MotionbitsError(
                f"{type(self).__name__}.decode expects latents [B,{self.latent_channels},h,w], "
                f"got shape {tuple(z.shape)}"
            )
        return self.decode_raw(z / self.scale + self.shift).clamp(-1.0, 1.0)

    def latent_shape(self, image_size: int | tuple[int, int]) -> tuple[int, int, int]:
        """(C, h, w) of the latent of an image of ``image_size`` (int for square, or (H, W))."""
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        f = self.downsample
        if h % f or w % f:
            raise MotionbitsError(
                f"image size {h}x{w} is not divisible by the {self.kind} tokenizer's downsample factor {f}"
            )
        return (self.latent_channels, h // f, w // f)

    def config(self) -> dict[str, Any]:
        """Everything needed (with the state dict) to rebuild this tokenizer; stored by save_tokenizer."""
        return {"kind": self.kind, "latent_channels": self.latent_channels, "downsample": self.downsample,
                "scale": self.scale, "shift": self.shift}

    def freeze(self) -> "Tokenizer":
        """No gradients, eval mode, and stays in eval when a parent model calls ``.train()``."""
        for p in self.parameters():
            p.requires_grad_(False)
        self.frozen = True
        super().train(False)
        return self

    def unfreeze(self) -> "Tokenizer":
        for p in self.parameters():
            p.requires_grad_(True)
        self.frozen = False
        return self

    def train(self, mode: bool = True) -> "Tokenizer":
        # A frozen tokenizer inside a trained model must not flip into train mode with it.
        return super().train(False if self.frozen else mode)

    @torch.no_grad()
    def fit_normalization(self, x: torch.Tensor, batch_size: int = 16) -> "Tokenizer":
        """Set shift/scale from raw latent statistics of images x [N,3,H,W] in [-1,1]."""
        zs = [self.encode_raw(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)]
        z = torch.cat(zs)
        self.shift = float(z.mean())
        self.scale = float(1.0 / z.std().clamp_min(1e-6))
        return self

    def _check_images(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise MotionbitsError(
                f"{type(self).__name__}.encode expects images [B,3,H,W] in [-1,1], got shape {tuple(x.shape)}"
            )
        self.latent_shape((x.shape[2], x.shape[3]))  # raises on indivisible sizes

    def extra_repr(self) -> str:
        return (f"latent_channels={self.latent_channels}, downsample={self.downsample}, "
                f"scale={self.scale:.4g}, shift={self.shift:.4g}")


# ================================================================================================
# Pixels
# ================================================================================================
class PixelTokenizer(Tokenizer):
    """Identity: latents are the pixels themselves (C=3, f=1)."""

    kind = "pixels"

    def __init__(self, scale: float = 1.0, shift: float = 0.0, **_: Any):
        super().__init__(latent_channels=3, downsample=1, scale=scale, shift=shift)
        self.freeze()

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return z


# ================================================================================================
# Project-trained convolutional autoencoder
# ================================================================================================
def _groups(c: int) -> int:
    # GroupNorm needs groups | channels; 32 is the usual choice, smaller widths (tests) fall back.
    for g in (32, 16, 8, 4, 2, 1):
        if c % g == 0:
            return g
    return 1


class _ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, twice, plus a (1x1 if needed) skip."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class ConvAutoencoder(Tokenizer):
    """Small deterministic conv autoencoder; latent is linear (no tanh) so it can take any value.

    Channel widths: ``width`` at full resolution, ``2*width`` below (cheap: few pixels there).
    """

    kind = "autoencoder"

    def __init__(self, latent_channels: int = 4, downsample: int = 4, width: int = 64,
                 scale: float = 1.0, shift: float = 0.0):
        if downsample not in (2, 4, 8, 16):
            raise MotionbitsError(f"ConvAutoencoder downsample must be 2, 4, 8 or 16, got {downsample}")
        super().__init__(latent_channels, downsample, scale, shift)
        self.width = int(width)
        n = int(math.log2(downsample))
        chans = [width] + [2 * width] * n  # chans[i]: channels at resolution 1/2**i

        enc: list[nn.Module] = [nn.Conv2d(3, chans[0], 3, padding=1)]
        for i in range(n):
            enc += [_ResBlock(chans[i], chans[i]), nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1)]
        enc += [_ResBlock(chans[n], chans[n]), nn.GroupNorm(_groups(chans[n]), chans[n]), nn.SiLU(),
                nn.Conv2d(chans[n], latent_channels, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = [nn.Conv2d(latent_channels, chans[n], 3, padding=1), _ResBlock(chans[n], chans[n])]
        for i in reversed(range(n)):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(chans[i + 1], chans[i], 3, padding=1),
                    _ResBlock(chans[i], chans[i])]
        dec += [nn.GroupNorm(_groups(chans[0]), chans[0]), nn.SiLU(), nn.Conv2d(chans[0], 3, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "width": self.width}


def _frames_to_uint8(frames: Any) -> torch.Tensor | None:
    """Collect frames into a uint8 tensor [N,H,W,3]; None if ``frames`` is a float tensor."""
    if isinstance(frames, torch.Tensor) and frames.is_floating_point():
        return None
    if isinstance(frames, (np.ndarray, torch.Tensor)):
        arr = torch.as_tensor(np.asarray(frames) if isinstance(frames, np.ndarray) else frames)
    elif isinstance(frames, Iterable):
        # An iterator of frames [H,W,3] or chunks [n,H,W,3] (e.g. straight from a video decoder).
        parts = [torch.as_tensor(np.asarray(f)) for f in frames]
        if not parts:
            raise MotionbitsError("train_autoencoder got no frames")
        parts = [p[None] if p.dim() == 3 else p for p in parts]
        arr = torch.cat(parts)
    else:
        raise MotionbitsError(f"train_autoencoder: unsupported frames type {type(frames).__name__}")
    if arr.dtype != torch.uint8 or arr.dim() != 4 or arr.shape[-1] != 3:
        raise MotionbitsError(
            f"train_autoencoder expects uint8 frames [N,H,W,3] or a float tensor [N,3,H,W] in [-1,1], "
            f"got {arr.dtype} {tuple(arr.shape)}"
        )
    return arr


def train_autoencoder(
    frames: Any,
    steps: int = 2000,
    batch_size: int = 16,
    lr: float = 1e-3,
    device: str | torch.device = "auto",
    progress: bool = True,
    *,
    latent_channels: int = 4,
    downsample: int = 4,
    width: int = 64,
    amp: str = "auto",
    seed: int = 0,
    eval_frames: int = 64,
) -> tuple[ConvAutoencoder, dict[str, float]]:
    """Train a ConvAutoencoder on frames (uint8 [N,H,W,3], an iterable of such, or float [N,3,H,W] in [-1,1]).

    Loss L1 + MSE. Returns the frozen autoencoder (scale/shift set from latent statistics) and
    ``{"psnr": dB after training, "psnr_init": dB before, "loss": last loss}`` measured on up to
    ``eval_frames`` evenly spaced training frames.
    """
    from tqdm.auto import tqdm

    dev = pick_device(device) if isinstance(device, str) else device
    u8 = _frames_to_uint8(frames)
    if u8 is None:
        data = frames.detach()
        if data.dim() != 4 or data.shape[1] != 3:
            raise MotionbitsError(f"train_autoencoder: float frames must be [N,3,H,W], got {tuple(data.shape)}")
    else:
        data = u8  # kept as uint8 on the CPU: 4x less memory than float; converted per batch
    n = data.shape[0]
    h, w = (data.shape[2], data.shape[3]) if u8 is None else (data.shape[1], data.shape[2])
    if h % downsample or w % downsample:
        raise MotionbitsError(f"frame size {h}x{w} is not divisible by downsample {downsample}")

    def batch(idx: torch.Tensor) -> torch.Tensor:  # -> [b,3,H,W] float in [-1,1] on dev
        if u8 is None:
            return data[idx].to(dev, torch.float32)
        return data[idx].to(dev).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ae = ConvAutoencoder(latent_channels, downsample, width).to(dev)
    eval_idx = torch.linspace(0, n - 1, min(n, eval_frames)).long()

    @torch.no_grad()
    def evaluate() -> float:
        ae.eval()
        x = batch(eval_idx)
        rec = torch.cat([ae.decode_raw(ae.encode_raw(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])
        ae.train()
        return psnr(rec, x)

    psnr_init = evaluate()
    bf16 = use_bf16(dev, amp)
    opt = torch.optim.AdamW(ae.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.99))
    warmup = max(1, min(100, steps // 10))

    def lr_at(step: int) -> float:  # linear warmup, cosine decay to 10%
        if step < warmup:
            return lr * (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    ae.train()
    loss_val = float("nan")
    bar = tqdm(range(steps), desc="autoencoder", disable=not progress, dynamic_ncols=True)
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x = batch(torch.randint(0, n, (min(batch_size, n),), generator=gen))
        with autocast(dev, bf16):
            rec = ae.decode_raw(ae.encode_raw(x))
        rec = rec.float()  # loss in fp32: small reconstruction errors underflow bf16 precision
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ae.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            loss_val = loss.item()
            bar.set_postfix(loss=f"{loss_val:.4f}")
    bar.close()

    final = evaluate()
    ae.eval()
    ae.fit_normalization(batch(eval_idx), batch_size)
    ae.freeze()
    return ae, {"psnr": final, "psnr_init": psnr_init, "loss": loss_val}


# ================================================================================================
# taef2 (pre-trained tiny autoencoder for the FLUX.2 latent space)
# ================================================================================================
def _conv(c_in: int, c_out: int, **kw: Any) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1, **kw)


class _TaeClamp(nn.Module):
    """Parameter-free soft clamp 3*tanh(x/3): keeps decoder inputs within about +-3."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class _TaeBlock(nn.Module):
    """conv-ReLU-conv-ReLU-conv + skip, ReLU after the sum; optional 'pool' branch added to the input first."""

    def __init__(self, c_in: int, c_out: int, pool: bool = False):
        super().__init__()
        self.conv = nn.Sequential(_conv(c_in, c_out), nn.ReLU(), _conv(c_out, c_out), nn.ReLU(), _conv(c_out, c_out))
        self.skip = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()
        self.fuse = nn.ReLU()
        # Keys .pool.0 / .pool.1 / .pool.3: index 2 is the parameter-free ReLU.
        self.pool = nn.Sequential(
            nn.Conv2d(c_in, 4 * c_in, 1, bias=False), nn.GroupNorm(4, 4 * c_in), nn.ReLU(),
            nn.Conv2d(4 * c_in, c_in, 1, bias=False),
        ) if pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def _taef2_encoder(c: int = 64, latent: int = 32) -> nn.Sequential:
    layers: list[nn.Module] = [_conv(3, c), _TaeBlock(c, c)]
    for stage in range(3):
        layers += [_conv(c, c, stride=2, bias=False)] + [_TaeBlock(c, c, pool=stage == 2) for _ in range(3)]
    layers.append(_conv(c, latent))
    return nn.Sequential(*layers)  # 15 modules


def _taef2_decoder(c: int = 64, latent: int = 32) -> nn.Sequential:
    layers: list[nn.Module] = [_TaeClamp(), _conv(latent, c), nn.ReLU()]
    for stage in range(3):
        layers += [_TaeBlock(c, c, pool=stage == 0) for _ in range(3)]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(c, c, bias=False)]
    layers += [_TaeBlock(c, c), _conv(c, 3)]
    return nn.Sequential(*layers)  # 20 modules


def _load_state_dict_file(path: str, what: str) -> dict[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise MotionbitsError(f"{what} weights not found: {path}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, a pickle with code in it, not a torch file ...
        raise MotionbitsError(f"cannot read {path} as a torch state dict: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise MotionbitsError(f"{path} is not a taef2 state dict: expected a dict of tensors")
    return sd


def _load_strict(module: nn.Module, sd: dict[str, torch.Tensor], path: str) -> None:
    """load_state_dict(strict=True) with one-line errors naming the file and the mismatching keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]

    def short(keys: list[str]) -> str:
        return ", ".join(keys[:5]) + (f" ... ({len(keys)} in all)" if len(keys) > 5 else "")

    if missing or unexpected:
        parts = ([f"missing keys {short(missing)}"] if missing else []) + \
                ([f"unexpected keys {short(unexpected)}"] if unexpected else [])
        raise MotionbitsError(f"{path} is not a taef2 state dict: {'; '.join(parts)}")
    bad = [f"{k} {tuple(sd[k].shape)} != {tuple(v.shape)}" for k, v in own.items() if sd[k].shape != v.shape]
    if bad:
        raise MotionbitsError(f"{path} is not a taef2 state dict: shape mismatch {short(bad)}")
    module.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)


class TAEF2(Tokenizer):
    """Pre-trained taef2 (FLUX.2 latent space): 32 x H/8 x W/8 latents, images in [0,1] inside."""

    kind = "taef2"
    ENCODER_FILE = "taef2_encoder.pth"
    DECODER_FILE = "taef2_decoder.pth"

    def __init__(self, scale: float = 1.0, shift: float = 0.0, **_: Any):
        super().__init__(latent_channels=32, downsample=8, scale=scale, shift=shift)
        self.encoder = _taef2_encoder()
        self.decoder = _taef2_decoder()
        self.freeze()

    @classmethod
    def from_folder(cls, path: str, scale: float = 1.0, shift: float = 0.0) -> "TAEF2":
        """Load ``taef2_encoder.pth`` and ``taef2_decoder.pth`` (fp16 state dicts) from a folder."""
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise MotionbitsError(f"taef2 weights folder not found: {path} (set model.tokenizer_path or pass --tokenizer-path DIR)")
        tok = cls(scale=scale, shift=shift)
        for name, module in ((cls.ENCODER_FILE, tok.encoder), (cls.DECODER_FILE, tok.decoder)):
            f = os.path.join(path, name)
            _load_strict(module, _load_state_dict_file(f, "taef2"), f)
        return tok.freeze()

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.add(1).mul(0.5))  # the network expects images in [0,1]

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).mul(2).sub(1)


# ================================================================================================
# diffusers VAEs (optional extra)
# ================================================================================================
_DIFFUSERS_CLASSES = ("AutoencoderKL", "AutoencoderTiny")


def diffusers_vae_class(path: str) -> tuple[str, dict[str, Any]]:
    """Read ``path/config.json``; return (``_class_name``, config). Errors for anything unsupported."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise MotionbitsError(f"diffusers VAE folder not found: {path}")
    cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path):
        raise MotionbitsError(f"{path} is not a diffusers VAE folder: no config.json")
    try:
        with open(cfg_path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise MotionbitsError(f"cannot read {cfg_path}: {e}") from None
    cls = cfg.get("_class_name") if isinstance(cfg, dict) else None
    if cls not in _DIFFUSERS_CLASSES:
        raise MotionbitsError(
            f"{cfg_path}: _class_name is {cls!r}; supported diffusers VAEs: {', '.join(_DIFFUSERS_CLASSES)}"
        )
    return cls, cfg


class DiffusersVAE(Tokenizer):
    """A local diffusers AutoencoderKL (latent_dist.mode() * scaling_factor) or AutoencoderTiny folder."""

    kind = "diffusers"

    def __init__(self, vae: nn.Module, class_name: str, path: str = ""):
        cfg = vae.config
        if class_name == "AutoencoderKL":
            channels = cfg.latent_channels
            down = 2 ** (len(cfg.block_out_channels) - 1)
            scale = float(getattr(cfg, "scaling_factor", 1.0) or 1.0)
            shift = float(getattr(cfg, "shift_factor", 0.0) or 0.0)  # SD3/FLUX VAEs have one
        else:  # AutoencoderTiny: already trained on scaled latents; scaling_factor is usually 1
            channels = cfg.latent_channels
            down = 2 ** (len(cfg.encoder_block_out_channels) - 1)
            scale = float(getattr(cfg, "scaling_factor", 1.0) or 1.0)
            shift = 0.0
        super().__init__(channels, down, scale, shift)
        self.vae = vae
        self.class_name = class_name
        self.path = path
        self.freeze()

    @classmethod
    def from_folder(cls, path: str) -> "DiffusersVAE":
        class_name, _ = diffusers_vae_class(path)
        try:
            import diffusers  # noqa: F401  (optional: heavy, pulls huggingface_hub etc.)
        except ImportError:
            raise MotionbitsError(
                f"loading a diffusers VAE from {path} needs the optional extra: pip install 'motionbits[diffusers]'"
            ) from None
        try:
            vae = getattr(diffusers, class_name).from_pretrained(path, local_files_only=True, torch_dtype=torch.float32)
        except Exception as e:
            raise MotionbitsError(f"cannot load {class_name} from {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        return cls(vae, class_name, os.fspath(path))

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        # diffusers VAEs take [-1,1] images; scaling/shift are applied by Tokenizer.encode.
        if self.class_name == "AutoencoderKL":
            return self.vae.encode(x).latent_dist.mode()
        return self.vae.encode(x).latents

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z).sample

    def config(self) -> dict[str, Any]:
        return {**super().config(), "path": self.path, "class_name": self.class_name}


# ================================================================================================
# Save / load / build
# ================================================================================================
_SAVABLE: dict[str, type[Tokenizer]] = {"pixels": PixelTokenizer, "autoencoder": ConvAutoencoder, "taef2": TAEF2}


def save_tokenizer(tok: Tokenizer, path: str) -> None:
    """Weights in safetensors (fp32) with ``config()`` as JSON in the metadata."""
    from safetensors.torch import save_file

    if tok.kind not in _SAVABLE:
        raise MotionbitsError(f"a {tok.kind} tokenizer is not saved by motionbits: keep its folder and pass its path")
    state = {k: v.detach().float().cpu().contiguous() for k, v in tok.state_dict().items()}
    dirname = os.path.dirname(os.fspath(path))
    if dirname:
        os.makedirs(dirname, exist_ok=True)
    save_file(state, os.fspath(path), metadata={_META_KEY: json.dumps(tok.config())})


def load_tokenizer(path: str) -> Tokenizer:
    """Inverse of save_tokenizer; returns a frozen tokenizer on the CPU."""
    from safetensors import safe_open

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MotionbitsError(f"tokenizer file not found: {path}")
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise MotionbitsError(f"{path} is not a safetensors file: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if _META_KEY not in meta:
        raise MotionbitsError(f"{path} is not a motionbits tokenizer: no '{_META_KEY}' entry in its metadata")
    try:
        cfg = json.loads(meta[_META_KEY])
        kind = cfg.pop("kind")
    except (ValueError, KeyError, AttributeError):
        raise MotionbitsError(f"{path}: corrupt tokenizer config in the metadata") from None
    if kind not in _SAVABLE:
        raise MotionbitsError(f"{path}: unknown tokenizer kind {kind!r}")
    tok = _SAVABLE[kind](**cfg)
    try:
        tok.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise MotionbitsError(f"{path}: weights do not match the {kind} config: {str(e).splitlines()[0]}") from None
    return tok.freeze()


def build_tokenizer(kind: str, path: str | None = None, **kwargs: Any) -> Tokenizer:
    """Make a tokenizer by kind: pixels | autoencoder (a saved file, or a new untrained one) | taef2 | diffusers."""
    if kind == "pixels":
        return PixelTokenizer(**kwargs)
    if kind == "autoencoder":
        if path is None:
            return ConvAutoencoder(**kwargs)  # untrained: train it with train_autoencoder first
        tok = load_tokenizer(path)
        if tok.kind != "autoencoder":
            raise MotionbitsError(f"{path} holds a {tok.kind} tokenizer, not an autoencoder")
        return tok
    if kind == "taef2":
        if path is None:
            raise MotionbitsError("the taef2 tokenizer needs the folder with taef2_encoder.pth and taef2_decoder.pth")
        if os.path.isfile(path):  # a taef2 saved with save_tokenizer
            tok = load_tokenizer(path)
            if tok.kind != "taef2":
                raise MotionbitsError(f"{path} holds a {tok.kind} tokenizer, not taef2")
            return tok
        return TAEF2.from_folder(path, **kwargs)
    if kind == "diffusers":
        if path is None:
            raise MotionbitsError("the diffusers tokenizer needs the path of a local AutoencoderKL/AutoencoderTiny folder")
        return DiffusersVAE.from_folder(path)
    raise MotionbitsError(f"unknown tokenizer kind {kind!r}; valid kinds: {', '.join(TOKENIZER_KINDS)}")
