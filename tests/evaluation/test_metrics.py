"""Metrics on hand-computable cases."""
from __future__ import annotations

import math

import pytest
import torch

from motionbits.evaluation.metrics import accuracy, motion_distribution_scores, psnr, ssim


def test_accuracy_probs_and_logits():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 0])
    assert accuracy(logits, labels) == pytest.approx(0.75)
    assert accuracy(logits.softmax(-1), labels) == pytest.approx(0.75)
    # Multi-head scores [N, A, C] with labels [N, A].
    assert accuracy(torch.eye(3).expand(2, 3, 3), torch.tensor([[0, 1, 2], [0, 1, 0]])) == pytest.approx(5 / 6)
    with pytest.raises(ValueError):
        accuracy(logits, labels[:3])


def test_motion_scores_one_hot_balanced():
    # Confident and diverse: H(y|x) = 0, H(y) = log C, IS = C.
    c = 9
    probs = torch.eye(c).repeat(4, 1)  # [36, 9], every class equally often
    s = motion_distribution_scores(probs)
    assert s["h_y_given_x"] == pytest.approx(0.0, abs=1e-9)
    assert s["h_y"] == pytest.approx(math.log(c))
    assert s["inception_score"] == pytest.approx(c)


def test_motion_scores_uniform_and_collapsed():
    # Uniform predictions: H(y|x) = H(y) = log C, IS = 1.
    u = motion_distribution_scores(torch.full((10, 9), 1 / 9))
    assert u["h_y_given_x"] == pytest.approx(math.log(9))
    assert u["h_y"] == pytest.approx(math.log(9))
    assert u["inception_score"] == pytest.approx(1.0)
    # Always the same confident class: H(y|x) = H(y) = 0, IS = 1.
    one = torch.zeros(5, 9)
    one[:, 3] = 1
    s = motion_distribution_scores(one)
    assert s["h_y"] == pytest.approx(0.0, abs=1e-9) and s["inception_score"] == pytest.approx(1.0)


def test_motion_scores_mixed_case():
    # Two samples, p(y|x) = [1, 0] and [0.5, 0.5]: p(y) = [0.75, 0.25].
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    s = motion_distribution_scores(p)
    h_y = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    h_yx = 0.5 * math.log(2)
    assert s["h_y"] == pytest.approx(h_y)
    assert s["h_y_given_x"] == pytest.approx(h_yx)
    assert s["inception_score"] == pytest.approx(math.exp(h_y - h_yx))


def test_psnr():
    a = torch.rand(3, 3, 8, 8) * 2 - 1
    assert psnr(a, a) == math.inf
    # Constant error 0.1 -> MSE 0.01 -> 10 log10(4 / 0.01).
    assert psnr(a, a + 0.1) == pytest.approx(10 * math.log10(4 / 0.01))
    # Per-sample then mean: errors 0.1 and 0.2 per sample.
    b = a.clone()
    b[0] += 0.1
    b[1:] += 0.2
    want = (10 * math.log10(400) + 2 * 10 * math.log10(4 / 0.04)) / 3
    assert psnr(a, b) == pytest.approx(want)
    assert psnr(a, a + 0.1, data_range=1.0) == pytest.approx(10 * math.log10(1 / 0.01))


def test_ssim():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 4, 3, 32, 32, generator=g) * 2 - 1  # leading dims are flattened
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    assert ssim(a, a * 0.9, chunk=3) == pytest.approx(ssim(a, a * 0.9))  # chunks: same mean
    small = ssim(a, (a + 0.05 * torch.randn(a.shape, generator=g)).clamp(-1, 1))
    large = ssim(a, (a + 0.5 * torch.randn(a.shape, generator=g)).clamp(-1, 1))
    assert 1.0 > small > large
    # Constant images with different means: structure term 1, luminance term only.
    x, y = torch.zeros(1, 1, 16, 16), torch.full((1, 1, 16, 16), 0.5)
    c1 = (0.01 * 2) ** 2
    assert ssim(x, y) == pytest.approx(c1 / (0.25 + c1))


def test_linear_probe_reads_a_linear_label_and_not_noise():
    from motionbits.evaluation.content_probe import linear_probe_accuracy

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(600, 12, generator=gen)
    y = (x @ torch.randn(12, 3, generator=gen)).argmax(-1)     # 3 classes, linearly separable
    assert linear_probe_accuracy(x[:400], y[:400], x[400:], y[400:], 3) > 0.9
    noise = torch.randint(0, 3, (600,), generator=gen)
    assert linear_probe_accuracy(x[:400], noise[:400], x[400:], noise[400:], 3) < 0.5


def test_flicker_sees_frame_to_frame_noise_not_a_steady_offset():
    from motionbits.evaluation.metrics import flicker

    gen = torch.Generator().manual_seed(0)
    real = torch.rand(2, 6, 3, 8, 8, generator=gen) * 2 - 1
    assert flicker(real, real) == 0
    assert flicker(real + 0.2, real) < 1e-6                       # off by a constant: no flicker
    noisy = real + 0.1 * torch.randn(real.shape, generator=gen)   # fresh noise in every frame
    assert flicker(noisy, real) > 0.02
