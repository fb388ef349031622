"""The motion prior end to end: train it from a config on a tiny model's codes, then generate."""
import yaml

import torch

from motionbits.cli import main
from motionbits.generate import generate_motion, train_prior_from_config
from motionbits.pipeline import MotionBits
from motionbits.prior_train import load_prior
from motionbits.train import train

from conftest import tiny_config


def test_prior_from_config_and_generate(sprites_root, tmp_path, one_thread):
    cfg = tiny_config(data={"root": str(sprites_root), "image_size": 64}, model={"patch_size": 16},
                      train={"steps": 1})
    train(cfg, tmp_path / "model", progress=False)
    config = tmp_path / "prior.yaml"
    config.write_text(yaml.safe_dump({"name": "prior-test", "prior": {
        "checkpoint": str(tmp_path / "model" / "last.pt"), "labels": "motion", "steps": 3, "batch_size": 8,
        "model": {"width": 32, "depth": 1, "heads": 2}}}))
    path = train_prior_from_config(config, tmp_path / "prior", progress=False)
    prior = load_prior(path)
    pipe = MotionBits.from_checkpoint(tmp_path / "model")
    from motionbits.data.sprites import load_sprites

    clip = torch.from_numpy(load_sprites(sprites_root, "test").frames[0])
    out = generate_motion(pipe, prior, clip, frames=12, prompt_frames=clip[:3], label=4, steps=1)
    assert out.shape == (1, 12, 64, 64, 3) and out.dtype == torch.uint8
    gif = tmp_path / "gen.gif"
    code = main(["generate", "--checkpoint", str(tmp_path / "model"), "--prior", str(path),
                 "--content", f"sprites:{sprites_root}:test:1", "--frames", "10", "--sample-steps", "1",
                 "-o", str(gif)])
    assert code == 0 and gif.stat().st_size > 0
    # the step study is the Sprites swap protocol: asked for with --prior, a one-line refusal
    code = main(["evaluate", "--checkpoint", str(tmp_path / "model"), "--prior", str(path), "--step-study", "1,2"])
    assert code == 2
