import pytest
import torch

from motionbits.diffusion import EDM
from motionbits.errors import MotionbitsError
from motionbits.models.bcd import BCDModel
from motionbits.models.denoiser import Denoiser
from motionbits.models.encoder import MotionContentEncoder

from conftest import tiny_config


def test_encoder_shapes_any_length():
    enc = MotionContentEncoder(3, 16, width=32, depth=2, heads=2, content_queries=3, content_dim=10, motion_dim=12)
    for t in (1, 4, 9):
        content, motion = enc(torch.randn(2, t, 3, 16, 16))
        assert content.shape == (2, 3, 10) and motion.shape == (2, t, 12)


def test_encoder_content_is_order_aware_but_queries_have_no_position():
    torch.manual_seed(0)
    enc = MotionContentEncoder(3, 16, 32, 1, 2, 2, 8, 8).eval()
    torch.nn.init.normal_(enc.position_bias.bias.weight, std=1.0)
    z = torch.randn(1, 4, 3, 16, 16)
    _, m1 = enc(z)
    _, m2 = enc(z.flip(1))
    # with a relative-position bias the motion of a frame depends on where it is in the clip
    assert not torch.allclose(m1, m2.flip(1), atol=1e-5)


def test_denoiser_shapes_and_zero_init():
    den = Denoiser(3, 16, 4, width=32, depth=2, heads=2, content_dim=8, motion_dim=6, temporal_attention=True)
    out = den(torch.randn(2, 3, 3, 16, 16), torch.randn(2, 3), torch.randn(2, 3, 6), torch.randn(2, 5, 8))
    assert out.shape == (2, 3, 3, 16, 16)
    assert out.abs().max() == 0  # adaLN-Zero + zero output layer: starts at F = 0


def test_denoiser_frames_depend_on_their_own_motion():
    torch.manual_seed(0)
    den = Denoiser(3, 16, 4, 32, 1, 2, 8, 6)
    for p in den.parameters():  # leave the zero init so the conditioning path is visible
        torch.nn.init.normal_(p, std=0.1)
    z, cn, content = torch.randn(1, 2, 3, 16, 16), torch.zeros(1, 2), torch.randn(1, 3, 8)
    motion = torch.randn(1, 2, 6)
    base = den(z, cn, motion, content)
    changed = motion.clone()
    changed[:, 1] += 1
    out = den(z, cn, changed, content)
    assert torch.allclose(base[:, 0], out[:, 0], atol=1e-6)   # frame 0 untouched
    assert not torch.allclose(base[:, 1], out[:, 1])


def test_edm_sampler_recovers_a_point_mass_exactly():
    """With the ideal denoiser of a single point x0, the ODE sampler must land on x0."""
    edm = EDM(tiny_config().diffusion)
    x0 = torch.randn(1, 2, 3, 4, 4)
    sd = edm.cfg.sigma_data

    def net(x_scaled, c_noise):
        sigma = (4 * c_noise).exp()[..., None, None, None]
        x = x_scaled * (sigma ** 2 + sd ** 2).sqrt()
        c_skip = sd ** 2 / (sigma ** 2 + sd ** 2)
        c_out = sigma * sd / (sigma ** 2 + sd ** 2).sqrt()
        return (x0 - c_skip * x) / c_out  # F such that D(x) = x0

    for sampler, steps in (("euler", 1), ("euler", 8), ("heun", 4)):
        out = edm.sample(net, torch.randn_like(x0), steps=steps, sampler=sampler)
        assert torch.allclose(out, x0, atol=1e-4), sampler


def test_edm_schedule_endpoints():
    edm = EDM(tiny_config().diffusion)
    s = edm.schedule(5)
    assert s.shape == (6,) and s[-1] == 0
    assert torch.isclose(s[0], torch.tensor(edm.cfg.sigma_max)) and torch.isclose(s[-2], torch.tensor(edm.cfg.sigma_min))
    assert (s[:-1].diff() < 0).all()


