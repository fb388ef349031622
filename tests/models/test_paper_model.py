"""The `paper` config builds the paper's sizes and trains a step on the CPU (it needs GPUs to train)."""
import torch

from motionbits.config import load_config
from motionbits.models.bcd import BCDModel


def dit_b_parameters(latent_channels: int, patch: int) -> int:
    """DiT-B (12 blocks, width 768; Peebles & Xie 2023), counted from its definition: per block
    attention 4 W^2 + 4 W, MLP 8 W^2 + 5 W, adaLN 6 W^2 + 6 W; patch embedding and final layer."""
    w = 768
    block = (4 * w * w + 4 * w) + (8 * w * w + 5 * w) + (6 * w * w + 6 * w)
    io = (latent_channels * patch * patch * w + w) + (w * latent_channels * patch * patch + latent_channels * patch * patch)
    return 12 * block + io + 2 * w * w + 2 * w   # + the final adaLN


def test_paper_model_has_the_papers_sizes_and_trains_a_step():
    cfg = load_config("paper")
    cfg.diffusion.sigma_data = 0.95                       # measured on taef2 latents when training
    model = BCDModel(cfg, latent_channels=32, latent_size=256 // 8)
    denoiser = sum(p.numel() for p in model.denoiser.parameters())
    encoder = sum(p.numel() for p in model.encoder.parameters())
    assert abs(denoiser - dit_b_parameters(32, 4)) / dit_b_parameters(32, 4) < 0.05, denoiser   # DiT-B/4, +conditioning
    assert 37e6 < encoder < 42e6, encoder                 # 12 x (12 x 512^2): T5-size blocks, + the frame embedder
    assert model.quantizer.ceiling_bits == 64 * 5 and cfg.train.target_bits == 160
    assert cfg.data.frames == 50 and model.window == 25 and cfg.train.cross_drive
    # one optimisation step on one short clip (the model reads any clip length)
    cfg.data.frames = 4
    model = BCDModel(cfg, 32, 32).train()
    torch.manual_seed(0)
    draws = model.draw(1, 1, torch.Generator().manual_seed(0))
    out = model(torch.randn(1, 4, 32, 32, 32), draws)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and model.denoiser.patch_out.weight.grad.abs().sum() > 0
    assert model.encoder.to_motion.weight.grad.abs().sum() > 0            # through the rate penalty
