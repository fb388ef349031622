"""The .mbits file: one clip's content and entropy-coded motion codes.

Layout (little-endian), version 3:

    offset size  field                                              allowed
    0      4     magic b"MBIT"
    4      1     version (3)
    5      1     flags: bit 0 = motion coded under a prior           other bits 0
                        bit 1 = adaptive tables (no prior)           not with bit 0
                        bit 2 = content as float16 (else compact)
    6      8     model fingerprint: first 8 bytes of sha256(config JSON + EMA weights)
    14     8     prior fingerprint                                  zeros exactly when bit 0 is clear
    22     4     frames T                                           1..MAX_FRAMES
    26     8     frame rate, float64                                frame_rate.MIN_FPS..MAX_FPS
    34     2     frame side in pixels (square frames)               8..4096
    36     2     groups N                                           1..1024
    38     2     entries per group K_e                              2..MAX_ENTRIES
    40     2     content tokens K                                   1..4096
    42     2     content width Cc                                   1..4096
    44     4     CRC-32 of the decoded codes (int16, frame-major): a decode that differs is caught
    48     4     length of the motion stream in bytes               a multiple of 4
    52     4     length of the content section in bytes             codec/content.py: section_problem
    56     ...   content (sent once per clip): compact, or K x Cc float16 (codec/content.py)
    ...    ...   motion stream: range-coded codes (codec/entropy.py), 32-bit words
    end-4  4     CRC-32 of every byte before it

The file names its model and prior only by fingerprint: no path of the machine that wrote it
(`decode` finds the checkpoint itself, codec/find_models.py). A file is read whole, at most
MAX_FILE_BYTES of a regular file, and each field is checked against its range before anything
is sized from it. The header and the trailing CRC are the file's fixed cost (60 bytes), the
content its one-off cost, the motion stream the cost that grows with the clip: the file size is
the rate.
"""
from __future__ import annotations

import os
import stat
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from motionbits.codec.content import COMPACT, FLOAT16, section_problem
from motionbits.config import CODEC_MAX_ENTRIES
from motionbits.errors import MotionbitsError
from motionbits.frame_rate import fps_problem

MAGIC = b"MBIT"
VERSION = 3
_HEADER = struct.Struct("<4sBB8s8sIdHHHHHIII")
_CRC = struct.Struct("<I")
HEADER_BYTES = _HEADER.size          # 56
FIXED_BYTES = HEADER_BYTES + _CRC.size   # 60: header + the whole-file CRC
PRIOR_FLAG, ADAPTIVE_FLAG, FLOAT16_FLAG = 0b001, 0b010, 0b100
KNOWN_FLAGS = PRIOR_FLAG | ADAPTIVE_FLAG | FLOAT16_FLAG

MAX_FRAMES = 36_000          # 20 minutes at 30 fps: the decoder holds every frame in memory
# Entries per group: tables count in 2^16ths, every entry at least one, so beyond 4096 the entries'
# floor alone takes over 1/16 of each table. Configs above it are refused when read (config.validate).
MAX_ENTRIES = CODEC_MAX_ENTRIES
MAX_FILE_BYTES = 64 << 20    # the most a decode reads: 32 MiB of content at most, plus the motion
# field name -> (least, most) for the integer fields
FIELD_RANGES = {"frames": (1, MAX_FRAMES), "size": (8, 4096), "groups": (1, 1024),
                "codebook_size": (2, MAX_ENTRIES), "content_tokens": (1, 4096), "content_dim": (1, 4096)}


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
    adaptive: bool = False          # motion under adaptive tables (codec/entropy.py AdaptiveModel), no prior
    content_coding: str = COMPACT   # codec/content.py: COMPACT or FLOAT16


@dataclass
class MbitsFile:
    header: Header
    content: bytes         # the content section as stored (codec/content.py)
    motion: bytes

    @property
    def sizes(self) -> dict[str, int]:
        """Bytes of each part: header (with the whole-file CRC), content, motion; and the total."""
        return {"header": FIXED_BYTES, "content": len(self.content), "motion": len(self.motion),
                "total": FIXED_BYTES + len(self.content) + len(self.motion)}


def codes_crc(codes: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(codes, dtype="<i2").tobytes())


def header_problem(h: Header) -> str | None:
    """The first field of a header outside its range, as words; None when every field is in range."""
    for name, (least, most) in FIELD_RANGES.items():
        value = getattr(h, name)
        if not least <= value <= most:
            return f"header field {name} = {value} is outside {least}..{most}"
    problem = fps_problem(h.fps)
    if problem:
        return f"header field fps: {problem}"
    if h.uses_prior != any(h.prior_fingerprint):
        return "header says " + ("coded under a prior but names none" if h.uses_prior
                                 else "no prior but names a prior fingerprint")
    if h.uses_prior and h.adaptive:
        return "header says coded under a prior and under adaptive tables: one or the other"
    if h.content_coding not in (COMPACT, FLOAT16):
        return f"unknown content coding {h.content_coding!r}"
    return None


