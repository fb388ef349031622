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
3. the coded rate: the bits a frame of the motion packets `motionbits encode` writes for each
   evaluated clip (codec/stream.py: a packet per window, its length, CRC-8 and code word end
   included; the file's header, content and end packet, paid once a clip, left out), under the
   tables the default encoder uses without a prior (adaptive, started afresh each clip) and under
   the checkpoint's static per-group tables.
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


def coded_rate(quantizer, codes: torch.Tensor, window: int | None = None, tables: str = "static") -> float:
    """Bits per frame of codes under the quantizer's static or adaptive tables (codec/entropy.py).
    window None: codes [..., N] in one code word. window W: codes [..., T, N], each clip [T, N] as
    the encoder writes its motion, packets of W frames (codec/format.py motion_packet), the
    tables started afresh each clip."""
    from motionbits.codec.entropy import AdaptiveModel, StaticModel, encode_codes
    from motionbits.codec.format import motion_packet

    def model():
        return AdaptiveModel.of(quantizer) if tables == "adaptive" else StaticModel.of(quantizer)

    codes = torch.as_tensor(codes).cpu().numpy()
    if window is None:
        flat = codes.reshape(-1, codes.shape[-1])
        return 8 * len(encode_codes(flat, model())) / flat.shape[0]
    clips = codes.reshape(-1, *codes.shape[-2:])                                       # [clips, T, N]
    bits = 0
    for clip in clips:
        tables_of_clip = model()
        for start in range(0, len(clip), window):
            end = min(start + window, len(clip))
            bits += 8 * len(motion_packet(encode_codes(clip[:end], tables_of_clip, start=start, full=window)))
    return bits / (clips.shape[0] * clips.shape[1])


def rate_report(logits: torch.Tensor, codebook_size: int, estimate: str, ceiling: float, target: float,
                coded_bits_per_frame: float | None = None, coded_adaptive_bits_per_frame: float | None = None) -> dict:
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
        "coded_bits_per_frame": coded_bits_per_frame,                       # static tables
        "coded_adaptive_bits_per_frame": coded_adaptive_bits_per_frame,     # the default encoder without a prior
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
    adaptive = rate.get("coded_adaptive_bits_per_frame")
    return [
        f"| rate: controlled estimate ({rate['estimate']}), bits per frame | {rate['controlled_bits_per_frame']:.2f}"
        f"{kbps(rate['controlled_bits_per_frame'])} (target {rate['target_bits_per_frame']:g}, ceiling "
        f"{rate['ceiling_bits_per_frame']:g}) |",
        f"| rate: empirical entropy of the test codes (plug-in, summed over groups; Miller-Madow) | "
        f"{rate['empirical_bits_per_frame']:.2f} ({rate['empirical_bits_per_frame_miller_madow']:.2f}){kbps(rate['empirical_bits_per_frame'])} |",
        f"| rate: coded, motion packets under adaptive tables (what encode writes without a prior) | "
        + ("n/a |" if adaptive is None else f"{adaptive:.2f}{kbps(adaptive)} |"),
        f"| rate: coded, motion packets under the static tables (encode --tables static) | "
        + ("n/a |" if coded is None else f"{coded:.2f}{kbps(coded)} |"),
        f"| codebook: entries used per group (min / mean / max of {len(used)}) | {min(used)} / "
        f"{sum(used) / len(used):.1f} / {max(used)} |",
        f"| codebook: perplexity per group (min / mean / max) | {min(perplexity):.2f} / "
        f"{sum(perplexity) / len(perplexity):.2f} / {max(perplexity):.2f} |",
    ]
