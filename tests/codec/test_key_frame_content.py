"""A key-frame model's content sent as its key frame's AV1 picture (codec/key_frame.py, format 6):
both ends read the same values from the decoded picture, a budget buys a closer key frame, and what
cannot be coded or decoded that way is refused in one line."""
import numpy as np
import pytest
import torch

from motionbits.api import MotionBits
from motionbits.cli import main
from motionbits.codec import content_values, decode_file, encode_clip, read_file
from motionbits.codec.content import encode_content
from motionbits.codec.format import pack
from motionbits.codec.key_frame import decode_key_frame, encode_key_frame
from motionbits.codec.stream import StreamEncoder
from motionbits.errors import MotionbitsError
from motionbits.training.bcd import train
from tests.codec.test_compact_content import _prior_for, _with_content
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def change_run(sprites_root, tmp_path_factory):
    """A tiny Sprites model that draws each frame's change from its key frame: 64x64 pixels in 16
    patches of 16x16, so its content is the key frame's 16 patches of 3 x 16 x 16 values."""
    cfg = tiny_config(data={"root": str(sprites_root), "image_size": 64},
                      model={"patch_size": 16, "content_reader": "key_frame", "content_queries": 16,
                             "content_dim": 768, "draw_change": True}, train={"steps": 2})
    out = tmp_path_factory.mktemp("key-frame") / "run"
    train(cfg, out, progress=False)
    return out


@pytest.fixture(scope="module")
def pipe(change_run):
    return MotionBits.from_checkpoint(change_run)


@pytest.fixture(scope="module")
def embedding_run(sprites_root, tmp_path_factory):
    """A key-frame model whose reader embeds the patches (talking-head-person's kind): 16 tokens of 16."""
    cfg = tiny_config(data={"root": str(sprites_root), "image_size": 64},
                      model={"patch_size": 16, "content_reader": "key_frame", "content_queries": 16}, train={"steps": 2})
    out = tmp_path_factory.mktemp("key-frame-embedded") / "run"
    train(cfg, out, progress=False)
    return out


def _relative_error(values, exact) -> float:
    return float(np.linalg.norm(values - exact) / np.linalg.norm(exact))


def test_both_ends_read_the_same_content_from_the_key_frame_s_picture(pipe, clip):
    prior = _prior_for(pipe)                            # tables that depend on the content
    encoder = StreamEncoder(pipe, prior, 8, content="image", content_bytes=600)
    packets = [encoder.feed(frame[None]) for frame in clip] + [encoder.finish()]
    data = b"".join(packets)
    back = read_file(data, "x.mbits")
    assert back.header.content_coding == "image" and data[4] == 6 and len(back.content) <= 600
    assert decode_key_frame(back.content, 64).shape == (64, 64, 3)
    content, codes = decode_file(back, pipe, prior, where="x.mbits")
    assert torch.equal(content, encoder.content_values)                 # what the encoder coded the motion under
    assert torch.equal(content[0], torch.from_numpy(content_values(back, pipe=pipe)))
    assert torch.equal(codes[0], pipe.encode_motion(clip)[0])
    exact = pipe.encode_content(clip)[0].numpy()                        # the key frame's own pixels
    assert _relative_error(content[0].numpy(), exact) < 0.1
    # a whole-clip encode (latents fed at once) sends the same picture
    assert pack(encode_clip(pipe, clip, prior, fps=8, content="image", content_bytes=600)) == data


def test_the_content_read_from_the_picture_is_the_same_at_any_thread_count(pipe, clip):
    f = encode_clip(pipe, clip, fps=8)                  # a draw_change model's default
    assert f.header.content_coding == "image"
    data = pack(f)
    threads, contents = torch.get_num_threads(), []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            contents.append(decode_file(read_file(data, "x.mbits"), pipe)[0])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(contents[0], contents[1])


def test_an_embedding_reader_reads_its_content_from_the_picture_at_both_ends(embedding_run, clip):
    pipe = MotionBits.from_checkpoint(embedding_run)
    prior = _prior_for(pipe)
    encoder = StreamEncoder(pipe, prior, 8)             # a key-frame model's default
    data = encoder.feed(clip) + encoder.finish()
    back = read_file(data, "x.mbits")
    assert back.header.content_coding == "image" and back.header.content_dim == 16
    content, codes = decode_file(back, pipe, prior, where="x.mbits")
    assert torch.equal(content, encoder.content_values) and torch.equal(codes[0], pipe.encode_motion(clip)[0])
    exact = pipe.encode_content(clip)[0].numpy()
    assert _relative_error(content[0].numpy(), exact) < 0.1


def test_a_larger_budget_buys_a_closer_key_frame_and_beats_the_compact_values(pipe, clip):
    frame = clip[0].numpy()
    exact = pipe.encode_content(clip)[0].numpy()
    errors = []
    for budget in (300, 600, 1200):
        section = encode_key_frame(frame, budget)
        assert len(section) <= budget
        picture = decode_key_frame(section, 64)
        errors.append(float(np.abs(picture.astype(float) - frame).mean()))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 3          # grey levels of 255
    # the same bytes as values: further from the key frame than its picture
    f = encode_clip(pipe, clip, fps=8, content="image", content_bytes=600)
    picture = content_values(f, pipe=pipe)
    _, values = encode_content(exact, 600)
    assert _relative_error(picture, exact) < _relative_error(values, exact)
    with pytest.raises(MotionbitsError, match=r"^content budget 20 bytes: the key frame takes \d+ bytes at AV1's coarsest"):
        encode_key_frame(frame, 20)


