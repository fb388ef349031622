"""Where a person model's streamed encode spends its time, on real face frames (carphone) and on
random ones: cProfile of StreamEncoder.feed over 24 frames, the top functions by cumulative time (random
weights, the shipped taef2, as `motionbits bench` has them).

    python results/cpu-1.1-codec/encode_parts.py FRAMES_FOLDER   # 24 or more 128x128 face frames
"""
import cProfile, pstats, sys, time
from pathlib import Path
import numpy as np, torch
from PIL import Image
from motionbits.api import MotionBits
from motionbits.bench import CALL_FPS
from motionbits.codec.stream import StreamEncoder
from motionbits.config import load_config
from motionbits.models.bcd import BCDModel
from motionbits.models.tokenizer import make_tokenizer

torch.set_num_threads(2)
frames = np.stack([np.asarray(Image.open(p)) for p in sorted(Path(sys.argv[1]).glob("*.png"))[:24]])
for name in ("talking-head-person", "talking-head-cpu"):
    cfg = load_config(name)
    tok = make_tokenizer(cfg).eval()
    cfg.diffusion.sigma_data = 0.5
    model = BCDModel(cfg, tok.latent_channels, cfg.data.image_size // tok.downsample).eval().requires_grad_(False)
    pipe = MotionBits(model, tok, cfg, torch.device("cpu"))
    for kind, x in (("face", frames), ("random", np.random.default_rng(0).integers(0, 256, frames.shape, dtype=np.uint8))):
        enc = StreamEncoder(pipe, fps=CALL_FPS); [enc.feed(torch.from_numpy(f[None])) for f in x[:4]]   # warm-up
        enc = StreamEncoder(pipe, fps=CALL_FPS)
        prof = cProfile.Profile(); t = time.perf_counter(); prof.enable()
        for f in x:
            enc.feed(torch.from_numpy(f[None]))
        prof.disable(); dt = (time.perf_counter() - t) / len(x)
        print(f"\n== {name}, {kind} frames: {1000 * dt:.1f} ms a frame, {1 / dt:.1f} frames/s")
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
