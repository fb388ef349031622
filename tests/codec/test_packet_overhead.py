"""What a motion packet costs beyond its codes' information: a synthetic code stream of a face
model's shape (16 groups x 16 entries, about 9 bits a frame, as the C-far face model's codes
cost under its prior) from a known distribution, coded in the stream's motion packets."""
import numpy as np
import pytest

from motionbits.codec.entropy import StaticModel, decode_codes, encode_codes, quantize_frequencies
from motionbits.codec.format import motion_packet

GROUPS, ENTRIES, FRAMES, WINDOW = 16, 16, 400, 4


def _source() -> tuple[np.ndarray, np.ndarray]:
    """(p [GROUPS, ENTRIES], codes [FRAMES, GROUPS] drawn from it): one likely entry per group."""
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(ENTRIES, 0.3), size=GROUPS) * 0.1
    p[np.arange(GROUPS), rng.integers(0, ENTRIES, GROUPS)] += 0.9
    codes = np.stack([rng.choice(ENTRIES, size=FRAMES, p=p[g]) for g in range(GROUPS)], axis=1)
    return p, codes


def _packets(codes: np.ndarray, model, frames_a_packet: int) -> list[bytes]:
    return [motion_packet(encode_codes(codes[:start + frames_a_packet], model, start=start, full=frames_a_packet))
            for start in range(0, len(codes), frames_a_packet)]


def test_the_codes_information_is_the_source_s():
    p, codes = _source()
    information = -np.log2(p[np.arange(GROUPS), codes]).sum() / FRAMES
    assert 8 < information < 11                     # about the face prior's 8.3 bits a frame
    model = StaticModel(quantize_frequencies(p))
    one_word = 8 * len(encode_codes(codes, model)) / FRAMES
    assert information <= one_word <= 1.01 * information          # one code word: within 1 % of the entropy


@pytest.mark.parametrize("windows,most", [(1, 1.65), (8, 1.08)])
def test_a_motion_packet_costs_its_codes_plus_about_21_bits(windows, most):
    """Length (1 byte) + CRC-8 (1 byte) + the code word's end (5 bits on average): packets of one
    window of 4 frames (3 frames of look-ahead) cost 1.55x the information, of 8 windows 1.07x.
    Format 4 paid 56 bits of framing and a 32-bit coder flush a packet: 3.1x at one window."""
    p, codes = _source()
    model = StaticModel(quantize_frequencies(p))
    frames_a_packet = windows * WINDOW
    packets = _packets(codes, model, frames_a_packet)
    information = -np.log2(model.freq[np.arange(GROUPS), codes] / 65536).sum()
    coded = 8 * sum(len(packet) for packet in packets)
    extra_a_packet = (coded - information) / len(packets)
    assert 16 <= extra_a_packet <= 23, extra_a_packet
    assert coded <= most * information
    rows = np.zeros((FRAMES, GROUPS), dtype=np.int64)
    for i, packet in enumerate(packets):            # each packet decodes on its own, its frame count inside
        start = i * frames_a_packet
        decoded = decode_codes(packet[1:-1], None, GROUPS, model, into=rows, start=start, full=frames_a_packet)
        assert np.array_equal(decoded, codes[start:start + frames_a_packet])


def test_the_last_short_packet_says_how_many_frames_it_holds():
    p, codes = _source()
    model = StaticModel(quantize_frequencies(p))
    word = encode_codes(codes[:6], model, start=4, full=WINDOW)     # 2 frames of a packet of 4
    rows = np.zeros((WINDOW * 2, GROUPS), dtype=np.int64)
    rows[:4] = codes[:4]
    assert np.array_equal(decode_codes(word, None, GROUPS, model, into=rows, start=4, full=WINDOW), codes[4:6])
    full = encode_codes(codes[:8], model, start=4, full=WINDOW)
    with pytest.raises(ValueError):                 # a cut code word is not the code word of what it decodes to
        decode_codes(full[:-1], None, GROUPS, model, into=rows, start=4, full=WINDOW)
