"""The committed scripts run: the rate-distortion comparison on a tiny video dataset."""
import importlib.util
import json
from pathlib import Path

import pytest

from motionbits.data.video import build_video_dataset, dataset_manifest, load_video_clips
from motionbits.training.bcd import train
from tests.data.test_video import moving_square, write_video
from tests.helpers import tiny_config

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rate_distortion_codes_the_test_split_with_motionbits_and_the_codecs(tmp_path):
    src = tmp_path / "src"
    for person in ("anna", "ben", "cleo", "dora"):
        write_video(src / person / "take.mp4", moving_square(32, seed=len(person)), fps=10)
    build_video_dataset(src, tmp_path / "clips", size=16, frames=8, stride=8, test_fraction=0.5, progress=False)
    cfg = tiny_config(data={"kind": "video", "root": str(tmp_path / "clips"), "image_size": 16}, train={"steps": 1})
    train(cfg, tmp_path / "run", progress=False)
    rd = load_script("rate_distortion")
    assert rd.main(["--runs", str(tmp_path / "run"), "--data", str(tmp_path / "clips"), "--out", str(tmp_path / "rd"),
                    "--frames", "16", "--crf-steps", "2", "--codecs", "x264", "x265"]) == 0
    report = json.loads((tmp_path / "rd" / "rd.json").read_text())
    series = [r["series"] for r in report["results"]]
    assert series == ["motionbits run"] + ["x264"] * 2 + ["x265"] * 2
    assert report["meta"]["sequences"] == 2 and report["meta"]["fps"] == 10
    ours = report["results"][0]
    # 16 frames, 4 groups x 8 entries: the motion stream is a few words; the header and content are paid once
    assert ours["later_kbps"] < ours["kbps"] and ours["once_bytes"] > 2 * 16
    x264 = [r for r in report["results"] if r["series"] == "x264"]
    assert x264[0]["kbps"] < x264[1]["kbps"] and x264[0]["psnr_db"] < x264[1]["psnr_db"]   # CRF 51, then 45
    assert (tmp_path / "rd" / "rd.png").stat().st_size > 0 and "| x265 | CRF 51 |" in (tmp_path / "rd" / "rd.md").read_text()
    test_person = json.loads((tmp_path / "clips" / "manifest.json").read_text())["split_identities"]["test"][0]
    assert rd.main(["--runs", str(tmp_path / "run"), "--data", str(tmp_path / "clips"), "--out", str(tmp_path / "rd1"),
                    "--frames", "16", "--crf-steps", "1", "--codecs", "x265", "--only", test_person]) == 0
    assert json.loads((tmp_path / "rd1" / "rd.json").read_text())["meta"]["sequences"] == 1   # that person's video
    # a video given directly, read at the model's size and rate, with two content budgets: a curve
    write_video(tmp_path / "held_back.mp4", moving_square(30, seed=7), fps=10)     # 32x24, read at 16x16
    assert rd.main(["--runs", str(tmp_path / "run"), "--video", str(tmp_path / "held_back.mp4"), "--out",
                    str(tmp_path / "rd2"), "--content-bytes", "16", "64", "--crf-steps", "2",
                    "--codecs", "x265", "x265 low-delay"]) == 0
    report = json.loads((tmp_path / "rd2" / "rd.json").read_text())
    assert report["meta"]["frames_total"] == 30 and report["meta"]["fps"] == 10 and report["meta"]["size"] == 16
    ours = [r for r in report["results"] if r["series"] == "motionbits run"]
    assert len(ours) == 2 and ours[0]["once_bytes"] < ours[1]["once_bytes"]
    for r in report["results"]:   # what is paid once fades as the call lengthens, the rest stays
        assert r["calls"]["10 min"] == pytest.approx(8 * r["once_bytes"] / 600 / 1000 + r["later_kbps"])
        assert r["calls"]["10 min"] < r["calls"]["60 s"] < r["calls"]["10 s"]
        assert r["encode_fps"] > 0 and r["decode_fps"] > 0
    assert [r["delay_frames"] for r in report["results"] if r["series"] == "x265 low-delay"] == [0, 0]
    assert ours[0]["delay_frames"] == 3                                      # the look-ahead: a window of 4 - 1
    held = report["first_frame_held"]                   # the square stops: far from the clip, not from itself
    assert 0 < held["ssim"] < 1 and held["psnr_db"] < 60 and "first frame held" in (tmp_path / "rd2" / "rd.md").read_text()
    assert {(e["series"], e["metric"]) for e in report["bd_rate"]} >= {("motionbits run", "akd"), ("x265 low-delay", "csim")}
    # the stream fed a frame at a time gives the bytes `motionbits encode` writes for the clip
    from motionbits.api import MotionBits
    from motionbits.codec import encode_clip
    from motionbits.codec.format import pack

    pipe, clip = MotionBits.from_checkpoint(tmp_path / "run"), moving_square(14, seed=3)[:, :16, :16]
    coded = rd.code_motionbits(pipe, None, clip, 10.0, None)
    assert coded["bytes"] == pack(encode_clip(pipe, clip, fps=10.0))
    assert coded["once"] + coded["motion"] == len(coded["bytes"]) and coded["frames"].shape == clip.shape


