"""Streaming: a clip coded window by window as it is filmed, and decoded packet by packet as it arrives.

    frames ──StreamEncoder.feed──► bytes: the header, then per P windows of W frames their motion packet
                                   (the content packet with the first)      ... finish() ──► last packet + end
    bytes ──StreamDecoder.feed──► each frame as soon as its window's packet is in     ... finish(): the end checked

The model reads motion in consecutive windows of W = model.window frames (BCDModel.motion_logits),
so frame t's codes exist once frame (t // W + 1) W - 1 has been read. A motion packet holds
F = P W frames (P windows, `packet_windows`, 1 by default): a look-ahead of up to F - 1 frames,
(F - 1) / fps seconds, before encode and decode time. More windows a packet spread each packet's
fixed cost (its length, its CRC-8, its code word's end: about 21 bits) over more frames. The last window of a clip that is not a
whole number of windows is read shifted back to stay full (as motion_logits does), from the last W
frames the encoder keeps, so a stream codes exactly the codes a whole-clip encode gives.

The tables' state (adaptive counts, the prior's context) carries across packets as in one pass;
each packet's code word ends with it (codec/range_coder.py: at most a byte beyond its codes' bits)
so that a packet decodes on its own arrival. The decoder renders each packet's frames together, drawing their noise from one
generator seeded once, window after window: the frames do not depend on how the bytes were cut, and
for a model without temporal attention they equal `reconstruct`'s (frames are independent given the
content, the codes and the noise, and the noise is drawn in the same order).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

import motionbits.codec.content as content_coding
from motionbits.codec.compat import check_codable, check_models, prior_fingerprint, section_values
from motionbits.codec.entropy import AdaptiveModel, PriorModel, StaticModel, decode_codes, encode_codes
from motionbits.codec.format import (MAX_FRAMES, MOTION, CONTENT, END, Header, PacketReader, codes_crc,
                                     content_packet, end_packet, motion_packet, pack_header, packet_frames)
from motionbits.errors import MotionbitsError
from motionbits.runtime import autocast

TABLES = ("adaptive", "static")      # the motion's tables without a prior; adaptive is the default


def code_model(pipe, prior, content: torch.Tensor, adaptive: bool = True):
    """The tables the motion is coded under, given the content values [1, K, Cc] the decoder has."""
    if prior is not None:
        return PriorModel(prior, content)
    return AdaptiveModel.of(pipe.model.quantizer) if adaptive else StaticModel.of(pipe.model.quantizer)


def look_ahead(pipe, packet_windows: int = 1) -> int:
    """Frames the encoder waits for beyond a frame before that frame's codes can be sent: P W - 1."""
    return packet_windows * pipe.model.window - 1


class _Codes:
    """Codes int64 [t, N] that grow by a window at a time, without copying the past each time."""

    def __init__(self, groups: int):
        self.rows, self.count = np.zeros((64, groups), dtype=np.int64), 0

    def room(self, frames: int) -> np.ndarray:
        while self.count + frames > len(self.rows):
            self.rows = np.concatenate([self.rows, np.zeros_like(self.rows)])
        return self.rows

    @property
    def all(self) -> np.ndarray:
        return self.rows[:self.count]


