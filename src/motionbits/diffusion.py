"""EDM diffusion (Karras et al. 2022): preconditioning, training loss and a few-step sampler.

The network F sees c_in * x and c_noise = ln(sigma)/4; the denoised estimate is
    D(x; sigma) = c_skip * x + c_out * F(c_in * x, c_noise)
with c_skip = sd^2/(s^2+sd^2), c_out = s*sd/sqrt(s^2+sd^2), c_in = 1/sqrt(s^2+sd^2).
Training draws ln(sigma) ~ N(P_mean, P_std^2) and weights the squared error by
(s^2+sd^2)/(s*sd)^2, which makes every noise level's loss O(1). Sampling integrates the
probability-flow ODE over the rho-spaced sigma schedule with Euler or Heun steps.
"""
from __future__ import annotations

from typing import Callable

import torch

from motionbits.config import DiffusionConfig
from motionbits.errors import MotionbitsError

# net(x_scaled [B,T,C,h,w], c_noise [B,T]) -> F [B,T,C,h,w]
NetFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape(*v.shape, *([1] * (like.dim() - v.dim())))


def network_calls(steps: int, sampler: str) -> int:
    """Denoiser evaluations of one sample: Euler one per level, Heun two except at the last."""
    return steps if sampler == "euler" else 2 * steps - 1


class EDM:
    def __init__(self, cfg: DiffusionConfig):
        self.cfg = cfg

    @property
    def sigma_data(self) -> float:
        if self.cfg.sigma_data is None:
            raise MotionbitsError("diffusion.sigma_data is unset: training measures it on the data, or set it in the config")
        return self.cfg.sigma_data

    def denoise(self, net: NetFn, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """x [B,T,...] noisy, sigma [B,T] -> D(x; sigma), the estimate of the clean latent."""
        sd = self.sigma_data
        s = _bcast(sigma, x)
        c_skip = sd ** 2 / (s ** 2 + sd ** 2)
        c_out = s * sd / (s ** 2 + sd ** 2).sqrt()
        c_in = 1 / (s ** 2 + sd ** 2).sqrt()
        out = net(c_in * x, sigma.log() / 4)
        return c_skip * x + c_out * out.float()

    def sample_sigma(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
        normal = torch.randn(shape, generator=generator, device=device)
        return (self.cfg.p_mean + self.cfg.p_std * normal).exp()

    def loss(self, net: NetFn, x0: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor,
             where: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted denoising loss per frame [B, T]; x0, noise [B,T,C,h,w]; sigma [B,T]; `where` [h, w]:
        how much each latent cell counts (None: all alike)."""
        sd = self.sigma_data
        denoised = self.denoise(net, x0 + _bcast(sigma, x0) * noise, sigma)
        weight = (sigma ** 2 + sd ** 2) / (sigma * sd) ** 2
        error = (denoised - x0).pow(2)
        if where is not None:
            error = error * where
        return weight * error.flatten(2).mean(-1)

    def schedule(self, steps: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """steps+1 noise levels from sigma_max down to sigma_min, then 0 (rho-spaced)."""
        c = self.cfg
        ramp = torch.linspace(0, 1, steps, device=device)
        inv_rho = 1 / c.rho
        sigmas = (c.sigma_max ** inv_rho + ramp * (c.sigma_min ** inv_rho - c.sigma_max ** inv_rho)) ** c.rho
        return torch.cat([sigmas, sigmas.new_zeros(1)])

    @torch.no_grad()
    def sample(self, net: NetFn, noise: torch.Tensor, steps: int | None = None,
               sampler: str | None = None) -> torch.Tensor:
        """Deterministic ODE sampling from noise [B,T,C,h,w] (unit variance); steps = number of
        noise levels visited (Heun uses 2*steps-1 network calls, Euler uses steps)."""
        steps = steps or self.cfg.sample_steps
        sampler = sampler or self.cfg.sampler
        sigmas = self.schedule(steps, noise.device)
        x = noise * sigmas[0]
        lead = noise.shape[:2]
        for i in range(steps):
            s, s_next = sigmas[i], sigmas[i + 1]
            d = (x - self.denoise(net, x, s.expand(lead))) / s
            x_next = x + (s_next - s) * d
            if sampler == "heun" and s_next > 0:
                d_next = (x_next - self.denoise(net, x_next, s_next.expand(lead))) / s_next
                x_next = x + (s_next - s) * (d + d_next) / 2
            x = x_next
        return x
