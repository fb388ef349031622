"""The committed scripts run: the rate-distortion comparison on a tiny video dataset."""
import importlib.util
import json
from pathlib import Path

from motionbits.data.video import build_video_dataset
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
                    "--frames", "16", "--crf-steps", "2"]) == 0
    report = json.loads((tmp_path / "rd" / "rd.json").read_text())
    methods = [r["method"] for r in report["results"]]
    assert methods == ["motionbits"] + ["x264"] * 2 + ["x265"] * 2 + ["av1"] * 2
    assert report["meta"]["sequences"] == 2 and report["meta"]["fps"] == 10
    ours = report["results"][0]
    # 16 frames, 4 groups x 8 entries: the motion stream is at most a few words; the content (2 x 16
    # float16) and the header are the first frame's cost
    assert ours["kbps_after_first"] < ours["kbps"] and ours["first_bytes"] > 2 * 2 * 16
    x264 = [r for r in report["results"] if r["method"] == "x264"]
    assert x264[0]["kbps"] < x264[1]["kbps"] and x264[0]["psnr_db"] < x264[1]["psnr_db"]   # CRF 51, then 45
    assert (tmp_path / "rd" / "rd.png").stat().st_size > 0 and "| x265 | CRF 51 |" in (tmp_path / "rd" / "rd.md").read_text()
    test_person = json.loads((tmp_path / "clips" / "manifest.json").read_text())["split_identities"]["test"][0]
    assert rd.main(["--runs", str(tmp_path / "run"), "--data", str(tmp_path / "clips"), "--out", str(tmp_path / "rd1"),
                    "--frames", "16", "--crf-steps", "1", "--only", test_person]) == 0
    assert json.loads((tmp_path / "rd1" / "rd.json").read_text())["meta"]["sequences"] == 1   # that person's video