@pytest.mark.parametrize("cross_drive", [True, False])
def test_bcd_loss_and_cross_driving(cross_drive):
    cfg = tiny_config(train={"cross_drive": cross_drive})
    model = BCDModel(cfg, 3, 16).train()
    z = torch.randn(2, 8, 3, 16, 16)
    t_out = model.rebuilt_frames(8)
    assert t_out == (4 if cross_drive else 8)
    out = model(z, torch.rand(2, t_out) + 0.1, torch.randn(2, t_out, 3, 16, 16))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "position_bias" not in n)


def test_cross_driving_content_never_sees_the_rebuilt_frames():
    cfg = tiny_config()
    model = BCDModel(cfg, 3, 16).eval()
    z = torch.randn(1, 8, 3, 16, 16)
    content, _, target = model.split_clip(z)
    z2 = z.clone()
    z2[:, 4:] = torch.randn(1, 4, 3, 16, 16)  # change only the second half
    content2, _, _ = model.split_clip(z2)
    assert torch.allclose(content, content2)
    assert torch.equal(target, z[:, 4:])


def test_motion_codes_in_windows_cover_long_clips():
    cfg = tiny_config()
    model = BCDModel(cfg, 3, 16).eval()
    z = torch.randn(2, 11, 3, 16, 16)
    codes = model.encode_motion(z)
    assert codes.shape == (2, 11, cfg.model.groups)
    # the first window is read exactly as a clip of the window length would be
    assert torch.equal(codes[:, :4], model.encode_motion(z[:, :4]))


def test_centred_motion_codes_cannot_tell_two_still_clips_apart():
    model = BCDModel(tiny_config(model={"center_motion": True}), 3, 16).eval()
    _, motion = model.encoder(torch.randn(2, 4, 3, 16, 16))
    assert torch.allclose(motion.mean(dim=1), torch.zeros(()), atol=1e-5)
    # A still clip (one picture repeated) has nothing that changes, so whatever the picture shows,
    # its codes are the same: who is in it must come through the content.
    stills = torch.randn(2, 1, 3, 16, 16).expand(-1, 4, -1, -1, -1)
    codes = model.encode_motion(stills)
    assert torch.equal(codes[0], codes[1])
    _, motion = BCDModel(tiny_config(), 3, 16).eval().encoder(stills)
    assert not torch.allclose(motion[0], motion[1], atol=1e-3)
    with pytest.raises(MotionbitsError, match="center_motion"):
        tiny_config(data={"frames": 2}, model={"center_motion": True})


def test_relative_motion_is_read_against_the_content_half_in_training():
    model = BCDModel(tiny_config(model={"relative_motion": True}), 3, 16).eval()
    z = torch.randn(2, 8, 3, 16, 16)
    content, motion, target = model.split_clip(z)
    enc_content, enc_reference = model.encoder(z[:, :4])
    assert torch.allclose(content, enc_content, atol=1e-5) and torch.equal(target, z[:, 4:])
    assert torch.allclose(motion, model.encoder(z[:, 4:])[1] - enc_reference.mean(1, keepdim=True), atol=1e-5)
    # Augmented: the content is read mirrored, the reference is not, and it takes the motion half's
    # channel permutation, so the difference holds neither augmentation.
    flip, swap = torch.tensor([True, True]), torch.tensor([[2, 1, 0], [1, 0, 2]])
    content, motion, _ = model.split_clip(z, flip, swap)
    permuted = torch.stack([z[i, :, swap[i]] for i in range(2)])
    assert torch.allclose(content, model.encoder(z[:, :4].flip(-1))[0], atol=1e-5)
    expected = model.encoder(permuted[:, 4:])[1] - model.encoder(permuted[:, :4])[1].mean(1, keepdim=True)
    assert torch.allclose(motion, expected, atol=1e-5)


