"""Frozen per-frame image tokenizers: pixels <-> latents that the diffusion model works on.

Every tokenizer maps images [B,3,H,W] in [-1,1] to latents [B,C,H/f,W/f] and back:
``z = (raw - shift) * scale`` on the way in, undone before the real decoder on the way out.

Kinds:
- ``PixelTokenizer``: identity (C=3, f=1), for tiny images where the denoiser patchifies pixels.
- ``TAEF2``: the pre-trained taef2 tiny autoencoder (32 x H/8 x W/8), weights shipped with the
  package (motionbits/assets/taef2) or from a local folder.
- ``DiffusersVAE``: a local diffusers ``AutoencoderKL`` / ``AutoencoderTiny`` folder (optional extra).

`frames_to_float` / `float_to_frames` are the package's one conversion between uint8 frames and
the [-1, 1] floats every model reads (`frames_to_unit`: to taef2's own [0, 1]); `make_tokenizer`
builds the one a config names.
"""
from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from typing import Any

import torch
from einops import rearrange
from torch import nn

from motionbits.assets import TAEF2_WEIGHTS
from motionbits.config import Config
from motionbits.errors import MotionbitsError

TOKENIZER_KINDS = ("pixels", "taef2", "diffusers")


def frames_to_float(frames_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] in [-1, 1]."""
    return rearrange(frames_u8, "... h w c -> ... c h w").float().div(127.5).sub(1.0)


def frames_to_unit(frames_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] in [0, 1]: taef2's own input range."""
    return rearrange(frames_u8, "... h w c -> ... c h w").float().div(255)


def float_to_frames(x: torch.Tensor) -> torch.Tensor:
    """float [..., 3, H, W] in [-1, 1] -> uint8 [..., H, W, 3]."""
    x = x.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return rearrange(x, "... c h w -> ... h w c").cpu()


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
        """What, with the weights, decides the latents (the latent cache's key hashes it)."""
        return {"kind": self.kind, "latent_channels": self.latent_channels, "downsample": self.downsample,
                "scale": self.scale, "shift": self.shift}

    def freeze(self) -> "Tokenizer":
        """No gradients, eval mode, and stays in eval when a parent model calls ``.train()``."""
        for p in self.parameters():
            p.requires_grad_(False)
        self.frozen = True
        super().train(False)
        return self

    def train(self, mode: bool = True) -> "Tokenizer":
        # A frozen tokenizer inside a trained model must not flip into train mode with it.
        return super().train(False if self.frozen else mode)

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

    def __init__(self):
        super().__init__(latent_channels=3, downsample=1)
        self.freeze()

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return z


# ================================================================================================
# taef2 (pre-trained tiny autoencoder for the FLUX.2 latent space)
# ================================================================================================
def conv3x3(c_in: int, c_out: int, **kw: Any) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1, **kw)


class TaeClamp(nn.Module):
    """Parameter-free soft clamp 3*tanh(x/3): keeps decoder inputs within about +-3."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class TaeBlock(nn.Module):
    """conv-ReLU-conv-ReLU-conv + skip, ReLU after the sum; optional 'pool' branch added to the input first."""

    def __init__(self, c_in: int, c_out: int, pool: bool = False):
        super().__init__()
        self.conv = nn.Sequential(conv3x3(c_in, c_out), nn.ReLU(), conv3x3(c_out, c_out), nn.ReLU(), conv3x3(c_out, c_out))
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
    layers: list[nn.Module] = [conv3x3(3, c), TaeBlock(c, c)]
    for stage in range(3):
        layers += [conv3x3(c, c, stride=2, bias=False)] + [TaeBlock(c, c, pool=stage == 2) for _ in range(3)]
    layers.append(conv3x3(c, latent))
    return nn.Sequential(*layers)  # 15 modules


def _taef2_decoder(c: int = 64, latent: int = 32) -> nn.Sequential:
    layers: list[nn.Module] = [TaeClamp(), conv3x3(latent, c), nn.ReLU()]
    for stage in range(3):
        layers += [TaeBlock(c, c, pool=stage == 0) for _ in range(3)]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(c, c, bias=False)]
    layers += [TaeBlock(c, c), conv3x3(c, 3)]
    return nn.Sequential(*layers)  # 20 modules


def load_state_dict_file(path: str, what: str) -> dict[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise MotionbitsError(f"{what} weights not found: {path}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, a pickle with code in it, not a torch file ...
        raise MotionbitsError(f"cannot read {path} as a torch state dict: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise MotionbitsError(f"{path} is not a {what} state dict: expected a dict of tensors")
    return sd


def load_strict(module: nn.Module, sd: dict[str, torch.Tensor], path: str, what: str = "taef2") -> None:
    """load_state_dict(strict=True) with one-line errors naming the file and the mismatching keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]

    def short(keys: list[str]) -> str:
        return ", ".join(keys[:5]) + (f" ... ({len(keys)} in all)" if len(keys) > 5 else "")

    if missing or unexpected:
        parts = ([f"missing keys {short(missing)}"] if missing else []) + \
                ([f"unexpected keys {short(unexpected)}"] if unexpected else [])
        raise MotionbitsError(f"{path} is not a {what} state dict: {'; '.join(parts)}")
    bad = [f"{k} {tuple(sd[k].shape)} != {tuple(v.shape)}" for k, v in own.items() if sd[k].shape != v.shape]
    if bad:
        raise MotionbitsError(f"{path} is not a {what} state dict: shape mismatch {short(bad)}")
    module.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)