class StreamEncoder:
    """Fed uint8 frames [n, H, W, 3] (any n, in order; or latents with feed_latents), returns the
    bytes of every packet those frames complete; finish() returns the last packets. The bytes
    returned, joined, are the .mbits file. `packets` lists (kind, frames, bytes) as they were sent.
    A model whose lip groups read lip points (model.lip_groups) finds them in each frame fed (dlib);
    only the encoder reads them, the decoder reads codes. content: codec/content.py's CODINGS, by
    default the key frame's picture for a key-frame model and compact values otherwise."""

    def __init__(self, pipe, prior=None, fps: float | None = None, content: str | None = None,
                 content_bytes: int | None = None, tables: str = "adaptive", packet_windows: int = 1):
        from motionbits.frame_rate import UNTIMED_FPS, check_fps

        content = content_coding.default_coding(pipe.cfg) if content is None else content
        if content not in content_coding.CODINGS or tables not in TABLES:
            raise ValueError(f"content {content!r} / tables {tables!r}: expected one of {content_coding.CODINGS} / {TABLES}")
        check_codable(pipe.cfg, getattr(pipe, "source", "this model"))
        self.pipe, self.prior = pipe, prior
        self.window = pipe.model.window
        self.content_coding, self.content_bytes = content, content_bytes
        if content == content_coding.IMAGE:
            from motionbits.codec.key_frame import check_image_content

            check_image_content(pipe.cfg, getattr(pipe, "source", "this model"))
        self.key_frame: np.ndarray | None = None          # uint8 [H, W, 3]: the first frame, for IMAGE content
        self.adaptive = prior is None and tables == "adaptive"
        m = pipe.cfg.model
        self.header = Header(prior is not None, pipe.fingerprint(), prior_fingerprint(prior),
                             check_fps(UNTIMED_FPS if fps is None else fps, "the clip's frame rate"),
                             pipe.cfg.data.image_size, m.groups, m.codebook_size, m.content_queries, m.content_dim,
                             self.window, self.adaptive, content, packet_windows)
        self.packet_frames = packet_frames(self.header)
        self.packets: list[tuple[str, int, int]] = [("header", 0, 0)]
        self.section = b""                     # the content section sent
        self.motion: list[bytes] = []          # each motion packet's code word
        self.content_values: torch.Tensor | None = None   # [1, K, Cc] float32, what the decoder reads
        self._out = [pack_header(self.header)]
        self.packets[0] = ("header", 0, len(self._out[0]))
        self._latents: torch.Tensor | None = None         # [1, <= 2W, C, h, w]: the frames not yet sent, and the last W
        self._lips: torch.Tensor | None = None            # [1, <= 2W, 40]: their lip points (model.lip_groups)
        self._coded = 0                         # frames whose codes are read
        self._sent = 0                          # frames whose codes are sent
        self._read = 0                          # frames read
        self._against = None                    # what the codes are read against (BCDModel.motion_reference)
        self._codes = _Codes(m.groups)
        self._crc = 0
        self._model = None
        self.finished = False

    def feed(self, frames) -> bytes:
        """uint8 frames [n, H, W, 3] -> the bytes of the packets they complete (b"" while a window fills)."""
        frames = torch.as_tensor(np.asarray(frames))
        if frames.ndim != 4:
            raise MotionbitsError(f"the encoder takes frames [n, H, W, 3], got shape {tuple(frames.shape)}")
        if self.key_frame is None and len(frames):
            self.key_frame = frames[0].numpy()
        return self.feed_latents(self.pipe.to_latents(frames[None]), self.pipe.model.lips_of_frames(frames[None]))

    def feed_latents(self, z: torch.Tensor, lips: torch.Tensor | None = None) -> bytes:
        """Latents [1, n, C, h, w] (pipe.to_latents), and for a model with lip groups their frames'
        lip points [1, n, 40] (BCDModel.lips_of_frames) -> the bytes of the packets they complete.
        Content sent as a picture needs the first frame itself: set `key_frame` before."""
        if self.finished:
            raise MotionbitsError("this stream is finished: start another encoder")
        if self.pipe.cfg.model.lip_groups and lips is None:
            raise MotionbitsError("this model's codes read the lips too (model.lip_groups): feed frames, or latents "
                                  "with their lip points")
        if self._read + z.shape[1] > MAX_FRAMES:
            raise MotionbitsError(f"the clip has {self._read + z.shape[1]} frames, more than a bitstream holds "
                                  f"({MAX_FRAMES}): --frames N encodes its start")
        self._latents = z if self._latents is None else torch.cat([self._latents, z], dim=1)
        if lips is not None:
            lips = lips.to(z.device)
            self._lips = lips if self._lips is None else torch.cat([self._lips, lips], dim=1)
        self._read += z.shape[1]
        w = self.window
        while self._read - self._coded >= w:
            held = self._latents.shape[1] - (self._read - self._coded)     # frames kept from before the window
            self._read_codes(held, 0)
            if self._coded - self._sent == self.packet_frames:
                self._send()
            keep = self._latents.shape[1] - (held + w)                     # the frames after the window
            first = max(0, self._latents.shape[1] - keep - w)              # and the last full window
            self._latents = self._latents[:, first:]
            self._lips = None if self._lips is None else self._lips[:, first:]
        return self._take()

    def finish(self) -> bytes:
        """The last frames' packet (their window read shifted back to stay full) and the end packet."""
        if self.finished:
            return b""
        w = self.window
        if self._read < w:
            raise MotionbitsError(f"the clip has {self._read} frames, fewer than the model's window of {w}: "
                                  "nothing to read its motion from")
        left = self._read - self._coded
        if left:
            self._read_codes(self._latents.shape[1] - w, w - left)
        if self._coded > self._sent:
            self._send()
        self._out.append(end_packet(self._read, self._crc))
        self.header.frames, self.header.codes_crc = self._read, self._crc
        self.packets.append(("end", self._read, len(self._out[-1])))
        self.finished = True
        return self._take()

    def _take(self) -> bytes:
        out, self._out = b"".join(self._out), []
        return out

    def _read_codes(self, begin: int, skip: int) -> None:
        """The codes of the window of held frames from `begin`, from its `skip`-th frame on: the
        content packet first if none was sent."""
        pipe, w = self.pipe, self.window
        window = self._latents[:, begin:begin + w]                                      # [1, W, C, h, w]
        lips = None if self._lips is None else self._lips[:, begin:begin + w]            # [1, W, 40]
        if self._model is None:
            self._start(window, lips)
        with autocast(pipe.device, pipe.bf16):                 # as BCDModel.motion_logits, window by window
            logits = pipe.model.window_logits(window, lips, self._against)[:, skip:].float()
        codes = logits.argmax(-1)[0].cpu().numpy()             # [n, N]
        n = codes.shape[0]
        rows = self._codes.room(n)
        rows[self._coded:self._coded + n] = codes
        self._codes.count += n
        self._coded += n

    def _send(self) -> None:
        """The motion packet of the frames read since the last one."""
        rows, n = self._codes.all, self._coded - self._sent
        word = encode_codes(rows, self._model, start=self._sent, full=self.packet_frames)
        self._crc = codes_crc(rows[self._sent:], self._crc)
        self.motion.append(word)
        self._out.append(motion_packet(word))
        self.packets.append(("motion", n, len(self._out[-1])))
        self._sent += n

    def _start(self, first: torch.Tensor, first_lips: torch.Tensor | None) -> None:
        """The content (and what the codes are read against) from the first window [1, W, ...]."""
        pipe = self.pipe
        if self.content_coding == content_coding.IMAGE:
            from motionbits.codec.key_frame import decode_key_frame, encode_key_frame, key_frame_values

            if self.key_frame is None:
                raise MotionbitsError("--content image sends the first frame as a picture: feed the encoder frames "
                                      "(or set its key_frame before feeding latents)")
            self.section = encode_key_frame(self.key_frame, self.content_bytes)
            values = key_frame_values(pipe, decode_key_frame(self.section, self.header.size))   # as the decoder reads it
        else:
            values = pipe.content_of_latents(first)[0].cpu().numpy()                  # [K, Cc] float16 values
            if self.content_coding == content_coding.FLOAT16:
                self.section = values.astype("<f2").tobytes()
            else:
                self.section, values = content_coding.encode_content(values, self.content_bytes)
        self.content_values = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None]
        self._out.append(content_packet(self.header, self.section))
        self.packets.append(("content", 0, len(self._out[-1])))
        with autocast(pipe.device, pipe.bf16):
            self._against = pipe.model.motion_reference(first, first_lips)
        self._model = code_model(pipe, self.prior, self.content_values, self.adaptive)

    @property
    def codes(self) -> np.ndarray:
        """Every code sent so far, int64 [t, N]."""
        return self._codes.all.copy()


