"""Shared fixtures: tiny configs and a few real Sprites clips composed from ../shared when present."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from motionbits.config import Config, config_from_dict

SHARED = Path(__file__).resolve().parents[1].parent / "shared"  # beside the checkout (developers and CI)
SHEETS = SHARED / "data" / "lpc_sprites"

torch.set_num_threads(2)


def tiny_config(**overrides) -> Config:
    values = {
        "name": "tiny",
        "data": {"frames": 8, "image_size": 16},
        "model": {"encoder_width": 32, "encoder_depth": 1, "encoder_heads": 2, "content_queries": 2,
                  "content_dim": 16, "groups": 4, "codebook_size": 8, "group_dim": 4,
                  "patch_size": 4, "denoiser_width": 32, "denoiser_depth": 2, "denoiser_heads": 2},
        "diffusion": {"sample_steps": 2},
        "train": {"steps": 4, "batch_size": 4, "log_every": 2, "checkpoint_every": 2, "sample_every": 0,
                  "target_bits": 4.0, "warmup_steps": 1, "amp": "off"},
        "eval": {"judge_steps": 5, "clips": 8, "batch_size": 8},
    }
    for section, vals in overrides.items():
        if isinstance(vals, dict):
            values.setdefault(section, {}).update(vals)
        else:
            values[section] = vals
    return config_from_dict(values)


@pytest.fixture
def one_thread():
    """Tiny nets gain nothing from a second thread, and oversubscribed OpenMP barriers are very slow
    when other jobs share the 2 cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def cfg() -> Config:
    return tiny_config()


@pytest.fixture(scope="session")
def sprites_root(tmp_path_factory) -> Path:
    """A small real Sprites dataset (8 characters: train and test) composed from the LPC sheets."""
    if not SHEETS.is_dir():
        pytest.skip(f"LPC sheets not found at {SHEETS}")
    from motionbits.data.sprites import compose_sprites, split_characters

    train_ids, test_ids = split_characters(0)
    root = tmp_path_factory.mktemp("sprites")
    compose_sprites(SHEETS, root, characters=[*train_ids[:6], *test_ids[:4]], progress=False)
    return root