def test_rate_distortion_bd_rate_and_the_third_of_x265():
    """On made-up points: motionbits on x265's AKD curve at half its rate is -50 %, and the check
    reads x265's highest CRF and the motionbits points under a third of its rate."""
    rd = load_script("rate_distortion")

    def row(series, setting, kbps, akd, csim):
        return {"series": series, "setting": setting, "kbps": kbps, "akd": akd, "csim": csim,
                "calls": {c: kbps for c in rd.CALLS}}
    x265 = [row("x265", f"CRF {c}", k, a, 0.9 + a) for c, k, a in ((51, 2.0, 0.05), (45, 3.0, 0.04), (39, 5.0, 0.03))]
    ours = [row("motionbits m", "content", k / 2, a, 0.5) for k, a in ((2.0, 0.05), (3.0, 0.04), (5.0, 0.03))]
    bd = {e["metric"]: e for e in rd.bd_rates(x265 + ours)}
    assert bd["akd"]["60 s"]["percent"] == pytest.approx(-50.0)
    assert bd["csim"]["clip"]["percent"] is None and "1 distinct" in bd["csim"]["clip"]["note"]
    check = rd.third_of_x265(x265 + ours)[0]
    assert check["x265_setting"] == "CRF 51" and check["third_kbps"] == pytest.approx(2 / 3)
    assert check["motionbits_points"] == 0 and check["best_akd"] is None and check["cheapest_motionbits_kbps"] == 1.0
    ours[0]["kbps"] = 0.6
    assert rd.third_of_x265(x265 + ours)[0]["best_akd"] == 0.05


class _PlainPipe:
    """A stand-in model for own_footage.py: a reconstruction is its driver itself; a transfer onto
    another content either copies the driver (`follows`) or holds the content's first frame."""

    def __init__(self, follows: bool):
        from types import SimpleNamespace

        self.follows = follows
        self.cfg = SimpleNamespace(data=SimpleNamespace(frames=8), diffusion=SimpleNamespace(sample_steps=2))

    def transfer(self, content, driving, steps=None, seed=0):
        import torch

        if content is driving or self.follows:
            return torch.as_tensor(driving).clone()
        return torch.as_tensor(content)[:, :1].expand(-1, driving.shape[1], -1, -1, -1).clone()

    def to_latents(self, frames):
        import torch

        return torch.as_tensor(frames)

    def to_frames(self, z):
        return z


