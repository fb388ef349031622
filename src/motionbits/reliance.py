"""Decoder reliance: does the denoiser use the motion codes it is given?

A decoder that keeps the person but barely follows the driver may simply ignore its codes and draw
an average motion from the content. This instrument asks the denoiser directly. On fixed clips, it
computes the model's own EDM denoising loss (diffusion.py, the training loss without the rate term)
of the frames the content did not see (the second half under cross-driving, as in training; the
whole clip otherwise), given the clip's content and four sets of motion codes:
- own:      the clip's own codes (hard codes, as inference reads them);
- shuffled: the same codes in another order in time (a fixed derangement of those frames);
- held:     every frame gets the codes of the clip's first frame, in the content's window (no motion);
- other:    the codes of another clip at the same frames (another person's where the data has
            identities, else the next clip's).
Every variant sees the same noise draw (a fixed seed), at fixed noise levels sigma (SIGMAS), so the
only difference between two losses is the codes. Reported per sigma and variant:

    gap = (L_variant - L_own) / L_own

0 means the codes are not used: wrong codes denoise as well as the right ones. 0.5 means the wrong
codes cost 50 % more denoising error at that noise level. At low sigma the noisy frame itself
shows most of the motion and every gap is small; at high sigma the frame is mostly noise and the
codes are the only source of the motion, so a decoder that relies on them shows its largest gaps
there. A negative gap (wrong codes denoise better) means the codes mislead the decoder.
"""
from __future__ import annotations

import numpy as np
import torch

from motionbits.errors import MotionbitsError
from motionbits.models.bcd import BCDModel
from motionbits.models.tokenizer import frames_to_float

SIGMAS = (0.5, 2.0, 5.0, 10.0, 20.0)
VARIANTS = ("shuffled", "held", "other")
CLIPS = 4                    # clips per split while training: a few are enough to see a gap, at a small cost
EVAL_CLIPS = 16              # clips per split in `motionbits evaluate`


def sigma_key(sigma: float) -> str:
    return f"{sigma:g}"


def spread(n_clips: int, count: int) -> torch.Tensor:
    """`count` clip indices spread evenly over a split of n_clips (fixed: no seed to forget)."""
    return torch.linspace(0, n_clips - 1, min(count, n_clips)).round().long().unique()


def derangement(n: int, generator: torch.Generator) -> torch.Tensor:
    """A random order of n >= 2 items in which none keeps its place."""
    while True:
        order = torch.randperm(n, generator=generator)
        if not (order == torch.arange(n)).any():
            return order


def partners(identity: np.ndarray | None, n: int) -> torch.Tensor:
    """For each of n clips, the next clip (cyclically) of another identity; the next clip when every
    clip has the same identity or none is known."""
    out = []
    for i in range(n):
        others = [(i + k) % n for k in range(1, n) if identity is None or identity[(i + k) % n] != identity[i]]
        out.append(others[0] if others else (i + 1) % n)
    return torch.tensor(out)


def code_variants(codes: torch.Tensor, window: int, identity: np.ndarray | None,
                  generator: torch.Generator) -> dict[str, torch.Tensor]:
    """codes [B, T, N] of whole clips -> {variant: codes [B, window, N] of the last `window` frames}."""
    b, t = codes.shape[:2]
    own = codes[:, t - window:]
    out = {"own": own, "held": codes[:, :1].expand_as(own)}
    if window >= 2:
        out["shuffled"] = own[:, derangement(window, generator)]
    if b >= 2:
        out["other"] = own[partners(identity, b)]
    return out


