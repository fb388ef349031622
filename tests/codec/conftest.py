"""A tiny trained Sprites model (64x64 frames) shared by the codec tests."""
import pytest

from motionbits.training.bcd import train
from tests.helpers import tiny_config


@pytest.fixture(scope="package")
def run(sprites_root, tmp_path_factory):
    cfg = tiny_config(data={"root": str(sprites_root), "image_size": 64}, model={"patch_size": 16}, train={"steps": 2})
    out = tmp_path_factory.mktemp("codec") / "run"
    train(cfg, out, progress=False)
    return out
