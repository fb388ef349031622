import torch

from motionbits.models.denoiser import Denoiser
from tests.helpers import awake


def test_shapes_and_zero_init():
    den = Denoiser(3, 16, 4, width=32, depth=2, heads=2, content_dim=8, motion_dim=6, temporal_attention=True)
    out = den(torch.randn(2, 3, 3, 16, 16), torch.randn(2, 3), torch.randn(2, 3, 6), torch.randn(2, 5, 8))
    assert out.shape == (2, 3, 3, 16, 16)
    assert out.abs().max() == 0  # adaLN-Zero + zero output layer: starts at F = 0


def test_frames_depend_on_their_own_motion_only():
    torch.manual_seed(0)
    den = awake(Denoiser(3, 16, 4, 32, 1, 2, 8, 6))
    z, cn, content = torch.randn(1, 2, 3, 16, 16), torch.zeros(1, 2), torch.randn(1, 3, 8)
    motion = torch.randn(1, 2, 6)
    base = den(z, cn, motion, content)
    changed = motion.clone()
    changed[:, 1] += 1
    out = den(z, cn, changed, content)
    assert torch.allclose(base[:, 0], out[:, 0], atol=1e-6)   # frame 0 untouched
    assert not torch.allclose(base[:, 1], out[:, 1])


def test_temporal_layers_added_to_a_trained_denoiser_change_nothing_until_trained():
    torch.manual_seed(0)
    stage1 = awake(Denoiser(3, 16, 4, 32, 2, 2, 8, 6))
    stage2 = Denoiser(3, 16, 4, 32, 2, 2, 8, 6, temporal_attention=True)
    missing, unexpected = stage2.load_state_dict(stage1.state_dict(), strict=False)
    assert not unexpected and missing and all(".temporal." in k for k in missing)
    args = torch.randn(2, 5, 3, 16, 16), torch.randn(2, 5), torch.randn(2, 5, 6), torch.randn(2, 3, 8)
    assert torch.equal(stage1(*args), stage2(*args))             # exactly, not approximately
    # Trained (weights no longer zero), a frame sees the others: change frame 4, frame 0 moves.
    awake(stage2)
    z = args[0].clone()
    z[:, 4] += 1
    assert not torch.allclose(stage2(z, *args[1:])[:, 0], stage2(*args)[:, 0], atol=1e-5)


def test_temporal_attention_knows_frame_order_and_takes_any_length():
    torch.manual_seed(0)
    den = awake(Denoiser(3, 8, 4, 32, 1, 2, 8, 6, temporal_attention=True))
    block = den.blocks[0].temporal
    x = torch.randn(6, 5, 32)                              # [B*T, L, W] with T = 3
    reversed_frames = x.view(2, 3, 5, 32).flip(1).reshape(6, 5, 32)
    out = block(x, 3).view(2, 3, 5, 32)
    out_rev = block(reversed_frames, 3).view(2, 3, 5, 32).flip(1)
    assert not torch.allclose(out, out_rev, atol=1e-5)      # relative frame positions matter
    long = den(torch.randn(1, 80, 3, 8, 8), torch.zeros(1, 80), torch.randn(1, 80, 6), torch.randn(1, 2, 8))
    assert long.shape == (1, 80, 3, 8, 8) and torch.isfinite(long).all()
