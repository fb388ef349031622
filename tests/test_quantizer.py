import math

import torch

from motionbits.models.quantizer import GroupQuantizer, entropy_bits


def make(groups=4, size=8, dim=3, **kw):
    torch.manual_seed(0)
    return GroupQuantizer(groups, size, dim, **kw)


def test_shapes_and_ceiling():
    q = make().train()
    out = q(torch.randn(2, 5, 12))
    assert out.quantized.shape == (2, 5, 12)
    assert out.codes.shape == (2, 5, 4) and out.codes.dtype == torch.int64
    assert out.probs.shape == (4, 8)
    assert math.isclose(q.ceiling_bits, 4 * 3)
    assert 0 <= out.entropy_bits.item() <= q.ceiling_bits + 1e-4


def test_inference_is_nearest_codebook_entry():
    q = make().eval()
    m = torch.randn(3, 2, 12)
    out = q(m)
    groups = m.reshape(3, 2, 4, 3)
    dist = ((groups[..., None, :] - q.codebook[None, None]) ** 2).sum(-1)  # [3,2,4,8]
    assert torch.equal(out.codes, dist.argmin(-1))
    assert torch.allclose(out.quantized, q.lookup(out.codes))


def test_straight_through_gradients_reach_encoder_and_codebook():
    q = make().train()
    m = torch.randn(2, 3, 12, requires_grad=True)
    out = q(m)
    (out.quantized.sum() + out.entropy_bits).backward()
    assert m.grad is not None and m.grad.abs().sum() > 0
    assert q.codebook.grad.abs().sum() > 0


def test_forward_value_is_exactly_the_chosen_entries():
    q = make().train()
    out = q(torch.randn(2, 3, 12))
    assert torch.allclose(out.quantized, q.lookup(out.codes), atol=1e-6)


def test_entropy_bits_known_values():
    uniform = torch.full((3, 8), 1 / 8)
    assert math.isclose(entropy_bits(uniform).item(), 9.0, rel_tol=1e-5)
    onehot = torch.zeros(3, 8)
    onehot[:, 2] = 1
    assert entropy_bits(onehot).item() < 1e-6


def test_rate_penalty_moves_entropy_toward_target():
    torch.manual_seed(0)
    q = make(groups=2, size=16, dim=2).train()
    motion = torch.nn.Parameter(torch.randn(64, 1, 4) * 3)
    opt = torch.optim.Adam([motion, q.codebook], lr=0.05)
    target = 2.0
    start = q(motion).entropy_bits.item()
    for _ in range(150):
        loss = (q(motion).entropy_bits - target) ** 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = q(motion).entropy_bits.item()
    assert abs(end - target) < abs(start - target) / 2


def test_dead_codes_are_revived_near_the_data():
    q = make(groups=1, size=4, dim=2, dead_code_threshold=0.5).train()
    with torch.no_grad():
        q.codebook[0, 3] = 1000.0  # far from every input: never chosen
        q.usage[0, 3] = 0.0
    data = torch.randn(16, 1, 2)
    q(data)
    assert q.codebook[0, 3].abs().max() < 10  # re-seeded from the batch
