"""What the app's tabs compute (without the browser): the Bitrate tab's file is the one `motionbits
encode` writes, its per-frame bits add up to the motion stream and the table says what the plot
shows; a transfer plays at the driver's rate for as long as the driver, with the result alone and
the side-by-side, and notes what was done to the inputs; Generate passes the page's choices to the
model; the Model tab finds the demo's evaluation and the run's prior and shows no server path;
every model handler shares one queue slot; `motionbits app` refuses a bad checkpoint in one line."""
from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from motionbits.app import model_card, work
from motionbits.app.inputs import check_upload
from motionbits.app.session import AppSession
from motionbits.cli import main
from motionbits.codec import read_file
from motionbits.errors import MotionbitsError
from tests.helpers import moving_square_video, write_video

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")


@pytest.fixture(scope="module")
def session(checkpoint, prior):
    s = AppSession(checkpoint, prior, device="cpu")
    yield s
    s.close()


def frames_of(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def rate_of(path) -> float:
    with av.open(str(path)) as container:
        return float(container.streams.video[0].average_rate)


def test_bitrate_gives_encode_s_file_and_bits_that_add_up(session, checkpoint, prior, tmp_path):
    clip = session.examples[1]
    r = work.bitrate(session, check_upload(clip, "clip"), tmp_path)
    assert r.mbits.stat().st_size == r.sizes["total"] and r.frames == 16 and r.fps == 8
    assert r.coded_under == "the motion prior"
    cli = tmp_path / "cli.mbits"
    assert main(["encode", str(clip), "--checkpoint", str(checkpoint), "--prior", str(prior), "--device", "cpu",
                 "-o", str(cli)]) == 0
    ours, theirs = read_file(r.mbits.read_bytes(), "app"), read_file(cli.read_bytes(), "cli")
    assert ours.motion == theirs.motion and np.array_equal(ours.content, theirs.content)
    assert r.bits.shape == (16,) and (r.bits > 0).all()
    packets = len(ours.motion)                                            # 16 frames in windows of 4
    assert packets == 4
    assert r.bits.sum() <= 8 * r.sizes["motion"] <= r.bits.sum() + packets * (16 + 10)   # + length, CRC-8, word end
    assert r.motion_kbps == pytest.approx(8 * r.sizes["motion"] * 8 / 16 / 1000)
    assert frames_of(r.video).shape == (16, 256, 4 * (2 * 64 + 2), 3)   # original | decoded, enlarged 4x
    assert Image.open(r.plot).size == (720, 260)


def test_the_bitrate_table_says_what_the_plot_shows(session, tmp_path):
    from motionbits.app.page import _bitrate_table

    r = work.bitrate(session, check_upload(session.examples[0], "clip"), tmp_path)
    table = _bitrate_table(r)
    codes, in_file = r.bits.mean(), 8 * r.sizes["motion"] / r.frames
    assert r.coder_end_bits > 0 and codes + r.coder_end_bits / r.frames == pytest.approx(in_file)
    assert f"{in_file:.1f} bits a frame" in table and f"the codes {codes:.1f} bits a frame" in table
    assert f"coder's ends {r.coder_end_bits:.0f} bits (each motion packet" in table
    assert f"{r.coder_end_bits / r.frames:.1f} a frame" in table


def test_transfer_plays_at_the_driver_s_rate_for_as_long_as_the_driver(session, tmp_path):
    driver = check_upload(write_video(tmp_path / "walk.mp4", moving_square_video(20, 64), fps=25), "driving video")
    content = check_upload(session.examples[0], "content")
    r = work.transfer(session, content, driver, 1, 0, tmp_path)
    assert r.fps == 25 and r.notes == []
    for video, width in ((r.side_by_side, 4 * (3 * 64 + 2 * 2)), (r.result, 256)):   # both to download, 4x
        assert frames_of(video).shape == (20, 256, width, 3) and rate_of(video) == 25   # 0.8 s, as the driver


def test_transfer_notes_what_it_did_to_the_inputs(session, tmp_path, monkeypatch):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (128, 72), "white").save(wide)
    still = check_upload(wide, "driving video")
    content = check_upload(session.examples[0], "content")
    notes = work.transfer(session, content, still, 1, 0, tmp_path).notes
    assert notes == ["the driving video is 128x72, not square: only its centre 72x72 is used "
                     "(56 pixels cut off left and right)",
                     "the driving video: 72 pixels a side reduced to the model's 64",
                     f"the driving video is an image: its first frame is held still for {session.pipe.model.window} "
                     "frames, so it does not move"]
    monkeypatch.setattr(session.pipe.cfg.data, "fps", 10.0)           # a model trained on 10 fps video
    driver = check_upload(write_video(tmp_path / "fast.mp4", moving_square_video(25, 64), fps=25), "driving video")
    r = work.transfer(session, content, driver, 1, 0, tmp_path)
    assert r.notes == ["the content: resampled from 8 to 10 fps, the model's rate (16 frames became 20)",
                       "the driving video: resampled from 25 to 10 fps, the model's rate (25 frames became 10)"]
    assert r.fps == 10 and len(frames_of(r.result)) == 10


