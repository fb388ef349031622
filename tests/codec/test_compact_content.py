"""The compact content (codec/content.py, format 3): quantised to a byte budget, range-coded, the
prior conditioned on the values the decoder will have, and impossible sections refused in one line."""
import struct
import zlib

import numpy as np
import pytest
import torch

from motionbits.api import MotionBits
from motionbits.cli import main
from motionbits.codec import content_values, decode_file, encode_clip, read_file
from motionbits.codec.content import decode_content, default_budget, encode_content
from motionbits.codec.format import HEADER_BYTES, pack, pack_packet
from motionbits.errors import MotionbitsError
from motionbits.models.prior import MotionPrior, PriorConfig


def _content(shape=(16, 256), seed=0) -> np.ndarray:
    """Content as the model gives it: near Gaussian, unit spread, float16 values."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float16).astype(np.float32)


def _relative_error(values, content) -> float:
    return float(np.linalg.norm(values - content) / np.linalg.norm(content))


def test_a_talking_head_content_fits_one_kilobyte_and_decodes_to_the_encoder_s_values():
    content = _content()
    assert default_budget(16, 256) == 1024                           # against 8,192 bytes as float16
    section, values = encode_content(content)
    assert 0.9 * 1024 <= len(section) <= 1024                         # the finest step that fits, not any step
    assert np.array_equal(decode_content(section, 16, 256), values)  # bit for bit what the encoder conditioned on
    assert _relative_error(values, content) < 0.36                    # 2 bits a value of a unit Gaussian: ~0.34


def test_a_larger_budget_buys_a_smaller_error_and_a_tiny_one_is_refused():
    content = _content(seed=1)
    errors = []
    for budget in (512, 1024, 2048, 4096):
        section, values = encode_content(content, budget)
        assert 0.9 * budget <= len(section) <= budget
        errors.append(_relative_error(values, content))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.03
    with pytest.raises(MotionbitsError, match=r"^content budget 8 bytes: a compact content of 16 x 256 takes 10\.\."):
        encode_content(content, 8)
    assert np.array_equal(encode_content(np.zeros((2, 16), np.float32))[1], np.zeros((2, 16)))   # nothing to send


@pytest.fixture(scope="module")
def pipe(run):
    return MotionBits.from_checkpoint(run)


def _prior_for(pipe) -> MotionPrior:
    m = pipe.cfg.model
    torch.manual_seed(0)
    prior = MotionPrior(PriorConfig(width=32, depth=1, heads=2, max_frames=4, groups=m.groups,
                                    codebook_size=m.codebook_size, content_dim=m.content_dim, dropout=0.1))   # in training mode:
    # the codec must turn its dropout off itself
    with torch.no_grad():
        for p in prior.parameters():
            p.normal_(std=0.5)                                     # tables that depend on the content
    return prior


def test_the_prior_reads_the_decoder_s_content_so_a_compact_file_decodes(pipe, clip):
    prior = _prior_for(pipe)
    f = encode_clip(pipe, clip, prior, fps=8)
    assert f.header.content_coding == "compact" and f.sizes["content"] <= default_budget(2, 16)
    back = read_file(pack(f), "x.mbits")
    content, codes = decode_file(back, pipe, prior, where="x.mbits")
    assert torch.equal(codes[0], pipe.encode_motion(clip)[0])
    exact = pipe.encode_content(clip)
    assert torch.equal(content[0], torch.from_numpy(content_values(back))) and not torch.equal(content, exact)
    assert _relative_error(content.numpy(), exact.numpy()) < 0.2    # 8 bits a value for this 2 x 16 content


def test_decoding_is_bit_exact_across_runs_and_thread_counts(pipe, clip):
    prior = _prior_for(pipe)
    data = pack(encode_clip(pipe, clip, prior, fps=8))
    threads = torch.get_num_threads()
    decoded = []
    try:
        for n in (1, 2, 1, 2):
            torch.set_num_threads(n)
            content, codes = decode_file(read_file(data, "x.mbits"), pipe, prior)
            decoded.append((content, codes, pipe.render(content, codes)))
    finally:
        torch.set_num_threads(threads)
    for other in decoded[1:]:
        assert all(torch.equal(a, b) for a, b in zip(decoded[0], other))


def _with_content(data: bytes, section: bytes, flags: int | None = None, version: int | None = None) -> bytes:
    """The file with another content packet (its length and CRC right), flags and version (the
    header's CRC right): what only the section and header checks can refuse."""
    head = bytearray(data[:HEADER_BYTES])
    if flags is not None or version is not None:
        head[5] = head[5] if flags is None else flags
        head[4] = head[4] if version is None else version
        struct.pack_into("<I", head, HEADER_BYTES - 4, zlib.crc32(bytes(head[:HEADER_BYTES - 4])))
    old = pack_packet(b"C", read_file(data, "x.mbits").content)
    assert data[HEADER_BYTES:HEADER_BYTES + len(old)] == old
    return bytes(head) + pack_packet(b"C", section) + data[HEADER_BYTES + len(old):]


@pytest.mark.parametrize("make,words", [
    (lambda s: s + bytes(4 * 20), "packet 0 (content) says"),           # refused before waiting for its bytes
    (lambda s: s[:5], "not 5"),
    (lambda s: s + b"\0", "plus whole 32-bit words"),
    (lambda s: struct.pack("<f", float("nan")) + s[4:], "content step nan is not a positive finite number"),
    (lambda s: struct.pack("<f", 0.0) + s[4:], "content step 0.0 is not a positive finite number"),
    (lambda s: s[:4] + struct.pack("<H", 0) + s[6:], "content magnitude 0 is outside 1..2047"),
    (lambda s: s[:4] + struct.pack("<H", 5000) + s[6:], "content magnitude 5000 is outside 1..2047"),
])
def test_an_impossible_content_section_is_refused_in_one_line(pipe, clip, make, words):
    data = pack(encode_clip(pipe, clip, fps=8))
    section = read_file(data, "x.mbits").content
    with pytest.raises(MotionbitsError) as err:
        read_file(_with_content(data, make(section)), "x.mbits")
    assert str(err.value).startswith(("x.mbits: corrupt bitstream (", "x.mbits: truncated or corrupt bitstream ("))
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_float16_sections_of_the_wrong_size_or_not_finite_are_refused(pipe, clip):
    data = pack(encode_clip(pipe, clip, fps=8, content="float16"))
    section = read_file(data, "x.mbits").content
    assert len(section) == 64
    for bad, words in ((section[:-2], "a float16 content of 2 x 16 takes 64 bytes, not 62"),
                       (np.full(32, np.inf, "<f2").tobytes(), "content values are not finite")):
        with pytest.raises(MotionbitsError, match=r"^x\.mbits: corrupt bitstream \(packet 0, content: " + words):
            read_file(_with_content(data, bad), "x.mbits")


def test_a_format_2_file_and_a_truncated_one_are_refused_in_one_line(pipe, clip):
    data = pack(encode_clip(pipe, clip, fps=8))
    for blob, words in ((data[:4] + bytes([2]) + data[5:], "x.mbits: was written by motionbits format v2; this version "
                                                           "reads v5 and v6 (encode the clip again)"),
                        (data[:HEADER_BYTES + 12], "x.mbits: truncated or corrupt bitstream")):   # cut inside the content
        with pytest.raises(MotionbitsError) as err:
            read_file(blob, "x.mbits")
        assert str(err.value).startswith(words) and "\n" not in str(err.value)


def test_encode_s_options_choose_the_content_and_the_tables(run, sprites_root, tmp_path, capsys):
    use = [f"sprites:{sprites_root}:test:2", "--checkpoint", str(run), "--device", "cpu"]
    assert main(["encode", *use, "-o", str(tmp_path / "a.mbits")]) == 0
    assert "content compact; motion coded under the adaptive tables" in capsys.readouterr().out
    assert main(["encode", *use, "--content", "float16", "--tables", "static", "-o", str(tmp_path / "b.mbits")]) == 0
    assert main(["encode", *use, "--content-bytes", "48", "-o", str(tmp_path / "c.mbits")]) == 0
    a, b, c = (read_file((tmp_path / n).read_bytes(), n) for n in ("a.mbits", "b.mbits", "c.mbits"))
    assert (a.header.content_coding, a.header.adaptive, b.header.content_coding, b.header.adaptive) == \
        ("compact", True, "float16", False)
    assert len(a.content) <= 32 < len(c.content) <= 48 and len(b.content) == 64
    capsys.readouterr()
    assert main(["encode", *use, "--content-bytes", "9", "-o", str(tmp_path / "d.mbits")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "content budget 9 bytes" in err and not (tmp_path / "d.mbits").exists()
    for name in ("a.mbits", "b.mbits"):
        assert main(["decode", str(tmp_path / name), "--checkpoint", str(run), "--device", "cpu",
                     "-o", str(tmp_path / f"{name}.png")]) == 0