class TAEF2(Tokenizer):
    """Pre-trained taef2 (FLUX.2 latent space): 32 x H/8 x W/8 latents, images in [0,1] inside."""

    kind = "taef2"
    ENCODER_FILE = "taef2_encoder.pth"
    DECODER_FILE = "taef2_decoder.pth"

    def __init__(self):
        super().__init__(latent_channels=32, downsample=8)
        self.encoder = _taef2_encoder()
        self.decoder = _taef2_decoder()
        self.freeze()

    @classmethod
    def from_folder(cls, path: str | os.PathLike) -> "TAEF2":
        """Load ``taef2_encoder.pth`` and ``taef2_decoder.pth`` (fp16 state dicts) from a folder."""
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise MotionbitsError(f"taef2 weights folder not found: {path} (model.tokenizer_path / --tokenizer-path; "
                                  "leave it unset for the shipped weights)")
        tok = cls()
        for name, module in ((cls.ENCODER_FILE, tok.encoder), (cls.DECODER_FILE, tok.decoder)):
            f = os.path.join(path, name)
            load_strict(module, load_state_dict_file(f, "taef2"), f)
        return tok.freeze()

    def freeze(self) -> "TAEF2":
        # Channels-last weights and activations: oneDNN's faster convolution layout on CPUs (2-core
        # EPYC, fp32, a 128x128 frame: encode 41-42 against 43-63 ms, decode 47-50 against 57-68 ms;
        # results/cpu-1.1-codec/ab_channels_last.py).
        self.to(memory_format=torch.channels_last)
        return super().freeze()

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        x = x.add(1).mul(0.5).contiguous(memory_format=torch.channels_last)   # the network expects [0, 1]
        return self.encoder(x).contiguous()

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z.contiguous(memory_format=torch.channels_last)).mul(2).sub(1).contiguous()


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
# Build
# ================================================================================================
def build_tokenizer(kind: str, path: str | None = None) -> Tokenizer:
    """A frozen tokenizer by kind: pixels | taef2 (path: weights folder, default the shipped one) | diffusers."""
    if kind == "pixels":
        return PixelTokenizer()
    if kind == "taef2":
        return TAEF2.from_folder(path or TAEF2_WEIGHTS)
    if kind == "diffusers":
        if path is None:
            raise MotionbitsError("the diffusers tokenizer needs model.tokenizer_path: a local AutoencoderKL/AutoencoderTiny folder")
        return DiffusersVAE.from_folder(path)
    raise MotionbitsError(f"unknown tokenizer kind {kind!r}; valid kinds: {', '.join(TOKENIZER_KINDS)}")


def make_tokenizer(cfg: Config) -> Tokenizer:
    """The tokenizer a config names (model.tokenizer, model.tokenizer_path)."""
    return build_tokenizer(cfg.model.tokenizer, cfg.model.tokenizer_path)
