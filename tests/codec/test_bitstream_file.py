"""The .mbits file as received: no path of the sender, a CRC over every byte, the model found by
fingerprint (never by a path the file names), and the round trip still equal to `reconstruct`."""
import shutil
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from motionbits.api import MotionBits
from motionbits.cli import main
from motionbits.codec import encode_clip, read_file
from motionbits.codec.find_models import MODEL_KIND, find_checkpoint
from motionbits.codec.format import HEADER_BYTES, pack
from motionbits.errors import MotionbitsError


def _strip(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_the_file_holds_no_path_and_decodes_to_the_reconstruction(run, sprites_root, tmp_path, monkeypatch, capsys):
    deep = tmp_path / "sender-home-kzq" / "projects-wvx" / "motion-runs-jyp"   # the encoding machine's folders
    shutil.copytree(run, deep / "model-run-qpf")
    monkeypatch.chdir(deep)
    clip = f"sprites:{sprites_root}:test:2"
    assert main(["encode", clip, "--checkpoint", str(deep / "model-run-qpf"), "--device", "cpu", "--content", "float16",
                 "-o", str(deep / "clip.mbits")]) == 0      # float16 content: what reconstruct renders
    data = (deep / "clip.mbits").read_bytes()
    for part in (deep / "model-run-qpf" / "last.pt").parts[1:]:     # every folder name, and the file's
        assert part.encode() not in data, part
    sizes = read_file(data, "clip.mbits").sizes
    assert len(data) == sizes["total"] and sizes["content"] == 2 * 2 * 16

    # received elsewhere: the file and the run folder side by side, decoded from another folder
    there = tmp_path / "receiver"
    shutil.copytree(deep / "model-run-qpf", there / "run")
    shutil.copy(deep / "clip.mbits", there / "clip.mbits")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["decode", str(there / "clip.mbits"), "--device", "cpu", "-o", str(there / "decoded.png")]) == 0
    assert main(["reconstruct", "--checkpoint", str(run), "--device", "cpu", "--input", clip,
                 "-o", str(there / "rebuilt.png")]) == 0
    assert np.array_equal(_strip(there / "decoded.png"), _strip(there / "rebuilt.png"))   # bit for bit


def _encoded(run, sprites_root) -> bytes:
    pipe = MotionBits.from_checkpoint(run)
    return pack(encode_clip(pipe, torch.from_numpy(np.load(sprites_root / "test.npz")["frames"][1]), fps=8))


@pytest.mark.parametrize("part,words", [
    ("magic-free header", "its header's CRC-32 does not match"),
    ("content", "packet 0 (content) is damaged: its CRC-32 does not match"),
    ("codes", "packet 2 (motion, from frame 4) is damaged: its CRC-8 does not match"),
    ("end", "packet 3 (end) is damaged: its CRC-32 does not match")])
def test_one_flipped_byte_in_any_part_is_refused_in_one_line(run, sprites_root, part, words):
    data = _encoded(run, sprites_root)        # 8 frames in windows of 4: content, two motion packets, the end (13 bytes)
    last_word = read_file(data, "x.mbits").motion[-1]                   # before the end: its length, it, its CRC-8
    at = {"magic-free header": 30, "content": HEADER_BYTES + 5, "codes": len(data) - 13 - 1 - len(last_word),
          "end": len(data) - 1}[part]
    for bit in (0x01, 0x80):                        # a low and a high bit: a flip anywhere changes the CRC
        damaged = bytearray(data)
        damaged[at] ^= bit
        with pytest.raises(MotionbitsError) as err:
            read_file(bytes(damaged), "x.mbits")
        assert str(err.value) == f"x.mbits: truncated or corrupt bitstream ({words})"
    assert read_file(data, "x.mbits").header.frames == 8                 # the undamaged file reads


def _forged(data: bytes, offset: int, fmt: str, value) -> bytes:
    """A header field (offset >= 0) or an end-packet field (offset < 0, from the file's end) set to
    `value`, its CRC made right again: what a buggy or hostile encoder writes, which only the field
    checks can refuse."""
    data = bytearray(data)
    struct.pack_into(fmt, data, offset if offset >= 0 else len(data) + offset, value)
    crc_at = HEADER_BYTES - 4 if offset >= 0 else len(data) - 4       # the header's CRC, or the end packet's
    start = 0 if offset >= 0 else len(data) - 13
    struct.pack_into("<I", data, crc_at, zlib.crc32(bytes(data[start:crc_at])))
    return bytes(data)


