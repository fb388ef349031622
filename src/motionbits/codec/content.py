"""The clip's content tokens in the bitstream: compact (quantised and range-coded) or float16 (or,
for a model that reads its content from a key frame, that frame as a picture: codec/key_frame.py).

Compact, the default but for key-frame models: one step s for every value, q = round(c / s), the
integers q in -M..M range-coded token-major under one adaptive table (counts start at 1/2 per symbol
and grow by one per value coded, identical on both sides); the decoder's content is q * s in
float32. The encoder picks the finest step on a geometric grid (2^(1/16) apart) whose coded section
fits the byte budget (default a quarter byte per value: 1,024 bytes for 16 x 256 tokens, against
8,192 as float16). One step for all values is what minimises the squared error at a given
entropy-coded rate (the same step size in every dimension); the content is near Gaussian with unit
spread, so a per-token or per-channel table saved nothing (measured on sprites-cpu: 2.17 bits a
value at step 1 either way).

Compact section (little-endian):

    offset size  field
    0      4     step s, float32                          finite, > 0
    4      2     largest magnitude M                      1..MAX_MAGNITUDE
    6      ...   range-coded words (32-bit)               the section is at most 2 K Cc bytes

float16: the K x Cc values as float16 (2 K Cc bytes), what `reconstruct` renders.
"""
from __future__ import annotations

import math
import struct

import numpy as np

from motionbits.codec.entropy import categorical, quantize_frequencies
from motionbits.errors import MotionbitsError

COMPACT, FLOAT16, IMAGE = "compact", "float16", "image"
CODINGS = (COMPACT, FLOAT16, IMAGE)   # IMAGE: the key frame as a picture (codec/key_frame.py)
MAX_MAGNITUDE = 2047                 # at most 4095 symbols: every one keeps a frequency >= 1 of 2^16
_SIDE = struct.Struct("<fH")         # step, M
SIDE_BYTES = _SIDE.size              # 6
_GRID = 2.0 ** (1 / 16)              # step grid: about 0.4 dB of error between neighbours
_SLACK_BITS = 64                     # the coder's last words, when estimating a section's size


def default_coding(cfg) -> str:
    """The content coding a model's files use unless told: a key-frame model reads its content from
    one frame, which an image codec sends in a fraction of the bytes (codec/key_frame.py)."""
    return IMAGE if cfg.model.content_reader == "key_frame" else COMPACT


