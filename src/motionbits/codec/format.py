"""The .mbits file: a header, then self-delimiting packets, so a clip can be sent as it is filmed.

Layout (little-endian), version 6 (version 5 is read too: the same without bit 3):

    offset size  field                                              allowed
    0      4     magic b"MBIT"
    4      1     version (6)                                        5 or 6
    5      1     flags: bit 0 = motion coded under a prior           other bits 0
                        bit 1 = adaptive tables (no prior)           not with bit 0
                        bit 2 = content as float16 (else compact)
                        bit 3 = content as the key frame's picture   not with bit 2; version 6
    6      8     model fingerprint: first 8 bytes of sha256(config JSON + EMA weights)
    14     8     prior fingerprint                                  zeros exactly when bit 0 is clear
    22     8     frame rate, float64                                frame_rate.MIN_FPS..MAX_FPS
    30     2     frame side in pixels (square frames)               8..4096
    32     2     groups N                                           1..1024
    34     2     entries per group K_e                              2..MAX_ENTRIES
    36     2     content tokens K                                   1..4096
    38     2     content width Cc                                   1..4096
    40     2     window W: the model's window                       1..MAX_WINDOW
    42     2     windows per motion packet P: a packet holds F = P W frames    1..255, F <= 65536
    44     4     CRC-32 of bytes 0..43
    48     ...   packets, in this order: one content, one or more motion, one end

    content  b"C", length (LEB128 varint, at most 4 bytes), the content section (codec/content.py:
             compact, or K x Cc float16; or one AV1 picture, codec/key_frame.py), CRC-32 of what
             comes before it in the packet
    motion   length (varint, >= 1: its first byte is never 0), the code word, CRC-8 of the length
             and the code word (1 byte). The code word (codec/range_coder.py, codec/entropy.py)
             holds the packet's frame count first (F costs nothing, fewer, only in the last motion
             packet, about 32 bits), then those frames' codes; the tables' state (adaptive counts,
             the prior's context) carries over from the packets before, and the code word ends at
             the packet's end (at most a byte beyond the codes' bits) so the packet decodes on its
             own arrival. Motion packet i (from 1) holds frames (i - 1) F onwards: no count is sent.
    end      a 0 byte, frames T (uint32), CRC-32 of every decoded code (int16, frame-major), CRC-32
             of the 9 bytes before it: a decode that differs anywhere is caught here

A damaged packet fails its own CRC (CRC-8 for a motion packet: 255 damages in 256), or its code
word is not the one its codes give (codec/range_coder.py), and is refused naming it; what slips
through both is caught by the end packet's CRC-32 of the codes.
The file names its model and prior only by fingerprint: no path of the machine that wrote it
(`decode` finds the checkpoint itself, codec/find_models.py). A file on disk is read whole, at most
MAX_FILE_BYTES of a regular file, and each field is checked against its range before anything is
sized from it. The file size is the rate: the header and the content and end packets are paid once,
each motion packet pays its length and CRC-8 (2 bytes) and its code word's end (1 to 9 bits, 5 on
average) beyond its codes' information (docs/bitstream.md).
"""
from __future__ import annotations

import os
import stat
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from motionbits.codec.content import COMPACT, FLOAT16, IMAGE, largest_section, section_problem
from motionbits.codec.entropy import MAX_PACKET_FRAMES  # frames per motion packet (its count is coded in 16 bits)
from motionbits.config import CODEC_MAX_ENTRIES
from motionbits.errors import MotionbitsError
from motionbits.frame_rate import fps_problem

MAGIC = b"MBIT"
VERSION = 6
READ_VERSIONS = (5, 6)                          # 5: no key frame pictures (flag bit 3)
_HEADER = struct.Struct("<4sBB8s8sdHHHHHHH")
_CRC = struct.Struct("<I")
_END = struct.Struct("<II")                     # frames T, CRC-32 of the codes
HEADER_BYTES = _HEADER.size + _CRC.size         # 48: the header with its CRC
CONTENT, MOTION, END = b"C", b"M", b"\0"         # a motion packet has no kind byte: its length's first byte is not 0
KIND_NAMES = {CONTENT: "content", MOTION: "motion", END: "end"}
PRIOR_FLAG, ADAPTIVE_FLAG, FLOAT16_FLAG, IMAGE_FLAG = 0b0001, 0b0010, 0b0100, 0b1000
KNOWN_FLAGS = {5: PRIOR_FLAG | ADAPTIVE_FLAG | FLOAT16_FLAG, 6: PRIOR_FLAG | ADAPTIVE_FLAG | FLOAT16_FLAG | IMAGE_FLAG}
CODING_FLAGS = {COMPACT: 0, FLOAT16: FLOAT16_FLAG, IMAGE: IMAGE_FLAG}

