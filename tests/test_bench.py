"""The bench command runs on the CPU and reports consistent numbers (not their size: no timing bars in tests)."""
import json

import yaml

from motionbits.bench import format_report, run_bench


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
    assert "codec (tiny-bench, batch 1, 16x16, pixels, look-ahead 1 frames)" in format_report(report)
    # the frame rate the FLOPs allow at the measured fp32 peak: what separates code from hardware
    for row in codec.values():
        assert row["gflop_per_frame"] > 0
        assert abs(row["frames_per_s_at_peak"] * row["gflop_per_frame"] / 1e3 - row["peak_tflops"]) < 1e-9 * row["peak_tflops"]
