"""`motionbits bench`: training and sampling speed of named configs, against the hardware peak.

Measures, per config, on random data of the config's shapes (so no dataset is needed):
- the training step (encoder + quantizer + denoiser, forward + backward + AdamW): clips/s, frames/s,
  peak memory, FLOPs per step counted by torch's FlopCounterMode (matmuls and attention, i.e. the
  analytic count of the model's dense work), achieved FLOP/s and, on a GPU, MFU against the peak
  bf16 rate of the device;
- motion transfer sampling: frames/s at several numbers of denoising steps, in latents; and, when
  the config's tokenizer weights are at hand (model.tokenizer_path, or --tokenizer-path), also
  through the tokenizer's decoder to RGB frames, which is what a user waits for;
- encoder-only motion extraction: frames/s;
- the in-memory clip loader: clips/s for random batches (uint8 -> float);
- the codec as a call runs it (codec/stream.py), randomly initialised weights and the config's real
  tokenizer (the shipped taef2, or pixels): `encode` fed one frame at a time (batch 1, adaptive
  tables) and `decode` fed the packets to RGB frames at the config's sampler and steps: frames/s
  after the first window against the 25 fps a call needs, the first window's seconds apart (the
  content is coded or rendered once, there), with the look-ahead in frames; on random frames, or
  on a real clip's (--codec-clip); for a taef2 config, again through the fast autoencoder's layers
  (models/fast_autoencoder.py).
"""
from __future__ import annotations

import copy
import resource
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from motionbits.atomic_files import write_json_atomic
from motionbits.config import Config, load_config
from motionbits.data.inputs import read_input_clip
from motionbits.errors import MotionbitsError
from motionbits.models.tokenizer import frames_to_float
from motionbits.diffusion import network_calls
from motionbits.lip_points import LIP_FEATURES
from motionbits.models.bcd import BCDModel, SameVideoClips
from motionbits.runtime import autocast, flush_denormals, keep_freed_memory, pick_device, use_bf16
from motionbits.training.loop import update_ema

# Dense bf16 peak (TFLOP/s, without sparsity) of devices people train on.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "RTX 4090": 165.0,
                    "A10": 125.0, "V100": 125.0}


def measured_cpu_peak_tflops(size: int = 2048, repeats: int = 5) -> float:
    """The fp32 rate (TFLOP/s) of a large square matmul on this CPU and thread count: the practical
    ceiling of the machine (CPUs publish no peak a process can read; a VM hides the clock)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    seconds = _timed(lambda: a @ b, torch.device("cpu"), repeats)
    return 2 * size ** 3 / seconds / 1e12


def device_peak_tflops(device: torch.device, bf16: bool = True) -> float | None:
    """The peak MFU is measured against: a GPU's dense bf16 datasheet figure; on a CPU running fp32,
    the measured matmul rate (bf16 on a CPU has no measured ceiling here: None)."""
    if device.type != "cuda":
        return None if bf16 else measured_cpu_peak_tflops()
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def _each_timed(steps: list, device: torch.device) -> list[float]:
    """Seconds each of `steps` (callables, run in order) took."""
    seconds = []
    for step in steps:
        start = time.perf_counter()
        step()
        _sync(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def bench_latent_shape(cfg: Config) -> tuple[int, int]:
    """(channels, size) of the latents the model sees: pixels, or taef2-like 32 x H/8 (no weights needed)."""
    if cfg.model.tokenizer == "pixels":
        return 3, cfg.data.image_size
    return 32, cfg.data.image_size // 8


def training_step(cfg: Config, device: torch.device, compile: bool = False):
    """(model, one full training step on a fixed random batch: forward, backward, AdamW and the EMA
    update, as training/loop.py does them)."""
    latent_c, latent_s = bench_latent_shape(cfg)
    if device.type == "cpu":
        keep_freed_memory()  # as training does
    cfg.diffusion.sigma_data = cfg.diffusion.sigma_data or 0.5   # measured on data when training; any value times the same
    model = BCDModel(cfg, latent_c, latent_s).to(device).train()
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    bf16 = use_bf16(device, cfg.train.amp)
    forward = torch.compile(model) if compile else model
    # Random latents, and the training loop's own draws (noise, Gumbel, augmentations, frame subset).
    z = torch.randn(cfg.train.batch_size, cfg.data.frames, latent_c, latent_s, latent_s, device=device)
    # train.content_from_video only changes which latents fill the content half, not the step's cost:
    # random latents are all one "video" here.
    one_video = SameVideoClips(np.zeros(cfg.train.batch_size, np.int64))
    draws = model.draw(cfg.train.batch_size, cfg.train.batch_size, torch.Generator().manual_seed(0), one_video).to(device)
    inputs = (z, draws)
    if cfg.model.lip_groups:  # random lip points [B, T, 40]: training reads them from a cache, so only their encoder costs
        inputs += (torch.randn(cfg.train.batch_size, cfg.data.frames, LIP_FEATURES, device=device),)

    def step():
        with autocast(device, bf16):
            out = forward(*inputs)
        out["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        update_ema(ema, model, cfg.train.ema_decay)

    return model, step, (inputs, opt, bf16)


def bench_training(cfg: Config, device: torch.device, repeats: int, compile: bool = False) -> dict:
    model, step, (inputs, opt, bf16) = training_step(cfg, device, compile)
    batch = cfg.train.batch_size
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = _timed(step, device, repeats)
    with FlopCounterMode(display=False) as counter:
        with autocast(device, bf16):
            out = model(*inputs)
        out["loss"].backward()
    opt.zero_grad(set_to_none=True)
    flops = counter.get_total_flops()
    peak = device_peak_tflops(device, bf16)
    achieved = flops / seconds
    frames = batch * cfg.data.frames
    return {"config": cfg.name, "batch_clips": batch, "step_s": seconds, "clips_per_s": batch / seconds,
            "frames_per_s": frames / seconds, "gflop_per_step": flops / 1e9, "achieved_tflops": achieved / 1e12,
            "mfu": achieved / (peak * 1e12) if peak else None, "peak_tflops": peak,
            "peak_memory_mb": _peak_memory_mb(device),
            "bf16": bf16, "compiled": compile,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


def bench_tokenizer(cfg: Config, device: torch.device):
    """The config's real tokenizer when it needs no training data (pixels, or weights on disk), else None."""
    from motionbits.models.tokenizer import make_tokenizer

    if cfg.model.tokenizer != "pixels" and not (cfg.model.tokenizer_path and Path(cfg.model.tokenizer_path).exists()):
        return None
    return make_tokenizer(cfg).to(device).eval()


