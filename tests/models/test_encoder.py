import pytest
import torch

from motionbits.models.encoder import KeyFrameContentReader, MotionContentEncoder, PatchPoolContentReader
from motionbits.models.layers import RelativePositionBias


def test_encoder_shapes_any_length():
    enc = MotionContentEncoder(3, 16, width=32, depth=2, heads=2, content_queries=3, content_dim=10, motion_dim=12)
    for t in (1, 4, 9):
        content, motion = enc(torch.randn(2, t, 3, 16, 16))
        assert content.shape == (2, 3, 10) and motion.shape == (2, t, 12)


def test_frame_motion_depends_on_where_the_frame_is_in_the_clip():
    torch.manual_seed(0)
    enc = MotionContentEncoder(3, 16, 32, 1, 2, 2, 8, 8).eval()
    torch.nn.init.normal_(enc.position_bias.bias.weight, std=1.0)
    z = torch.randn(1, 4, 3, 16, 16)
    _, m1 = enc(z)
    _, m2 = enc(z.flip(1))
    # a relative-position bias: reversing the clip does not just reverse the frames' motion
    assert not torch.allclose(m1, m2.flip(1), atol=1e-5)
    torch.nn.init.zeros_(enc.position_bias.bias.weight)   # no positions: a set of frames
    _, m1 = enc(z)
    _, m2 = enc(z.flip(1))
    assert torch.allclose(m1, m2.flip(1), atol=1e-5)


def test_relative_position_bias_is_clipped_so_any_length_works():
    bias = RelativePositionBias(heads=2, max_distance=3)
    torch.nn.init.normal_(bias.bias.weight)
    b = bias(10, torch.device("cpu"), queries=2)
    assert b.shape == (2, 12, 12)
    assert (b[:, :2] == 0).all() and (b[:, :, :2] == 0).all()          # the queries have no position
    assert torch.equal(b[:, 2, 2 + 5], b[:, 2, 2 + 9])                  # offsets 5 and 9 both clip to 3
    assert torch.equal(b[:, 4, 6], b[:, 7, 9])                          # relative: only the offset counts


def test_patch_pool_reader_ignores_where_patches_are_but_not_what_they_hold():
    torch.manual_seed(0)
    reader = PatchPoolContentReader(3, 16, width=32, depth=2, heads=2, content_queries=2, content_dim=16).eval()
    z = torch.randn(2, 4, 3, 16, 16)
    content = reader(z)
    assert content.shape == (2, 2, 16)
    # Two 2x2 patches swapped, in space and across frames: the same set of patches, the same content.
    moved = z.clone()
    moved[:, 0, :, 0:2, 0:2], moved[:, 3, :, 8:10, 12:14] = z[:, 3, :, 8:10, 12:14], z[:, 0, :, 0:2, 0:2]
    assert torch.allclose(reader(moved), content, atol=1e-5)
    changed = z.clone()
    changed[:, 0, :, 0:2, 0:2] += 1
    assert not torch.allclose(reader(changed), content, atol=1e-4)


def test_key_frame_reader_reads_the_first_frame_with_its_places():
    torch.manual_seed(0)
    reader = KeyFrameContentReader(3, 16, width=32, content_queries=4, content_dim=16).eval()   # 2x2 patches of 8x8
    z = torch.randn(2, 4, 3, 16, 16)
    content = reader(z)
    assert content.shape == (2, 4, 16)
    later = z.clone()
    later[:, 1:] = torch.randn(2, 3, 3, 16, 16)                    # the other frames say nothing
    assert torch.equal(reader(later), content)
    swapped = z.clone()                                             # top-left and bottom-right trade places:
    swapped[:, 0, :, :8, :8], swapped[:, 0, :, 8:, 8:] = z[:, 0, :, 8:, 8:], z[:, 0, :, :8, :8]
    assert torch.allclose(reader(swapped)[:, 0] - reader.positions[0], content[:, 3] - reader.positions[3], atol=1e-5)
    assert not torch.allclose(reader(swapped), content, atol=1e-3)  # the same patches, in other places
    with pytest.raises(ValueError, match="a square"):
        KeyFrameContentReader(3, 16, 32, content_queries=3, content_dim=16)