def test_relative_motion_codes_add_up_from_the_drivers_first_window():
    model = BCDModel(tiny_config(model={"relative_motion": True}), 3, 16).eval()
    z = torch.randn(2, 12, 3, 16, 16)
    codes = model.encode_motion(z)
    offset = model.encoder(z[:, :4])[1].mean(1, keepdim=True)
    # A window far from the start is read against the first window, not against its own mean.
    later = model.quantizer.logits(model.encoder(z[:, 8:12])[1] - offset).argmax(-1)
    assert torch.equal(codes[:, 8:12], later)
    assert torch.equal(codes, model.encode_motion(z, reference=z[:, :4]))
    assert not torch.equal(codes, model.encode_motion(z, reference=torch.randn(2, 4, 3, 16, 16)))
    stills = torch.randn(2, 1, 3, 16, 16).expand(-1, 12, -1, -1, -1)
    still_codes = model.encode_motion(stills)
    assert torch.equal(still_codes[0], still_codes[1])        # who it is cannot reach the codes
    with pytest.raises(MotionbitsError, match="relative_motion needs train.cross_drive"):
        tiny_config(model={"relative_motion": True}, train={"cross_drive": False})
    with pytest.raises(MotionbitsError, match="exclude each other"):
        tiny_config(model={"relative_motion": True, "center_motion": True})


def test_relative_motion_trains_with_a_patch_reader():
    model = BCDModel(tiny_config(model={"relative_motion": True, "content_reader": "patch_set"}), 3, 16)
    z = torch.randn(2, 8, 3, 16, 16)
    out = model(z, torch.rand(2, 4) + 0.1, torch.randn(2, 4, 3, 16, 16), content_flip=torch.tensor([True, False]))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and model.encoder.to_motion.weight.grad.abs().sum() > 0


def test_render_shapes_and_determinism():
    cfg = tiny_config()
    model = BCDModel(cfg, 3, 16).eval()
    content = model.encode_content(torch.randn(2, 8, 3, 16, 16))
    codes = torch.randint(0, 8, (2, 6, 4))
    noise = torch.randn(2, 6, 3, 16, 16)
    a = model.render(content, codes, noise, steps=2)
    b = model.render(content, codes, noise, steps=2)
    assert a.shape == (2, 6, 3, 16, 16) and torch.equal(a, b)


def test_clip_recolouring_changes_the_whole_clip_target_included():
    from motionbits.augment import random_color_matrices, recolor

    gen = torch.Generator().manual_seed(0)
    m = random_color_matrices(64, gen)
    grey = torch.full((64, 1, 3, 2, 2), 0.2)
    out = recolor(grey, m)
    assert torch.allclose(out[:, :, 0], out[:, :, 1], atol=1e-5)     # grey stays grey: the hue turns,
    assert out.std() > 0.02                                          # the brightness changes
    colour = torch.tensor([0.8, -0.5, -0.5]).view(1, 1, 3, 1, 1).expand(64, 1, 3, 2, 2)
    reds = recolor(colour, m)[:, 0, :, 0, 0]
    assert (reds.argmax(dim=1).bincount(minlength=3) > 5).all()     # a red lands on every hue
    assert torch.allclose(recolor(colour, torch.eye(3).expand(64, 3, 3)), colour, atol=1e-6)
    model = _wake(BCDModel(tiny_config(), 3, 16).eval())
    z = torch.rand(2, 8, 3, 16, 16) * 2 - 1
    sigma, noise, gumbel = torch.rand(2, 4) + 0.1, torch.randn(2, 4, 3, 16, 16), torch.rand(2, 4, 4, 8)
    colors = m[:2]
    a = model(z, sigma, noise, gumbel, clip_colors=colors)["diffusion_loss"]
    b = model(recolor(z, colors), sigma, noise, gumbel)["diffusion_loss"]
    assert torch.allclose(a, b) and not torch.allclose(a, model(z, sigma, noise, gumbel)["diffusion_loss"])


