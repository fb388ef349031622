"""What the app's tabs compute (without the browser): the Bitrate tab's file is the one `motionbits
encode` writes and its per-frame bits add up to the motion stream; Generate passes the page's
choices to the model; the Model tab finds the demo's evaluation; every handler shares one queue
slot; `motionbits app` refuses a bad checkpoint in one line."""
from __future__ import annotations

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

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")


@pytest.fixture(scope="module")
def session(checkpoint, prior):
    s = AppSession(checkpoint, prior, device="cpu")
    yield s
    s.close()


def frames_of(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


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
    assert r.bits.sum() <= 8 * r.sizes["motion"] <= r.bits.sum() + 64     # the stream: the frames' bits + last words
    assert r.motion_kbps == pytest.approx(8 * r.sizes["motion"] * 8 / 16 / 1000)
    assert frames_of(r.video).shape == (16, 64, 2 * 64 + 2, 3)          # original | decoded
    assert Image.open(r.plot).size == (720, 260)


def test_generate_passes_the_page_s_choices(session, tmp_path, monkeypatch):
    calls = []
    real = session.pipe.generate
    monkeypatch.setattr(session.pipe, "generate", lambda *a, **k: calls.append(k) or real(*a, **k))
    content = check_upload(session.examples[0], "content")
    video = work.generate(session, content, None, 4, 0.5, 12, 2, 7, tmp_path)
    assert frames_of(video).shape == (12, 64, 2 * 64 + 2, 3)            # content | generated
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
    assert "No evaluation" in model_card.evaluation(session)[0]
    (tmp_path / "sprites-cpu").mkdir()                                   # the demo's layout: eval beside the run folder
    (tmp_path / "eval.md").write_text("| motion kept | 86.4 % |")
    (tmp_path / "eval.json").write_text('{"motion_accuracy": 0.864}')
    monkeypatch.setattr(session.pipe, "source", str(tmp_path / "sprites-cpu" / "last.pt"))
    shown, figures = model_card.evaluation(session)
    assert "86.4 %" in shown and figures == {"motion_accuracy": 0.864}
    assert model_card.config(session)["model"]["groups"] == 4


def test_the_page_runs_one_request_at_a_time_and_has_generate_only_with_a_prior(session, monkeypatch):
    import gradio as gr

    from motionbits.app.page import build_page

    page = build_page(session)
    handlers = [f for f in page.fns.values() if f.name.startswith("on_")]
    assert sorted(f.name for f in handlers) == ["on_bitrate", "on_generate", "on_transfer"]
    assert {(f.concurrency_id, f.concurrency_limit) for f in handlers} == {("model", 1)}
    monkeypatch.setattr(session, "prior", None)
    tabs = [b.label for b in build_page(session).blocks.values() if isinstance(b, gr.Tab)]
    assert tabs == ["Transfer", "Bitrate", "Model"]


def test_app_command_refuses_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    assert main(["app", "--checkpoint", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing: no such file" in err
