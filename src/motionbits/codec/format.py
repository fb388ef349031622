"""The .mbits file: one clip's content and entropy-coded motion codes.

Layout (little-endian), version 1:

    offset size  field
    0      4     magic b"MBIT"
    4      1     version (1)
    5      1     flags: bit 0 = motion coded under a prior (else the checkpoint's static tables)
    6      8     model fingerprint: first 8 bytes of sha256(config JSON + EMA weights)
    14     8     prior fingerprint (zeros without a prior)
    22     4     frames T
    26     8     frame rate, float64 (0: unknown)
    34     2     frame side in pixels (square frames)
    36     2     groups N        38  2  entries per group K_e
    40     2     content tokens K 42  2  content width Cc
    44     4     CRC-32 of the codes (int16, frame-major): a decode that differs is caught
    48     2     length of the checkpoint path hint   50  2  length of the prior path hint
    52     4     length of the motion stream in bytes
    56     ...   checkpoint path hint (UTF-8), prior path hint (UTF-8): where the encoder found them,
                 so `decode` works without flags on the same machine (checked by fingerprint)
    ...    2KCc  content: K x Cc float16 (sent once per clip)
    ...    ...   motion stream: range-coded codes (codec/entropy.py), 32-bit words

The header and hints are the file's fixed cost, the content its one-off cost, the motion stream
the cost that grows with the clip: the file size is the rate.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from motionbits.errors import MotionbitsError

MAGIC = b"MBIT"
VERSION = 1
_HEADER = struct.Struct("<4sBB8s8sIdHHHHHIHHI")
HEADER_BYTES = _HEADER.size   # 56


@dataclass
class Header:
    uses_prior: bool
    model_fingerprint: bytes
    prior_fingerprint: bytes
    frames: int
    fps: float
    size: int
    groups: int
    codebook_size: int
    content_tokens: int
    content_dim: int
    codes_crc: int
    checkpoint_hint: str = ""
    prior_hint: str = ""


@dataclass
class MbitsFile:
    header: Header
    content: np.ndarray    # float16 [K, Cc]
    motion: bytes

    @property
    def sizes(self) -> dict[str, int]:
        """Bytes of each part: header (with the path hints), content, motion; and the total."""
        header = HEADER_BYTES + len(self.header.checkpoint_hint.encode()) + len(self.header.prior_hint.encode())
        return {"header": header, "content": self.content.nbytes, "motion": len(self.motion),
                "total": header + self.content.nbytes + len(self.motion)}


def codes_crc(codes: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(codes, dtype="<i2").tobytes())


def pack(f: MbitsFile) -> bytes:
    h = f.header
    hint, prior_hint = h.checkpoint_hint.encode(), h.prior_hint.encode()
    head = _HEADER.pack(MAGIC, VERSION, int(h.uses_prior), h.model_fingerprint, h.prior_fingerprint, h.frames, h.fps,
                        h.size, h.groups, h.codebook_size, h.content_tokens, h.content_dim, h.codes_crc,
                        len(hint), len(prior_hint), len(f.motion))
    return head + hint + prior_hint + f.content.astype("<f2").tobytes() + f.motion


def unpack(data: bytes, where: str) -> MbitsFile:
    """Parse a .mbits file; one line naming `where` and what is wrong for anything else."""
    if len(data) < HEADER_BYTES:
        raise MotionbitsError(f"{where}: not a motionbits bitstream (only {len(data)} bytes)")
    (magic, version, flags, model_fp, prior_fp, frames, fps, size, groups, codebook, tokens, width, crc,
     hint_len, prior_hint_len, motion_len) = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise MotionbitsError(f"{where}: not a motionbits bitstream (no MBIT magic)")
    if version != VERSION:
        raise MotionbitsError(f"{where}: bitstream version {version}, this motionbits reads version {VERSION}")
    content_bytes = 2 * tokens * width
    expected = HEADER_BYTES + hint_len + prior_hint_len + content_bytes + motion_len
    if len(data) != expected or frames == 0 or groups == 0 or codebook < 2:
        raise MotionbitsError(f"{where}: truncated or corrupt bitstream ({len(data)} bytes, its header describes "
                              f"{expected})")
    at = HEADER_BYTES
    try:
        hint = data[at:at + hint_len].decode()
        prior_hint = data[at + hint_len:at + hint_len + prior_hint_len].decode()
    except UnicodeDecodeError:
        raise MotionbitsError(f"{where}: corrupt bitstream (unreadable path hints)") from None
    at += hint_len + prior_hint_len
    content = np.frombuffer(data[at:at + content_bytes], dtype="<f2").reshape(tokens, width)
    if not np.isfinite(content).all():
        raise MotionbitsError(f"{where}: corrupt bitstream (content values are not finite)")
    header = Header(bool(flags & 1), model_fp, prior_fp, frames, fps, size, groups, codebook, tokens, width, crc,
                    hint, prior_hint)
    return MbitsFile(header, content, data[at + content_bytes:])
