import numpy as np

from motionbits.lip_points import aligned_lips


def test_aligned_lips_forget_the_heads_place_size_and_roll():
    rng = np.random.default_rng(0)
    marks = rng.normal(size=(3, 68, 2)) * 10 + 60
    turn = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    moved = (marks @ turn.T) * 1.7 + np.array([5.0, -3.0])
    assert np.allclose(aligned_lips(moved), aligned_lips(marks), atol=1e-9)
    opened = marks.copy()
    opened[:, 57, 1] += 4.0                                      # the lower lip drops: the shape changes
    assert not np.allclose(aligned_lips(opened), aligned_lips(marks), atol=1e-3)
    level = marks.copy()
    level[:, 36:42], level[:, 42:48] = [10.0, 0.0], [30.0, 0.0]  # eyes level, 20 px apart
    lips = level[:, 48:68] - level[:, 48:68].mean(1, keepdims=True)
    assert np.allclose(aligned_lips(level).reshape(3, 20, 2), lips / 20)


def test_lip_openings_say_how_far_the_lips_part_and_follow_a_change_of_shape():
    import torch

    from motionbits.lip_points import lip_openings

    rng = np.random.default_rng(1)
    marks = rng.normal(size=(4, 68, 2)) * 10 + 60
    marks[:, 36:42], marks[:, 42:48] = [10.0, 0.0], [30.0, 0.0]                 # eyes level, 20 px apart
    lips = torch.from_numpy(aligned_lips(marks))
    opened = marks.copy()
    opened[:, [65, 66, 67], 1] += 4.0                                           # the inner bottom lip drops 4 px
    change = lip_openings(torch.from_numpy(aligned_lips(opened))) - lip_openings(lips)
    assert torch.allclose(change[:, 0], torch.full((4,), 4.0 / 20, dtype=change.dtype))   # inner opening, eye units
    assert torch.allclose(change[:, 1:3], torch.zeros(4, 2, dtype=change.dtype), atol=1e-12)  # outer lips, width
    # differences of points: the numbers of a change of shape are the change of the numbers
    other = torch.from_numpy(aligned_lips(rng.normal(size=(4, 68, 2)) * 10 + 60))
    assert torch.allclose(lip_openings(lips - other), lip_openings(lips) - lip_openings(other))
