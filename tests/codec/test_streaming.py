"""Streaming (codec/stream.py): packets out as windows are read, frames out as packets arrive."""
import numpy as np
import pytest
import torch

from motionbits.api import MotionBits
from motionbits.codec import encode_clip, read_file
from motionbits.codec.format import HEADER_BYTES, PacketReader, pack
from motionbits.codec.stream import StreamDecoder, StreamEncoder, decode_stream, look_ahead
from motionbits.errors import MotionbitsError


@pytest.fixture(scope="module")
def pipe(run):
    return MotionBits.from_checkpoint(run)


@pytest.fixture(scope="module")
def clip(sprites_root):
    """22 frames (three 8-frame test clips, cut): 5 windows of 4 and a last one of 2, read shifted back."""
    frames = np.load(sprites_root / "test.npz")["frames"]
    return torch.from_numpy(np.concatenate([frames[0], frames[1], frames[2]])[:22])


def _encode_frame_by_frame(pipe, clip, **options) -> tuple[list[bytes], list[int]]:
    """The bytes the encoder returns after each frame fed (and after finish)."""
    encoder = StreamEncoder(pipe, fps=8, **options)
    out = [encoder.feed(clip[t:t + 1]) for t in range(len(clip))]
    return out + [encoder.finish()], encoder


def _packet_ends(data: bytes, frames: int = 22) -> list[tuple[int, int]]:
    """(byte offset where each motion packet ends, frames decodable then) for a clip of `frames`."""
    reader, ends = PacketReader("x"), []
    for at in range(len(data)):
        for p in reader.feed(data[at:at + 1]):
            if p.kind == b"M":
                ends.append((at + 1, min(p.first + p.frames, frames)))   # p.frames: a full packet's
    return ends


def test_the_encoder_sends_each_window_once_read_and_a_stream_is_the_clip_s_file(pipe, clip):
    w = pipe.model.window
    assert (w, look_ahead(pipe)) == (4, 3)
    out, encoder = _encode_frame_by_frame(pipe, clip)
    sent = [t for t, b in enumerate(out[:-1]) if b]
    assert sent == [0, 3, 7, 11, 15, 19]            # frame t's codes leave when frame t // 4 * 4 + 3 is read
    assert len(out[0]) == HEADER_BYTES and out[-1]  # the header at once; finish: the last 2 frames and the end
    data = b"".join(out)
    whole = encode_clip(pipe, clip, fps=8)
    assert data == pack(whole)                      # the same bytes as encoding the whole clip
    assert np.array_equal(encoder.codes, pipe.encode_motion(clip)[0].numpy())   # the last window read shifted back
    f = read_file(data, "x")
    assert [len(m) > 0 for m in f.motion] == [True] * 6 and f.header.frames == 22
    assert [kind for kind, *_ in encoder.packets] == ["header", "content"] + ["motion"] * 6 + ["end"]


def test_relative_motion_is_read_against_the_first_window_as_a_whole_clip_is(run, clip):
    pipe = MotionBits.from_checkpoint(run)
    pipe.cfg.model.relative_motion = True          # the same weights, codes read against the first window
    _, encoder = _encode_frame_by_frame(pipe, clip)
    assert np.array_equal(encoder.codes, pipe.encode_motion(clip)[0].numpy())


@pytest.mark.parametrize("content", ["compact", "float16"])
def test_decoding_packet_by_packet_gives_the_frames_of_the_whole_file(pipe, clip, content):
    data = pack(encode_clip(pipe, clip, fps=8, content=content))
    whole = decode_stream([data], pipe)
    assert whole.shape == (22, 64, 64, 3) and whole.dtype == torch.uint8
    ends = [0] + [at for at, _ in _packet_ends(data)] + [len(data)]
    pieces = [data[a:b] for a, b in zip(ends, ends[1:])]
    assert torch.equal(decode_stream(pieces, pipe), whole)
    assert torch.equal(decode_stream([data[i:i + 7] for i in range(0, len(data), 7)], pipe), whole)   # any cut
    if content == "float16":                        # frames independent given content, codes, noise: reconstruct's
        assert torch.equal(whole[None], pipe.reconstruct(clip))


