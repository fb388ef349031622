"""A fast image autoencoder in taef2's latent space, distilled from taef2 (training/distill_autoencoder.py).

taef2 spends nearly all of a 128x128 frame's work at full and half resolution, in 3x3 convolutions
of 64 channels (7.7 GFLOP to encode a frame, 8.9 to decode one): a call's codec on 2 CPU cores
without AMX runs at about 15 frames a second, and a call shows 25. The fast pair keeps taef2's
layers at a quarter of the resolution and below, and replaces those above with narrower ones (32
channels at half resolution, 16 at full): 1.7 GFLOP to encode, 2.0 to decode. It reads and writes
the same latents, so a model trained with taef2 codes and renders through it unchanged; what the
narrower layers lose is measured against taef2 by the distillation and by the codec's own
rate-distortion table.
"""
from __future__ import annotations

import copy
import os

import torch
from torch import nn

from motionbits.errors import MotionbitsError
from motionbits.models.tokenizer import TAEF2, TaeBlock, conv3x3, load_state_dict_file, load_strict

FULL_CHANNELS, HALF_CHANNELS = 16, 32
# taef2's encoder from the blocks after its second stride-2 convolution on (1/4 resolution and below)
# and its decoder up to its second upsampling (1/4 resolution and below) are kept as they are.
TAEF2_ENCODER_KEPT_FROM, TAEF2_DECODER_KEPT_UNTIL = 7, 11


def fast_encoder(teacher: nn.Sequential) -> nn.Sequential:
    """[B,3,H,W] in [0,1] -> raw latent [B,32,H/8,W/8], taef2's lower layers copied from ``teacher``."""
    full, half = FULL_CHANNELS, HALF_CHANNELS
    upper = [conv3x3(3, full), nn.ReLU(), TaeBlock(full, full),                       # H x W
             conv3x3(full, half, stride=2), nn.ReLU(), TaeBlock(half, half), TaeBlock(half, half),  # H/2
             conv3x3(half, 64, stride=2, bias=False)]                                  # -> H/4, taef2's width
    return nn.Sequential(*upper, *copy.deepcopy(list(teacher)[TAEF2_ENCODER_KEPT_FROM:]))


def fast_decoder(teacher: nn.Sequential) -> nn.Sequential:
    """raw latent [B,32,h,w] -> [B,3,8h,8w] in about [0,1], taef2's lower layers copied from ``teacher``."""
    full, half = FULL_CHANNELS, HALF_CHANNELS
    upper = [nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(64, half), nn.ReLU(),  # -> 2h (H/4 -> H/2)
             TaeBlock(half, half), TaeBlock(half, half),
             nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(half, full), nn.ReLU(),  # -> H
             TaeBlock(full, full), conv3x3(full, 3)]
    return nn.Sequential(*copy.deepcopy(list(teacher)[:TAEF2_DECODER_KEPT_UNTIL]), *upper)


class FastTAEF2(TAEF2):
    """taef2's latent space through the distilled fast encoder and decoder (same encode/decode maps)."""

    ENCODER_FILE = "fast_encoder.pth"
    DECODER_FILE = "fast_decoder.pth"

    def __init__(self, teacher: TAEF2 | None = None):
        teacher = teacher or TAEF2()
        super().__init__()
        self.encoder = fast_encoder(teacher.encoder)
        self.decoder = fast_decoder(teacher.decoder)
        self.freeze()

    @classmethod
    def from_folder(cls, path: str | os.PathLike) -> "FastTAEF2":
        """Load ``fast_encoder.pth`` and ``fast_decoder.pth`` (state dicts) written by the distillation."""
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise MotionbitsError(f"fast autoencoder folder not found: {path} (made by `motionbits distill-autoencoder`)")
        tok = cls()
        for name, module in ((cls.ENCODER_FILE, tok.encoder), (cls.DECODER_FILE, tok.decoder)):
            f = os.path.join(path, name)
            load_strict(module, load_state_dict_file(f, "fast autoencoder"), f, "fast autoencoder")
        return tok.freeze()

    def state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        """File name -> state dict, as ``from_folder`` reads them."""
        return {self.ENCODER_FILE: self.encoder.state_dict(), self.DECODER_FILE: self.decoder.state_dict()}