def _flags(h: Header) -> int:
    return ((PRIOR_FLAG if h.uses_prior else 0) | (ADAPTIVE_FLAG if h.adaptive else 0)
            | (FLOAT16_FLAG if h.content_coding == FLOAT16 else 0))


def pack(f: MbitsFile) -> bytes:
    h = f.header
    problem = header_problem(h)
    if problem:
        raise MotionbitsError(f"cannot write this clip as a bitstream: {problem}")
    problem = section_problem(f.content, h.content_coding, h.content_tokens, h.content_dim)
    if problem:
        raise MotionbitsError(f"cannot write this clip as a bitstream: {problem}")
    head = _HEADER.pack(MAGIC, VERSION, _flags(h), h.model_fingerprint, h.prior_fingerprint, h.frames, h.fps,
                        h.size, h.groups, h.codebook_size, h.content_tokens, h.content_dim, h.codes_crc, len(f.motion),
                        len(f.content))
    body = head + f.content + f.motion
    return body + _CRC.pack(zlib.crc32(body))


def read_bytes(path: str | Path) -> bytes:
    """The bytes of a .mbits file: a regular file of at most MAX_FILE_BYTES (a FIFO, a device such
    as /dev/zero, a folder are refused before reading: they could block or never end)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MotionbitsError(f"{path}: no such file") from None
    if stat.S_ISDIR(st.st_mode):
        raise MotionbitsError(f"{path}: is a folder, expected a .mbits file")
    if not stat.S_ISREG(st.st_mode):
        raise MotionbitsError(f"{path}: not a regular file (a pipe or a device), expected a .mbits file")
    if st.st_size > MAX_FILE_BYTES:
        raise MotionbitsError(f"{path}: {st.st_size} bytes, more than a bitstream holds "
                              f"({MAX_FILE_BYTES >> 20} MiB at most): not a motionbits bitstream")
    with open(path, "rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)      # bounded even if the file grows meanwhile
    if len(data) > MAX_FILE_BYTES:
        raise MotionbitsError(f"{path}: grew past {MAX_FILE_BYTES >> 20} MiB while being read")
    return data


def unpack(data: bytes, where: str) -> MbitsFile:
    """Parse a .mbits file; one line naming `where` and what is wrong for anything else. Checked in
    this order: magic, version, the whole-file CRC, each header field's range, the parts' lengths."""
    if len(data) < FIXED_BYTES:
        raise MotionbitsError(f"{where}: not a motionbits bitstream (only {len(data)} bytes)")
    if data[:4] != MAGIC:
        raise MotionbitsError(f"{where}: not a motionbits bitstream (no MBIT magic)")
    if data[4] != VERSION:
        raise MotionbitsError(f"{where}: was written by motionbits format v{data[4]}; this version reads v{VERSION} "
                              "(encode the clip again)")
    if zlib.crc32(data[:-_CRC.size]) != _CRC.unpack_from(data, len(data) - _CRC.size)[0]:
        raise MotionbitsError(f"{where}: truncated or corrupt bitstream (its CRC-32 over the whole file does not match)")
    (_, _, flags, model_fp, prior_fp, frames, fps, size, groups, codebook, tokens, width, crc,
     motion_len, content_len) = _HEADER.unpack_from(data)
    if flags & ~KNOWN_FLAGS:
        raise MotionbitsError(f"{where}: corrupt bitstream (unknown flags {flags:#04x})")
    header = Header(bool(flags & PRIOR_FLAG), model_fp, prior_fp, frames, fps, size, groups, codebook, tokens, width,
                    crc, bool(flags & ADAPTIVE_FLAG), FLOAT16 if flags & FLOAT16_FLAG else COMPACT)
    problem = header_problem(header)
    if problem:
        raise MotionbitsError(f"{where}: corrupt bitstream ({problem})")
    expected = FIXED_BYTES + content_len + motion_len
    if len(data) != expected or motion_len % 4:
        raise MotionbitsError(f"{where}: truncated or corrupt bitstream ({len(data)} bytes, its header describes "
                              f"{expected} with a content of {content_len} bytes and a motion stream of {motion_len} "
                              "bytes, a whole number of 32-bit words)")
    content = data[HEADER_BYTES:HEADER_BYTES + content_len]
    problem = section_problem(content, header.content_coding, tokens, width)
    if problem:
        raise MotionbitsError(f"{where}: corrupt bitstream ({problem})")
    motion = data[HEADER_BYTES + content_len:len(data) - _CRC.size]
    return MbitsFile(header, content, motion)

