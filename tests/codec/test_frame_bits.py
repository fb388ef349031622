"""Per-frame motion bits (codec.entropy.frame_bits): each frame's cost under its tables, summing to
the coded stream's size (less the coder's last words)."""
import numpy as np
import torch

from motionbits.codec.entropy import FREQUENCY_BITS, PriorModel, StaticModel, encode_codes, frame_bits
from motionbits.models.prior import MotionPrior, PriorConfig


def test_static_tables_cost_each_code_its_own_group_s_bits():
    freq = np.array([[1 << 15, 1 << 14, 1 << 14],             # group 0: 1, 2, 2 bits
                     [1 << 14, 1 << 15, 1 << 14]])             # group 1: 2, 1, 2 bits
    codes = np.array([[0, 1], [1, 0], [2, 2]])
    assert np.allclose(frame_bits(codes, StaticModel(freq)), [1 + 1, 2 + 2, 2 + 2])
    assert (1 << FREQUENCY_BITS) == freq.sum(1)[0]


def test_prior_costs_add_up_to_the_stream():
    torch.manual_seed(0)
    prior = MotionPrior(PriorConfig(width=32, depth=1, heads=2, max_frames=6, groups=3, codebook_size=8,
                                    content_dim=4, dropout=0.0)).eval()
    with torch.no_grad():
        for p in prior.parameters():
            p.normal_(std=0.5)                                     # a prior with opinions: frames cost differently
    content = torch.randn(1, 2, 4)
    codes = prior.generate(content, 12, generator=torch.Generator().manual_seed(1))[0].numpy()
    bits = frame_bits(codes, PriorModel(prior, content))
    stream = encode_codes(codes, PriorModel(prior, content))
    assert bits.shape == (12,) and bits.std() > 0
    assert bits.sum() <= 8 * len(stream) <= bits.sum() + 64
