"""The motion rate of a model on test clips, three ways, side by side (bits per frame):

1. the controlled estimate: what training holds at the target (model.rate_estimate), computed here
   on the test frames' code logits: `information` = I(frame; code) = H(mean_x p) - mean_x H(p) with
   p = softmax(logits), or `marginal` = H(mean_x p), the entropy of the code distribution averaged
   over the frames (the expectation of the paper's sampling histogram);
2. the empirical entropy of the hard (argmax) test codes: per group, the plug-in entropy of the
   code frequencies, summed over groups. The plug-in estimate is biased low by about
   (m_g - 1) / (2 n ln 2) bits per group (Miller-Madow; m_g entries seen, n frames), which is
   reported beside it; summing groups ignores their dependence, so it is also an upper bound on
   the joint entropy;
3. the coded rate: the size of the range-coded motion stream (motionbits.codec) under the
   checkpoint's static per-group tables, per frame, with the evaluated clips' codes in one stream
   (a .mbits file of one clip adds a fixed overhead: its header, content and the coder's last word).
Plus codebook usage per group: entries used and perplexity (2 ** entropy).
"""
from __future__ import annotations

import math

import torch

from motionbits.models.quantizer import entropy_bits, information_bits


def group_usage(codes: torch.Tensor, codebook_size: int) -> dict[str, list]:
    """codes [M, N] (M frames) -> per group: entries used, perplexity, plug-in entropy in bits."""
    codes = torch.as_tensor(codes).long().reshape(-1, codes.shape[-1])
    m, n = codes.shape
    offsets = torch.arange(n, device=codes.device) * codebook_size
    counts = torch.bincount((codes + offsets).flatten(), minlength=n * codebook_size).view(n, codebook_size).double()
    p = counts / m
    entropy = -(p * torch.log2(p.clamp_min(1e-300))).sum(1)                           # [N] bits
    return {"entries_used": (counts > 0).sum(1).tolist(), "perplexity": (2 ** entropy).tolist(),
            "entropy_bits": entropy.tolist()}


def coded_rate(quantizer, codes: torch.Tensor) -> float:
    """Bits per frame of codes [..., N] range-coded in one stream under the quantizer's static tables."""
    from motionbits.codec.entropy import StaticModel, encode_codes

    flat = codes.reshape(-1, codes.shape[-1])
    return 8 * len(encode_codes(flat, StaticModel.of(quantizer))) / flat.shape[0]


def rate_report(logits: torch.Tensor, codebook_size: int, estimate: str, ceiling: float, target: float,
                coded_bits_per_frame: float | None = None) -> dict:
    """logits [M, N, K_e] of M test frames -> the three rates and per-group usage (module docstring)."""
    logits = logits.float().reshape(-1, *logits.shape[-2:])
    codes = logits.argmax(-1)                                                          # [M, N]
    usage = group_usage(codes, codebook_size)
    frames = codes.shape[0]
    plug_in = float(sum(usage["entropy_bits"]))
    bias = sum((used - 1) / (2 * frames * math.log(2)) for used in usage["entries_used"])
    information = information_bits(logits[:, None]).item()
    marginal = entropy_bits(logits.softmax(-1).mean(0)).item()
    return {
        "estimate": estimate,
        "controlled_bits_per_frame": information if estimate == "information" else marginal,
        "information_bits_per_frame": information,
        "marginal_bits_per_frame": marginal,
        "empirical_bits_per_frame": plug_in,
        "empirical_bits_per_frame_miller_madow": plug_in + bias,
        "coded_bits_per_frame": coded_bits_per_frame,
        "target_bits_per_frame": target,
        "ceiling_bits_per_frame": ceiling,
        "frames": frames,
        "groups": usage,
    }


def rate_lines(rate: dict, fps: float | None = None) -> list[str]:
    """Markdown table rows of a rate_report (kbps where the frame rate is known)."""
    def kbps(bits: float | None) -> str:
        return "" if bits is None or not fps else f" ({bits * fps / 1000:.3f} kbps at {fps:g} fps)"

    used = rate["groups"]["entries_used"]
    perplexity = rate["groups"]["perplexity"]
    coded = rate["coded_bits_per_frame"]
    return [
        f"| rate: controlled estimate ({rate['estimate']}), bits per frame | {rate['controlled_bits_per_frame']:.2f}"
        f"{kbps(rate['controlled_bits_per_frame'])} (target {rate['target_bits_per_frame']:g}, ceiling "
        f"{rate['ceiling_bits_per_frame']:g}) |",
        f"| rate: empirical entropy of the test codes (plug-in, summed over groups; Miller-Madow) | "
        f"{rate['empirical_bits_per_frame']:.2f} ({rate['empirical_bits_per_frame_miller_madow']:.2f}){kbps(rate['empirical_bits_per_frame'])} |",
        f"| rate: coded, entropy-coded motion stream | "
        + ("n/a |" if coded is None else f"{coded:.2f}{kbps(coded)} |"),
        f"| codebook: entries used per group (min / mean / max of {len(used)}) | {min(used)} / "
        f"{sum(used) / len(used):.1f} / {max(used)} |",
        f"| codebook: perplexity per group (min / mean / max) | {min(perplexity):.2f} / "
        f"{sum(perplexity) / len(perplexity):.2f} / {max(perplexity):.2f} |",
    ]