def default_budget(tokens: int, width: int) -> int:
    """Bytes the compact content may take: a quarter byte per value (1,024 for 16 x 256), at least 32."""
    return max(32, tokens * width // 4)


def largest_section(tokens: int, width: int, coding: str = COMPACT, size: int = 0) -> int:
    """The most bytes a section may hold: a compact one no more than the float16 values would take,
    a key frame's picture (frames of size x size) no more than its raw RGB pixels."""
    return 3 * size * size if coding == IMAGE else max(2 * tokens * width, 32)


def encode_content(content: np.ndarray, budget: int | None = None) -> tuple[bytes, np.ndarray]:
    """content [K, Cc] -> (the compact section, the float32 values [K, Cc] the decoder will read):
    the finest step whose section fits `budget` bytes (default_budget when None)."""
    content = np.asarray(content, dtype=np.float32)
    tokens, width = content.shape
    budget = default_budget(tokens, width) if budget is None else int(budget)
    if not SIDE_BYTES + 4 <= budget <= largest_section(tokens, width):
        raise MotionbitsError(f"content budget {budget} bytes: a compact content of {tokens} x {width} takes "
                              f"{SIDE_BYTES + 4}..{largest_section(tokens, width)} bytes (more: --content float16)")
    largest = float(np.abs(content).max())
    if not math.isfinite(largest):
        raise MotionbitsError("the clip's content is not finite: nothing to code")
    finest = largest / MAX_MAGNITUDE if largest > 0 else 1.0
    for i in range(16 * 32):                          # 2^32 x the finest step: every value rounds to 0
        step = np.float32(finest * _GRID ** i)
        q = np.rint(content / step).astype(np.int64)
        magnitude = max(1, int(np.abs(q).max()))
        if magnitude > MAX_MAGNITUDE or _estimated_bytes(q, magnitude) > budget:
            continue
        section = _SIDE.pack(float(step), magnitude) + _code(q.ravel() + magnitude, 2 * magnitude + 1)
        if len(section) <= budget:
            return section, q.astype(np.float32) * step
    raise MotionbitsError(f"content budget {budget} bytes: even the coarsest step does not fit it")


def decode_content(section: bytes, tokens: int, width: int) -> np.ndarray:
    """The compact section -> float32 values [K, Cc] (a section that passed section_problem)."""
    step, magnitude = _SIDE.unpack_from(section)
    words = np.frombuffer(section, dtype="<u4", offset=SIDE_BYTES).astype(np.uint32)
    q = _decode(words, tokens * width, 2 * magnitude + 1) - magnitude
    return q.reshape(tokens, width).astype(np.float32) * np.float32(step)


def float16_values(section: bytes, tokens: int, width: int) -> np.ndarray:
    return np.frombuffer(section, dtype="<f2", count=tokens * width).reshape(tokens, width).astype(np.float32)


def section_problem(section: bytes, coding: str, tokens: int, width: int, size: int = 0) -> str | None:
    """What is impossible about a content section of this coding and shape (frames of size x size),
    as words; None if nothing."""
    if coding == FLOAT16:
        if len(section) != 2 * tokens * width:
            return f"a float16 content of {tokens} x {width} takes {2 * tokens * width} bytes, not {len(section)}"
        if not np.isfinite(float16_values(section, tokens, width)).all():
            return "content values are not finite"
        return None
    most = largest_section(tokens, width, coding, size)
    if coding == IMAGE:             # what the picture holds is checked as it is decoded (codec/key_frame.py)
        return None if 1 <= len(section) <= most else f"a key frame of {len(section)} bytes is outside 1..{most}"
    if not SIDE_BYTES <= len(section) <= most or (len(section) - SIDE_BYTES) % 4:
        return (f"a compact content of {tokens} x {width} takes {SIDE_BYTES} bytes plus whole 32-bit words, "
                f"{most} at most, not {len(section)}")
    step, magnitude = _SIDE.unpack_from(section)
    if not (math.isfinite(step) and step > 0):
        return f"content step {step} is not a positive finite number"
    if not 1 <= magnitude <= MAX_MAGNITUDE:
        return f"content magnitude {magnitude} is outside 1..{MAX_MAGNITUDE}"
    return None


def _estimated_bytes(q: np.ndarray, magnitude: int) -> float:
    """The adaptive table's cost of q in bytes, in closed form (a Dirichlet-multinomial with 1/2 per
    symbol: it depends on the counts only), plus the side fields and the coder's last words."""
    symbols = 2 * magnitude + 1
    counts = np.bincount((q.ravel() + magnitude), minlength=symbols)
    nats = (math.lgamma(symbols / 2 + q.size) - math.lgamma(symbols / 2)
            - sum(math.lgamma(0.5 + n) - math.lgamma(0.5) for n in counts if n))
    return SIDE_BYTES + (nats / math.log(2) + _SLACK_BITS) / 8


def _adaptive_tables(symbols: int):
    """Integer tables of the adaptive model, one per value; send(symbol) counts it."""
    counts = np.ones(symbols, dtype=np.float64)          # 2 x (n + 1/2), exact in float64
    while True:
        symbol = yield quantize_frequencies(counts)
        counts[symbol] += 2


def _code(symbols: np.ndarray, alphabet: int) -> bytes:
    import constriction

    encoder = constriction.stream.queue.RangeEncoder()
    tables = _adaptive_tables(alphabet)
    freq = next(tables)
    for s in symbols:
        encoder.encode(np.int32(s), categorical(freq))
        freq = tables.send(int(s))
    return encoder.get_compressed().astype("<u4").tobytes()


def _decode(words: np.ndarray, count: int, alphabet: int) -> np.ndarray:
    import constriction

    decoder = constriction.stream.queue.RangeDecoder(words)
    tables = _adaptive_tables(alphabet)
    freq = next(tables)
    out = np.zeros(count, dtype=np.int64)
    for i in range(count):
        out[i] = decoder.decode(categorical(freq))
        freq = tables.send(int(out[i]))
    return out