MAX_FRAMES = 36_000          # 20 minutes at 30 fps: `decode` holds every frame in memory for its video
MAX_WINDOW = 1024            # the model's window
MAX_PACKET_WINDOWS = 255     # windows per motion packet
# Entries per group: tables count in 2^16ths, every entry at least one, so beyond 4096 the entries'
# floor alone takes over 1/16 of each table. Configs above it are refused when read (config.validate).
MAX_ENTRIES = CODEC_MAX_ENTRIES
MAX_FILE_BYTES = 64 << 20    # the most a decode reads: 32 MiB of content at most, plus the motion
# field name -> (least, most) for the integer header fields
FIELD_RANGES = {"size": (8, 4096), "groups": (1, 1024), "codebook_size": (2, MAX_ENTRIES),
                "content_tokens": (1, 4096), "content_dim": (1, 4096), "window": (1, MAX_WINDOW),
                "packet_windows": (1, MAX_PACKET_WINDOWS)}


@dataclass
class Header:
    uses_prior: bool
    model_fingerprint: bytes
    prior_fingerprint: bytes
    fps: float
    size: int
    groups: int
    codebook_size: int
    content_tokens: int
    content_dim: int
    window: int                     # the model's window
    adaptive: bool = False          # motion under adaptive tables (codec/entropy.py AdaptiveModel), no prior
    content_coding: str = COMPACT   # codec/content.py: COMPACT, FLOAT16 or IMAGE
    packet_windows: int = 1         # windows per motion packet: the encoder's look-ahead is this x window - 1
    frames: int = 0                 # from the end packet: 0 while a stream is still arriving
    codes_crc: int = 0              # from the end packet


@dataclass
class Packet:
    kind: bytes                     # CONTENT, MOTION or END
    index: int                      # 0 for the content packet, then 1, 2, ...
    payload: bytes                  # for MOTION: the code word (its frame count inside, codec/entropy.py)
    first: int = 0                  # MOTION: the first frame it holds
    frames: int = 0                 # MOTION: the most it holds (the last may hold fewer); END: the clip's T
    codes_crc: int = 0              # END
    size: int = 0                   # bytes of the whole packet, framing included

    def name(self) -> str:
        if self.kind == MOTION:
            return f"packet {self.index} (motion, from frame {self.first})"
        return f"packet {self.index} ({KIND_NAMES[self.kind]})"


@dataclass
class MbitsFile:
    header: Header
    content: bytes                  # the content section as stored (codec/content.py)
    motion: list[bytes]             # each motion packet's code word, F = packet_windows x window frames each (the last fewer)
    sizes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if not self.sizes:
            self.sizes = packet_sizes(self)


def codes_crc(codes: np.ndarray, crc: int = 0) -> int:
    """CRC-32 of codes [t, N] as int16, continued from `crc` (the codes before them)."""
    return zlib.crc32(np.ascontiguousarray(codes, dtype="<i2").tobytes(), crc)


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
    if h.window * h.packet_windows > MAX_PACKET_FRAMES:
        return f"packets of {h.packet_windows} windows of {h.window} frames: more than {MAX_PACKET_FRAMES} frames"
    if h.uses_prior and h.adaptive:
        return "header says coded under a prior and under adaptive tables: one or the other"
    if h.content_coding not in CODING_FLAGS:
        return f"unknown content coding {h.content_coding!r}"
    return None


def packet_frames(h: Header) -> int:
    """F: the frames of a full motion packet."""
    return h.window * h.packet_windows


def _crc8_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return table


_CRC8 = _crc8_table()


def crc8(data: bytes) -> int:
    """CRC-8 (polynomial 0x07, as SMBus): every 1- and 2-bit error, and 255 in 256 others, is caught."""
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


def frames_problem(frames: int) -> str | None:
    if not 1 <= frames <= MAX_FRAMES:
        return f"end packet field frames = {frames} is outside 1..{MAX_FRAMES}"
    return None


# ---- writing ---------------------------------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pack_header(h: Header) -> bytes:
    problem = header_problem(h)
    if problem:
        raise MotionbitsError(f"cannot write this clip as a bitstream: {problem}")
    flags = ((PRIOR_FLAG if h.uses_prior else 0) | (ADAPTIVE_FLAG if h.adaptive else 0)
             | CODING_FLAGS[h.content_coding])
    head = _HEADER.pack(MAGIC, VERSION, flags, h.model_fingerprint, h.prior_fingerprint, h.fps, h.size, h.groups,
                        h.codebook_size, h.content_tokens, h.content_dim, h.window, h.packet_windows)
    return head + _CRC.pack(zlib.crc32(head))


def pack_packet(kind: bytes, payload: bytes) -> bytes:
    body = kind + _varint(len(payload)) + payload
    return body + _CRC.pack(zlib.crc32(body))


