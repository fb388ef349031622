"""A tiny Sprites checkpoint (1 training step) and a motion prior for it (1 step, the 9 motion
classes): enough for the app to run every tab in a fraction of a second."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from motionbits.training.bcd import train
from tests.helpers import tiny_config


@pytest.fixture(scope="session")
def checkpoint(sprites_root, tmp_path_factory) -> Path:
    cfg = tiny_config(data={"root": str(sprites_root), "image_size": 64}, model={"patch_size": 16}, train={"steps": 1})
    out = tmp_path_factory.mktemp("app") / "run"
    train(cfg, out, progress=False)
    return out / "last.pt"


@pytest.fixture(scope="session")
def prior(checkpoint, tmp_path_factory) -> Path:
    from motionbits.config import config_from_dict
    from motionbits.checkpoints import read_checkpoint
    from motionbits.training.prior import prior_config_for, train_prior

    cfg = config_from_dict(read_checkpoint(checkpoint)["config"])
    prior_cfg = prior_config_for(cfg, num_classes=9, width=16, depth=1, heads=2)
    gen = torch.Generator().manual_seed(0)
    codes = torch.randint(0, prior_cfg.codebook_size, (8, prior_cfg.max_frames, prior_cfg.groups), generator=gen)
    content = torch.randn(8, cfg.model.content_queries, prior_cfg.content_dim, generator=gen)
    out = tmp_path_factory.mktemp("app") / "prior"
    train_prior(codes, content, torch.arange(8) % 9, prior_cfg, steps=1, batch_size=4, warmup_steps=1, out_dir=out,
                progress=False)
    return out / "prior.pt"