def test_own_footage_rebuilds_the_held_back_video_and_tells_a_copy_from_a_still_transfer(tmp_path):
    """The talking man (carphone) is the person: one video to train on, one held back; Grace Hopper's
    sliding portrait is the driver never seen. A result that copies its driver follows it at r = 1 and
    looks like the driver; one that holds the person still has r = 0 and looks like the person."""
    import numpy as np
    import pytest

    from tests.face_media import carphone, grace_clip
    from tests.helpers import write_video as save

    src = tmp_path / "src"
    man = carphone()
    save(src / "man" / "take.mp4", man[:56], fps=30)
    save(src / "man" / "held_back.mp4", man[56:120], fps=30)
    save(src / "grace" / "talk.mp4", grace_clip(64), fps=30)
    save(src / "hopper" / "lecture.mp4", grace_clip(64)[::-1], fps=30)       # another training person
    build_video_dataset(src, tmp_path / "clips", size=96, frames=8, stride=8, test_videos="held_back|grace",
                        progress=False)
    own = load_script("own_footage")
    report, strips = own.measure(_PlainPipe(follows=True), str(tmp_path / "clips"), "man", None, 4, None, 0)
    recon = report["reconstruction"]
    assert recon["windows"] == 2 and recon["videos"] == 1
    assert recon["following"]["model"]["signals"]["mouth"]["r_pooled"] == pytest.approx(1.0)
    assert recon["following"]["still"]["groups"]["mouth"]["r_pooled"] == 0.0
    assert recon["akd"]["model"] == pytest.approx(0.0) and recon["akd"]["still"] > 0.01
    assert recon["psnr_db"]["model"] == 100.0 and 10 < recon["psnr_db"]["still"] < 40     # a copy; a held frame
    seen = report["reconstruction_seen"]                                   # the training video: one window
    assert seen["windows"] == 1 and seen["akd"]["model"] == pytest.approx(0.0) and "null" not in seen["following"]
    copy = report["transfer"]
    assert copy["windows"] == 2 and copy["following"]["model"]["groups"]["head pose"]["r_pooled"] == pytest.approx(1.0)
    assert copy["identity"]["model"]["same_person"] == 0.0                # Grace is not the man
    assert copy["identity"]["still"]["same_person"] == 1.0
    still, _ = own.measure(_PlainPipe(follows=False), str(tmp_path / "clips"), "man", None, 4, None, 0)
    assert still["transfer"]["following"]["model"]["groups"]["head pose"]["r_pooled"] == 0.0
    assert still["transfer"]["identity"]["model"]["same_person"] == 1.0
    assert [s.shape[1] for s in strips] == [192, 192]                    # driver above, result below
    with pytest.raises(own.MotionbitsError, match="no person 'nobody'"):
        own.measure(_PlainPipe(follows=True), str(tmp_path / "clips"), "nobody", None, 4, None, 0)
    assert "| still |" in own.table(report) and "training videos rebuilt" in own.table(report)
    assert "driven by people never seen" in own.table(report)
    # --seen-drivers: the other training person drives, in their training clips, never the person
    seen_report, seen_strips = own.measure(_PlainPipe(follows=True), str(tmp_path / "clips"), "man", None, 4, None, 0,
                                           seen_drivers=True)
    frames, labels = load_video_clips(tmp_path / "clips", "train")
    hopper = dataset_manifest(tmp_path / "clips", "train", "video")[1]["identities"].index("hopper")
    assert seen_report["transfer"]["videos"] == 1 and seen_report["drivers_seen"]
    assert (seen_strips[1][0, :96] == frames[labels["identity"] == hopper][0, 0]).all()   # hopper drives
    assert "driven by the other people it trained on" in own.table(seen_report)


