import numpy as np
import pytest
import torch

from motionbits.errors import MotionbitsError
from motionbits.models.bcd import BCDModel, Draws
from tests.helpers import awake, tiny_config


def draws_for(model: BCDModel, batch: int, seed: int = 0) -> Draws:
    return model.draw(batch, batch, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cross_drive", [True, False])
def test_loss_and_cross_driving(cross_drive):
    model = BCDModel(tiny_config(train={"cross_drive": cross_drive}), 3, 16).train()
    draws = draws_for(model, 2)
    assert draws.noise.shape[1] == (4 if cross_drive else 8)       # the frames a clip rebuilds
    out = model(torch.randn(2, 8, 3, 16, 16), draws)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "position_bias" not in n)


def test_cross_driving_content_never_sees_the_rebuilt_frames():
    model = BCDModel(tiny_config(), 3, 16).eval()
    draws = draws_for(model, 1)
    z = torch.randn(1, 8, 3, 16, 16)
    content, _, target = model.split_clip(z, draws)
    z2 = z.clone()
    z2[:, 4:] = torch.randn(1, 4, 3, 16, 16)  # change only the second half
    assert torch.allclose(model.split_clip(z2, draws)[0], content)
    assert torch.equal(target, z[:, 4:])


def test_either_half_is_rebuilt_from_the_other():
    # Sprites clips all start at one phase: rebuilding only the second half would never show the
    # decoder the first half's poses (the demo's reconstructions froze on the last pose).
    model = BCDModel(tiny_config(train={"rebuild_either_half": True}), 3, 16).eval()
    draws = draws_for(model, 64)
    assert 16 < int(draws.rebuild_first.sum()) < 48                 # about half of each
    z = torch.randn(64, 8, 3, 16, 16)
    content, motion, target = model.split_clip(z, draws)
    first = draws.rebuild_first
    assert torch.equal(target[first], z[first, :4]) and torch.equal(target[~first], z[~first, 4:])
    assert torch.allclose(content[first], model.content_reader(z[first, 4:]) if model.content_reader is not None
                          else model.encoder(z[first, 4:])[0], atol=1e-5)
    assert torch.allclose(motion[first], model.encoder(z[first, :4])[1], atol=1e-5)
    with pytest.raises(MotionbitsError, match="rebuild_either_half needs train.cross_drive"):
        tiny_config(train={"rebuild_either_half": True, "cross_drive": False})


def test_noise_levels_per_frame_or_per_clip():
    per_frame = draws_for(BCDModel(tiny_config(), 3, 16), 64)
    per_clip = draws_for(BCDModel(tiny_config(diffusion={"noise_levels": "clip"}), 3, 16), 64)
    assert (per_clip.sigma == per_clip.sigma[:, :1]).all()
    assert (per_frame.sigma != per_frame.sigma[:, :1]).any()
    assert per_clip.sigma.log().std() > 0.5                       # still log-normal across clips


def test_draws_are_reproducible_and_shard_into_equal_parts():
    model = BCDModel(tiny_config(train={"augment_content_flip": True, "augment_motion_colors": True,
                                        "render_frames": 2}), 3, 16)
    a, b = draws_for(model, 8, seed=3), draws_for(model, 8, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(vars(a).values(), vars(b).values()) if x is not None)
    halves = [a.shard(i, 2) for i in range(2)]
    assert torch.equal(torch.cat([h.noise for h in halves]), a.noise)
    assert torch.equal(torch.cat([h.frame_pick for h in halves]), a.frame_pick)
    assert a.frame_pick.shape == (8, 2) and (a.frame_pick.diff(dim=1) > 0).all()


def test_motion_codes_in_windows_cover_long_clips():
    cfg = tiny_config()
    model = BCDModel(cfg, 3, 16).eval()
    z = torch.randn(2, 11, 3, 16, 16)
    codes = model.encode_motion(z)
    assert codes.shape == (2, 11, cfg.model.groups)
    # the first window is read exactly as a clip of the window length would be
    assert torch.equal(codes[:, :4], model.encode_motion(z[:, :4]))
    # the last, short one is read as the clip's last full window (frames 7-10; 7 came from the second)
    assert torch.equal(codes[:, 8:], model.encode_motion(z[:, 7:11])[:, 1:])