def content_packet(h: Header, section: bytes) -> bytes:
    problem = section_problem(section, h.content_coding, h.content_tokens, h.content_dim, h.size)
    if problem:
        raise MotionbitsError(f"cannot write this clip as a bitstream: {problem}")
    return pack_packet(CONTENT, section)


def motion_packet(word: bytes) -> bytes:
    if not word:
        raise MotionbitsError("cannot write this clip as a bitstream: an empty motion code word")
    body = _varint(len(word)) + word
    return body + bytes([crc8(body)])


def end_packet(frames: int, crc: int) -> bytes:
    problem = frames_problem(frames)
    if problem:
        raise MotionbitsError(f"cannot write this clip as a bitstream: {problem}")
    body = END + _END.pack(frames, crc)
    return body + _CRC.pack(zlib.crc32(body))


def pack(f: MbitsFile) -> bytes:
    h = f.header
    parts = [pack_header(h), content_packet(h, f.content)]
    expected = -(-h.frames // packet_frames(h)) if h.frames > 0 else 0
    if len(f.motion) != expected:
        raise MotionbitsError(f"cannot write this clip as a bitstream: {len(f.motion)} motion packets for "
                              f"{h.frames} frames in packets of {packet_frames(h)}")
    parts += [motion_packet(word) for word in f.motion]
    parts.append(end_packet(h.frames, h.codes_crc))
    return b"".join(parts)


def packet_sizes(f: MbitsFile) -> dict[str, int]:
    """Bytes of each part: header (the file header, the content and end packets' framing), content
    (the section), motion (the motion packets whole: they grow with the clip); and the total."""
    h = f.header
    content = len(pack_packet(CONTENT, f.content))
    motion = sum(len(motion_packet(word)) for word in f.motion)
    end = len(END) + _END.size + _CRC.size
    header = HEADER_BYTES + content - len(f.content) + end
    return {"header": header, "content": len(f.content), "motion": motion, "total": header + len(f.content) + motion}


# ---- reading ---------------------------------------------------------------------------------
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


def _read_varint(buf, at: int) -> tuple[int, int] | None:
    """(value, offset after it), None when the bytes end first; at most 4 bytes (2^28)."""
    value = 0
    for i in range(4):
        if at + i >= len(buf):
            return None
        value |= (buf[at + i] & 0x7F) << (7 * i)
        if not buf[at + i] & 0x80:
            return value, at + i + 1
    return -1, at + 4                              # a fifth byte: no length this format writes


class PacketReader:
    """Bytes in, as they arrive; the checked header and each whole, checked packet out. Everything
    wrong is one MotionbitsError line naming `where` (and the packet): a wrong magic or version, a
    CRC that does not match, a field out of range, packets out of order, bytes after the end."""

    def __init__(self, where: str):
        self.where = where
        self.header: Header | None = None
        self.ended = False
        self._buf = bytearray()
        self._at = 0                  # bytes of _buf already read
        self._index = 0               # the next packet's index
        self._frames = 0              # motion frames in the packets so far, at most (F a packet)
        self.received = 0

    def _fail(self, words: str) -> None:
        raise MotionbitsError(f"{self.where}: {words}")

    def feed(self, data: bytes) -> list[Packet]:
        self._buf += data
        self.received += len(data)
        if self.received > MAX_FILE_BYTES:
            self._fail(f"more than {MAX_FILE_BYTES >> 20} MiB: not a motionbits bitstream")
        out = []
        if self.header is None:
            if not self._read_header():
                return out
        while True:
            packet = self._next_packet()
            if packet is None:
                break
            out.append(packet)
        del self._buf[:self._at]                  # keep only the unread bytes
        self._at = 0
        return out

    def finish(self) -> None:
        """The stream has ended: it must have held the end packet and nothing after it."""
        if self.header is None:
            self._fail(f"not a motionbits bitstream (only {len(self._buf)} bytes)")
        if not self.ended:
            self._fail(f"truncated or corrupt bitstream (it stops {'inside' if self._buf else 'before'} packet "
                       f"{self._index}, after {self._frames} frames, without its end packet)")

    def _read_header(self) -> bool:
        buf = self._buf
        if len(buf) >= 4 and buf[:4] != MAGIC:
            self._fail("not a motionbits bitstream (no MBIT magic)")
        if len(buf) >= 5 and buf[4] not in READ_VERSIONS:
            self._fail(f"was written by motionbits format v{buf[4]}; this version reads v5 and v6 "
                       "(encode the clip again)")
        if len(buf) < HEADER_BYTES:
            return False
        if zlib.crc32(bytes(buf[:_HEADER.size])) != _CRC.unpack_from(buf, _HEADER.size)[0]:
            self._fail("truncated or corrupt bitstream (its header's CRC-32 does not match)")
        (_, _, flags, model_fp, prior_fp, fps, size, groups, codebook, tokens, width,
         window, packet_windows) = _HEADER.unpack_from(buf)
        if flags & ~KNOWN_FLAGS[buf[4]] or (flags & FLOAT16_FLAG and flags & IMAGE_FLAG):
            self._fail(f"corrupt bitstream (unknown flags {flags:#04x})")
        coding = FLOAT16 if flags & FLOAT16_FLAG else IMAGE if flags & IMAGE_FLAG else COMPACT
        header = Header(bool(flags & PRIOR_FLAG), bytes(model_fp), bytes(prior_fp), fps, size, groups, codebook, tokens,
                        width, window, bool(flags & ADAPTIVE_FLAG), coding, packet_windows)
        problem = header_problem(header)
        if problem:
            self._fail(f"corrupt bitstream ({problem})")
        self.header, self._at = header, HEADER_BYTES
        return True

    def _largest_payload(self, kind: bytes) -> int:
        h = self.header
        if kind == CONTENT:
            return largest_section(h.content_tokens, h.content_dim, h.content_coding, h.size)
        if kind == MOTION:   # at most 16 bits a code (every frequency >= 1 of 2^16), the frame count, the end
            return 2 * packet_frames(h) * h.groups + 4 + 8
        return _END.size

    def _next_packet(self) -> Packet | None:
        buf, at, index = self._buf, self._at, self._index
        if at == len(buf):
            return None
        if self.ended:
            self._fail(f"truncated or corrupt bitstream ({len(buf) - at} bytes after its end packet)")
        h = self.header
        first_byte = bytes(buf[at:at + 1])
        kind = CONTENT if index == 0 else END if first_byte == END else MOTION
        if index == 0 and first_byte != CONTENT:
            self._fail(f"truncated or corrupt bitstream (packet 0 is of kind {first_byte!r}, expected content)")
        if index == 1 and kind == END:
            self._fail("truncated or corrupt bitstream (packet 1 is the end, expected motion)")
        body = at + (0 if kind == MOTION else 1)          # after the kind byte
        if kind == END:
            length, start = _END.size, body
        else:
            length = _read_varint(buf, body)
            if length is None:
                return None
            length, start = length
            if not (1 if kind == MOTION else 0) <= length <= self._largest_payload(kind):
                self._fail(f"truncated or corrupt bitstream (packet {index} ({KIND_NAMES[kind]}) says {length} bytes, "
                           f"{'none' if length == 0 else 'more than such a packet holds'})")
        end = start + length
        check = 1 if kind == MOTION else _CRC.size
        if len(buf) < end + check:
            return None
        first = self._frames
        if kind == MOTION:
            good = crc8(bytes(buf[at:end])) == buf[end]
        else:
            good = zlib.crc32(bytes(buf[at:end])) == _CRC.unpack_from(buf, end)[0]
        if not good:
            where = f", from frame {first}" if kind == MOTION else ""
            crc = "CRC-8" if kind == MOTION else "CRC-32"
            self._fail(f"truncated or corrupt bitstream (packet {index} ({KIND_NAMES[kind]}{where}) is damaged: "
                       f"its {crc} does not match)")
        payload = bytes(buf[start:end])
        self._at, self._index = end + check, index + 1
        packet = Packet(kind, index, payload, size=end + check - at)
        if kind == CONTENT:
            problem = section_problem(payload, h.content_coding, h.content_tokens, h.content_dim, h.size)
            if problem:
                self._fail(f"corrupt bitstream (packet 0, content: {problem})")
        elif kind == MOTION:
            packet.first, packet.frames = first, packet_frames(h)
            self._frames += packet_frames(h)             # at most: the decoder reads the last packet's count
            if first >= MAX_FRAMES:
                self._fail(f"corrupt bitstream (more than {MAX_FRAMES} frames)")
        else:
            packet.frames, packet.codes_crc = _END.unpack(payload)
            problem = frames_problem(packet.frames)
            if problem:
                self._fail(f"corrupt bitstream ({problem})")
            if not self._frames - packet_frames(h) < packet.frames <= self._frames:
                self._fail(f"truncated or corrupt bitstream (its end packet says {packet.frames} frames, its "
                           f"{index - 1} motion packets of at most {packet_frames(h)} hold "
                           f"{self._frames - packet_frames(h) + 1}..{self._frames})")
            h.frames, h.codes_crc = packet.frames, packet.codes_crc
            self.ended = True
        return packet


def unpack(data: bytes, where: str) -> MbitsFile:
    """Parse a whole .mbits file; one line naming `where` and what is wrong for anything else."""
    reader = PacketReader(where)
    packets = reader.feed(data)
    reader.finish()
    content = next(p.payload for p in packets if p.kind == CONTENT)
    return MbitsFile(reader.header, content, [p.payload for p in packets if p.kind == MOTION])