def test_sprites_codes_tells_codes_that_carry_the_pose_from_codes_that_carry_only_the_class():
    import numpy as np

    from motionbits.data.sprites import FRAMES, frame_poses

    vote = load_script("sprites_codes").majority_vote_accuracy
    rng = np.random.default_rng(0)
    train_motion, test_motion = rng.integers(0, 9, 300), rng.integers(0, 9, 100)
    poses_train, poses_test = frame_poses(train_motion).ravel(), frame_poses(test_motion).ravel()
    # Codes naming the pose (two groups: pose id's two digits) against codes naming only the class.
    by_pose = lambda p: np.stack([p // 8, p % 8], 1)                                   # noqa: E731
    by_class = lambda m: np.stack([np.repeat(m, FRAMES), np.zeros(m.size * FRAMES, int)], 1)  # noqa: E731
    assert vote(by_pose(poses_train), poses_train, by_pose(poses_test), poses_test) == 1.0
    class_only = vote(by_class(train_motion), poses_train, by_class(test_motion), poses_test)
    assert class_only < 0.35                         # a class's commonest pose: 3 of 8 frames at most
    classes = vote(by_class(train_motion), np.repeat(train_motion, FRAMES), by_class(test_motion),
                   np.repeat(test_motion, FRAMES))
    assert classes == 1.0
    unseen = by_pose(poses_test) + 100                                                  # tuples never trained on
    assert vote(by_pose(poses_train), poses_train, unseen, poses_test) == 0.0


def test_face_codes_probe_reads_a_signal_the_codes_name_and_not_one_they_do_not():
    import numpy as np

    probe = load_script("face_codes")
    rng = np.random.default_rng(0)

    def windows(n):                       # per window: a mouth course and codes naming its bin (group 0)
        mouths = [np.sin(np.linspace(0, 6, 32) + rng.uniform(0, 6)) for _ in range(n)]
        named = [np.eye(8)[np.clip(((m + 1) * 4).astype(int), 0, 7)] for m in mouths]
        noise = [np.eye(8)[rng.integers(0, 8, 32)] for _ in range(n)]
        return mouths, named, noise

    m_train, named_train, noise_train = windows(12)
    m_test, named_test, noise_test = windows(6)
    r = probe.probe({"named": named_train, "noise": noise_train}, {"named": named_test, "noise": noise_test},
                    [{"mouth": m} for m in m_train], [{"mouth": m} for m in m_test])
    assert r["named"]["mouth"]["r"] > 0.95 and r["named"]["mouth"]["ci"][0] > 0.9
    assert abs(r["noise"]["mouth"]["r"]) < 0.3
    # a constant feature in the fit (an entry never used) must not blow up predictions when it appears
    predict = probe.ridge_fit(np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]]), np.array([1.0, 2.0, 3.0]))
    assert np.allclose(predict(np.array([[5.0, 2.0]])), 2.0, atol=0.1)


class _SlidingPipe:
    """A stand-in model for face_codes.py whose codes name the face's horizontal place (a bin of its
    change since the window's first 4 frames), read from the frames' landmarks."""

    def __init__(self):
        from types import SimpleNamespace

        self.model = SimpleNamespace(window=4)
        self.cfg = SimpleNamespace(data=SimpleNamespace(frames=8),
                                   model=SimpleNamespace(groups=2, codebook_size=16, lip_groups=0))

    def motion_logits(self, frames):
        import numpy as np
        import torch

        from motionbits.evaluation.faces import read_faces

        x = read_faces(np.asarray(frames[0]), embed=False).landmarks[:, :, 0].mean(1)      # [L] face centre x
        x = np.nan_to_num(x - np.nanmean(x[:4]))
        bins = np.clip(np.round(x).astype(int) + 8, 0, 15)
        logits = np.stack([np.eye(16)[bins], np.zeros((len(x), 16))], 1)                   # [L, 2, 16]
        return torch.from_numpy(logits)[None]


def test_face_codes_finds_the_place_in_codes_that_name_it(tmp_path):
    """Grace Hopper's sliding portrait, one video to fit on and one held back: codes naming the face's
    place give its change back (r near 1), the same codes shuffled do not."""
    from tests.face_media import grace_clip
    from tests.helpers import write_video as save

    src = tmp_path / "src"
    clip = grace_clip(128)
    save(src / "grace" / "take.mp4", clip[:64], fps=30)
    save(src / "grace" / "held_back.mp4", clip[64:], fps=30)
    save(src / "other" / "x.mp4", clip[::-1][:64], fps=30)
    build_video_dataset(src, tmp_path / "clips", size=96, frames=8, stride=8, test_videos="held_back", progress=False)
    face_codes = load_script("face_codes")
    report = face_codes.measure(_SlidingPipe(), str(tmp_path / "clips"), "grace", 4)
    assert report["train"]["windows"] == 2 and report["test"]["windows"] == 2
    assert report["r"]["codes"]["centre_x"]["r"] > 0.8          # 1-pixel bins of a 6-pixel slide
    assert abs(report["r"]["shuffled codes"]["centre_x"]["r"]) < 0.5
    assert "| codes |" in face_codes.table(report)
    with pytest.raises(face_codes.MotionbitsError, match="no person 'nobody'"):
        face_codes.measure(_SlidingPipe(), str(tmp_path / "clips"), "nobody", 4)