def test_relative_motion_is_read_against_the_content_half_in_training():
    model = BCDModel(tiny_config(model={"relative_motion": True}), 3, 16).eval()
    z = torch.randn(2, 8, 3, 16, 16)
    content, motion, target = model.split_clip(z, draws_for(model, 2))
    enc_content, enc_reference = model.encoder(z[:, :4])
    assert torch.allclose(content, enc_content, atol=1e-5) and torch.equal(target, z[:, 4:])
    assert torch.allclose(motion, model.encoder(z[:, 4:])[1] - enc_reference.mean(1, keepdim=True), atol=1e-5)
    # Augmented: the content is read mirrored, the reference is not, and it takes the motion half's
    # channel permutation, so the difference holds neither augmentation.
    draws = draws_for(model, 2)
    draws.content_flip, draws.motion_channels = torch.tensor([True, True]), torch.tensor([[2, 1, 0], [1, 0, 2]])
    content, motion, _ = model.split_clip(z, draws)
    permuted = torch.stack([z[i, :, draws.motion_channels[i]] for i in range(2)])
    assert torch.allclose(content, model.encoder(z[:, :4].flip(-1))[0], atol=1e-5)
    expected = model.encoder(permuted[:, 4:])[1] - model.encoder(permuted[:, :4])[1].mean(1, keepdim=True)
    assert torch.allclose(motion, expected, atol=1e-5)
    with pytest.raises(MotionbitsError, match="relative_motion needs train.cross_drive"):
        tiny_config(model={"relative_motion": True}, train={"cross_drive": False})


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


def test_augmentations_touch_only_the_encoder_inputs():
    model = BCDModel(tiny_config(), 3, 16).eval()
    z = torch.randn(2, 8, 3, 16, 16)
    draws = draws_for(model, 2)
    plain = model.split_clip(z, draws)
    draws.content_flip, draws.motion_channels = torch.tensor([True, False]), torch.tensor([[2, 1, 0], [0, 1, 2]])
    content, motion, target = model.split_clip(z, draws)
    assert torch.equal(target, plain[2])                       # what is rebuilt never changes
    assert not torch.allclose(content[0], plain[0][0])         # mirrored content frames
    assert torch.allclose(content[1], plain[0][1], atol=1e-6)  # not mirrored
    assert not torch.allclose(motion[0], plain[1][0])          # channels permuted
    assert torch.allclose(motion[1], plain[1][1], atol=1e-6)   # identity permutation
    assert torch.allclose(content[:1], model.encoder(z[:1, :4].flip(-1))[0], atol=1e-5)


@pytest.mark.parametrize("reader", ["patch_pool", "key_frame"])
def test_content_readers_read_the_content_and_every_parameter_learns(reader):
    model = BCDModel(tiny_config(model={"content_reader": reader, "content_queries": 16}), 3, 16).train()
    assert model.encoder.queries is None                        # the encoder reads only the motion
    out = model(torch.randn(2, 8, 3, 16, 16), draws_for(model, 2))
    out["loss"].backward()
    # DistributedDataParallel refuses parameters without gradients
    assert all(p.grad is not None for n, p in model.named_parameters() if "position_bias" not in n)


def test_a_key_frame_content_lies_on_the_denoisers_patches():
    torch.manual_seed(0)
    model = awake(BCDModel(tiny_config(model={"content_reader": "key_frame", "content_queries": 16}), 3, 16)).eval()
    z = torch.randn(1, 8, 3, 16, 16)
    content = model.encode_content(z)                                   # [1, 16, Cc]: the 4x4 patches of frame 0
    codes, noise = torch.randint(0, 8, (1, 2, 4)), torch.randn(1, 2, 3, 16, 16)
    out = model.render(content, codes, noise, steps=1)
    flipped = model.render(content.flip(1), codes, noise, steps=1)      # the same tokens on other patches
    assert not torch.allclose(out, flipped, atol=1e-4)
    with pytest.raises(MotionbitsError, match="content_queries must be 16, not 4"):
        BCDModel(tiny_config(model={"content_reader": "key_frame", "content_queries": 4}), 3, 16)


def draw_change_model(**model) -> BCDModel:
    # 16x16 frames, 3 channels, 4x4 patches: 16 content tokens of 4*4*3 = 48 values
    return BCDModel(tiny_config(model={"content_reader": "key_frame", "content_queries": 16, "content_dim": 48,
                                       "draw_change": True, **model}), 3, 16)