def test_a_preview_is_what_the_model_sees_with_sharp_pixels(session, tmp_path):
    p = work.preview(session, check_upload(session.examples[0], "content"), "the content", tmp_path)
    with Image.open(p.gif) as gif:
        assert gif.n_frames == 16 and gif.size == (256, 256)
        assert abs(gif.info["duration"] - 125) <= 5                     # 8 fps, in GIF's hundredths of a second
        first = np.asarray(gif.convert("RGB"))
    assert p.notes == []
    blocks = first.reshape(64, 4, 64, 4, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()                       # each pixel a 4x4 block: nearest


def test_generate_passes_the_page_s_choices(session, tmp_path, monkeypatch):
    calls = []
    real = session.pipe.generate
    monkeypatch.setattr(session.pipe, "generate", lambda *a, **k: calls.append(k) or real(*a, **k))
    content = check_upload(session.examples[0], "content")
    r = work.generate(session, content, None, 4, 0.5, 12, 2, 7, tmp_path)
    assert frames_of(r.side_by_side).shape == (12, 256, 4 * (2 * 64 + 2), 3)   # content | generated
    assert frames_of(r.result).shape == (12, 256, 256, 3)
    assert (calls[0]["label"], calls[0]["temperature"], calls[0]["seed"], calls[0]["steps"]) == (4, 0.5, 7, 2)
    assert calls[0]["prompt_frames"] is None
    prompt = check_upload(session.examples[2], "clip to continue")
    with pytest.raises(MotionbitsError, match="has 16 frames: ask for a length above that"):
        work.generate(session, content, prompt, None, 1.0, 16, 2, 0, tmp_path)
    work.generate(session, content, prompt, None, 1.0, 20, 2, 0, tmp_path)
    assert calls[-1]["prompt_frames"].shape == (16, 64, 64, 3) and calls[-1]["label"] is None


def test_model_tab_describes_the_model_and_finds_the_demo_s_evaluation(session, tmp_path, monkeypatch):
    text = model_card.summary(session)
    assert "4 codes a frame from 8 entries each" in text and "ceiling 12" in text and "9 motion classes" in text
    assert "`run/last.pt`" in text and "`prior/prior.pt`" in text and "/tmp" not in text   # names, not paths
    assert "No evaluation" in model_card.evaluation(session)[0]
    (tmp_path / "sprites-cpu").mkdir()                                   # the demo's layout: eval beside the run folder
    (tmp_path / "eval.md").write_text("| motion kept | 86.4 % |")
    (tmp_path / "eval.json").write_text('{"motion_accuracy": 0.864}')
    monkeypatch.setattr(session.pipe, "source", str(tmp_path / "sprites-cpu" / "last.pt"))
    shown, figures = model_card.evaluation(session)
    assert "86.4 %" in shown and figures == {"motion_accuracy": 0.864} and str(tmp_path) not in shown
    shown_config = model_card.config(session)
    assert shown_config["model"]["groups"] == 4
    root = Path(session.pipe.cfg.data.root)                             # absolute: the test's data folder
    assert root.is_absolute() and shown_config["data"]["root"] == f"{root.parent.name}/{root.name}"


def test_the_run_s_own_prior_is_found_and_without_one_generate_says_how(checkpoint, prior, tmp_path):
    import gradio as gr

    from motionbits.app.page import build_page

    run = tmp_path / "sprites-cpu"
    (run / "prior").mkdir(parents=True)
    shutil.copy(checkpoint, run / "last.pt")
    alone = AppSession(run, device="cpu")
    try:
        assert alone.prior is None
        page = build_page(alone)
        tabs = [b.label for b in page.blocks.values() if isinstance(b, gr.Tab)]
        assert tabs == ["Transfer", "Bitrate", "Generate", "Model"]
        says = next(b.value for b in page.blocks.values() if getattr(b, "elem_id", None) == "generate-missing")
        assert "motionbits train --config my-prior.yaml --out sprites-cpu/prior" in says and str(tmp_path) not in says
        (tmp_path / "prior.yaml").write_text("base: prior-sprites\n")      # the demo writes the run's prior config
        says = model_card.how_to_get_a_prior(alone)
        assert f"motionbits train --config {tmp_path.name}/prior.yaml --out {tmp_path.name}/sprites-cpu/prior" in says
    finally:
        alone.close()
    shutil.copy(prior, run / "prior" / "prior.pt")                      # where the demo trains it
    found = AppSession(run, device="cpu")
    try:
        assert found.prior is not None and found.prior_found and found.prior_name == "prior/prior.pt"
        assert "the run's own" in model_card.summary(found)
    finally:
        found.close()


def test_the_page_runs_one_request_at_a_time_and_has_generate_only_with_a_prior(session, monkeypatch):
    import gradio as gr

    from motionbits.app.page import build_page

    page = build_page(session)
    handlers = [f for f in page.fns.values() if f.name.startswith("on_")]
    assert sorted(f.name for f in handlers) == ["on_bitrate", "on_generate", "on_transfer"]
    assert {(f.concurrency_id, f.concurrency_limit) for f in handlers} == {("model", 1)}
    previews = [f for f in page.fns.values() if f.name.startswith(("preview_", "pick_"))]
    assert len(previews) == 5 + 3 and {f.concurrency_id for f in previews} == {"preview"}   # 5 inputs, 3 galleries
    monkeypatch.setattr(session, "prior", None)
    tabs = [b.label for b in build_page(session).blocks.values() if isinstance(b, gr.Tab)]
    assert tabs == ["Transfer", "Bitrate", "Generate", "Model"]


def test_app_command_refuses_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    assert main(["app", "--checkpoint", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing: no such file" in err
