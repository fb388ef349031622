"""A tiny trained Sprites model (64x64 frames) and a test clip, shared by the codec tests."""
import numpy as np
import pytest
import torch

from motionbits.training.bcd import train
from tests.helpers import tiny_config


@pytest.fixture(scope="package")
def run(sprites_root, tmp_path_factory):
    cfg = tiny_config(data={"root": str(sprites_root), "image_size": 64}, model={"patch_size": 16}, train={"steps": 2})
    out = tmp_path_factory.mktemp("codec") / "run"
    train(cfg, out, progress=False)
    return out


@pytest.fixture(scope="package")
def clip(sprites_root):
    """A Sprites test clip: uint8 [8, 64, 64, 3]."""
    return torch.from_numpy(np.load(sprites_root / "test.npz")["frames"][2])