@torch.no_grad()
def reliance(model: BCDModel, z: torch.Tensor, identity: np.ndarray | None = None,
             sigmas: tuple[float, ...] = SIGMAS, seed: int = 0, lips: torch.Tensor | None = None) -> dict:
    """z [B, T, C, h, w]: latents of fixed clips (T = the training clip length; lips [B, T, 40]:
    their aligned lip points for a model.lip_groups model) ->
    {"clips": B, "loss_own": {sigma: L}, "gap": {variant: {sigma: (L_variant - L_own) / L_own}}}.
    The model is measured in eval mode, in float32, and left in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        generator = torch.Generator().manual_seed(seed)
        window = model.window
        z = z.float()
        content = model.encode_content(z)                                    # [B, K, Cc]
        codes = model.encode_motion(z, lips=lips)                            # [B, T, N]
        target = model.drawn(z[:, z.shape[1] - window:], content)            # [B, W, C, h, w]
        variants = code_variants(codes, window, identity, generator)
        losses: dict[str, dict[str, float]] = {name: {} for name in variants}
        for sigma in sigmas:
            noise = torch.randn(target.shape, generator=generator).to(z.device)   # the same for every variant
            level = torch.full(target.shape[:2], float(sigma), device=z.device)
            for name, c in variants.items():
                motion = model.motion_condition(c)                           # [B, W, Cm]
                net = lambda x, c_noise, m=motion: model.denoiser(x, c_noise, m, content)   # noqa: E731
                losses[name][sigma_key(sigma)] = model.edm.loss(net, target, level, noise).mean().item()
    finally:
        model.train(was_training)
    own = losses.pop("own")
    return {"clips": int(z.shape[0]), "loss_own": own,
            "gap": {name: {k: (v - own[k]) / max(own[k], 1e-12) for k, v in losses[name].items()}
                    for name in VARIANTS if name in losses}}


# ---- fixed clips of a dataset ------------------------------------------------------------------
def split_clips(cfg, split: str, count: int = CLIPS) -> tuple[torch.Tensor, np.ndarray | None]:
    """`count` clips spread over a split of the configured dataset: uint8 frames [n, T, H, W, 3]
    (T = data.frames) and their identities [n] (Sprites: the character; video: the person)."""
    if cfg.data.kind == "sprites":
        from motionbits.data.sprites import load_sprites

        data = load_sprites(cfg.data.root, split)
        frames, identity = data.frames, data.character
    else:
        from motionbits.data.video import load_video_clips

        frames, labels = load_video_clips(cfg.data.root, split)
        identity = labels.get("identity")
    pick = spread(len(frames), count).numpy()
    clips = torch.from_numpy(np.ascontiguousarray(frames[pick][:, : cfg.data.frames]))
    return clips, None if identity is None else np.asarray(identity)[pick]


@torch.no_grad()
def latents_of(tokenizer, frames: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 clips [B, T, H, W, 3] -> the tokenizer's latents [B, T, C, h, w] float32 on the device."""
    z = tokenizer.encode(frames_to_float(frames.flatten(0, 1)).to(device)).float()
    return z.reshape(*frames.shape[:2], *z.shape[1:])


class RelianceClips:
    """The fixed clips of the instrument, as latents: a few training and a few test clips."""

    def __init__(self, splits: dict[str, tuple[torch.Tensor, np.ndarray | None, torch.Tensor]]):
        self.splits = splits                          # {name: (z [B, T, ...], identity, uint8 frames [B, T, H, W, 3])}

    @classmethod
    def of_dataset(cls, cfg, tokenizer, device: torch.device, count: int = CLIPS) -> "RelianceClips":
        """`count` clips of each split; a split the folder lacks or cannot give is left out (a
        training run must not stop over its instrument)."""
        splits = {}
        for split in ("train", "test"):
            try:
                frames, identity = split_clips(cfg, split, count)
            except MotionbitsError:
                continue
            splits[split] = (latents_of(tokenizer, frames, device), identity, frames)
        return cls(splits)

    def measure(self, model: BCDModel, seed: int = 0) -> dict[str, dict]:
        report = {}
        for name, (z, identity, frames) in self.splits.items():
            lips = model.lips_of_frames(frames)
            report[name] = reliance(model, z, identity, seed=seed, lips=None if lips is None else lips.to(z.device))
        return report


def scalars(report: dict[str, dict]) -> dict[str, float]:
    """{split: reliance(...)} -> flat TensorBoard scalars "split/variant/sigma_S"."""
    return {f"{split}/{variant}/sigma_{s}": v for split, r in report.items()
            for variant, by_sigma in r["gap"].items() for s, v in by_sigma.items()}


RELIANCE_NOTE = ("The denoising loss of the frames the content did not see, with the clip's own motion codes, and "
                 "how much larger it is with wrong codes: gap = (loss - own loss) / own loss at each noise level "
                 "sigma, the same noise for every row. 0: the decoder does not use its codes; 1: wrong codes double "
                 "its error (reliance.py).")


def reliance_lines(report: dict[str, dict]) -> list[str]:
    """A markdown table: one row per split and variant, one column per sigma (and the own loss)."""
    if not report:
        return []
    sigmas = list(next(iter(report.values()))["loss_own"])
    lines = ["| clips | codes | " + " | ".join(f"sigma {s}" for s in sigmas) + " |",
             "|---|---|" + "---|" * len(sigmas)]
    for split, r in report.items():
        lines.append(f"| {split} ({r['clips']}) | own: loss | " + " | ".join(f"{r['loss_own'][s]:.4f}" for s in sigmas) + " |")
        for variant, by_sigma in r["gap"].items():
            lines.append(f"| | {variant}: gap | " + " | ".join(f"{by_sigma[s]:+.3f}" for s in sigmas) + " |")
    return lines
