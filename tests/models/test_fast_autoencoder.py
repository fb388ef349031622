"""The fast autoencoder: taef2's latent space at a fraction of its work, its files, and its use by a model."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from motionbits.errors import MotionbitsError
from motionbits.models.fast_autoencoder import TAEF2_DECODER_KEPT_UNTIL, TAEF2_ENCODER_KEPT_FROM, FastTAEF2
from motionbits.models.tokenizer import build_tokenizer


@pytest.fixture(scope="module")
def taef2():
    return build_tokenizer("taef2")


def _flop(fn) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


def test_same_latent_space_shapes_and_taef2s_lower_layers(taef2):
    fast = FastTAEF2(taef2)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        z = fast.encode(x)
        assert z.shape == taef2.encode(x).shape == (2, 32, 8, 8)
        assert fast.decode(z).shape == (2, 3, 64, 64)
        # the lower layers are taef2's own: the same features from the same input
        inner = torch.randn(1, 64, 8, 8)
        tail = slice(len(fast.encoder) - (len(taef2.encoder) - TAEF2_ENCODER_KEPT_FROM), None)
        assert torch.equal(fast.encoder[tail](inner), taef2.encoder[TAEF2_ENCODER_KEPT_FROM:](inner))
        assert torch.equal(fast.decoder[:TAEF2_DECODER_KEPT_UNTIL](z), taef2.decoder[:TAEF2_DECODER_KEPT_UNTIL](z))
    # a quarter of taef2's work at most, each way (what makes a call's 25 frames a second reachable)
    frame = torch.rand(1, 3, 128, 128)
    latent = torch.randn(1, 32, 16, 16)
    assert _flop(lambda: fast.encode(frame)) < 0.25 * _flop(lambda: taef2.encode(frame))
    assert _flop(lambda: fast.decode(latent)) < 0.25 * _flop(lambda: taef2.decode(latent))
    assert fast.config() == taef2.config()            # the latent cache and the model see the same tokenizer


def test_folder_round_trip_and_one_line_errors(taef2, tmp_path):
    fast = FastTAEF2(taef2)
    with torch.no_grad():
        for p in fast.parameters():                   # weights of its own, so a load that kept taef2's shows
            p.add_(0.01 * torch.randn_like(p))
    for name, sd in fast.state_dicts().items():
        torch.save(sd, tmp_path / name)
    loaded = FastTAEF2.from_folder(tmp_path)
    z = torch.randn(1, 32, 8, 8)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.decode(z), fast.decode(z)) and torch.equal(loaded.encode(x), fast.encode(x))

    with pytest.raises(MotionbitsError, match="fast autoencoder folder not found: .*missing .*distill-autoencoder"):
        FastTAEF2.from_folder(tmp_path / "missing")
    (tmp_path / "fast_decoder.pth").unlink()
    with pytest.raises(MotionbitsError, match="fast_decoder.pth"):
        FastTAEF2.from_folder(tmp_path)
    torch.save(taef2.decoder.state_dict(), tmp_path / "fast_decoder.pth")   # taef2's own decoder: other layers
    with pytest.raises(MotionbitsError, match="fast_decoder.pth is not a fast autoencoder state dict: missing keys"):
        FastTAEF2.from_folder(tmp_path)
