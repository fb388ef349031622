"""Entropy coding of motion codes: a range coder (codec/range_coder.py) under integer probabilities.

A clip's codes [T, N] are coded frame by frame, group by group, each code under a probability
table over the K_e entries of its group. Three models give the tables:
- `PriorModel`: the autoregressive motion prior (training/prior.py), conditioned on the clip's
  content and on the frames already coded (a sliding window of its context length), and, for a
  group-autoregressive prior, on the groups of the same frame coded before;
- `AdaptiveModel`: without a prior, the default: those static tables as PSEUDO_COUNTS frames'
  worth of counts, plus the codes of every frame already coded, so a clip whose codes differ from
  training costs toward its own entropy (a one-motion Sprites call of 800 frames: 1.35 bits a frame
  against 7.68 static, its entropy 0.95);
- `StaticModel`: each group's running code frequencies from training (the quantizer's `usage`
  buffer in the checkpoint), the same table for every frame (`encode --tables static`).

Encoder and decoder must use bit-identical tables. Both quantize the model's probabilities to
integers summing to 2**16 in one deterministic way (`quantize_frequencies`: every entry at least
1, the rest by floor, the remainder to the largest fractional parts, ties to the lower index)
before handing them to the coder. The prior runs in float64 on one CPU thread for this, so a
quantization boundary is hit only if two machines' float64 results differ across it (about one
chance in 10**10 per table); a CRC of the codes in the file (codec/format.py) tells such a
mismatch from a good decode.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch

from motionbits.codec.range_coder import FREQUENCY_BITS

PSEUDO_COUNTS = 16.0   # how many frames' worth of trust the static table starts with (adaptive tables)


def quantize_frequencies(p: np.ndarray, bits: int = FREQUENCY_BITS) -> np.ndarray:
    """Probabilities [..., K] (any non-negative weights) -> int64 frequencies [..., K], each >= 1,
    every row summing to exactly 2**bits. Deterministic: the same float64 input gives the same
    integers on every machine."""
    p = np.asarray(p, dtype=np.float64)
    k = p.shape[-1]
    total = 1 << bits
    p = p / p.sum(-1, keepdims=True)
    scaled = p * (total - k)
    floor = np.floor(scaled)
    freq = floor.astype(np.int64) + 1
    remainder = total - freq.sum(-1, keepdims=True)                    # [..., 1], in 0..K-1
    rank = np.argsort(np.argsort(-(scaled - floor), axis=-1, kind="stable"), axis=-1, kind="stable")
    return freq + (rank < remainder)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One CPU thread: the same summation order, the same float64 results, run after run."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class StaticModel:
    """The same per-group table for every frame: freq [N, K_e] integers summing to 2**16 per row."""

    uses_prior = False

    def __init__(self, freq: np.ndarray):
        self.freq = freq

    @classmethod
    def of(cls, quantizer) -> "StaticModel":
        usage = quantizer.usage.detach().cpu().double().numpy()
        return cls(quantize_frequencies(usage))

    def frame(self, past: np.ndarray) -> "_FrameTables":
        return _FrameTables(self.freq)


class AdaptiveModel:
    """Per-group counts that learn the clip as it is coded: group g's table for frame t is
    PSEUDO_COUNTS x the static table plus one for each time a code was seen in frames 0..t-1.
    Encoder and decoder count the same codes, so their tables agree. A clip whose codes differ
    from training costs toward the codes' own entropy instead of the training tables' cross-entropy.
    Counts stay exact in float64 (a power-of-two weight of integer frequencies, plus integers)."""

    uses_prior = False

    def __init__(self, freq: np.ndarray, weight: float = None):
        weight = PSEUDO_COUNTS if weight is None else weight
        self.start = np.asarray(freq, dtype=np.float64) * (weight / float(1 << FREQUENCY_BITS))   # [N, K_e]
        self.counts, self.seen = self.start.copy(), 0

    @classmethod
    def of(cls, quantizer, weight: float = None) -> "AdaptiveModel":
        return cls(StaticModel.of(quantizer).freq, weight)

    def frame(self, past: np.ndarray) -> "_FrameTables":
        past = np.asarray(past, dtype=np.int64)                           # [t, N]: the frames coded so far
        if len(past) < self.seen:                                         # a new pass over a clip
            self.counts, self.seen = self.start.copy(), 0
        groups = np.arange(self.counts.shape[0])
        for row in past[self.seen:]:
            self.counts[groups, row] += 1
        self.seen = len(past)
        return _FrameTables(quantize_frequencies(self.counts))


class PriorModel:
    """Tables from a MotionPrior given the clip's content [1, K, Cc] (float64 on the CPU)."""

    uses_prior = True

    def __init__(self, prior, content: torch.Tensor):
        self.prior = _float64_copy(prior)
        self.content = content.detach().to("cpu", torch.float64)
        self.window = prior.cfg.max_frames

    def frame(self, past: np.ndarray) -> "_FrameTables":
        context = torch.as_tensor(past[max(0, len(past) - (self.window - 1)):], dtype=torch.long)[None]  # [1, <W, N]
        with torch.no_grad(), one_thread():
            h = self.prior._hidden(context, self.content, None)[:, -1:]                              # [1, 1, W]
            if not self.prior.cfg.group_autoregressive:
                return _FrameTables(quantize_frequencies(self.prior._head(h, None)[0, 0].softmax(-1).numpy()))
        return _GroupwiseTables(self.prior, h)


