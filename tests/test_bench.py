"""The bench command runs on the CPU and reports consistent numbers (not their size: no timing bars in tests)."""
import json

import pytest

import torch

import yaml

from motionbits.bench import format_report, run_bench
from tests.helpers import tiny_config


def test_bench_tiny_config(tmp_path):
    config = tmp_path / "tiny-bench.yaml"
    config.write_text(yaml.safe_dump({
        "name": "tiny-bench",
        "data": {"kind": "video", "frames": 4, "image_size": 16},
        "model": {"encoder_width": 32, "encoder_depth": 1, "encoder_heads": 2, "content_queries": 2,
                  "content_dim": 16, "groups": 2, "codebook_size": 4, "group_dim": 4, "patch_size": 4,
                  "denoiser_width": 32, "denoiser_depth": 1, "denoiser_heads": 2,
                  "content_reader": "patch_pool"},   # the demo's reader: its codec FLOPs are counted too
        "train": {"batch_size": 4, "target_bits": 2.0, "amp": "off", "content_from_video": 0.5},
    }))
    lips = tmp_path / "tiny-lips.yaml"       # a model whose last group reads lip points (model.lip_groups)
    lips.write_text(yaml.safe_dump({"base": str(config), "name": "tiny-lips", "model": {"lip_groups": 1}}))
    out = tmp_path / "bench.json"
    report = run_bench([str(config), str(lips)], "cpu", steps_list=[1, 2], repeats=1, sample_clips=2, out=str(out))
    assert report["training"][1]["config"] == "tiny-lips" and report["training"][1]["gflop_per_step"] > 0
    assert all(row["frames_per_s"] > 0 for row in report["codec"]["tiny-lips"])   # dlib reads each encoded frame
    train = report["training"][0]
    assert train["gflop_per_step"] > 0 and train["clips_per_s"] > 0
    assert abs(train["frames_per_s"] - 4 * train["clips_per_s"]) < 1e-6 * train["frames_per_s"]
    # fp32 on a CPU: MFU against the measured matmul rate, the same quantity recomputed
    assert train["peak_tflops"] > 0 and abs(train["mfu"] - train["achieved_tflops"] / train["peak_tflops"]) < 1e-9
    calls = {row["what"]: row.get("network_calls") for row in report["sampling"]["tiny-bench"]}
    assert calls["transfer, heun 2 steps"] == 3 and calls["transfer, euler 2 steps"] == 2
    assert json.loads(out.read_text())["device"].startswith("CPU")
    assert "| tiny-bench |" in format_report(report)
    codec = {row["what"].split(" (")[0]: row for row in report["codec"]["tiny-bench"]}
    assert set(codec) == {"stream encode", "stream decode to RGB"}
    assert all(row["frames_per_s"] > 0 and row["batch"] == 1 and row["look_ahead_frames"] == 1 for row in codec.values())
    frames = codec["stream encode"]["frames"]
    assert frames > 0 and codec["stream encode"]["clip"] is None
    assert f"codec (tiny-bench, batch 1, 16x16, look-ahead 1 frames, {frames} random frames)" in format_report(report)
    assert "| stream encode (a frame at a time, adaptive tables) | pixels |" in format_report(report)
    # the frame rate the FLOPs allow at the measured fp32 peak: what separates code from hardware
    for row in codec.values():
        assert row["gflop_per_frame"] > 0
        assert abs(row["frames_per_s_at_peak"] * row["gflop_per_frame"] / 1e3 - row["peak_tflops"]) < 1e-9 * row["peak_tflops"]