def test_latents_alone_cannot_send_the_key_frame_s_picture(pipe, clip):
    encoder = StreamEncoder(pipe, None, 8, content="image")
    with pytest.raises(MotionbitsError, match="sends the first frame as a picture: feed the encoder frames"):
        encoder.feed_latents(pipe.to_latents(clip[None]))


def test_a_model_without_a_key_frame_reader_refuses_image_content(run, sprites_root, tmp_path, capsys):
    code = main(["encode", f"sprites:{sprites_root}:test:2", "--checkpoint", str(run), "--device", "cpu",
                 "--content", "image", "-o", str(tmp_path / "clip.mbits")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--content image sends the key frame as a picture" in err
    assert not (tmp_path / "clip.mbits").exists()


def test_a_damaged_picture_and_impossible_flags_are_refused_in_one_line(pipe, clip):
    data = pack(encode_clip(pipe, clip, fps=8, content="image"))
    section = read_file(data, "x.mbits").content

    def error(blob: bytes) -> str:
        with pytest.raises(MotionbitsError) as err:
            decode_file(read_file(blob, "x.mbits"), pipe, where="x.mbits")
        assert "\n" not in str(err.value)
        return str(err.value)

    assert error(_with_content(data, b"\x12" + bytes(40))).startswith(
        "x.mbits: corrupt content section (its key frame")
    assert error(_with_content(data, section[:len(section) // 2])).startswith("x.mbits: corrupt content section (")
    small = encode_key_frame(clip[0, ::2, ::2].numpy().copy(), 600)                     # a 32x32 picture
    assert error(_with_content(data, small)) == ("x.mbits: corrupt content section (its key frame is 32x32, the "
                                                 "model's frames 64x64)")
    assert "unknown flags 0x0c" in error(_with_content(data, section, flags=0b1100))      # float16 and a picture
    assert error(_with_content(data, section, version=5)) == ("x.mbits: corrupt bitstream (unknown flags 0x0a)")
    # (adaptive tables and a picture: pictures came with v6)


def test_a_version_5_file_still_decodes(run, sprites_root):
    pipe = MotionBits.from_checkpoint(run)
    clip = torch.from_numpy(np.load(sprites_root / "test.npz")["frames"][1])
    data = pack(encode_clip(pipe, clip, fps=8))
    old = _with_content(data, read_file(data, "x.mbits").content, version=5)   # v5: v6 without pictures
    assert old != data and old[4] == 5
    for blob in (data, old):
        content, codes = decode_file(read_file(blob, "x.mbits"), pipe, where="x.mbits")
        assert torch.equal(codes[0], pipe.encode_motion(clip)[0])


def test_a_picture_coded_through_a_fast_autoencoder_decodes_through_taef2(tmp_path):
    from motionbits.data.video import build_video_dataset
    from motionbits.models.fast_autoencoder import FastTAEF2
    from motionbits.models.tokenizer import build_tokenizer
    from tests.helpers import moving_square_video, write_video

    for i in range(2):
        write_video(tmp_path / "src" / f"person{i}" / "take.mp4", moving_square_video(16, 32, seed=i))
    build_video_dataset(tmp_path / "src", tmp_path / "clips", size=32, frames=4, stride=4, test_fraction=0.5,
                        progress=False)
    # taef2 at 32x32: latents 32 x 4 x 4, 4 patches of 2 x 2, so the content is 4 x 128 values
    cfg = tiny_config(data={"kind": "video", "root": str(tmp_path / "clips"), "frames": 4, "image_size": 32},
                      model={"tokenizer": "taef2", "patch_size": 2, "content_reader": "key_frame",
                             "content_queries": 4, "content_dim": 128, "draw_change": True}, train={"steps": 1})
    train(cfg, tmp_path / "run", progress=False)
    fast = FastTAEF2(build_tokenizer("taef2"))
    with torch.no_grad():               # unlike taef2's, so that its latents differ
        for p in fast.parameters():
            p.add_(0.05 * torch.randn_like(p))
    (tmp_path / "fast").mkdir()
    for name, sd in fast.state_dicts().items():
        torch.save(sd, tmp_path / "fast" / name)
    plain = MotionBits.from_checkpoint(tmp_path / "run")
    through_fast = MotionBits.from_checkpoint(tmp_path / "run", fast_autoencoder=tmp_path / "fast")
    prior = _prior_for(plain)
    clip = torch.from_numpy(moving_square_video(8, 32, seed=5))
    encoder = StreamEncoder(through_fast, prior, 8, content="image")
    data = encoder.feed(clip) + encoder.finish()
    content, codes = decode_file(read_file(data, "x.mbits"), plain, prior, where="x.mbits")
    assert torch.equal(content, encoder.content_values) and torch.equal(codes[0], torch.from_numpy(encoder.codes))