def test_draw_change_content_is_the_key_frame_and_rendering_adds_it_back(monkeypatch):
    torch.manual_seed(0)
    model = awake(draw_change_model()).eval()
    z = torch.randn(1, 8, 3, 16, 16)
    content = model.encode_content(z)                                   # [1, 16, 48]: frame 0's raw patches
    assert torch.equal(model.content_reader.key_latent(content), z[:, 0])
    codes, noise = torch.randint(0, 8, (1, 3, 4)), torch.randn(1, 3, 3, 16, 16)
    drawn = model.edm.sample(lambda x, c: model.denoiser(x, c, model.motion_condition(codes), content), noise, 2)
    out = model.render(content, codes, noise, steps=2)                  # [1, 3, 3, 16, 16]
    assert torch.allclose(out, drawn + z[:, :1], atol=1e-5)
    # codes that say nothing (a sampler drawing no change) give the key frame itself
    monkeypatch.setattr(model.edm, "sample", lambda net, noise, steps=None, sampler=None: torch.zeros_like(noise))
    assert torch.equal(model.render(content, codes, noise), z[:, :1].expand(1, 3, 3, 16, 16))


@pytest.mark.parametrize("draw_change", [True, False])
def test_draw_change_trains_on_the_frames_change_from_the_key_frame(monkeypatch, draw_change):
    model = (draw_change_model() if draw_change else
             BCDModel(tiny_config(model={"content_reader": "key_frame", "content_queries": 16}), 3, 16)).train()
    seen = []
    loss = model.edm.loss
    monkeypatch.setattr(model.edm, "loss", lambda net, target, *rest: seen.append(target) or loss(net, target, *rest))
    still = torch.randn(2, 1, 3, 16, 16).expand(2, 8, 3, 16, 16)       # a clip that never moves
    model(still, draws_for(model, 2))["loss"].backward()
    assert (seen[0].abs().max() == 0) == draw_change                   # its change is zero, its frames are not
    assert all(p.grad is not None for n, p in model.named_parameters() if "position_bias" not in n)


def test_draw_change_refuses_a_content_that_is_not_the_key_frames_patches():
    with pytest.raises(MotionbitsError, match="content_dim must be 48, not 16"):
        draw_change_model(content_dim=16)
    with pytest.raises(MotionbitsError, match="draw_change needs content_reader: key_frame"):
        tiny_config(model={"draw_change": True})
    with pytest.raises(MotionbitsError, match="augment_content_flip exclude each other"):
        tiny_config(model={"content_reader": "key_frame", "content_queries": 16, "content_dim": 48,
                           "draw_change": True}, train={"augment_content_flip": True})


def test_render_frames_loss_is_the_loss_of_the_picked_frames():
    torch.manual_seed(0)
    model = awake(BCDModel(tiny_config(train={"render_frames": 2}), 3, 16)).eval()
    z = torch.randn(2, 8, 3, 16, 16)
    draws = draws_for(model, 2)
    pick = draws.frame_pick
    out = model(z, draws)
    content, motion, target = model.split_clip(z, draws)
    quantized = model.quantizer(motion, draws.gumbel).quantized
    rows = torch.arange(2)[:, None]
    manual = model.edm.loss(lambda x, c: model.denoiser(x, c, quantized[rows, pick], content),
                            target[rows, pick], draws.sigma, draws.noise).mean()
    assert torch.allclose(out["diffusion_loss"], manual, atol=1e-6)
    with pytest.raises(MotionbitsError, match="render_frames"):
        tiny_config(train={"render_frames": 5})                   # a training clip rebuilds 4 frames
    with pytest.raises(MotionbitsError, match="render_frames"):
        tiny_config(train={"render_frames": 2}, model={"temporal_attention": True})


def test_render_shapes_and_determinism():
    model = BCDModel(tiny_config(), 3, 16).eval()
    content = model.encode_content(torch.randn(2, 8, 3, 16, 16))
    codes = torch.randint(0, 8, (2, 6, 4))
    noise = torch.randn(2, 6, 3, 16, 16)
    a = model.render(content, codes, noise, steps=2)
    assert a.shape == (2, 6, 3, 16, 16) and torch.equal(a, model.render(content, codes, noise, steps=2))