def test_augmentations_touch_only_the_encoder_inputs():
    cfg = tiny_config()
    model = BCDModel(cfg, 3, 16).eval()
    z = torch.randn(2, 8, 3, 16, 16)
    plain = model.split_clip(z)
    flip = torch.tensor([True, False])
    swap = torch.tensor([[2, 1, 0], [0, 1, 2]])
    content, motion, target = model.split_clip(z, flip, swap)
    assert torch.equal(target, plain[2])                       # what is rebuilt never changes
    assert not torch.allclose(content[0], plain[0][0])         # mirrored content frames
    assert torch.allclose(content[1], plain[0][1], atol=1e-6)  # not mirrored
    assert not torch.allclose(motion[0], plain[1][0])          # channels permuted
    assert torch.allclose(motion[1], plain[1][1], atol=1e-6)   # identity permutation
    manual = model.encoder(z[:1, :4].flip(-1))[0]
    assert torch.allclose(content[:1], manual, atol=1e-5)


def test_patch_set_content_reader_ignores_where_patches_are():
    cfg = tiny_config(model={"content_reader": "patch_set"})
    model = BCDModel(cfg, 3, 16).eval()
    z = torch.randn(2, 8, 3, 16, 16)
    content = model.encode_content(z)
    assert content.shape == (2, 2, 16)
    # Swap two 2x2 patches of every frame: same set of patches, same content.
    moved = z.clone()
    moved[..., 0:2, 0:2], moved[..., 6:8, 10:12] = z[..., 6:8, 10:12], z[..., 0:2, 0:2]
    assert torch.allclose(model.encode_content(moved), content, atol=1e-5)
    out = model.train()(z, torch.rand(2, 4) + 0.1, torch.randn(2, 4, 3, 16, 16))
    out["loss"].backward()
    assert model.content_reader.queries.grad is not None
    # every parameter is used (DistributedDataParallel refuses unused ones): the encoder has no queries
    assert model.encoder.queries is None
    assert all(p.grad is not None for n, p in model.named_parameters() if "position_bias" not in n)


def test_patch_set_reads_only_the_first_content_frames():
    cfg = tiny_config(model={"content_reader": "patch_set", "content_frames": 1})
    model = BCDModel(cfg, 3, 16).eval()
    z = torch.randn(2, 8, 3, 16, 16)
    changed = z.clone()
    changed[:, 1:] = torch.randn_like(z[:, 1:])                    # every frame but the first
    assert torch.allclose(model.encode_content(changed), model.encode_content(z), atol=1e-6)
    changed[:, 0] += 1
    assert not torch.allclose(model.encode_content(changed), model.encode_content(z))
    with pytest.raises(MotionbitsError, match="content_frames"):
        tiny_config(model={"content_frames": 1})                  # the encoder reader reads all frames


def test_patch_pool_reader_sees_rows_but_not_columns_or_frames():
    torch.manual_seed(0)
    cfg = tiny_config(model={"content_reader": "patch_pool", "content_rows": True})
    model = BCDModel(cfg, 3, 16).eval()
    torch.nn.init.normal_(model.content_reader.row_embed, std=1.0)
    z = torch.randn(2, 8, 3, 16, 16)
    content = model.encode_content(z)
    assert content.shape == (2, 2, 16)
    # Patches (2x2 cells here) moved along a row, or to another frame in the same row: same content.
    moved = z.clone()
    moved[:, 0, :, 0:2, 0:2], moved[:, 2, :, 0:2, 12:14] = z[:, 2, :, 0:2, 12:14], z[:, 0, :, 0:2, 0:2]
    assert torch.allclose(model.encode_content(moved), content, atol=1e-5)
    # Moved to another row: the reader can tell.
    moved = z.clone()
    moved[..., 0:2, 0:2], moved[..., 6:8, 0:2] = z[..., 6:8, 0:2], z[..., 0:2, 0:2]
    assert not torch.allclose(model.encode_content(moved), content, atol=1e-4)
    out = model.train()(z, torch.rand(2, 4) + 0.1, torch.randn(2, 4, 3, 16, 16))
    out["loss"].backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "position_bias" not in n)
    with pytest.raises(MotionbitsError, match="content_rows"):
        tiny_config(model={"content_reader": "patch_set", "content_rows": True})


