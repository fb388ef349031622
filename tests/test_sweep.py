import json

from PIL import Image

from motionbits.api import MotionBits
from motionbits.evaluation.sprites import step_study
from motionbits.sweep import run_sweep
from tests.helpers import tiny_config


def test_sweep_trains_and_evaluates_each_rate(sprites_root, tmp_path, one_thread):
    cfg = tiny_config(data={"root": str(sprites_root), "image_size": 64}, model={"patch_size": 16},
                      train={"steps": 2, "batch_size": 4}, eval={"judge_steps": 3, "clips": 6, "batch_size": 6})
    rows = run_sweep(cfg, [1, 4], tmp_path / "sweep", progress=False)
    assert [r["target_bits"] for r in rows] == [1, 4]
    for row in rows:   # each row is its run's own report, not a value from another rate or key
        report = json.loads((tmp_path / "sweep" / f"bits_{row['target_bits']:g}" / "eval.json").read_text())
        assert row["swap_motion"] == report["swap"]["motion"]
        assert row["swap_attributes"] == report["swap"]["attributes_mean"]
        assert row["measured_bits"] == report["rate"]["empirical_bits_per_frame"]
        assert row["coded_bits"] == report["rate"]["coded_bits_per_frame"]
        assert row["reconstruction_psnr_db"] == report["reconstruction"]["psnr_db"]
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text()) == rows
    table = (tmp_path / "sweep" / "sweep.md").read_text()
    assert "| 1 |" in table and "| 4 |" in table
    assert Image.open(tmp_path / "sweep" / "sweep.png").size[0] == 3 * 240    # PSNR, attributes, motion
    # one run folder per rate, each with its own config's target
    saved = json.loads((tmp_path / "sweep" / "bits_4" / "config.json").read_text())
    assert saved["train"]["target_bits"] == 4
    # the Sprites report includes the linear probes of the content
    report = json.loads((tmp_path / "sweep" / "bits_4" / "eval.json").read_text())
    assert set(report["content_probe"]) == {"body", "bottomwear", "topwear", "hair", "action", "direction"}
    # the step study on the same model: one row per count, same clips; no content probes per count
    pipe = MotionBits.from_checkpoint(tmp_path / "sweep" / "bits_4")
    steps = step_study(pipe, tmp_path / "steps", [1, 2], judge_path=tmp_path / "sweep" / "judge.safetensors",
                       sampler="heun", progress=False)
    assert [(r["steps"], r["network_calls"]) for r in steps] == [(1, 1), (2, 3)]
    assert "content_probe" not in json.loads((tmp_path / "steps" / "steps_2" / "eval.json").read_text())
    assert "| 2 | heun | 3 |" in (tmp_path / "steps" / "steps.md").read_text()