def test_pack_frames_keeps_each_frame_once_and_rebuilds_every_clip(tmp_path):
    src = tmp_path / "src"
    for person in ("anna", "ben"):
        write_video(src / person / "take.mp4", moving_square(24, seed=len(person)), fps=10)
    build_video_dataset(src, tmp_path / "clips", size=16, frames=8, stride=2, test_fraction=0.5, progress=False)
    import numpy as np

    from motionbits.training.bcd import lip_cache_path
    pack = load_script("pack_frames")
    train_frames = np.load(tmp_path / "clips" / "train_frames.npy")
    lips = np.random.default_rng(0).normal(size=(*train_frames.shape[:2], 40))   # a lip model's cache
    np.save(lip_cache_path(tmp_path / "clips", train_frames), lips)
    pack.pack(tmp_path / "clips", tmp_path / "packed")
    pack.unpack(tmp_path / "packed", tmp_path / "again")
    # the lip points come back under the rebuilt frames' key, where training looks for them
    assert np.array_equal(np.load(lip_cache_path(tmp_path / "again", np.load(tmp_path / "again" / "train_frames.npy"))), lips)
    for split in ("train", "test"):
        clips = np.load(tmp_path / "clips" / f"{split}_frames.npy")
        again = np.load(tmp_path / "again" / f"{split}_frames.npy")
        assert again.shape == clips.shape
        # near-lossless: every clip's frames back in their place (a clip rebuilt from another
        # clip's frames, or shifted by one frame, differs by far more than the codec's rounding)
        assert np.abs(again.astype(int) - clips).mean() < 2.0
        index, index_again = np.load(tmp_path / "clips" / f"{split}.npz"), np.load(tmp_path / "again" / f"{split}.npz")
        assert sorted(index_again.files) == sorted(index.files)
        assert all(np.array_equal(index[k], index_again[k]) for k in index.files)
    # overlapping clips (8 frames every 2) are stored once per frame, not once per clip
    train_clips = np.load(tmp_path / "clips" / "train_frames.npy", mmap_mode="r")
    assert len(pack.read_video(tmp_path / "packed" / "train.mp4")) < train_clips.shape[0] * train_clips.shape[1] / 2


def test_last_weights_gives_a_run_whose_inference_uses_its_last_weights(tmp_path, sprites_root):
    """The copy's inference weights are the run's last ones (not their average), and it loads."""
    import pytest
    import torch

    from motionbits.api import MotionBits
    from motionbits.training.bcd import train
    from tests.helpers import tiny_config

    run = tmp_path / "run"
    train(tiny_config(data={"root": str(sprites_root), "image_size": 64}, model={"patch_size": 16},
                      train={"steps": 3, "ema_decay": 0.9}), run, progress=False)
    ckpt = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    name = next(k for k, v in ckpt["model"].items() if v.is_floating_point() and not torch.equal(v, ckpt["ema"][k]))
    script = load_script("last_weights")
    script.last_weights(run, tmp_path / "last")
    copy = torch.load(tmp_path / "last" / "last.pt", map_location="cpu", weights_only=True)
    assert torch.equal(copy["ema"][name], ckpt["model"][name]) and "optimizer" not in copy
    pipe = MotionBits.from_checkpoint(tmp_path / "last")
    assert torch.equal(pipe.model.state_dict()[name], ckpt["model"][name])
    with pytest.raises(script.MotionbitsError, match="the run's own folder"):
        script.last_weights(run, run)


