"""--fast-autoencoder: a file encoded through it decodes through taef2 and back, the model unchanged;
the app runs through it too and says so on its Model tab."""
import torch

from motionbits.api import MotionBits
from motionbits.app import model_card
from motionbits.app.session import AppSession
from motionbits.cli import main
from motionbits.codec import decode_file, encode_clip, read_file
from motionbits.codec.format import pack
from motionbits.data.video import build_video_dataset
from motionbits.models.fast_autoencoder import FastTAEF2
from motionbits.models.tokenizer import build_tokenizer
from motionbits.training.bcd import train
from tests.helpers import moving_square_video, tiny_config, write_video


def test_fast_autoencoder_codes_for_the_same_model_and_is_refused_for_pixels(tmp_path, capsys, run):
    src = tmp_path / "src"
    for i in range(2):
        write_video(src / f"person{i}" / "take.mp4", moving_square_video(16, 32, seed=i))
    build_video_dataset(src, tmp_path / "clips", size=32, frames=4, stride=4, test_fraction=0.5, progress=False)
    cfg = tiny_config(data={"kind": "video", "root": str(tmp_path / "clips"), "frames": 4, "image_size": 32},
                      model={"tokenizer": "taef2", "patch_size": 2}, train={"steps": 1})
    train(cfg, tmp_path / "run", progress=False)
    fast_folder = tmp_path / "fast"
    fast_folder.mkdir()
    fast_weights = FastTAEF2(build_tokenizer("taef2"))
    with torch.no_grad():               # unlike taef2's, so that frames through it differ
        for p in fast_weights.parameters():
            p.add_(0.05 * torch.randn_like(p))
    for name, sd in fast_weights.state_dicts().items():
        torch.save(sd, fast_folder / name)

    plain = MotionBits.from_checkpoint(tmp_path / "run")
    fast = MotionBits.from_checkpoint(tmp_path / "run").use_fast_autoencoder(fast_folder)
    assert isinstance(fast.tokenizer, FastTAEF2) and fast.fingerprint() == plain.fingerprint()
    clip = torch.from_numpy(moving_square_video(8, 32, seed=5))
    back = read_file(pack(encode_clip(fast, clip, fps=8, content="float16")), "clip.mbits")
    content, codes = decode_file(back, plain)                               # the taef2 end reads it
    assert torch.equal(codes[0], fast.encode_motion(clip)[0])
    assert not torch.equal(fast.to_latents(clip), plain.to_latents(clip))   # the fast encoder made the latents
    assert not torch.equal(fast.render(content, codes), plain.render(content, codes))

    # from the command line: encode through it, decode either way
    video = write_video(tmp_path / "clip.mp4", clip.numpy())
    mbits = tmp_path / "clip.mbits"
    assert main(["encode", "--checkpoint", str(tmp_path / "run"), str(video), "-o", str(mbits),
                 "--fast-autoencoder", str(fast_folder)]) == 0
    for extra in ([], ["--fast-autoencoder", str(fast_folder)]):
        out = tmp_path / f"decoded{len(extra)}.mp4"
        assert main(["decode", str(mbits), "-o", str(out), "--checkpoint", str(tmp_path / "run"), *extra]) == 0
        assert out.stat().st_size > 0
    session = AppSession(tmp_path / "run", device="cpu", fast_autoencoder=fast_folder)
    try:
        assert isinstance(session.pipe.tokenizer, FastTAEF2)
        assert f"through the fast autoencoder `{tmp_path.name}/fast`" in model_card.summary(session)
    finally:
        session.close()
    capsys.readouterr()
    # a model in another latent space (pixels) refuses it in one line
    assert main(["encode", "--checkpoint", str(run), str(video), "-o", str(tmp_path / "x.mbits"),
                 "--fast-autoencoder", str(fast_folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "works in taef2's latent space, and this model's tokenizer is pixels" in err
    assert main(["app", "--checkpoint", str(run), "--fast-autoencoder", str(fast_folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "works in taef2's latent space, and this model's tokenizer is pixels" in err
