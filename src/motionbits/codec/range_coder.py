"""A range coder whose code word ends as soon as it can: a packet of a few symbols costs their
information plus at most a byte, not a 32-bit flush.

Symbols are coded under integer frequencies out of 2**FREQUENCY_BITS (codec/entropy.py). The
encoder keeps the interval [low, low + range) of the code word, in units of 2**-(PRECISION + shift):
`range` is renormalised a byte at a time to stay above 2**(PRECISION - 8), so each symbol's table is
split with 40 bits or more to spare (a loss of about 2**-40 bits a symbol), and `low` is an exact
Python integer, so no carry is ever lost. At the end the code word is the shortest run of whole bytes
b such that [b, b + 1) / 256**m lies inside the interval: any bytes after it (the next packet, or
the zeros the decoder pads with) decode the same symbols. That takes the information's bits plus
at most about 2 bits, rounded up to whole bytes: 1 to 9 bits a packet beyond the codes, 5 on average.

The decoder mirrors the encoder's interval, so after its last symbol it knows the code word the
encoder wrote for them: a payload that differs (a damaged byte, a cut) is refused, not decoded.
"""
from __future__ import annotations

import numpy as np

FREQUENCY_BITS = 16
PRECISION = 56                    # bits of the interval's width at its widest
_RENORM = 1 << (PRECISION - 8)    # a byte is shifted out when the width drops below this
_PRECISION_BYTES = PRECISION // 8


def code_word(low: int, width: int, scale: int) -> bytes:
    """The fewest whole bytes b (m of them) with [b, b + 1) / 256**m inside [low, low + width) / 2**scale."""
    m = max(1, -(-(scale - width.bit_length() + 1) // 8))     # a block of 2**(scale - 8m) must fit in width
    while True:
        s = scale - 8 * m
        if s <= 0:                                             # blocks finer than the interval's unit: always fits
            return (low << -s).to_bytes(m, "big")
        b = (low + (1 << s) - 1) >> s                          # the first block at or after low
        if (b + 1) << s <= low + width:
            return b.to_bytes(m, "big")
        m += 1


class Encoder:
    def __init__(self):
        self.low, self.range, self.shift = 0, 1 << PRECISION, 0

    def encode(self, cum: int, freq: int) -> None:
        """A symbol whose table entry starts at `cum` and holds `freq` of 2**FREQUENCY_BITS."""
        r = self.range >> FREQUENCY_BITS
        self.low += r * cum
        self.range = r * freq
        while self.range < _RENORM:
            self.low <<= 8
            self.range <<= 8
            self.shift += 8

    def finish(self) -> bytes:
        return code_word(self.low, self.range, PRECISION + self.shift)


class Decoder:
    """Decodes the symbols of a code word `data`; finish() checks `data` is exactly the code word
    the encoder would have written for them (ValueError otherwise)."""

    def __init__(self, data: bytes):
        self.data, self.at = bytes(data), _PRECISION_BYTES
        self.low, self.range, self.shift = 0, 1 << PRECISION, 0
        self.code = int.from_bytes(self.data[:_PRECISION_BYTES].ljust(_PRECISION_BYTES, b"\0"), "big")  # value - low

    def decode(self, cum: np.ndarray | None) -> int:
        """The next symbol under cumulative frequencies cum [K + 1] (cum[0] = 0, cum[K] = 2**16, each
        step >= 1); cum None: a uniform symbol in 0..2**16 - 1."""
        r = self.range >> FREQUENCY_BITS
        x = self.code // r
        if x >> FREQUENCY_BITS:
            raise ValueError("the code word points outside its tables")
        if cum is None:
            j, start, freq = x, x, 1
        else:
            j = int(np.searchsorted(cum, x, side="right")) - 1
            start, freq = int(cum[j]), int(cum[j + 1] - cum[j])
        self.code -= r * start
        self.low += r * start
        self.range = r * freq
        while self.range < _RENORM:
            byte = self.data[self.at] if self.at < len(self.data) else 0
            self.code = (self.code << 8) | byte
            self.low <<= 8
            self.range <<= 8
            self.shift += 8
            self.at += 1
        return j

    def finish(self) -> None:
        expected = code_word(self.low, self.range, PRECISION + self.shift)
        if expected != self.data:
            raise ValueError(f"its {len(self.data)} bytes are not the code word of the codes they decode to "
                             f"({len(expected)} bytes)")
