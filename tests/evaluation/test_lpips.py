"""LPIPS from local weight files (random weights written by the test in the two published layouts)."""
import pytest
import torch

from motionbits.errors import MotionbitsError
from motionbits.evaluation.lpips import LPIPS, load_lpips


def write_weights(folder, seed=0):
    """Random weights saved the way torchvision (vgg16) and the lpips package (lin heads) save theirs."""
    torch.manual_seed(seed)
    net = LPIPS()
    vgg = {f"features.{k}": v for k, v in net.features.state_dict().items()}
    vgg["classifier.0.weight"] = torch.zeros(2, 2)             # present in torchvision's file; ignored
    lin = {f"lin{i}.model.1.weight": m.weight.abs().detach().clone() for i, m in enumerate(net.lins)}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(vgg, folder / "vgg16.pth")
    torch.save(lin, folder / "lin.pth")
    return net


def test_lpips_loads_strictly_and_measures_distance(tmp_path):
    reference = write_weights(tmp_path / "w")
    lpips = load_lpips(tmp_path / "w")
    for a, b in zip(lpips.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b.abs()) or torch.equal(a, b)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 32, 32, generator=gen) * 2 - 1
    assert torch.allclose(lpips(x, x), torch.zeros(3))
    small = lpips(x, (x + 0.05 * torch.randn(x.shape, generator=gen)).clamp(-1, 1))
    large = lpips(x, (x + 0.5 * torch.randn(x.shape, generator=gen)).clamp(-1, 1))
    assert (small > 0).all() and (large > small).all()
    assert torch.allclose(lpips(x, large.new_zeros(x.shape)), lpips(x.new_zeros(x.shape), x))   # symmetric


def test_lpips_bad_weights_give_one_line_errors(tmp_path):
    with pytest.raises(MotionbitsError, match="not a folder"):
        load_lpips(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MotionbitsError, match="vgg16.pth: missing"):
        load_lpips(tmp_path / "empty")
    write_weights(tmp_path / "w")
    (tmp_path / "w" / "lin.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(MotionbitsError, match="lin.pth: not a readable"):
        load_lpips(tmp_path / "w")
    write_weights(tmp_path / "w2")
    lin = torch.load(tmp_path / "w2" / "lin.pth")
    lin["lin4.model.1.weight"] = torch.zeros(1, 7, 1, 1)
    torch.save(lin, tmp_path / "w2" / "lin.pth")
    with pytest.raises(MotionbitsError, match="does not match LPIPS-VGG") as err:
        load_lpips(tmp_path / "w2")
    assert "\n" not in str(err.value)
    with pytest.raises(MotionbitsError, match="expects two"):
        LPIPS()(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))
