import math

import torch

from motionbits.models.quantizer import GroupQuantizer, entropy_bits, information_bits


def make(groups=4, size=8, dim=3, **kw):
    torch.manual_seed(0)
    return GroupQuantizer(groups, size, dim, **kw)


def test_shapes_and_ceiling():
    q = make().train()
    out = q(torch.randn(2, 5, 12))
    assert out.quantized.shape == (2, 5, 12)
    assert out.codes.shape == (2, 5, 4) and out.codes.dtype == torch.int64
    assert math.isclose(q.ceiling_bits, 4 * 3)


def test_inference_is_nearest_codebook_entry():
    q = make().eval()
    m = torch.randn(3, 2, 12)
    out = q(m)
    groups = m.reshape(3, 2, 4, 3)
    dist = ((groups[..., None, :] - q.codebook[None, None]) ** 2).sum(-1)  # [3,2,4,8]
    assert torch.equal(out.codes, dist.argmin(-1))
    assert torch.allclose(out.quantized, q.lookup(out.codes))


def test_information_of_identical_frames_is_zero_whatever_the_sampling_noise():
    # Every frame the same: the codes can say nothing about the frame. The estimate must be 0,
    # though each frame's code distribution is spread and the Gumbel samples differ.
    q = make(groups=16, size=32, dim=2, alpha=0.05).train()
    motion = torch.randn(1, 1, 32).expand(64, 4, 32)
    out = q(motion)
    assert abs(out.information_bits.item()) < 1e-4
    assert abs(out.rate_bits.item()) < 1e-4                 # the controlled rate is this estimate
    assert out.marginal_bits.item() > 16                    # the paper's histogram counts the noise
    assert len(out.codes.unique()) > 1


def test_information_of_distinct_deterministic_codes_is_log2_of_their_number():
    q = make(groups=2, size=8, dim=2, alpha=1000.0).eval()
    used = [0, 3, 5, 6]
    # frames sitting exactly on 4 of the 8 entries of each group, equally often
    frames = torch.stack([torch.cat([q.codebook[0, k], q.codebook[1, k]]) for k in used]).repeat(8, 1)
    bits = q(frames[:, None].detach()).information_bits.item()
    assert math.isclose(bits, 2 * math.log2(4), abs_tol=1e-3)


def test_information_of_a_known_mixture():
    # half the frames certain of entry 0, half split evenly between entries 0 and 1:
    # I = H([3/4, 1/4]) - (0 + 1) / 2
    logits = torch.tensor([[100.0, -100.0], [0.0, 0.0]]).repeat(8, 1)[:, None, None, :]   # [16, 1, 1, 2]
    expected = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)) - 0.5
    assert math.isclose(information_bits(logits).item(), expected, abs_tol=1e-5)
    uniform = torch.full((3, 8), 1 / 8)
    assert math.isclose(entropy_bits(uniform).item(), 9.0, rel_tol=1e-5)


def test_straight_through_matches_its_definition():
    """Forward: the hard code's entry. Backward to the motion: the gradient of the relaxed sample
    softmax((-alpha d^2 + g) / tau) @ codebook, written out independently here."""
    alpha, tau = 0.7, 0.5
    q = make(groups=2, size=5, dim=3, alpha=alpha, tau=tau).train()
    motion = torch.randn(2, 3, 6, requires_grad=True)
    gumbel = -(-torch.rand(2, 3, 2, 5).log()).log()
    weight = torch.randn(2, 3, 6)
    out = q(motion, gumbel)
    (out.quantized * weight).sum().backward()

    m = motion.detach().clone().requires_grad_(True)
    d2 = ((m.view(2, 3, 2, 1, 3) - q.codebook.detach()) ** 2).sum(-1)            # [2, 3, 2, 5]
    soft = ((-alpha * d2 + gumbel) / tau).softmax(-1)
    relaxed = torch.einsum("btnk,nkd->btnd", soft, q.codebook.detach()).reshape(2, 3, 6)
    (relaxed * weight).sum().backward()
    hard = q.codebook.detach()[torch.arange(2), (-alpha * d2 + gumbel).argmax(-1)].reshape(2, 3, 6)
    assert torch.allclose(out.quantized, hard, atol=1e-6)
    assert torch.allclose(motion.grad, m.grad, atol=1e-5)
    assert q.codebook.grad.abs().sum() > 0


def test_training_codes_are_samples_of_the_code_distribution():
    # Gumbel-max: the frequency of each sampled code matches softmax(logits), whatever tau.
    q = make(groups=1, size=4, dim=2, tau=0.3).train()
    motion = torch.randn(1, 1, 2).expand(4000, 1, 2)
    codes = q(motion).codes.flatten()
    p = q.logits(motion[:1]).softmax(-1).flatten()
    freq = torch.bincount(codes, minlength=4).float() / codes.numel()
    assert torch.allclose(freq, p, atol=0.03)


def test_rate_penalty_moves_information_toward_target():
    torch.manual_seed(0)
    q = make(groups=2, size=16, dim=2).train()
    motion = torch.nn.Parameter(torch.randn(64, 1, 4) * 0.1)   # all frames alike: little information
    opt = torch.optim.Adam([motion, q.codebook], lr=0.05)
    target = 4.0
    start = q(motion).rate_bits.item()
    for _ in range(150):
        loss = (q(motion).rate_bits - target) ** 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = q(motion).rate_bits.item()
    assert abs(end - target) < abs(start - target) / 2


def test_usage_tracks_hard_codes_and_prices_them():
    q = make(groups=1, size=4, dim=2, alpha=1000.0).train()
    frames = q.codebook.detach()[0, 2].expand(32, 1, 2)       # always entry 2
    for _ in range(600):
        out = q(frames)
    assert q.usage[0].argmax() == 2 and q.usage[0, 2] > 0.99
    assert out.code_entropy_bits.item() < 1e-6
    assert out.static_code_bits.item() < 0.05                 # the likely code is cheap
    assert q.static_bits(torch.tensor([[0]])).item() > 5      # an unused one is dear
    stats = q.usage_stats()
    assert stats["entries_used_min"] == 1 and stats["perplexity_mean"] < 1.1
