"""The motion prior network: shapes, causality (across and within frames), argmax sampling."""
import numpy as np
import pytest
import torch

from motionbits.errors import MotionbitsError
from motionbits.models.prior import MotionPrior
from tests.prior_codes import CC, K, K_E, N, T, small_cfg


# tiny models: a second thread only adds synchronisation (conftest.one_thread)
pytestmark = pytest.mark.usefixtures("one_thread")


# ---- network -------------------------------------------------------------------------------------------
def test_shapes_and_loss():
    torch.manual_seed(0)
    prior = MotionPrior(small_cfg(num_classes=3))
    codes, content = torch.randint(0, K_E, (2, 5, N)), torch.randn(2, K, CC)
    assert prior(codes, content, torch.tensor([0, 2])).shape == (2, 5, N, K_E)
    assert prior(codes, content, None).shape == (2, 5, N, K_E)          # unconditioned: "no label"
    out = prior.loss(codes, content, torch.tensor([1, -1]))             # -1: this clip has no label
    assert out["loss"].ndim == 0 and torch.isclose(out["bits_per_frame"], out["loss"] * N / np.log(2))
    prompt = codes[:, :3]
    gen = prior.generate(content, 6, prompt=prompt, label=torch.tensor([0, 1]), generator=torch.Generator())
    assert gen.shape == (2, 6, N) and gen.dtype == torch.long and torch.equal(gen[:, :3], prompt)
    assert int(gen.min()) >= 0 and int(gen.max()) < K_E
    with pytest.raises(MotionbitsError, match="max_frames"):
        prior(torch.randint(0, K_E, (1, T + 1, N)), content[:1])


def test_causal():
    torch.manual_seed(0)
    prior = MotionPrior(small_cfg(num_classes=2)).eval()
    codes, content, label = torch.randint(0, K_E, (2, T, N)), torch.randn(2, K, CC), torch.tensor([0, 1])
    for t in (0, 3, T - 2):
        changed = codes.clone()
        changed[:, t] = (changed[:, t] + 1) % K_E
        a, b = prior(codes, content, label), prior(changed, content, label)
        # logits[:, s] predicts frame s from frames < s: frames <= t cannot see the change
        assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-6, rtol=0)
        assert not torch.allclose(a[:, t + 1:], b[:, t + 1:], atol=1e-4)


def test_causal_within_frame():
    torch.manual_seed(0)
    prior = MotionPrior(small_cfg(group_autoregressive=True)).eval()
    codes, content = torch.randint(0, K_E, (2, T, N)), torch.randn(2, K, CC)
    t, g = 3, 1
    changed = codes.clone()
    changed[:, t, g] = (changed[:, t, g] + 1) % K_E
    a, b = prior(codes, content), prior(changed, content)
    assert torch.allclose(a[:, :t], b[:, :t], atol=1e-6, rtol=0)
    assert torch.allclose(a[:, t, : g + 1], b[:, t, : g + 1], atol=1e-6, rtol=0)  # groups <= g
    assert not torch.allclose(a[:, t, g + 1:], b[:, t, g + 1:], atol=1e-4)        # later groups see it
    assert not torch.allclose(a[:, t + 1:], b[:, t + 1:], atol=1e-4)


@pytest.mark.parametrize("group_ar", [False, True])
def test_argmax_sampling(group_ar):
    torch.manual_seed(0)
    prior = MotionPrior(small_cfg(group_autoregressive=group_ar)).eval()
    # spread the logits so that float noise cannot flip near-ties
    torch.nn.init.normal_(prior.head_weight if group_ar else prior.head.weight, std=1.0)
    content = torch.randn(3, K, CC)
    greedy = prior.generate(content, T, temperature=0)
    assert torch.equal(prior.generate(content, T, top_k=1, generator=torch.Generator().manual_seed(1)), greedy)
    assert torch.equal(prior.generate(content, T, temperature=1e-6, generator=torch.Generator().manual_seed(2)),
                       greedy)
    # teacher-forced logits on the greedy sequence pick the greedy sequence again
    assert torch.equal(prior(greedy, content).argmax(-1), greedy)
    # top_k=2 only ever samples one of the two best codes
    sampled = prior.generate(content, 2, top_k=2, generator=torch.Generator().manual_seed(3))
    top2 = prior(sampled, content).topk(2, dim=-1).indices
    assert (top2 == sampled[..., None]).any(-1).all()


