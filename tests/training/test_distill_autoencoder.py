"""Distilling taef2 into the fast autoencoder: it learns taef2, resumes bit for bit, and says what it reached."""
import json

import pytest
import torch

from motionbits.cli import main
from motionbits.data.video import build_video_dataset
from motionbits.errors import MotionbitsError
from motionbits.models.fast_autoencoder import FastTAEF2
from motionbits.models.tokenizer import build_tokenizer
import motionbits.training.distill_autoencoder as distill
from tests.helpers import moving_square_video, write_video


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    for i, colour in enumerate([(220, 60, 40), (40, 200, 90), (60, 80, 230), (200, 200, 40)]):
        write_video(root / "src" / f"person{i}.mp4", moving_square_video(16, 32, colour, seed=i))
    build_video_dataset(root / "src", root / "data", size=32, frames=4, stride=4, test_fraction=0.25, progress=False)
    return root / "data"


def test_the_fast_pair_learns_taef2_and_resumes_bit_for_bit(dataset, tmp_path, monkeypatch):
    taef2 = build_tokenizer("taef2")
    frames = distill.frames_of_clips(dataset, "test", distill.TEST_FRAMES, 0)   # the frames the report measures
    before = distill.compare_with_taef2(FastTAEF2(taef2), taef2, frames)

    report = distill.distill_autoencoder(dataset, tmp_path / "whole", steps=40, batch=4, save_every=20, progress=False)
    after = report["test"]
    assert report["test_split"] and report["test_frames"] == len(frames)
    assert after["decode_psnr_vs_taef2_db"] > before["decode_psnr_vs_taef2_db"] + 3     # it learned taef2's pictures
    assert after["latent_error_relative"] < 0.75 * before["latent_error_relative"]      # and its latents
    assert json.loads((tmp_path / "whole" / distill.REPORT_FILE).read_text())["test"] == after

    # killed after its state at step 20 was saved: the run again goes on from there to the same weights
    real_save = distill.save_atomic

    def save_then_die(obj, path):
        real_save(obj, path)
        if obj.get("step") == 20:
            raise KeyboardInterrupt

    monkeypatch.setattr(distill, "save_atomic", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        distill.distill_autoencoder(dataset, tmp_path / "killed", steps=40, batch=4, save_every=20, progress=False)
    monkeypatch.setattr(distill, "save_atomic", real_save)
    resumed = distill.distill_autoencoder(dataset, tmp_path / "killed", steps=40, batch=4, save_every=20, progress=False)
    assert resumed["test"] == after
    a, b = FastTAEF2.from_folder(tmp_path / "whole"), FastTAEF2.from_folder(tmp_path / "killed")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

    with pytest.raises(MotionbitsError, match="a distillation of 40 steps on .* not 60"):
        distill.distill_autoencoder(dataset, tmp_path / "killed", steps=60, batch=4, progress=False)
    (tmp_path / "killed" / distill.STATE_FILE).write_bytes(b"not a state")
    with pytest.raises(MotionbitsError, match="distillation state .*distill_state.pt: unreadable"):
        distill.distill_autoencoder(dataset, tmp_path / "killed", steps=40, batch=4, progress=False)


def test_cli_distills_and_refuses_a_folder_that_is_not_a_dataset(dataset, tmp_path, capsys):
    assert main(["distill-autoencoder", str(dataset), str(tmp_path / "fast"), "--steps", "2", "--batch", "2",
                 "--frames-per-clip", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {tmp_path / 'fast'}: the fast autoencoder after 2 steps on 24 frames")   # 12 clips
    assert "test split" in out
    two = distill.frames_of_clips(dataset, "train", None, 0, per_clip=2)          # two different frames a clip
    assert len(two) == 24 and all(not torch.equal(two[i], two[i + 1]) for i in range(0, 24, 2))
    assert main(["distill-autoencoder", str(tmp_path / "nothing"), str(tmp_path / "fast2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing" in err
