"""The EDM sampler against closed forms: Gaussian data, whose ideal denoiser and probability-flow
ODE are known, so a wrong rho, a wrong sigma schedule or a missing Heun correction shows."""
import math

import pytest
import torch

from motionbits.config import DiffusionConfig
from motionbits.diffusion import EDM

S = 0.7   # the data's standard deviation (not sigma_data: the preconditioning must not matter)


def gaussian_net(edm: EDM):
    """The network output F for which D(x; sigma) = S^2 / (S^2 + sigma^2) x, the ideal denoiser of N(0, S^2)."""
    sd = edm.sigma_data

    def net(x_scaled, c_noise):
        sigma = (4 * c_noise).exp()[..., None, None, None].double()
        x = x_scaled.double() * (sigma ** 2 + sd ** 2).sqrt()
        ideal = S ** 2 / (S ** 2 + sigma ** 2) * x
        c_skip = sd ** 2 / (sigma ** 2 + sd ** 2)
        c_out = sigma * sd / (sigma ** 2 + sd ** 2).sqrt()
        return ((ideal - c_skip * x) / c_out).float()
    return net


def karras_levels(steps: int, lo: float, hi: float, rho: float) -> list[float]:
    return [(hi ** (1 / rho) + i / (steps - 1) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho for i in range(steps)] + [0.0]


def reference_solver(x: float, levels: list[float], heun: bool) -> float:
    """Euler / Heun on dx/dsigma = a(sigma) x, a = sigma / (S^2 + sigma^2), in float64, written out."""
    a = lambda s: s / (S ** 2 + s ** 2)  # noqa: E731
    for s, s_next in zip(levels[:-1], levels[1:]):
        h = s_next - s
        euler = x + h * a(s) * x
        x = x + h * (a(s) * x + a(s_next) * euler) / 2 if heun and s_next > 0 else euler
    return x


@pytest.mark.parametrize("sampler,steps", [("heun", 3), ("heun", 6), ("euler", 4)])
def test_sampler_takes_exactly_the_karras_steps(sampler, steps):
    cfg = DiffusionConfig(sigma_data=0.5, sigma_min=0.01, sigma_max=10.0, rho=5.0)
    edm = EDM(cfg)
    noise = torch.randn(64, 1, 1, 2, 2)
    out = edm.sample(gaussian_net(edm), noise, steps=steps, sampler=sampler)
    levels = karras_levels(steps, cfg.sigma_min, cfg.sigma_max, cfg.rho)
    expected = reference_solver(1.0, levels, sampler == "heun") * cfg.sigma_max * noise
    assert torch.allclose(out, expected, rtol=1e-4, atol=1e-5)
    assert torch.allclose(edm.schedule(steps).double(), torch.tensor(levels, dtype=torch.float64), rtol=1e-5)


def test_heun_is_second_order_and_euler_first_order():
    edm = EDM(DiffusionConfig(sigma_data=0.5, sigma_min=0.002, sigma_max=20.0))
    noise = torch.ones(1, 1, 1, 1, 1)
    # the probability-flow ODE from sigma_max down to sigma_min, then the last step to 0 (x -> D(x))
    exact = 20.0 * math.sqrt((S ** 2 + 0.002 ** 2) / (S ** 2 + 20.0 ** 2)) * S ** 2 / (S ** 2 + 0.002 ** 2)

    def error(sampler: str, steps: int) -> float:
        return abs(edm.sample(gaussian_net(edm), noise.double(), steps=steps, sampler=sampler).item() - exact)

    heun_ratio = error("heun", 16) / error("heun", 32)
    euler_ratio = error("euler", 16) / error("euler", 32)
    assert 3.0 < heun_ratio < 5.5      # halving the step divides the error by ~4
    assert 1.5 < euler_ratio < 2.8     # ... by ~2


def test_samples_have_the_data_distribution():
    edm = EDM(DiffusionConfig(sigma_data=0.5, sigma_min=0.002, sigma_max=40.0))
    torch.manual_seed(0)
    out = edm.sample(gaussian_net(edm), torch.randn(4000, 1, 1, 1, 1), steps=24, sampler="heun")
    assert abs(out.std().item() - S) < 0.03 and abs(out.mean().item()) < 0.04


def test_training_loss_is_weighted_so_every_noise_level_starts_at_one():
    # An untrained network (F = 0) at sigma: D = c_skip x, and the EDM weight makes E[loss] = 1
    # for data of std sigma_data, at any sigma.
    edm = EDM(DiffusionConfig(sigma_data=0.5))
    torch.manual_seed(0)
    x0 = torch.randn(2000, 1, 1, 2, 2) * 0.5
    for sigma in (0.05, 1.0, 30.0):
        s = torch.full((2000, 1), sigma)
        loss = edm.loss(lambda x, c: torch.zeros_like(x), x0, s, torch.randn_like(x0))
        assert abs(loss.mean().item() - 1.0) < 0.08, sigma


def test_loss_map_weighs_the_mouths_cells_and_keeps_the_losss_scale():
    from motionbits.models.bcd import mouth_loss_map

    where = mouth_loss_map(16, 8.0)
    heavy = (where > where.min()).nonzero()
    assert heavy[:, 0].unique().tolist() == [10, 11, 12] and heavy[:, 1].unique().tolist() == [6, 7, 8, 9]
    assert where.mean().item() == pytest.approx(1.0) and where.max() / where.min() == pytest.approx(8.0)
    assert mouth_loss_map(16, 1.0) is None
    # The same error costs 8 times more in a mouth cell than elsewhere; an even error costs as before.
    edm = EDM(DiffusionConfig(sigma_data=0.5))
    x0, sigma, noise = torch.zeros(1, 1, 1, 16, 16), torch.full((1, 1), 1.0), torch.zeros(1, 1, 1, 16, 16)

    def miss(row, col):                     # a network whose output is wrong in one cell only
        def net(x, c):
            out = torch.zeros_like(x)
            out[..., row, col] = 1.0
            return out
        return net

    mouth = edm.loss(miss(11, 7), x0, sigma, noise, where)
    cheek = edm.loss(miss(2, 2), x0, sigma, noise, where)
    assert (mouth / cheek).item() == pytest.approx(8.0)
    assert edm.loss(lambda x, c: torch.ones_like(x), x0, sigma, noise, where).item() == pytest.approx(
        edm.loss(lambda x, c: torch.ones_like(x), x0, sigma, noise).item())