def test_mouth_oracle_pooled_r_reads_within_clip_motion_and_the_oracle_starts_silent():
    import numpy as np
    import torch

    oracle = load_script("mouth_oracle")
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(40, 4)) + rng.normal(size=(40, 1)) * 10       # clips at very different resting levels
    # each clip's mean is removed: an output at other resting levels that moves like the truth reads 1
    assert oracle.pooled_r(truth + rng.normal(size=(40, 1)) * 10, truth)["r"] == pytest.approx(1.0)
    assert oracle.pooled_r(-truth, truth)["r"] == pytest.approx(-1.0)
    independent = oracle.pooled_r(rng.normal(size=(40, 4)), truth)
    assert abs(independent["r"]) < 0.3 and independent["interval"][0] < 0 < independent["interval"][1]
    # a clip whose mouth was never found (NaN) drops out; one with too few frames too
    held = truth.copy()
    held[0] = np.nan
    held[1, :2] = np.nan
    assert oracle.pooled_r(held, truth)["clips"] == 38
    # the added condition is zero until trained, so the copy starts as the model it copies
    silent = oracle.Oracle(dim=12, mean=0.3, std=0.1)
    assert torch.equal(silent(torch.tensor([[0.2, float("nan"), 0.5]])), torch.zeros(1, 3, 12))