def test_the_decoder_gives_frame_t_before_any_byte_after_t_s_window(pipe, clip):
    data = pack(encode_clip(pipe, clip, fps=8))
    ends = dict(_packet_ends(data))                 # byte offset -> frames decodable once it is in
    decoder, have = StreamDecoder(pipe, where="x"), 0
    for at in range(len(data)):
        have += len(decoder.feed(data[at:at + 1]))
        assert have == max([f for end, f in ends.items() if end <= at + 1], default=0), at
    assert sorted(ends.values()) == [4, 8, 12, 16, 20, 22]
    decoder.finish()
    assert decoder.header.frames == 22


def test_a_truncated_or_damaged_stream_is_refused_in_one_line_naming_the_packet(pipe, clip):
    data = pack(encode_clip(pipe, clip, fps=8))
    ends = [at for at, _ in _packet_ends(data)]
    decoder = StreamDecoder(pipe, where="x.mbits")
    assert len(decoder.feed(data[:ends[2] + 3])) == 12      # three packets' frames, then 3 bytes of the fourth
    with pytest.raises(MotionbitsError) as err:
        decoder.finish()
    assert str(err.value) == ("x.mbits: truncated or corrupt bitstream (it stops inside packet 4, after 12 frames, "
                              "without its end packet)")
    damaged = bytearray(data)
    damaged[ends[2] + 1] ^= 0x01                    # the code word of the fourth motion packet (frames 12..15)
    decoder = StreamDecoder(pipe, where="x.mbits")
    assert len(decoder.feed(bytes(damaged[:ends[2]]))) == 12       # what came before it still shows
    with pytest.raises(MotionbitsError) as err:
        decoder.feed(bytes(damaged[ends[2]:]))
    assert str(err.value) == ("x.mbits: truncated or corrupt bitstream (packet 4 (motion, from frame 12) is damaged: "
                              "its CRC-8 does not match)")
    with pytest.raises(MotionbitsError, match=r"^x\.mbits: truncated or corrupt bitstream \(it stops before packet 7"):
        decode_stream([data[:ends[-1]]], pipe, where="x.mbits")          # every motion packet, no end packet
    assert data[HEADER_BYTES:HEADER_BYTES + 1] == b"C"


