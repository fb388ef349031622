import torch

from motionbits.models.bcd import BCDModel
from motionbits.models.leak_probe import ContentLeakProbe

from conftest import tiny_config


def test_probe_learns_a_leak_and_the_confusion_loss_moves_only_the_content():
    torch.manual_seed(0)
    probe = ContentLeakProbe(content_queries=2, content_dim=4, groups=3, codebook_size=5, hidden=32)
    content = torch.randn(64, 2, 4)
    codes = content[:, 0, :3].argmax(-1, keepdim=True).expand(-1, 3)             # a leak: codes follow the content
    target = torch.nn.functional.one_hot(codes, 5).float()                          # [B, N, K_e]
    opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
    first, _ = probe(content, target)
    for _ in range(200):
        opt.zero_grad()
        probe(content, target)[0].backward()
        opt.step()
    learned, confusion = probe(content, target)
    assert learned.item() < 0.2 * first.item()
    # The confusion loss reaches the content and not the probe; the probe loss not the content.
    c = content.clone().requires_grad_(True)
    opt.zero_grad()
    probe_loss, confusion = probe(c, target)
    confusion.backward()
    assert c.grad.abs().sum() > 0 and all(p.grad is None or p.grad.abs().sum() == 0 for p in probe.parameters())
    c.grad = None
    probe(c, target)[0].backward()
    assert c.grad is None or c.grad.abs().sum() == 0
    # A probe that predicts the batch average for every clip scores the confusion minimum.
    blind = ContentLeakProbe(2, 4, 3, 5, hidden=32)
    torch.nn.init.zeros_(blind.net[-1].weight)
    with torch.no_grad():
        blind.net[-1].bias.copy_(target.mean(0).clamp_min(1e-6).log().flatten())
    _, at_minimum = blind(content, target)
    average = target.mean(0)
    assert torch.allclose(at_minimum, -(average * average.clamp_min(1e-6).log()).sum(-1).mean(), atol=1e-4)


def test_model_adds_the_probe_only_when_asked():
    assert BCDModel(tiny_config(), 3, 16).leak_probe is None
    cfg = tiny_config(train={"content_leak_weight": 0.5})
    model = BCDModel(cfg, 3, 16).train()
    z = torch.randn(2, 8, 3, 16, 16)
    out = model(z, torch.rand(2, 4) + 0.1, torch.randn(2, 4, 3, 16, 16))
    assert "leak_probe_gain" in out and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(p.grad is not None for p in model.leak_probe.parameters())
    assert model.encoder.queries.grad is not None