class _FrameTables:
    def __init__(self, freq: np.ndarray):
        self.freq = freq                                                  # [N, K_e]

    def group(self, g: int, frame: np.ndarray) -> np.ndarray:
        return self.freq[g]


class _GroupwiseTables:
    """A group-autoregressive prior: group g's table depends on the frame's groups < g."""

    def __init__(self, prior, h: torch.Tensor):
        self.prior, self.h = prior, h

    def group(self, g: int, frame: np.ndarray) -> np.ndarray:
        codes = torch.as_tensor(np.asarray(frame), dtype=torch.long).view(1, 1, -1)
        with torch.no_grad(), one_thread():
            return quantize_frequencies(self.prior._head(self.h, codes)[0, 0, g].softmax(-1).numpy())


def _float64_copy(prior):
    import copy

    return copy.deepcopy(prior).to("cpu", torch.float64).eval()


def categorical(freq: np.ndarray):
    import constriction

    return constriction.stream.model.Categorical(freq / float(1 << FREQUENCY_BITS), perfect=False)


# A packet's frame count is its first symbol: "full" (the packet's usual frames) costs 2**-16 of a bit,
# "short" (the last packet of a clip) costs 16 bits, then the count, uniform over 16 bits.
_FULL_OR_SHORT = np.array([0, (1 << FREQUENCY_BITS) - 1, 1 << FREQUENCY_BITS])
MAX_PACKET_FRAMES = 1 << FREQUENCY_BITS


def _cumulative(freq: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(freq)])


def encode_codes(codes: np.ndarray | torch.Tensor, model, start: int = 0, full: int | None = None) -> bytes:
    """codes [T, N] (ints in 0..K_e-1) -> the range-coded bytes (codec/range_coder.py) of frames
    start..T-1, under the tables that follow frames 0..start-1 (a stream's earlier packets).
    full: the frames of a full packet: the count of frames is coded first (decode_packet reads it)."""
    from motionbits.codec.range_coder import Encoder

    codes = np.asarray(codes.cpu() if isinstance(codes, torch.Tensor) else codes, dtype=np.int64)
    encoder = Encoder()
    if full is not None:
        frames = codes.shape[0] - start
        if not 1 <= frames <= full <= MAX_PACKET_FRAMES:
            raise ValueError(f"a packet of {frames} frames, full at {full}")
        if frames == full:
            encoder.encode(0, int(_FULL_OR_SHORT[1]))
        else:
            encoder.encode(int(_FULL_OR_SHORT[1]), 1)
            encoder.encode(frames - 1, 1)
    for t in range(start, codes.shape[0]):
        tables = model.frame(codes[:t])
        for g in range(codes.shape[1]):
            freq = tables.group(g, codes[t])
            c = codes[t, g]
            encoder.encode(int(freq[:c].sum()), int(freq[c]))
    return encoder.finish()


def frame_bits(codes: np.ndarray | torch.Tensor, model) -> np.ndarray:
    """What each frame of codes [T, N] costs under the model's tables: -log2(freq / 2**16) summed
    over the groups, float64 [T] bits. The coded stream is their sum plus each packet's code word end."""
    codes = np.asarray(codes.cpu() if isinstance(codes, torch.Tensor) else codes, dtype=np.int64)
    bits = np.zeros(codes.shape[0])
    for t in range(codes.shape[0]):
        tables = model.frame(codes[:t])
        bits[t] = -sum(np.log2(tables.group(g, codes[t])[codes[t, g]] / float(1 << FREQUENCY_BITS))
                       for g in range(codes.shape[1]))
    return bits


def decode_codes(data: bytes, frames: int | None, groups: int, model, into: np.ndarray | None = None,
                 start: int = 0, full: int | None = None) -> np.ndarray:
    """The inverse of encode_codes: codes int64 [frames, groups]; with `full` (frames None) the
    count is read from the packet. A stream's later packet: `into` int64 [>= start + frames (or
    full), groups] holds the earlier packets' codes in rows 0..start-1 and receives these in the
    next rows (no copy of the past per packet). ValueError when `data` is not exactly the code
    word of what it decodes to."""
    from motionbits.codec.range_coder import Decoder

    decoder = Decoder(data)
    if full is not None:
        short = decoder.decode(_FULL_OR_SHORT) == 1
        frames = decoder.decode(None) + 1 if short else full
        if frames > full or (short and frames == full):
            raise ValueError(f"a short packet of {frames} frames, full at {full}")
    codes = np.zeros((frames, groups), dtype=np.int64) if into is None else into
    for t in range(start, start + frames):
        tables = model.frame(codes[:t])
        for g in range(groups):
            codes[t, g] = decoder.decode(_cumulative(tables.group(g, codes[t])))
    decoder.finish()
    return codes[start:start + frames]
