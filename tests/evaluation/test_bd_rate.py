import math

import pytest

from motionbits.evaluation.bd_rate import bd_rate


def curve(metric_values, scale=1.0, log_rate=lambda m: 0.002 * m ** 3 - 0.1 * m ** 2 + 2 * m - 10):
    """Points (rate, metric) on a cubic curve of log-rate against the metric, the rate times `scale`."""
    return [(scale * math.exp(log_rate(m)), m) for m in metric_values]


def test_the_same_curve_at_half_or_twice_the_rate_is_minus_50_or_plus_100_percent():
    reference = curve([28, 31, 34, 37, 40])
    # the test's points sit elsewhere on its curve: the fit, not the sampling, gives the answer
    half = bd_rate(reference, curve([30, 33.5, 36, 38.5], scale=0.5), "psnr")
    assert half.percent == pytest.approx(-50.0, abs=1e-6) and half.overlap == (30, 38.5)
    assert bd_rate(reference, curve([29, 32, 35, 39], scale=2.0)).percent == pytest.approx(100.0, abs=1e-6)
    assert bd_rate(reference, reference).percent == pytest.approx(0.0, abs=1e-9)


def test_a_metric_better_low_compares_at_equal_metric_values():
    """AKD falls as the rate rises: the gap is still taken at equal AKD."""
    akd_curve = lambda m: 1.0 - 20 * m     # noqa: E731  log-rate falls as AKD grows
    reference = curve([0.02, 0.04, 0.06, 0.08], log_rate=akd_curve)
    test = curve([0.03, 0.05, 0.07], scale=1 / 3, log_rate=akd_curve)
    assert bd_rate(reference, test, "akd").percent == pytest.approx(100 * (1 / 3 - 1), abs=1e-6)


def test_no_number_without_overlap_or_without_a_curve():
    reference = curve([30, 33, 36])
    apart = bd_rate(reference, curve([37, 39, 41], scale=0.5), "csim")
    assert apart.percent is None and "do not overlap" in apart.note and "csim" in apart.note
    one = bd_rate(reference, [(1.0, 35.0), (2.0, None)])
    assert one.percent is None and "test has 1 distinct" in one.note
