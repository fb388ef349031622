"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features"), VGG variant,
written here so it needs neither torchvision nor a download: the weights come from local files.

    distance(x, y) = sum over 5 VGG16 stages l of  mean_hw  || w_l * (f_l(x) - f_l(y)) ||^2
    f_l = channel-unit-normalised ReLU features after conv1_2, conv2_2, conv3_3, conv4_3, conv5_3

Weights (a folder given by path, nothing fetched at run time):
- `vgg16.pth`: the ImageNet VGG16 weights in torchvision's layout (keys `features.N.weight/bias`;
  torchvision's file `vgg16-397923af.pth` renamed; classifier keys are ignored);
- `lin.pth`: LPIPS v0.1 linear heads for VGG (the lpips package's `weights/v0.1/vgg.pth`; keys
  `lin{0..4}.model.1.weight`, shapes [1, C, 1, 1]).
Both are read with `torch.load(weights_only=True)` and loaded strictly.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from motionbits.errors import MotionbitsError

# VGG16's convolutional trunk: channels per conv, "M" = 2x2 max-pool (torchvision's layer order).
_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
_TAPS = (3, 8, 15, 22, 29)      # indices in `features` of the ReLUs after conv1_2 ... conv5_3
_CHANNELS = (64, 128, 256, 512, 512)
# LPIPS's input scaling for images in [-1, 1] (ImageNet statistics in that range).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for v in _VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=False)]
            channels = v
    return nn.Sequential(*layers)


class LPIPS(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = _vgg16_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features[: _TAPS[-1] + 1]):
            x = layer(x)
            if i in _TAPS:
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x, y: float [N, 3, H, W] in [-1, 1] -> distance [N] (0 for identical images)."""
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise MotionbitsError(f"LPIPS expects two [N, 3, H, W] batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        total = x.new_zeros(x.shape[0])
        for lin, fx, fy in zip(self.lins, self._stages(x), self._stages(y)):
            total = total + lin((fx - fy).pow(2)).mean(dim=(1, 2, 3))
        return total


def _read(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise MotionbitsError(f"{path}: missing (LPIPS needs vgg16.pth and lin.pth in this folder; see motionbits.evaluation.lpips)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same one-line error
        raise MotionbitsError(f"{path}: not a readable PyTorch weights file ({type(err).__name__})") from None
    if not isinstance(state, dict):
        raise MotionbitsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def load_lpips(folder: str | Path, device: str | torch.device = "cpu") -> LPIPS:
    """LPIPS-VGG with weights from `folder` (vgg16.pth + lin.pth, see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MotionbitsError(f"{folder}: not a folder (LPIPS weights: a folder with vgg16.pth and lin.pth)")
    model = LPIPS()
    vgg = {k[len("features."):]: v for k, v in _read(folder / "vgg16.pth").items() if k.startswith("features.")}
    lin = {k.replace(".model.1.", ".").replace("lin", "", 1): v for k, v in _read(folder / "lin.pth").items()}
    for name, module, state in (("vgg16.pth", model.features, vgg), ("lin.pth", model.lins, lin)):
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()
            detail = first[1].strip() if len(first) > 1 else first[0]
            raise MotionbitsError(f"{folder / name}: does not match LPIPS-VGG ({detail[:200]})") from None
    return model.to(device)