def test_encode_says_the_latency_and_decode_reads_the_stream(run, sprites_root, tmp_path, capsys):
    from motionbits.cli import main

    use = [f"sprites:{sprites_root}:test:2", "--checkpoint", str(run), "--device", "cpu", "--fps", "8"]
    capsys.readouterr()
    assert main(["encode", *use, "-o", str(tmp_path / "a.mbits")]) == 0
    said = capsys.readouterr().out
    assert "streamable in 2 packets of 4 frames: a latency of 3 frames of look-ahead, 0.38 s" in said
    damaged = bytearray((tmp_path / "a.mbits").read_bytes())
    damaged[-15] ^= 0x40                           # the last motion packet's last code byte (then its CRC-8, the end)
    (tmp_path / "b.mbits").write_bytes(bytes(damaged))
    assert main(["decode", str(tmp_path / "b.mbits"), "--checkpoint", str(run), "--device", "cpu",
                 "-o", str(tmp_path / "b.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("b.mbits: truncated or corrupt bitstream (packet 2 (motion, from frame 4) is damaged: its CRC-8 "
                        "does not match)") and len(err.splitlines()) == 1 and not (tmp_path / "b.png").exists()


def test_packets_of_two_windows_wait_for_both_and_decode_as_the_whole_file(pipe, clip):
    """--packet-windows 2: a packet per 8 frames (7 frames of look-ahead), the last of 6."""
    out, encoder = _encode_frame_by_frame(pipe, clip, packet_windows=2)
    assert [t for t, b in enumerate(out[:-1]) if b] == [0, 3, 7, 15]       # header, content, frames 0..7, 8..15
    data = b"".join(out)
    assert data == pack(encode_clip(pipe, clip, fps=8, packet_windows=2))
    assert [frames for kind, frames, _ in encoder.packets if kind == "motion"] == [8, 8, 6]
    decoder = StreamDecoder(pipe, where="x", render=False)
    decoder.feed(data)
    decoder.finish()
    assert np.array_equal(decoder.codes, pipe.encode_motion(clip)[0].numpy())
    one = pack(encode_clip(pipe, clip, fps=8))
    assert len(data) < len(one)                     # 3 packets' length, CRC-8 and code word end instead of 6
    with pytest.raises(MotionbitsError, match="packet_windows = 256 is outside 1..255"):
        StreamEncoder(pipe, fps=8, packet_windows=256)


def test_a_short_packet_before_another_is_refused(pipe, clip):
    """Only the last motion packet may hold fewer frames: a stream spliced after a short one is corrupt."""
    short = pack(encode_clip(pipe, clip[:6], fps=8))             # packets of 4 and 2 frames
    ends = [at for at, _ in _packet_ends(short, 6)]
    spliced = short[:ends[1]] + short[ends[0]:ends[1]]          # the short packet, then a copy of it
    decoder = StreamDecoder(pipe, where="x.mbits", render=False)
    with pytest.raises(MotionbitsError, match=r"packet 3 \(motion, from frame 8\) follows a packet of fewer than 4"):
        decoder.feed(spliced)


def test_a_model_that_reads_codes_in_context_streams_the_frames_of_a_whole_clip_render(run, sprites_root):
    # model.motion_context reads each frame's codes beside its window's: packet by packet, the
    # decoder must cut the same windows as a whole-clip render, the last one shifted back.
    from motionbits.models.motion_context import MotionContext
    from tests.helpers import awake

    frames = np.load(sprites_root / "test.npz")["frames"]                  # [N, 8, 64, 64, 3]
    clip = torch.from_numpy(np.stack([frames[(5 * t) % len(frames), t % 8] for t in range(22)]))  # a frame of a new clip each
    pipe = MotionBits.from_checkpoint(run)
    pipe.cfg.model.motion_context = 1
    pipe.model.motion_context = awake(MotionContext(pipe.model.quantizer.dim, 1), std=0.3).eval()
    awake(pipe.model.denoiser, std=0.05)               # a denoiser trained 2 steps barely reads its condition
    codes = pipe.encode_motion(clip)[0]
    assert len(set(map(tuple, codes[18:].tolist()))) > 1
    data = pack(encode_clip(pipe, clip, fps=8, content="float16"))
    ends = [0] + [at for at, _ in _packet_ends(data)] + [len(data)]
    streamed = decode_stream([data[a:b] for a, b in zip(ends, ends[1:])], pipe)
    assert torch.equal(streamed[None], pipe.reconstruct(clip))
    pipe.model.motion_context = None
    plain = decode_stream([data], pipe)
    assert not torch.equal(streamed[20:], plain[20:])   # the context changed the last frames


@pytest.mark.parametrize("relative", [False, True])
def test_a_model_whose_lip_groups_read_lip_points_streams_the_codes_a_whole_clip_gets(pipe, clip, monkeypatch,
                                                                                        relative):
    # model.lip_groups: the encoder finds each fed frame's lip points (here a stand-in for dlib that
    # tells frames apart) and reads every window against the first one's lips, as encode_motion does.
    import dataclasses

    import motionbits.models.bcd as bcd
    from motionbits.models.bcd import BCDModel
    from tests.helpers import awake

    monkeypatch.setattr(bcd, "lip_shapes", lambda clips: np.repeat(             # [B, T, 3] -> [B, T, 40]
        np.asarray(clips, np.float64).mean((2, 3)) / 64, [14, 13, 13], axis=-1))
    m = dataclasses.replace(pipe.cfg.model, content_reader="patch_pool", lip_groups=1, lip_relative=True,
                            relative_motion=relative)
    cfg = dataclasses.replace(pipe.cfg, model=m)
    model = awake(BCDModel(cfg, pipe.model.latent_channels, pipe.model.latent_size), std=0.3)
    lips = model.lips_of_frames(clip[None])                                       # [1, T, 40]
    model.lip_encoder.set_statistics(lips)
    with torch.no_grad():   # the lip group's entries at some frames' features, so its codes tell frames apart
        features = model.lip_encoder(lips - lips[:, :4].mean(1, keepdim=True))[0]                     # [T, d]
        model.quantizer.codebook[-1, :8] = (features - relative * features[:4].mean(0))[::3][:8]
    lips_pipe = MotionBits(model, pipe.tokenizer, cfg)
    _, encoder = _encode_frame_by_frame(lips_pipe, clip)
    whole = lips_pipe.encode_motion(clip)[0].numpy()
    assert np.array_equal(encoder.codes, whole)
    assert len(np.unique(whole[:, -1])) > 1                         # the lip group's codes move
    from motionbits.training.prior import extract_codes             # what a motion prior trains on
    assert np.array_equal(extract_codes(lips_pipe, clip[None].numpy(), progress=False)[0][0], whole)
    with pytest.raises(MotionbitsError, match="feed frames, or latents with their lip points"):
        StreamEncoder(lips_pipe, fps=8).feed_latents(lips_pipe.to_latents(clip[None]))
