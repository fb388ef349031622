"""The motion bitstream: integer tables, bit-exact round trips, the .mbits file, bad files."""
import numpy as np
import pytest
import torch

from motionbits.api import MotionBits
from motionbits.codec import decode_file, encode_clip, read_file
from motionbits.codec.entropy import FREQUENCY_BITS, PriorModel, StaticModel, decode_codes, encode_codes, quantize_frequencies
from motionbits.codec.format import pack
from motionbits.errors import MotionbitsError
from motionbits.models.prior import MotionPrior, PriorConfig


def test_quantized_tables_are_exact_integers_close_to_the_probabilities():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(16, 0.3), size=50)
    p[0] = 0.0
    p[0, 3] = 1.0                                                   # a certain symbol, 15 impossible ones
    f = quantize_frequencies(p)
    assert f.dtype == np.int64 and (f.sum(-1) == 1 << FREQUENCY_BITS).all() and (f >= 1).all()
    assert np.abs(f / (1 << FREQUENCY_BITS) - p).max() < 16 / (1 << FREQUENCY_BITS)
    assert np.array_equal(quantize_frequencies(p.copy()), f)        # deterministic
    ties = quantize_frequencies(np.full((1, 3), 1 / 3))             # the remainder goes to the lower index
    assert ties.tolist() == [[21846, 21845, 21845]]


def test_static_round_trip_and_size():
    rng = np.random.default_rng(1)
    usage = torch.tensor(rng.dirichlet(np.ones(8), size=4), dtype=torch.float32)
    q = type("Q", (), {"usage": usage})()
    model = StaticModel.of(q)
    codes = np.stack([rng.choice(8, size=200, p=usage[g].double().numpy() / usage[g].double().sum().item())
                      for g in range(4)], axis=1)                   # [200, 4]
    data = encode_codes(codes, model)
    assert np.array_equal(decode_codes(data, 200, 4, model), codes)
    ideal = -np.log2(model.freq[np.arange(4), codes] / (1 << FREQUENCY_BITS)).sum()
    assert ideal <= 8 * len(data) <= ideal + 10                     # the code word's end: at most 2 bits, then whole bytes


@pytest.mark.parametrize("group_ar", [False, True])
def test_prior_round_trip_is_bit_exact_and_costs_the_prior_nll(group_ar):
    torch.manual_seed(0)
    prior = MotionPrior(PriorConfig(width=32, depth=1, heads=2, max_frames=6, groups=3, codebook_size=8,
                                    content_dim=4, dropout=0.0, group_autoregressive=group_ar)).eval()
    with torch.no_grad():
        for p in prior.parameters():
            p.normal_(std=0.5)                                     # a prior with opinions
    content = torch.randn(1, 2, 4)
    codes = prior.generate(content, 20, generator=torch.Generator().manual_seed(1))[0].numpy()  # longer than its window
    model = PriorModel(prior, content)
    data = encode_codes(codes, model)
    assert np.array_equal(decode_codes(data, 20, 3, PriorModel(prior, content)), codes)
    ideal = -sum(np.log2(model.frame(codes[:t]).group(g, codes[t])[codes[t, g]] / (1 << FREQUENCY_BITS))
                 for t in range(20) for g in range(3))
    assert ideal <= 8 * len(data) <= ideal + 10                     # the prior's cost, plus the code word's end
    with pytest.raises(ValueError, match="not the code word"):     # another content: other tables, refused
        decode_codes(data, 20, 3, PriorModel(prior, torch.randn(1, 2, 4)))


def test_encode_decode_gives_the_reconstruction_and_the_size_is_the_rate(run, sprites_root):
    pipe = MotionBits.from_checkpoint(run)
    clip = torch.from_numpy(np.load(sprites_root / "test.npz")["frames"][3])
    f = encode_clip(pipe, clip, fps=8, content="float16")            # what reconstruct renders
    data = pack(f)
    assert len(data) == f.sizes["total"] == f.sizes["header"] + f.sizes["content"] + f.sizes["motion"]
    assert f.sizes["content"] == 2 * 2 * 16                          # K x Cc float16
    back = read_file(data, "clip.mbits")
    content, codes = decode_file(back, pipe)
    assert torch.equal(codes[0], pipe.encode_motion(clip)[0])
    assert torch.equal(pipe.render(content, codes), pipe.reconstruct(clip))   # the same frames, bit for bit
    assert back.header.frames == 8 and back.header.fps == 8


def test_bad_bitstreams_are_one_line_errors(run, sprites_root, tmp_path):
    pipe = MotionBits.from_checkpoint(run)
    clip = torch.from_numpy(np.load(sprites_root / "test.npz")["frames"][0])
    data = pack(encode_clip(pipe, clip))

    def error(blob: bytes, model=pipe, prior=None) -> str:
        with pytest.raises(MotionbitsError) as err:
            decode_file(read_file(blob, "x.mbits"), model, prior, where="x.mbits")
        assert "\n" not in str(err.value) and "x.mbits" in str(err.value)
        return str(err.value)

    assert "not a motionbits bitstream" in error(b"")
    assert "no MBIT magic" in error(b"GIF89a" + data[6:])
    assert "written by motionbits format v9; this version reads v5 and v6" in error(data[:4] + bytes([9]) + data[5:])
    for old in (3, 4):                                  # format 4: a packet per window with 32-bit coder ends
        assert error(data[:4] + bytes([old]) + data[5:]) == (f"x.mbits: was written by motionbits format v{old}; this "
                                                             "version reads v5 and v6 (encode the clip again)")
    assert "truncated or corrupt" in error(data[:-3])
    assert "truncated or corrupt" in error(data + b"\0")
    flipped = bytearray(data)
    flipped[-15] ^= 0xFF                                # the last motion packet's last code byte (the end is 13 bytes)
    assert "packet 2 (motion, from frame 4) is damaged: its CRC-8 does not match" in error(bytes(flipped))
    other = MotionBits.from_checkpoint(run)
    with torch.no_grad():
        other.model.quantizer.codebook.add_(1)                      # another model
    other._fingerprint = None
    message = error(data, model=other)                              # one line naming both fingerprints
    assert f"made by model {pipe.fingerprint().hex()}, but " in message and f"is model {other.fingerprint().hex()}" in message
    with pytest.raises(MotionbitsError, match="fewer than the model's window"):
        encode_clip(pipe, clip[:2])
