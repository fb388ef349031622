"""taef2 channels-last (now) against the default layout (before), alternating in one process:
the tokenizer alone on one 128x128 frame, and the stream codec of `motionbits bench`.

    python results/cpu-1.1-codec/ab_channels_last.py
"""
import time

import torch

import motionbits.models.tokenizer as tokenizer
from motionbits.bench import bench_codec
from motionbits.config import load_config
from motionbits.runtime import flush_denormals

NOW = (tokenizer.TAEF2.freeze, tokenizer.TAEF2.encode_raw, tokenizer.TAEF2.decode_raw)


def default_layout():
    tokenizer.TAEF2.freeze = lambda self: tokenizer.Tokenizer.freeze(self)
    tokenizer.TAEF2.encode_raw = lambda self, x: self.encoder(x.add(1).mul(0.5))
    tokenizer.TAEF2.decode_raw = lambda self, z: self.decoder(z).mul(2).sub(1)


def channels_last():
    tokenizer.TAEF2.freeze, tokenizer.TAEF2.encode_raw, tokenizer.TAEF2.decode_raw = NOW


def ms(fn, repeats=10):
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1e3 * (time.perf_counter() - start) / repeats


flush_denormals()
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
print("| round | layout | taef2 encode ms | taef2 decode ms | stream encode frames/s | stream decode frames/s |")
print("|---|---|---|---|---|---|")
x = torch.rand(1, 3, 128, 128) * 2 - 1
for round_ in range(3):
    for name, setup in (("default", default_layout), ("channels-last", channels_last)):
        setup()
        tok = tokenizer.build_tokenizer("taef2")
        with torch.no_grad():
            z = tok.encode(x)
            enc, dec = ms(lambda: tok.encode(x)), ms(lambda: tok.decode(z))
        rows = bench_codec(load_config("talking-head-cpu"), torch.device("cpu"), 2)
        print(f"| {round_} | {name} | {enc:.1f} | {dec:.1f} | {rows[0]['frames_per_s']:.1f} | {rows[1]['frames_per_s']:.1f} |",
              flush=True)