def test_patch_set_reader_patch_and_width():
    cfg = tiny_config(model={"content_reader": "patch_set", "content_patch": 2, "content_width": 16})
    model = BCDModel(cfg, 3, 16).eval()
    assert model.content_reader.patch == 2 and model.content_reader.queries.shape == (2, 16)
    assert model.encode_content(torch.randn(2, 8, 3, 16, 16)).shape == (2, 2, 16)
    with pytest.raises(MotionbitsError, match="content_patch"):
        tiny_config(model={"content_reader": "patch_set", "content_patch": 3})


def test_render_frames_loss_is_the_loss_of_the_picked_frames():
    torch.manual_seed(0)
    model = BCDModel(tiny_config(train={"render_frames": 2}), 3, 16).eval()
    z = torch.randn(2, 8, 3, 16, 16)
    gumbel = -(-torch.rand(2, 4, 4, 8).log()).log()
    pick = torch.tensor([[0, 2], [1, 3]])
    sigma, noise = torch.rand(2, 2) + 0.1, torch.randn(2, 2, 3, 16, 16)
    out = model(z, sigma, noise, gumbel, frame_pick=pick)
    content, motion, target = model.split_clip(z)
    quantized = model.quantizer(motion, gumbel).quantized
    rows = torch.arange(2)[:, None]
    manual = model.edm.loss(lambda x, c: model.denoiser(x, c, quantized[rows, pick], content),
                            target[rows, pick], sigma, noise).mean()
    assert torch.allclose(out["diffusion_loss"], manual, atol=1e-6)
    with pytest.raises(MotionbitsError, match="render_frames"):
        tiny_config(train={"render_frames": 5})                   # a training clip rebuilds 4 frames
    with pytest.raises(MotionbitsError, match="render_frames"):
        tiny_config(train={"render_frames": 2}, model={"temporal_attention": True})