@pytest.mark.parametrize("offset,fmt,value,words", [
    (-12, "<I", 0, "frames = 0 is outside 1..36000"),
    (-12, "<I", 2**32 - 1, "frames = 4294967295 is outside 1..36000"),     # allocated 64 GiB in format 1
    (-12, "<I", 4, "its end packet says 4 frames, its 2 motion packets of at most 4 hold 5..8"),
    (22, "<d", float("nan"), "fps: nan is not a finite number"),
    (22, "<d", float("inf"), "fps: inf is not a finite number"),
    (22, "<d", -25.0, "fps: -25 fps is outside 1..240"),
    (22, "<d", 0.0, "fps: 0 fps is outside 1..240"),
    (30, "<H", 0, "size = 0 is outside 8..4096"),
    (32, "<H", 60000, "groups = 60000 is outside 1..1024"),
    (34, "<H", 65535, "codebook_size = 65535 is outside 2..4096"),
    (36, "<H", 0, "content_tokens = 0 is outside 1..4096"),
    (38, "<H", 9000, "content_dim = 9000 is outside 1..4096"),
    (40, "<H", 0, "window = 0 is outside 1..1024"),
    (40, "<H", 2, "its end packet says 8 frames, its 2 motion packets of at most 2 hold 3..4"),  # packets of 4 frames
    (42, "<H", 0, "packet_windows = 0 is outside 1..255"),
    (42, "<H", 300, "packet_windows = 300 is outside 1..255"),
    (5, "<B", 0x80, "unknown flags 0x80"),
    (5, "<B", 0x01, "coded under a prior but names none"),
])
def test_each_header_field_out_of_range_is_refused_before_use(run, sprites_root, offset, fmt, value, words):
    with pytest.raises(MotionbitsError) as err:
        read_file(_forged(_encoded(run, sprites_root), offset, fmt, value), "x.mbits")
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("offset,fmt,value", [(32, "<H", 5), (36, "<H", 16), (30, "<H", 32)])
def test_a_header_in_range_but_not_the_models_is_refused(run, sprites_root, offset, fmt, value):
    """Groups beyond the model's (an IndexError in format 1), the token shape swapped (2 x 16 read as
    16 x 2: a RuntimeError), another frame size."""
    from motionbits.codec import decode_file

    data = _forged(_encoded(run, sprites_root), offset, fmt, value)
    if offset == 36:
        data = _forged(data, 38, "<H", 2)
    with pytest.raises(MotionbitsError, match=r"x.mbits: corrupt bitstream \(its header says"):
        decode_file(read_file(data, "x.mbits"), MotionBits.from_checkpoint(run), where="x.mbits")


def test_the_model_is_found_by_fingerprint_and_a_wrong_one_is_refused(run, sprites_root, tmp_path, monkeypatch, capsys):
    here = tmp_path / "here"
    here.mkdir()
    (here / "clip.mbits").write_bytes(_encoded(run, sprites_root))
    fingerprint = MotionBits.from_checkpoint(run).fingerprint()
    # another model: the same checkpoint with one weight changed
    ckpt = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    name = next(k for k, v in ckpt["ema"].items() if v.is_floating_point())
    ckpt["ema"][name] = ckpt["ema"][name] + 1
    (tmp_path / "other").mkdir()
    torch.save(ckpt, tmp_path / "other" / "last.pt")
    (here / "notes.pt").write_text("not a checkpoint")               # skipped, not an error
    monkeypatch.chdir(tmp_path)                                        # holds other/last.pt only
    with pytest.raises(MotionbitsError, match=f"needs the model with fingerprint {fingerprint.hex()}; none of the 2 "):
        find_checkpoint(fingerprint, here / "clip.mbits", MODEL_KIND)
    shutil.copy(run / "last.pt", tmp_path / "mine.pt")                 # now in the current folder
    assert find_checkpoint(fingerprint, here / "clip.mbits", MODEL_KIND) == (tmp_path / "mine.pt").resolve()

    capsys.readouterr()
    assert main(["decode", str(here / "clip.mbits"), "--checkpoint", str(tmp_path / "other"), "--device", "cpu",
                 "-o", str(here / "o.png")]) == 2
    err = capsys.readouterr().err
    other = MotionBits.from_checkpoint(tmp_path / "other").fingerprint()
    assert len(err.splitlines()) == 1 and f"made by model {fingerprint.hex()}" in err and other.hex() in err
    assert not (here / "o.png").exists()


def test_a_clip_longer_than_a_bitstream_holds_is_refused_before_coding(run, sprites_root, monkeypatch):
    import motionbits.codec

    monkeypatch.setattr(motionbits.codec, "MAX_FRAMES", 7)
    clip = torch.from_numpy(np.load(sprites_root / "test.npz")["frames"][1])      # 8 frames
    with pytest.raises(MotionbitsError, match="the clip has 8 frames, more than a bitstream holds"):
        encode_clip(MotionBits.from_checkpoint(run), clip)