def test_motion_context_reads_a_frame_s_codes_beside_its_window_only():
    # A frame whose tuple two poses share is told apart by the tuples around it; the context is
    # cut in the encoder's windows, so what conditions a frame is what training showed it.
    model = BCDModel(tiny_config(model={"motion_context": 1}), 3, 16).eval()
    codes = torch.randint(0, 8, (1, 10, 4), generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.motion_condition(codes), model.quantizer.lookup(codes))   # zero output: starts as the codes
    awake(model.motion_context)
    base = model.motion_condition(codes)                                               # [1, 10, Cm]
    changed = codes.clone()
    changed[0, 1] = (codes[0, 1] + 1) % 8                                              # a code in the first window
    moved = (model.motion_condition(changed) - base).abs().amax(dim=-1)[0]
    assert (moved[:4] > 1e-4).all() and (moved[4:] == 0).all()
    changed = codes.clone()
    changed[0, 7] = (codes[0, 7] + 1) % 8              # windows 0-3, 4-7 and the last read shifted back: 6-9
    moved = (model.motion_condition(changed) - base).abs().amax(dim=-1)[0]
    assert (moved[:4] == 0).all() and (moved[4:] > 1e-4).all()
    awake(model).train()                               # (a new denoiser ignores its condition)
    out = model(torch.randn(2, 8, 3, 16, 16), draws_for(model, 2))
    out["loss"].backward()
    assert model.motion_context.inp.weight.grad.abs().sum() > 0                        # training reads it too


LIP_MODEL = {"content_reader": "patch_pool", "content_queries": 4, "lip_groups": 1}


def test_the_lip_groups_read_the_lips_alone_with_a_rate_of_their_own():
    # model.lip_groups: the last groups read each frame's lip points and nothing else, pulled to
    # their own rate; the lips must follow their frames through cross-driving's halves.
    cfg = tiny_config(model={**LIP_MODEL, "relative_motion": True}, train={"lip_bits": 1.0})
    model = BCDModel(cfg, 3, 16).eval()
    z, lips = torch.randn(2, 8, 3, 16, 16), torch.randn(2, 8, 40)
    _, motion, _ = model.split_clip(z, draws_for(model, 2), lips)
    expected = model.read_motion(z[:, 4:], lips[:, 4:]) - model.read_motion(z[:, :4], lips[:, :4]).mean(1, keepdim=True)
    assert torch.allclose(motion, expected, atol=1e-5)
    d = cfg.model.group_dim                                  # the lip group reads the lips alone
    other = model.split_clip(torch.randn_like(z), draws_for(model, 2), lips)[1]
    assert torch.allclose(other[..., -d:], motion[..., -d:], atol=1e-5)
    assert not torch.allclose(other[..., :-d], motion[..., :-d], atol=1e-3)
    codes = model.encode_motion(z, lips=lips)
    assert torch.equal(codes[:, 4:], model.quantizer.logits(expected).argmax(-1))
    with pytest.raises(MotionbitsError, match="give the frames' lip points"):
        model.encode_motion(z)
    out = model.train()(z, draws_for(model, 2), lips)
    assert 0 <= out["lip_bits"] <= 3 and out["rate_loss"] > 0
    for split_or_loss in (model, model.split_clip):
        with pytest.raises(MotionbitsError, match="the training loss needs the clips' lip points"):
            split_or_loss(z, draws_for(model, 2))
    out["loss"].backward()
    assert model.lip_encoder.embed[0].weight.grad.abs().sum() > 0
    assert BCDModel(tiny_config(), 3, 16).lips_of_frames(torch.zeros(1, 8, 16, 16, 3, dtype=torch.uint8)) is None
    with pytest.raises(MotionbitsError, match="lip_groups needs content_reader"):
        tiny_config(model={"lip_groups": 1})