class StreamDecoder:
    """Fed the bytes of a .mbits stream as they arrive (any cut), returns the frames each feed makes
    decodable: uint8 [n, H, W, 3], n = 0 until a motion packet is whole, then its W frames (the
    last fewer). finish() checks the stream ended with its end packet. render=False decodes the codes
    only (`codes`, `content`). `pipe` must be the model the header names (`header` from a PacketReader,
    or read_header); a different one is refused in one line, as are damaged packets."""

    def __init__(self, pipe, prior=None, where: str = "bitstream", steps: int | None = None,
                 sampler: str | None = None, seed: int = 0, render: bool = True):
        self.pipe, self.prior, self.where = pipe, prior, where
        self.steps, self.sampler, self.render = steps, sampler, render
        self.reader = PacketReader(where)
        self.content: torch.Tensor | None = None          # [1, K, Cc] float32
        self._codes = None
        self._model = None
        self._crc = 0
        self._short = False                     # a motion packet of fewer than F frames came: only the end may follow
        self._checked = False
        self._noise = torch.Generator().manual_seed(seed)
        m = pipe.model
        self._noise_shape = (m.latent_channels, m.latent_size, m.latent_size)

    @property
    def header(self) -> Header | None:
        return self.reader.header

    @property
    def codes(self) -> np.ndarray:
        """Every code decoded so far, int64 [t, N]."""
        return np.zeros((0, 0), dtype=np.int64) if self._codes is None else self._codes.all.copy()

    def feed(self, data: bytes) -> torch.Tensor:
        frames = []
        packets = self.reader.feed(data)
        if not self._checked and self.reader.header is not None:       # before anything is decoded under it
            self._check_models(self.reader.header)
            self._checked = True
        for packet in packets:
            if packet.kind == CONTENT:
                self._start(packet.payload)
            elif packet.kind == MOTION:
                codes = self._decode(packet)
                if self.render:
                    frames.append(self._render(codes))
            elif packet.kind == END and packet.frames != len(self._codes.all):
                raise MotionbitsError(f"{self.where}: truncated or corrupt bitstream (its end packet says {packet.frames} "
                                      f"frames, its motion packets hold {len(self._codes.all)})")
            elif packet.kind == END and packet.codes_crc != self._crc:
                raise MotionbitsError(f"{self.where}: the decoded motion codes fail the file's checksum (a corrupt "
                                      "file, or this machine's arithmetic differs from the encoder's)")
        if frames:
            return torch.cat(frames)
        size = self.pipe.cfg.data.image_size
        return torch.zeros((0, size, size, 3), dtype=torch.uint8)

    def finish(self) -> None:
        self.reader.finish()

    def _check_models(self, h: Header) -> None:
        check_models(h, self.pipe, self.prior, self.where)

    def _start(self, section: bytes) -> None:
        h = self.header
        self.content = torch.from_numpy(section_values(section, h, self.where, self.pipe))[None]   # [1, K, Cc]
        self._model = code_model(self.pipe, self.prior if h.uses_prior else None, self.content, h.adaptive)
        self._codes = _Codes(h.groups)

    def _decode(self, packet) -> np.ndarray:
        if self._short:
            raise MotionbitsError(f"{self.where}: corrupt motion stream ({packet.name()} follows a packet of fewer "
                                  f"than {packet.frames} frames, which only the last may be)")
        rows = self._codes.room(packet.frames)
        try:
            codes = decode_codes(packet.payload, None, self.header.groups, self._model, into=rows,
                                 start=packet.first, full=packet.frames).copy()
        except (ValueError, RuntimeError) as err:
            raise MotionbitsError(f"{self.where}: corrupt motion stream in {packet.name()} ({err})") from None
        self._codes.count += len(codes)
        self._short = len(codes) < packet.frames
        self._crc = codes_crc(codes, self._crc)
        return codes

    def _render(self, codes: np.ndarray) -> torch.Tensor:
        """codes [n, N] (the last decoded) -> uint8 frames [n, H, W, 3], their noise the generator's next n frames."""
        pipe, n, w = self.pipe, len(codes), self.pipe.model.window
        # model.motion_context reads the codes in the encoder's windows: from one window before this
        # packet (packets start on a window), the last window is cut shifted back as in a whole-clip render.
        recent = self._codes.all[max(0, len(self._codes.all) - n - w):]
        noise = torch.randn((1, n, *self._noise_shape), generator=self._noise).to(pipe.device)
        with autocast(pipe.device, pipe.bf16):
            motion = pipe.model.motion_condition(torch.from_numpy(recent)[None].to(pipe.device))[:, -n:]
            z = pipe.model.render_condition(self.content.to(pipe.device), motion, noise, self.steps, self.sampler)
        return pipe.to_frames(z.float())[0]


def decode_stream(chunks, pipe, prior=None, where: str = "bitstream", on_frames: Callable | None = None,
                  **render) -> torch.Tensor:
    """Every frame of a stream given as byte chunks: uint8 [T, H, W, 3]; on_frames(frames) sees each
    batch as it is decoded."""
    decoder = StreamDecoder(pipe, prior, where, **render)
    out = []
    for chunk in chunks:
        frames = decoder.feed(chunk)
        if len(frames):
            out.append(frames)
            if on_frames:
                on_frames(frames)
    decoder.finish()
    return torch.cat(out)
