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
from motionbits.codec.format import FIXED_BYTES, HEADER_BYTES, pack
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
    assert len(data) == FIXED_BYTES + 2 * 2 * 16 + struct.unpack_from("<I", data, 48)[0]
    assert struct.unpack_from("<I", data, 52)[0] == 2 * 2 * 16

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


@pytest.mark.parametrize("part", ["magic-free header", "content", "codes", "crc"])
def test_one_flipped_byte_in_any_part_is_refused_in_one_line(run, sprites_root, part):
    data = _encoded(run, sprites_root)
    at = {"magic-free header": 30, "content": HEADER_BYTES + 5, "codes": len(data) - 6, "crc": len(data) - 1}[part]
    for bit in (0x01, 0x80):                        # a low and a high bit: a flip anywhere changes the CRC
        damaged = bytearray(data)
        damaged[at] ^= bit
        with pytest.raises(MotionbitsError) as err:
            read_file(bytes(damaged), "x.mbits")
        assert str(err.value) == "x.mbits: truncated or corrupt bitstream (its CRC-32 over the whole file does not match)"
    assert read_file(data, "x.mbits").header.frames == 8                 # the undamaged file reads


def _forged(data: bytes, offset: int, fmt: str, value) -> bytes:
    """A header field set to `value`, the whole-file CRC made right again: what a buggy or hostile
    encoder writes, which only the field checks can refuse."""
    body = bytearray(data[:-4])
    struct.pack_into(fmt, body, offset, value)
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


@pytest.mark.parametrize("offset,fmt,value,words", [
    (22, "<I", 0, "frames = 0 is outside 1..36000"),
    (22, "<I", 2**32 - 1, "frames = 4294967295 is outside 1..36000"),      # allocated 64 GiB in format 1
    (26, "<d", float("nan"), "fps: nan is not a finite number"),
    (26, "<d", float("inf"), "fps: inf is not a finite number"),
    (26, "<d", -25.0, "fps: -25 fps is outside 1..240"),
    (26, "<d", 0.0, "fps: 0 fps is outside 1..240"),
    (34, "<H", 0, "size = 0 is outside 8..4096"),
    (36, "<H", 60000, "groups = 60000 is outside 1..1024"),
    (38, "<H", 65535, "codebook_size = 65535 is outside 2..4096"),
    (40, "<H", 0, "content_tokens = 0 is outside 1..4096"),
    (42, "<H", 9000, "content_dim = 9000 is outside 1..4096"),
    (48, "<I", 2**31, "truncated or corrupt bitstream"),                    # the motion's length
    (5, "<B", 0x80, "unknown flags 0x80"),
    (5, "<B", 0x01, "coded under a prior but names none"),
])
def test_each_header_field_out_of_range_is_refused_before_use(run, sprites_root, offset, fmt, value, words):
    with pytest.raises(MotionbitsError) as err:
        read_file(_forged(_encoded(run, sprites_root), offset, fmt, value), "x.mbits")
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("offset,fmt,value", [(36, "<H", 5), (40, "<H", 16), (34, "<H", 32)])
def test_a_header_in_range_but_not_the_models_is_refused(run, sprites_root, offset, fmt, value):
    """Groups beyond the model's (an IndexError in format 1), the token shape swapped (2 x 16 read as
    16 x 2: a RuntimeError), another frame size."""
    from motionbits.codec import decode_file

    data = _forged(_encoded(run, sprites_root), offset, fmt, value)
    if offset == 40:
        data = _forged(data, 42, "<H", 2)
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