def profile_training(cfg: Config, device: torch.device, steps: int = 3, rows: int = 15) -> str:
    """Where a training step's time goes: torch.profiler's operators, sorted by their own time."""
    from torch.profiler import ProfilerActivity, profile

    _, step, _ = training_step(cfg, device)
    step()  # warm-up
    _sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        _sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


@torch.no_grad()
def bench_sampling(cfg: Config, device: torch.device, steps_list: list[int], clips: int, repeats: int) -> list[dict]:
    tokenizer = bench_tokenizer(cfg, device)
    latent_c, latent_s = ((tokenizer.latent_channels, cfg.data.image_size // tokenizer.downsample)
                          if tokenizer is not None else bench_latent_shape(cfg))
    cfg.diffusion.sigma_data = cfg.diffusion.sigma_data or 0.5
    model = BCDModel(cfg, latent_c, latent_s).to(device).eval()
    bf16 = use_bf16(device, cfg.train.amp)
    t = cfg.data.frames
    z = torch.randn(clips, t, latent_c, latent_s, latent_s, device=device)
    # model.lip_groups: lip points as found beforehand (finding them is the codec rows' dlib time)
    lips = torch.randn(clips, t, LIP_FEATURES, device=device) if cfg.model.lip_groups else None
    rows = []
    with autocast(device, bf16):
        content = model.encode_content(z)
        codes = model.encode_motion(z, lips=lips)
        extract_s = _timed(lambda: model.encode_motion(z, lips=lips), device, repeats)
        rows.append({"what": "motion extraction (encoder only)", "frames_per_s": clips * t / extract_s})
        for steps in steps_list:
            for sampler in ("euler", "heun"):
                s = _timed(lambda: model.render(content, codes, torch.randn_like(z), steps, sampler), device,
                           repeats, warmup=1)
                rows.append({"what": f"transfer, {sampler} {steps} steps", "steps": steps, "sampler": sampler,
                             "network_calls": network_calls(steps, sampler),
                             "frames_per_s": clips * t / s})
        if tokenizer is not None and cfg.model.tokenizer != "pixels":
            latents = z.flatten(0, 1)
            decode_s = _timed(lambda: tokenizer.decode(latents), device, repeats, warmup=1) / (clips * t)  # per frame
            rows.append({"what": f"{cfg.model.tokenizer} decode to {cfg.data.image_size}x{cfg.data.image_size} RGB",
                         "frames_per_s": 1 / decode_s})
            for row in [r for r in rows if r.get("sampler") == cfg.diffusion.sampler]:
                rows.append({**row, "what": f"{row['what']} + decode to RGB",
                             "frames_per_s": 1 / (1 / row["frames_per_s"] + decode_s)})
    return rows


def bench_loader(cfg: Config, device: torch.device, batch: int, repeats: int = 20) -> dict:
    """Random batches from an in-memory uint8 clip array the size of the Sprites train split."""
    n = 9000
    s = cfg.data.image_size
    frames = torch.from_numpy(np.random.randint(0, 255, (n, cfg.data.frames, s, s, 3), dtype=np.uint8))
    gen = torch.Generator().manual_seed(0)

    def load():
        idx = torch.randint(0, n, (batch,), generator=gen)
        x = frames.index_select(0, idx)
        if device.type == "cuda":
            x = x.pin_memory().to(device, non_blocking=True)
        return frames_to_float(x)

    seconds = _timed(load, device, repeats)
    return {"what": "clip loader (uint8 -> float, random batches)", "clips_per_s": batch / seconds}


CALL_FPS = 25.0       # what a video call shows


@torch.no_grad()
def bench_codec(cfg: Config, device: torch.device, repeats: int, windows: int = 3,
                clip: str | None = None, fast_autoencoder: bool = False) -> list[dict]:
    """Stream encode and decode speed at batch 1 over `windows` windows of random frames, or of
    `clip`'s frames (data/inputs.py reads it; as many whole windows as it has, up to `windows`):
    frames/s. A lip model's encoder runs dlib on every frame (about 10 ms a 128-pixel frame on a
    face or on noise alike); a real clip makes its lip groups read real lips. `fast_autoencoder`:
    through the fast autoencoder's layers instead of taef2's (undistilled: its speed, not its pictures)."""
    from motionbits.api import MotionBits
    from motionbits.codec.stream import StreamDecoder, StreamEncoder, look_ahead
    from motionbits.models.fast_autoencoder import FastTAEF2
    from motionbits.models.tokenizer import make_tokenizer

    tokenizer = make_tokenizer(cfg)
    tokenizer = (FastTAEF2(tokenizer) if fast_autoencoder else tokenizer).to(device).eval()
    size = cfg.data.image_size
    cfg.diffusion.sigma_data = cfg.diffusion.sigma_data or 0.5
    # (no parameter needs a gradient: FlopCounterMode trips on views of ones that do)
    model = BCDModel(cfg, tokenizer.latent_channels, size // tokenizer.downsample).to(device).eval().requires_grad_(False)
    pipe = MotionBits(model, tokenizer, cfg, device)
    if clip is None:
        frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (windows * model.window, size, size, 3),
                                                                    dtype=np.uint8))
    else:
        frames = read_input_clip(clip, size, None)                      # [T, size, size, 3]
        if len(frames) < model.window:
            raise MotionbitsError(f"{clip}: {len(frames)} frames, the codec bench needs a window of {model.window}")
        frames = frames[:min(windows, len(frames) // model.window) * model.window]
    packets: list[bytes] = []

    def encode() -> list[float]:
        encoder = StreamEncoder(pipe, fps=CALL_FPS)
        packets[:] = []
        return _each_timed([lambda f=frame: packets.append(encoder.feed(f[None])) for frame in frames]
                           + [lambda: packets.append(encoder.finish())], device)

    def decode() -> list[float]:
        decoder = StreamDecoder(pipe)
        return _each_timed([lambda p=packet: decoder.feed(p) for packet in packets] + [decoder.finish], device)

    # A stream's start codes the content once with its first window (encode) or renders it with the
    # first packet (decode); a call pays that once, then the steady rate of the frames after it.
    timings = {}
    for what, run in (("encode", encode), ("decode", decode)):
        run()                                                                          # warm-up
        seconds = np.mean([run() for _ in range(repeats)], axis=0)                     # [steps of the stream]
        first, rest = seconds[:model.window].sum(), seconds[model.window:].sum()
        later = len(frames) - model.window
        timings[what] = {"start_s": float(first), "frames_per_s": later / rest if later else model.window / first,
                         "frames_per_s_overall": len(frames) / seconds.sum()}
    # The FLOPs a frame costs (the tokenizer's convolutions included) and the frame rate they allow at
    # the machine's peak: whether a call's 25 fps is a matter of code or of hardware.
    peak = device_peak_tflops(device, pipe.bf16)
    common = {"batch": 1, "frames": len(frames), "clip": Path(clip).name if clip else None,
              "look_ahead_frames": look_ahead(pipe),
              "tokenizer": "the fast autoencoder" if fast_autoencoder else cfg.model.tokenizer, "size": size,
              "peak_tflops": peak}
    rows = []
    for what, run, timed in (("stream encode (a frame at a time, adaptive tables)", encode, timings["encode"]),
                             (f"stream decode to RGB ({cfg.diffusion.sampler} {cfg.diffusion.sample_steps} steps)",
                              decode, timings["decode"])):
        with FlopCounterMode(display=False) as counter:
            run()
        flop = counter.get_total_flops() / len(frames)
        rows.append({"what": what, **timed, "gflop_per_frame": flop / 1e9,
                     "frames_per_s_at_peak": peak * 1e12 / flop if peak and flop else None, **common})
    return rows


def run_bench(config_names: list[str], device_name: str = "auto", steps_list: list[int] | None = None,
              repeats: int = 5, sample_clips: int = 4, compile: bool = False, out: str | None = None,
              tokenizer_path: str | None = None, codec_clip: str | None = None) -> dict:
    device = pick_device(device_name)
    if device.type == "cpu":
        flush_denormals()
    steps_list = steps_list or [1, 4, 8, 25, 50]
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)",
              "torch": torch.__version__, "training": [], "sampling": {}, "loader": [], "codec": {}}

    def save() -> None:  # after every measurement, so a run cut short still leaves what it measured
        if out:
            write_json_atomic(out, report)

    configs = [load_config(name) for name in config_names]  # a bad one is refused before any measuring
    if codec_clip:                                           # and so is a clip that cannot be read
        read_input_clip(codec_clip, configs[0].data.image_size, 1)
    for cfg in configs:
        if tokenizer_path and cfg.model.tokenizer != "pixels":
            cfg.model.tokenizer_path = tokenizer_path
        report["training"].append(bench_training(cfg, device, repeats, compile=False))
        save()
        report["sampling"][cfg.name] = bench_sampling(cfg, device, steps_list, sample_clips, max(1, repeats // 2))
        save()
        report["loader"].append({"config": cfg.name, **bench_loader(cfg, device, cfg.train.batch_size)})
        save()
        try:
            rows = bench_codec(cfg, device, max(1, repeats // 2), clip=codec_clip)
            if cfg.model.tokenizer == "taef2":
                rows += bench_codec(cfg, device, max(1, repeats // 2), clip=codec_clip, fast_autoencoder=True)
            report["codec"][cfg.name] = rows
        except MotionbitsError as err:  # a codec this machine cannot run (a lip model needs dlib, which a lent GPU lacks)
            report.setdefault("errors", []).append(f"{cfg.name} codec: {err}")
        save()
        if compile:
            try:
                report["training"].append(bench_training(cfg, device, repeats, compile=True))
            except Exception as err:  # a compiler failure is a finding to report, not a reason to lose the table
                report.setdefault("errors", []).append(f"{cfg.name} torch.compile: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            save()
    return report


def format_report(r: dict) -> str:
    lines = [f"device: {r['device']}  torch {r['torch']}", "",
             "| config | compiled | batch | step (s) | clips/s | frames/s | GFLOP/step | TFLOP/s | MFU (of peak TFLOP/s) | peak mem (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for t in r["training"]:
        mfu = (f"{100 * t['mfu']:.0f} % of {t['peak_tflops']:.2f}" if t["mfu"] is not None
               else "n/a (no known peak)")
        lines.append(f"| {t['config']} | {t['compiled']} | {t['batch_clips']} | {t['step_s']:.3f} | {t['clips_per_s']:.1f} | "
                     f"{t['frames_per_s']:.0f} | {t['gflop_per_step']:.1f} | {t['achieved_tflops']:.2f} | {mfu} | {t['peak_memory_mb']:.0f} |")
    for name, rows in r["sampling"].items():
        lines += ["", f"sampling ({name}):", "", "| what | network calls | frames/s |", "|---|---|---|"]
        for row in rows:
            lines.append(f"| {row['what']} | {row.get('network_calls', '-')} | {row['frames_per_s']:.1f} |")
    for name, rows in r.get("codec", {}).items():
        lines += ["", f"codec ({name}, batch 1, {rows[0]['size']}x{rows[0]['size']}, "
                  f"look-ahead {rows[0]['look_ahead_frames']} frames, "
                  f"{rows[0]['frames']} {'random frames' if not rows[0].get('clip') else 'frames of ' + rows[0]['clip']}):", "",
                  f"| what | images through | frames/s after the first window | a {CALL_FPS:g} fps call "
                  "| the first window (content once), s | GFLOP a frame | frames/s at the peak |",
                  "|---|---|---|---|---|---|---|"]
        for row in rows:
            verdict = "fast enough" if row["frames_per_s"] >= CALL_FPS else f"{row['frames_per_s'] / CALL_FPS:.2f}x too slow"
            at_peak = (f"{row['frames_per_s_at_peak']:.1f} (of {row['peak_tflops']:.2f} TFLOP/s)"
                       if row.get("frames_per_s_at_peak") else "n/a (no known peak)")
            lines.append(f"| {row['what']} | {row['tokenizer']} | {row['frames_per_s']:.1f} | {verdict} | {row['start_s']:.2f} | "
                         f"{row.get('gflop_per_frame', 0):.2f} | {at_peak} |")
    for error in r.get("errors", []):
        lines += ["", f"error: {error}"]
    lines += ["", "| loader | clips/s |", "|---|---|"]
    for row in r["loader"]:
        lines.append(f"| {row['config']} | {row['clips_per_s']:.0f} |")
    return "\n".join(lines)