def test_the_lip_encoder_reads_standardised_points_and_a_missing_face_as_the_mean():
    model = BCDModel(tiny_config(model=LIP_MODEL), 3, 16).eval()
    lips = torch.randn(4, 8, 40, dtype=torch.float64) * 0.05 + 0.3
    lips[0, 0] = float("nan")
    model.lip_encoder.set_statistics(lips)
    assert torch.allclose(model.lip_encoder.mean, lips.reshape(-1, 40)[1:].mean(0).float(), atol=1e-6)   # (row 0: no face)
    missing = lips[:1].clone()
    missing[0, 0] = model.lip_encoder.mean.double()
    assert torch.allclose(model.lip_encoder(lips[:1]), model.lip_encoder(missing), atol=1e-6)
    assert not torch.allclose(model.lip_encoder(lips[:1]), model.lip_encoder(lips[1:2]), atol=1e-3)
    assert "lip_encoder.mean" in model.state_dict()             # read at inference as trained
    # The lip points follow their frames when the halves trade places (train.rebuild_either_half).
    cfg = tiny_config(model=LIP_MODEL, train={"rebuild_either_half": True})
    model = BCDModel(cfg, 3, 16).eval()
    z, lips = torch.randn(2, 8, 3, 16, 16), torch.randn(2, 8, 40)
    draws = draws_for(model, 2)
    draws.rebuild_first = torch.tensor([True, False])
    motion = model.split_clip(z, draws, lips)[1]                                     # [B, T', N*d]
    d = cfg.model.group_dim
    assert motion.shape == (2, 4, cfg.model.groups * d)
    assert torch.allclose(motion[0, :, -d:], model.lip_encoder(lips[:1, :4])[0], atol=1e-5)
    assert torch.allclose(motion[1, :, -d:], model.lip_encoder(lips[1:, 4:])[0], atol=1e-5)


@pytest.mark.parametrize("relative", [False, True])
def test_relative_lip_points_leave_a_persons_own_lip_shape_out_of_the_codes(relative):
    # model.lip_relative: the lip groups read each frame's change from the reference's mean
    # (the content half in training, the first window at inference), so a constant lip shape
    # added to every frame (another person's mouth) changes nothing, while a change over time does.
    cfg = tiny_config(model={**LIP_MODEL, "lip_relative": True, "relative_motion": relative})
    model = BCDModel(cfg, 3, 16).eval()
    z, lips = torch.randn(2, 8, 3, 16, 16), torch.randn(2, 8, 40)
    other_mouth = lips + torch.randn(2, 1, 40)
    draws = draws_for(model, 2)
    d = cfg.model.group_dim
    motion = model.split_clip(z, draws, lips)[1]
    assert torch.allclose(model.split_clip(z, draws, other_mouth)[1], motion, atol=1e-5)
    centre = lips[:, :4].mean(1, keepdim=True)
    expected = model.lip_encoder(lips[:, 4:] - centre)
    if relative:  # (relative_motion: less the reference's mean feature, read from the centred reference too)
        expected = expected - model.lip_encoder(lips[:, :4] - centre).mean(1, keepdim=True)
    assert torch.allclose(motion[..., -d:], expected, atol=1e-5)
    logits = model.motion_logits(z, lips=lips)
    assert torch.allclose(model.motion_logits(z, lips=other_mouth), logits, atol=1e-5)
    moving = lips.clone()
    moving[:, 6] += 1.0
    assert not torch.allclose(model.motion_logits(z, lips=moving)[:, 6], logits[:, 6], atol=1e-4)
    with pytest.raises(MotionbitsError, match="lip_relative needs"):
        tiny_config(model={"lip_relative": True})


def test_the_lip_openings_encoder_standardises_each_number_on_its_own():
    # model.lip_reads openings: five numbers of the lip points, each with its own spread (widths
    # vary far more than openings); a frame without a face reads as their mean.
    from motionbits.lip_points import lip_openings

    model = BCDModel(tiny_config(model={**LIP_MODEL, "lip_reads": "openings"}), 3, 16).eval()
    lips = torch.randn(4, 8, 40, dtype=torch.float64)
    lips[..., 0::2] *= 3.0                                              # x spreads more than y
    lips[0, 0] = float("nan")
    encoder = model.lip_encoder
    encoder.set_statistics(lips)
    numbers = lip_openings(lips).reshape(-1, 5)[1:]
    assert encoder.mean.shape == encoder.spread.shape == (5,)
    assert torch.allclose(encoder.spread, numbers.std(0).float(), atol=1e-5)
    assert encoder(lips[:1]).isfinite().all()                           # the frame without a face
    with pytest.raises(MotionbitsError, match="lip_reads needs model.lip_groups"):
        tiny_config(model={"lip_reads": "openings"})
