"""The three rates of an evaluation report, checked on codes whose answers are known."""
import math

import torch

from motionbits.evaluation.rate import coded_rate, group_usage, rate_lines, rate_report
from motionbits.models.quantizer import GroupQuantizer


def test_group_usage_counts_each_group_apart():
    codes = torch.tensor([[0, 5], [1, 5], [2, 5], [3, 5]])          # group 0: 4 entries evenly, group 1: one
    usage = group_usage(codes, 8)
    assert usage["entries_used"] == [4, 1]
    assert usage["perplexity"] == [4.0, 1.0] and usage["entropy_bits"] == [2.0, 0.0]


def test_rates_agree_on_deterministic_codes_and_the_estimate_ignores_spread_alone():
    torch.manual_seed(0)
    frames, groups, k = 4096, 3, 8
    codes = torch.randint(0, 4, (frames, groups))                    # 4 of 8 entries, uniform: 2 bits a group
    logits = torch.full((frames, groups, k), -50.0).scatter(-1, codes[..., None], 50.0)
    report = rate_report(logits, k, "information", ceiling=groups * 3, target=6)
    assert math.isclose(report["controlled_bits_per_frame"], 6.0, abs_tol=0.02)
    assert math.isclose(report["empirical_bits_per_frame"], 6.0, abs_tol=0.02)
    # Miller-Madow adds (m - 1) / (2 n ln 2) per group
    assert math.isclose(report["empirical_bits_per_frame_miller_madow"] - report["empirical_bits_per_frame"],
                        3 * 3 / (2 * frames * math.log(2)), rel_tol=1e-6)
    flat = torch.zeros(frames, groups, k)                            # every frame the same spread distribution
    spread = rate_report(flat, k, "information", ceiling=9, target=6)
    assert abs(spread["controlled_bits_per_frame"]) < 1e-5           # carries nothing
    assert math.isclose(spread["marginal_bits_per_frame"], 9.0, abs_tol=1e-4)


def test_coded_rate_is_the_cross_entropy_under_the_static_tables_plus_little():
    q = GroupQuantizer(2, 8, 2)
    with torch.no_grad():
        q.usage.copy_(torch.tensor([[0.5, 0.25, 0.25, 0, 0, 0, 0, 0]] * 2))
    torch.manual_seed(0)
    codes = torch.multinomial(torch.tensor([0.5, 0.25, 0.25]), 2 * 5000, replacement=True).view(5000, 2)
    cross_entropy = -torch.log2(torch.tensor([0.5, 0.25, 0.25]))[codes].sum(-1).mean().item()   # bits per frame
    assert cross_entropy - 0.001 <= coded_rate(q, codes) < cross_entropy + 0.01


def test_the_coded_rate_is_what_encode_writes_adaptive_beside_static():
    """Clips [clips, T, N] coded as the encoder writes them: a packet per window (length, CRC-8 and
    code word end beyond the codes), tables afresh per clip; adaptive tables learn a clip whose codes
    the training frequencies do not expect."""
    from motionbits.codec.entropy import AdaptiveModel, StaticModel, frame_bits

    q = GroupQuantizer(2, 8, 2)
    with torch.no_grad():
        q.usage.copy_(torch.tensor([[0.5, 0.25, 0.25, 0, 0, 0, 0, 0]] * 2))
    codes = torch.full((6, 32, 2), 2)                                   # every clip holds one entry throughout
    codes[:, ::5] = 0
    ideal = {tables: sum(frame_bits(clip, model()).sum() for clip in codes.numpy()) / (6 * 32)
             for tables, model in (("static", lambda: StaticModel.of(q)), ("adaptive", lambda: AdaptiveModel.of(q)))}
    static, adaptive = coded_rate(q, codes, 4), coded_rate(q, codes, 4, "adaptive")
    for coded, tables in ((static, "static"), (adaptive, "adaptive")):
        assert ideal[tables] < coded <= ideal[tables] + (16 + 10) / 4, tables   # 8 packets a clip
    assert adaptive < static
    report = rate_report(torch.randn(10, 2, 8), 8, "information", 6, 4, static, adaptive)
    lines = "\n".join(rate_lines(report))
    assert f"under adaptive tables (what encode writes without a prior) | {adaptive:.2f} |" in lines
    assert f"under the static tables (encode --tables static) | {static:.2f} |" in lines
