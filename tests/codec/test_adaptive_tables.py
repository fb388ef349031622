"""Motion coded near its entropy: synthetic code sequences with a known distribution cost within 1 %
of that distribution's entropy, under its own table and under adaptive tables that start from
another one (a clip whose codes differ from training's)."""
import numpy as np

from motionbits.codec.entropy import AdaptiveModel, StaticModel, decode_codes, encode_codes, frame_bits, quantize_frequencies

FRAMES, GROUPS, ENTRIES = 10_000, 4, 16


def _known_sequence(seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """-> (each group's distribution [N, K_e], codes [T, N] drawn from it, the entropy of T frames in bits)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(ENTRIES, 0.5), size=GROUPS)                       # [N, K_e], a few likely codes
    codes = np.stack([rng.choice(ENTRIES, size=FRAMES, p=p[g]) for g in range(GROUPS)], axis=1)
    entropy = FRAMES * -(p * np.log2(p)).sum()
    return p, codes, entropy


def test_codes_of_a_known_distribution_cost_its_entropy_under_its_table():
    p, codes, entropy = _known_sequence(0)
    model = StaticModel(quantize_frequencies(p))
    data = encode_codes(codes, model)
    assert abs(8 * len(data) - entropy) <= 0.01 * entropy, (8 * len(data), entropy)
    assert np.array_equal(decode_codes(data, FRAMES, GROUPS, model), codes)


def test_adaptive_tables_learn_codes_that_differ_from_training_down_to_their_entropy():
    p, codes, entropy = _known_sequence(1)
    training = quantize_frequencies(np.random.default_rng(2).dirichlet(np.full(ENTRIES, 0.5), size=GROUPS))
    static = 8 * len(encode_codes(codes, StaticModel(training)))
    model = AdaptiveModel(training)
    data = encode_codes(codes, model)
    assert static > 1.5 * entropy                                    # training's tables fit this clip badly
    assert abs(8 * len(data) - entropy) <= 0.01 * entropy, (8 * len(data), entropy, static)
    assert np.array_equal(decode_codes(data, FRAMES, GROUPS, model), codes)   # the same object starts afresh
    bits = frame_bits(codes, AdaptiveModel(training))
    assert bits.sum() <= 8 * len(data) <= bits.sum() + 64            # each frame's cost adds up to the stream
    assert bits[:10].mean() > 1.5 * bits[-1000:].mean()               # early frames pay for the wrong start


def test_adaptive_tables_start_from_the_static_table():
    """Before any code is counted the adaptive table is training's table (requantised: within a few
    2^16ths); one frame later it has moved toward that frame's codes."""
    freq = quantize_frequencies(np.random.default_rng(3).dirichlet(np.ones(ENTRIES), size=GROUPS))
    model = AdaptiveModel(freq)
    assert np.abs(model.frame(np.zeros((0, GROUPS), np.int64)).freq - freq).max() <= 4
    frame = np.array([[0, 1, 2, 3]])
    later = model.frame(frame).freq
    rows = np.arange(GROUPS)
    assert (later[rows, frame[0]] > freq[rows, frame[0]]).all() and (later.sum(1) == freq.sum(1)).all()