def _wake(model: BCDModel) -> BCDModel:
    """adaLN-Zero makes a new denoiser ignore its conditions: give every weight a value."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(std=0.1)
    return model


def test_dropped_clips_are_rendered_without_their_content():
    torch.manual_seed(0)
    model = _wake(BCDModel(tiny_config(model={"content_dropout": 0.5}), 3, 16).eval())
    z = torch.randn(2, 8, 3, 16, 16)
    other = z.clone()
    other[:, :4] = torch.randn(2, 4, 3, 16, 16)       # another look: only the content frames change
    gumbel = -(-torch.rand(2, 4, 4, 8).log()).log()
    sigma, noise = torch.rand(2, 4) + 0.1, torch.randn(2, 4, 3, 16, 16)
    drop = torch.tensor([True, True])
    dropped = [model(x, sigma, noise, gumbel, content_drop=drop)["diffusion_loss"] for x in (z, other)]
    kept = model(z, sigma, noise, gumbel, content_drop=torch.tensor([False, True]))["diffusion_loss"]
    assert torch.equal(dropped[0], dropped[1])       # the content frames no longer matter
    assert not torch.allclose(kept, dropped[0], rtol=1e-4)


def test_content_guidance_extrapolates_from_the_null_content():
    torch.manual_seed(0)
    cfg = tiny_config(model={"content_dropout": 0.1})
    model = _wake(BCDModel(cfg, 3, 16).eval())
    content = model.encode_content(torch.randn(2, 8, 3, 16, 16))
    codes = torch.randint(0, 8, (2, 3, 4))
    noise = torch.randn(2, 3, 3, 16, 16)
    plain = model.render(content, codes, noise, steps=1, sampler="euler")
    null = model.render(model.null_content.expand_as(content), codes, noise, steps=1, sampler="euler")
    cfg.diffusion.guidance = 2.5
    guided = model.render(content, codes, noise, steps=1, sampler="euler")
    # one Euler step to sigma 0 returns D, and D is affine in the network output
    assert torch.allclose(guided, null + 2.5 * (plain - null), atol=1e-4)
    assert not torch.allclose(guided, plain, atol=1e-3)
    with pytest.raises(MotionbitsError, match="content_dropout"):
        tiny_config(diffusion={"guidance": 2.0})
    unguided = BCDModel(tiny_config(), 3, 16).eval()
    unguided.cfg.diffusion.guidance = 2.0                    # set after validation, e.g. by a CLI flag
    with pytest.raises(MotionbitsError, match="content_dropout"):
        unguided.render(content, codes, noise, steps=1)


def test_swap_consistency_trains_the_denoiser_on_another_clips_codes():
    torch.manual_seed(0)
    model = _wake(BCDModel(tiny_config(train={"swap_consistency": 0.5, "swap_fraction": 0.5}), 3, 16).train())
    z = torch.randn(4, 8, 3, 16, 16)
    gumbel = -(-torch.rand(4, 4, 4, 8).log()).log()
    sigma, noise, swap_noise = torch.rand(4, 4) + 0.1, torch.randn(4, 4, 3, 16, 16), torch.randn(4, 4, 3, 16, 16)
    out = model(z, sigma, noise, gumbel, swap_noise=swap_noise)
    plain = model(z, sigma, noise, gumbel)                            # no swap noise: no swap term
    assert "swap_loss" not in plain and 0 <= out["swap_agreement"] <= 1
    assert torch.allclose(out["loss"], plain["loss"] + 0.5 * out["swap_loss"], atol=1e-5)
    # The swap term alone: its targets are the codes of clip i-1 (the batch's first half here),
    # and it reaches the denoiser and the content reader but never the encoder or the codebook.
    content, motion, _ = model.split_clip(z)
    content = content[:2].detach().requires_grad_(True)
    loss, _ = model.swap_consistency(content, motion[:2], swap_noise[:2])
    assert torch.allclose(loss, out["swap_loss"], atol=1e-6)
    model.zero_grad()
    loss.backward()
    assert content.grad.abs().max() > 0
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in model.encoder.parameters())
    assert model.quantizer.codebook.grad is None or model.quantizer.codebook.grad.abs().max() == 0
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in model.denoiser.parameters())
    with pytest.raises(MotionbitsError, match="swap"):
        tiny_config(train={"swap_consistency": 1.0, "swap_fraction": 0.25})   # 4 x 0.25 = 1 clip


def test_identity_adversary_learns_while_reversing_the_encoders_gradient():
    from motionbits.models.identity_adversary import IdentityAdversary, reverse_gradient

    x = torch.randn(3, requires_grad=True)
    (reverse_gradient(x, 0.5) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-0.5, -1.0, -1.5]))
    torch.manual_seed(0)
    adversary = IdentityAdversary(code_dim=6, identities=3, width=16)
    identity = torch.tensor([0, 1, 2, 1])
    codes = torch.nn.functional.one_hot(identity, 6).float()[:, None].repeat(1, 4, 1)   # codes that name the person
    codes.requires_grad_(True)
    optimizer = torch.optim.Adam(adversary.parameters(), lr=1e-2)
    for _ in range(100):
        loss, accuracy = adversary(codes, identity, weight=1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert accuracy == 1.0                                        # the classifier finds the person,
    codes.grad = None
    adversary(codes, identity, weight=0.5)[0].backward()
    target = identity[:, None].expand(-1, 4).flatten()
    plain = torch.autograd.grad(torch.nn.functional.cross_entropy(adversary.head(codes).flatten(0, 1), target), codes)[0]
    assert torch.allclose(codes.grad, -0.5 * plain)               # and the codes are pushed to make that harder
    with pytest.raises(MotionbitsError, match="identity_adversary"):
        BCDModel(tiny_config(train={"identity_adversary": 0.1}), 3, 16)