def test_mouth_oracle_trains_on_the_models_loss_and_measures_what_its_condition_changes(tmp_path):
    import torch

    from motionbits.api import MotionBits
    from motionbits.data.clips import load_clips
    from motionbits.training.bcd import BCDTask
    from tests.helpers import awake

    oracle = load_script("mouth_oracle")
    for person in ("anna", "ben"):
        write_video(tmp_path / "src" / person / "take.mp4", moving_square(24, seed=len(person)), fps=10)
    build_video_dataset(tmp_path / "src", tmp_path / "clips", size=16, frames=8, stride=2, test_fraction=0.5,
                        progress=False)
    cfg = tiny_config(data={"kind": "video", "root": str(tmp_path / "clips"), "image_size": 16})
    task = BCDTask(cfg, load_clips(cfg, "train", device=torch.device("cpu")))
    awake(task.model)
    draws = task.draw(torch.Generator().manual_seed(0), 4)
    expected = task.loss(task.model, draws, torch.device("cpu"))["loss"].item()
    silent = oracle.Oracle(task.model.quantizer.dim, 0.0, 1.0)
    mouth = torch.rand(len(task.clips), task.model.window)
    # the script's copy of the training loss is the model's own while the oracle adds nothing
    assert oracle.oracle_loss(task, silent, mouth, draws).item() == pytest.approx(expected, rel=1e-6)
    assert oracle.oracle_loss(task, silent, mouth, draws, mouth_weight=8.0).item() != pytest.approx(expected, rel=1e-3)
    awake(silent, std=1.0)      # an oracle that speaks changes the condition, so the loss
    assert oracle.oracle_loss(task, silent, mouth, draws).item() != pytest.approx(expected, rel=1e-3)
    # the measures: an oracle copy rebuilds frames, and the loss gap is 0 for the same condition, not for another
    content, right, target = oracle.conditions(task.model.eval(), silent, task.clips, torch.arange(2), torch.arange(2),
                                               mouth[:2])
    _, wrong, _ = oracle.conditions(task.model, silent, task.clips, torch.arange(2), torch.arange(2), mouth[:2] + 1)
    assert oracle.rebuild(MotionBits(task.model, task.clips.tokenizer, cfg), task.model, content, right).shape == (2, 4, 16, 16, 3)
    same = oracle.loss_gaps(task.model, content, right, right, target)
    assert set(same) == {str(s) for s in oracle.GAP_SIGMAS}
    assert all(v == {"mouth": 0.0, "frame": 0.0} for v in same.values())
    assert all(v["frame"] != 0 for v in oracle.loss_gaps(task.model, content, right, wrong, target).values())
    # a person the data does not hold back is one line, not a traceback
    train(cfg, tmp_path / "run", progress=False, max_steps=1)
    assert oracle.main(["--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "oracle"), "--person", "zoe"]) == 2


def test_compare_autoencoders_prints_a_row_a_clip_and_draws_the_strip(tmp_path, capsys):
    import torch
    from PIL import Image

    from motionbits.models.fast_autoencoder import FastTAEF2
    from motionbits.models.tokenizer import build_tokenizer

    script = load_script("compare_autoencoders")
    clip = tmp_path / "clip.mp4"
    write_video(clip, moving_square(8, seed=1))
    taef2 = build_tokenizer("taef2")
    fast = FastTAEF2(taef2)                                            # undistilled: its numbers, not good ones
    for name, sd in fast.state_dicts().items():
        torch.save(sd, tmp_path / name)
    assert script.main([str(clip), "--fast", str(tmp_path), "--size", "32", "--strip", str(tmp_path / "s.png")]) == 0
    row = capsys.readouterr().out.splitlines()[2].split(" | ")
    assert row[0] == "| clip.mp4" and row[1] == "8"
    latent_error, decoded_db = float(row[2]), float(row[3])
    assert latent_error > 0.05 and decoded_db < 30                    # new layers untrained: far from taef2
    with Image.open(tmp_path / "s.png") as image:
        assert image.size == (6 * 32, 3 * 32)                          # 6 frames; the frame and two round trips
    assert script.main([str(clip), "--fast", str(tmp_path / "missing")]) == 2
    assert "fast autoencoder folder not found" in capsys.readouterr().err


def test_rate_distortion_and_key_frame_quality_send_a_key_frame_as_a_picture(tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "src"
    for person in ("anna", "ben"):
        write_video(src / person / "take.mp4", moving_square(32, seed=len(person)), fps=10)
    build_video_dataset(src, tmp_path / "clips", size=16, frames=8, stride=8, test_fraction=0.5, progress=False)
    # 16x16 pixels in 4x4 patches: the key frame's 16 patches of 48 values as they are
    cfg = tiny_config(data={"kind": "video", "root": str(tmp_path / "clips"), "image_size": 16},
                      model={"content_reader": "key_frame", "content_queries": 16, "content_dim": 48,
                             "draw_change": True}, train={"steps": 1})
    train(cfg, tmp_path / "run", progress=False)
    rd = load_script("rate_distortion")
    assert rd.main(["--runs", str(tmp_path / "run"), "--data", str(tmp_path / "clips"), "--out", str(tmp_path / "rd"),
                    "--frames", "16", "--crf-steps", "1", "--codecs", "x265", "--content", "compact", "image",
                    "--content-bytes", "120"]) == 0
    report = json.loads((tmp_path / "rd" / "rd.json").read_text())
    series = [r["series"] for r in report["results"]]
    assert series == ["motionbits run", "motionbits run, key frame as AV1", "x265"]
    assert all(r["once_bytes"] <= 120 + 80 for r in report["results"][:2])   # the budget, the header and the end
    frame = tmp_path / "frame.png"
    Image.fromarray(moving_square(1, seed=9)[0]).save(frame)
    capsys.readouterr()
    quality = load_script("key_frame_quality")
    assert quality.main(["--checkpoint", str(tmp_path / "run"), str(frame), "--budgets", "100", "200"]) == 0
    rows = [r.split(" | ") for r in capsys.readouterr().out.splitlines()[2:]]
    assert [r[0] for r in rows] == ["| float16", "| compact, 100", "| AV1 picture, 100", "| compact, 200",
                                    "| AV1 picture, 200"]
    assert rows[0][1] == str(16 * 48 * 2) and all(int(r[1]) <= 200 for r in rows[1:])
    assert float(rows[0][2].rstrip(" |")) > 40                 # pixels as latents: float16 loses nothing visible
    # a model whose content is not the key frame's patches has no key frame to read back
    other = tiny_config(data={"kind": "video", "root": str(tmp_path / "clips"), "image_size": 16}, train={"steps": 1})
    train(other, tmp_path / "other", progress=False)
    assert quality.main(["--checkpoint", str(tmp_path / "other"), str(frame)]) == 2
    assert "model.draw_change" in capsys.readouterr().err