def test_bench_codec_times_the_first_window_apart_from_the_frames_after_it(monkeypatch):
    """A stream's first window codes (or renders) the content once: its seconds are reported apart,
    and the call's frame rate is the steady one of the frames after it."""
    from motionbits import bench

    def fake_times(steps, device):                  # the first window 0.5 s a step, every later step 0.02 s
        for step in steps:
            step()
        return [0.5] * 2 + [0.02] * (len(steps) - 2)

    monkeypatch.setattr(bench, "_each_timed", fake_times)
    cfg = tiny_config(data={"kind": "video", "frames": 4})            # a window of 2 frames
    rows = bench.bench_codec(cfg, torch.device("cpu"), repeats=2, windows=3)
    # encode: 6 frames fed, then finish(); decode: 7 packets fed (6 frames' and the end's), then finish()
    for row, later_steps in zip(rows, (5, 6)):
        assert row["frames"] == 6 and row["start_s"] == pytest.approx(1.0)
        assert row["frames_per_s"] == pytest.approx(4 / (later_steps * 0.02))       # the 4 frames after it
        assert row["frames_per_s_overall"] == pytest.approx(6 / (1.0 + later_steps * 0.02))


def test_bench_codec_times_a_real_clip(tmp_path, monkeypatch):
    """--codec-clip: the codec is timed on the clip's frames, as many whole windows as it has (up to
    three), and the table says whose frames; a clip that cannot be read is refused before any work."""
    import numpy as np
    import pytest
    from PIL import Image

    from motionbits.bench import bench_codec
    from motionbits.config import load_config
    from motionbits.errors import MotionbitsError

    config = tmp_path / "tiny-codec.yaml"
    config.write_text(yaml.safe_dump({
        "name": "tiny-codec", "data": {"kind": "video", "frames": 4, "image_size": 16},
        "model": {"encoder_width": 32, "encoder_depth": 1, "encoder_heads": 2, "content_queries": 2, "content_dim": 16,
                  "groups": 2, "codebook_size": 4, "group_dim": 4, "patch_size": 4, "denoiser_width": 32,
                  "denoiser_depth": 1, "denoiser_heads": 2},
        "train": {"batch_size": 2, "target_bits": 2.0, "amp": "off", "content_from_video": 0.5}}))
    frames = [Image.fromarray(np.full((16, 16, 3), 20 * i, np.uint8)) for i in range(5)]   # 5 frames: two whole windows of 2
    gif = tmp_path / "clip.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    rows = bench_codec(load_config(str(config)), torch.device("cpu"), repeats=1, clip=str(gif))
    assert [(row["frames"], row["clip"]) for row in rows] == [(4, "clip.gif")] * 2
    assert "4 frames of clip.gif" in format_report({"device": "CPU", "torch": "", "training": [], "sampling": {}, "loader": [],
                                                    "codec": {"tiny-codec": rows}})
    with pytest.raises(MotionbitsError, match="nothing.gif"):
        run_bench([str(config)], "cpu", steps_list=[1], repeats=1, codec_clip=str(tmp_path / "nothing.gif"))

    def no_dlib(*args, **kwargs):
        raise MotionbitsError("the face tools need the faces extra")
    # a lip model's codec on a machine without dlib (a lent GPU): the other tables are kept, the reason said
    monkeypatch.setattr("motionbits.bench.bench_codec", no_dlib)
    report = run_bench([str(config)], "cpu", steps_list=[1], repeats=1, sample_clips=1)
    assert report["training"] and report["codec"] == {}
    assert report["errors"] == ["tiny-codec codec: the face tools need the faces extra"]


def test_bench_codec_times_a_taef2_model_through_the_fast_autoencoder_too():
    """The fast autoencoder's rows: the same stream through its layers, at under a third of taef2's FLOPs."""
    from motionbits import bench

    cfg = tiny_config(data={"kind": "video", "frames": 4, "image_size": 32}, model={"tokenizer": "taef2", "patch_size": 2})
    taef2 = bench.bench_codec(cfg, torch.device("cpu"), repeats=1, windows=2)
    fast = bench.bench_codec(cfg, torch.device("cpu"), repeats=1, windows=2, fast_autoencoder=True)
    assert [r["tokenizer"] for r in taef2 + fast] == ["taef2", "taef2", "the fast autoencoder", "the fast autoencoder"]
    for slow_row, fast_row in zip(taef2, fast):
        assert fast_row["what"] == slow_row["what"] and fast_row["frames_per_s"] > 0
        assert fast_row["gflop_per_frame"] < slow_row["gflop_per_frame"] / 3
