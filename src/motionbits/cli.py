"""The `motionbits` command: one thin function per verb.

Every user-facing problem (a bad path, file, value or config) is a MotionbitsError or an OSError,
printed as one line `motionbits: error: ...` with exit code 2; anything else is a bug and keeps
its traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from motionbits.errors import MotionbitsError
from motionbits.json_text import dumps_standard
from motionbits.run_lock import hold_run_folder
from motionbits.data.inputs import hold_still as _hold_still, read_input_clip as _read_clip  # the app reads the same way
from motionbits.data.inputs import read_timed_clip as _read_timed
from motionbits.frame_rate import UNTIMED_FPS

VIDEO_OUTPUTS = (".gif", ".mp4", ".webm", ".avi", ".mov", ".png")


# ---- checked values ---------------------------------------------------------------------------
def _number(kind, least: float, strict: bool):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None
        if value != value or (value <= least if strict else value < least):
            raise argparse.ArgumentTypeError(f"{text} must be {'above' if strict else 'at least'} {least:g}")
        return value
    return parse


positive_int, non_negative_int = _number(int, 0, True), _number(int, 0, False)
positive_float, non_negative_float = _number(float, 0, True), _number(float, 0, False)


def frame_rate(text: str) -> float:
    """A frame rate in frame_rate.MIN_FPS..MAX_FPS (inf, 0.001 or 1e9 broke the video writers)."""
    from motionbits.frame_rate import fps_problem

    value = positive_float(text)
    problem = fps_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def input_frame_rate(text: str) -> float:
    """--input-fps: 0 (the source's rate) or a frame rate."""
    return 0.0 if non_negative_float(text) == 0 else frame_rate(text)


MAX_SCALE = 16   # 256-pixel frames become 4096 pixels wide: beyond that a video is mostly memory


def upscale(text: str) -> int:
    value = positive_int(text)
    if value > MAX_SCALE:
        raise argparse.ArgumentTypeError(f"{text} must be at most {MAX_SCALE}")
    return value


def port_number(text: str) -> int:
    """A TCP port, 1-65535 (70000 ended in an OverflowError from the socket)."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text} must be at most 65535")
    return value


def open_fraction(text: str) -> float:
    """A share strictly between 0 and 1."""
    value = positive_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be below 1")
    return value


def device_name(text: str) -> str:
    """auto, cpu, cuda or cuda:N, and present on this machine: refused before any work."""
    if text != "auto":
        from motionbits.runtime import pick_device

        try:
            pick_device(text)
        except MotionbitsError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _number_list(text: str, kind, flag: str, least: float = 1) -> list:
    """'1,2,4' -> [1, 2, 4], or a one-line error naming the flag."""
    try:
        values = [kind(v) for v in text.split(",")]
    except ValueError:
        raise MotionbitsError(f"{flag} takes comma-separated numbers, got {text!r}") from None
    if any(v < least for v in values):
        raise MotionbitsError(f"{flag} takes numbers of at least {least:g}, got {text!r}")
    return values


def check_output_file(path: str | Path, suffixes: tuple[str, ...] | None = None) -> Path:
    """Before any long work: the output's type is one we write and its folder can be written."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise MotionbitsError(f"{path}: unsupported output type {path.suffix or '(none)'!r} (use {', '.join(suffixes)})")
    if path.is_dir():
        raise MotionbitsError(f"{path}: is a folder, expected a file name")
    if path.exists() and not path.is_file():   # written by replacing it: never a pipe's or a device's node
        raise MotionbitsError(f"{path}: exists and is not a regular file (a pipe, device or socket)")
    check_output_dir(path.parent)
    return path


def check_run_folder(path: str | Path) -> Path:
    """A folder training writes (checkpoints, TensorBoard logs): check_output_dir, and a name that
    is UTF-8 (TensorBoard's writer crashes on any other; Linux allows any bytes in a name)."""
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        raise MotionbitsError(f"{shown}: the run folder's name is not UTF-8 text, which TensorBoard cannot "
                              "write to; pick another --out") from None
    return check_output_dir(path)


def check_output_dir(path: str | Path) -> Path:
    """The folder exists or can be made, and is writable."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise MotionbitsError(f"{existing}: exists and is not a folder, cannot write {path}")
    try:  # a real file, not os.access: root passes every permission check, and /proc or a read-only mount still refuse
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise MotionbitsError(f"{existing}: cannot write there ({err.strerror or err})") from None
    return path


# ---- verbs ------------------------------------------------------------------------------------
def cmd_data(args: argparse.Namespace) -> None:
    check_output_dir(args.out)
    if args.kind == "sprites":
        from motionbits.data.sprites import compose_sprites

        manifest = compose_sprites(args.sheets, args.out, seed=args.seed)
        print(f"wrote {args.out}: {manifest['clips']} clips of {manifest['characters']} characters")
    else:
        from motionbits.data.video import build_video_dataset

        build_video_dataset(args.src, args.out, size=args.size, frames=args.frames, stride=args.stride,
                            fps=args.fps, test_fraction=args.test_fraction, seed=args.seed,
                            identity_regex=args.identity_regex, max_clips_per_video=args.max_clips_per_video,
                            crop=args.crop, test_videos=args.test_videos)


def _load_cfg(args: argparse.Namespace):
    from motionbits.config import load_config, validate

    cfg = load_config(args.config)
    if getattr(args, "data", None):
        cfg.data.root = args.data
    if getattr(args, "steps", None):
        cfg.train.steps = args.steps
    if getattr(args, "device", None):
        cfg.train.device = args.device
    if getattr(args, "tokenizer_path", None):
        cfg.model.tokenizer_path = os.path.abspath(args.tokenizer_path)
    if getattr(args, "init_from", None):
        cfg.train.init_from = args.init_from
    validate(cfg, f"config {args.config} with the command's options")
    return cfg


def cmd_train(args: argparse.Namespace) -> None:
    from motionbits.config import resolve_config_path
    from motionbits.runtime import pick_device
    from motionbits.prior_config import is_prior_config, prior_run_with_options

    path = resolve_config_path(args.config)
    pick_device(args.device or "auto")
    if is_prior_config(path):
        from motionbits.training.prior import train_prior_run

        name, run = prior_run_with_options(path, args.data, args.steps, args.init_from, args.tokenizer_path)
        out = check_run_folder(args.out or f"runs/{path.stem}")
        with hold_run_folder(out), _failed_writes_name(out):
            print(f"checkpoint: {train_prior_run(name, run, out, fresh=args.fresh, device=args.device or 'auto', max_minutes=args.max_minutes)}")
        return
    from motionbits.training.bcd import train

    cfg = _load_cfg(args)
    out = check_run_folder(args.out or f"runs/{cfg.name}")
    with hold_run_folder(out), _failed_writes_name(out):
        print(f"checkpoint: {train(cfg, out, fresh=args.fresh, max_minutes=args.max_minutes)}")


@contextmanager
def _failed_writes_name(run_dir: Path) -> Iterator[None]:
    """A full disk met by a write that names no file (TensorBoard's writer thread, a buffered
    append) is reported against the run folder; the thread's own traceback is not printed, the
    error reaches the main thread at TensorBoard's next write."""
    from motionbits.atomic_files import WRITE_ERRNOS

    default_hook = threading.excepthook

    def quiet_write_failures(hook_args) -> None:
        if not (isinstance(hook_args.exc_value, OSError) and hook_args.exc_value.errno in WRITE_ERRNOS):
            default_hook(hook_args)

    threading.excepthook = quiet_write_failures
    try:
        yield
    except OSError as err:
        if err.filename or err.errno not in WRITE_ERRNOS:
            raise
        raise OSError(err.errno, f"{err.strerror} (writing into the run folder)", str(run_dir)) from None
    finally:
        threading.excepthook = default_hook


def _input_fps(args: argparse.Namespace, pipe) -> float | None:
    """--input-fps (0: the source rate), else the rate the model's training clips had."""
    if args.input_fps is not None:
        return args.input_fps or None
    return pipe.cfg.data.fps


def _rate_note(clip) -> str:
    """How a clip's rate came about, for the 'wrote' line: resampled, its own, or the default."""
    if clip.resampled:
        return f"resampled from the source's {clip.source_fps:g} fps (--input-fps 0 keeps the source's rate)"
    return "the source's rate" if clip.source_fps else f"the input has no rate: {UNTIMED_FPS:g} fps assumed"


def _wrote(path, frames: int, fps: float, note: str) -> str:
    return f"wrote {path}: {frames} frames at {fps:g} fps, {frames / fps:.2f} s ({note})"


def _open_checkpoint(args: argparse.Namespace):
    from motionbits.api import MotionBits

    return MotionBits.from_checkpoint(args.checkpoint, args.device, getattr(args, "fast_autoencoder", None))


def cmd_distill_autoencoder(args: argparse.Namespace) -> None:
    from motionbits.training.distill_autoencoder import distill_autoencoder

    report = distill_autoencoder(args.data, args.out, steps=args.steps, batch=args.batch, clips=args.clips,
                                 frames_per_clip=args.frames_per_clip, seed=args.seed,
                                 tokenizer_path=args.tokenizer_path)
    t = report["test"]
    where = "test split" if report["test_split"] else "training frames (the dataset has no test split)"
    print(f"wrote {args.out}: the fast autoencoder after {report['steps']} steps on {report['training_frames']} frames "
          f"in {report['minutes']:g} min; on {report['test_frames']} frames of the {where}: decoding taef2's latents "
          f"{t['decode_psnr_vs_taef2_db']:.1f} dB from taef2's pictures, latents off by {t['latent_error_relative']:.3f} "
          f"of their variance, round trip {t['round_trip_psnr_db']:.1f} dB (taef2 {t['taef2_round_trip_psnr_db']:.1f} dB)")


def cmd_reconstruct(args: argparse.Namespace) -> None:
    from motionbits.visualize import save_video, side_by_side

    check_output_file(args.output, VIDEO_OUTPUTS)
    pipe = _open_checkpoint(args)
    read = _read_timed(args.input, pipe.cfg.data.image_size, args.frames, _input_fps(args, pipe))
    clip = _hold_still(read.frames, pipe.model.window)
    out = pipe.reconstruct(clip, steps=args.sample_steps, sampler=args.sampler, seed=args.seed)[0]
    result = side_by_side([clip, out]) if args.side_by_side else out
    fps = args.fps or read.fps
    path = save_video(result, args.output, fps=fps, scale=args.scale)
    print(_wrote(path, len(result), fps, "--fps" if args.fps else _rate_note(read)))


def cmd_transfer(args: argparse.Namespace) -> None:
    from motionbits.visualize import save_video, transfer_view

    check_output_file(args.output, VIDEO_OUTPUTS)
    pipe = _open_checkpoint(args)
    size = pipe.cfg.data.image_size
    fps_in = _input_fps(args, pipe)
    content = _hold_still(_read_clip(args.content, size, None, fps_in), pipe.model.window)
    driver = _read_timed(args.motion, size, args.frames, fps_in)          # the result moves, and plays, like it
    motion = _hold_still(driver.frames, pipe.model.window)
    out = pipe.transfer(content, motion, steps=args.sample_steps, sampler=args.sampler, seed=args.seed)[0]
    if args.side_by_side:
        out = transfer_view(content, motion, out)
    fps = args.fps or driver.fps
    path = save_video(out, args.output, fps=fps, scale=args.scale)
    print(_wrote(path, len(out), fps, "--fps" if args.fps else "the driver's: " + _rate_note(driver)))


def cmd_generate(args: argparse.Namespace) -> None:
    from motionbits.checkpoints import load_prior
    from motionbits.visualize import save_video

    check_output_file(args.output, VIDEO_OUTPUTS)
    pipe = _open_checkpoint(args)
    prior = load_prior(args.prior, pipe.device)
    size = pipe.cfg.data.image_size
    fps_in = _input_fps(args, pipe)
    content = _hold_still(_read_clip(args.content, size, None, fps_in), pipe.model.window)
    prompt = _read_timed(args.prompt_motion, size, None, fps_in) if args.prompt_motion else None
    if args.label is not None and not 0 <= args.label < max(prior.cfg.num_classes, 1):
        raise MotionbitsError(f"--label {args.label}: this prior knows classes 0..{prior.cfg.num_classes - 1}"
                              if prior.cfg.num_classes else "--label: this prior was trained without labels")
    out = pipe.generate(prior, content, args.frames, prompt_frames=prompt.frames if prompt else None,
                        label=args.label, temperature=args.temperature, top_k=args.top_k, seed=args.seed,
                        steps=args.sample_steps, sampler=args.sampler)
    # new motion plays at the prompt's rate, else at the rate the model's clips had
    fps, note = ((args.fps, "--fps") if args.fps else (prompt.fps, "the prompt's: " + _rate_note(prompt)) if prompt
                 else (pipe.cfg.data.fps, "the rate of the model's training clips") if pipe.cfg.data.fps
                 else (UNTIMED_FPS, f"the model's clips have no rate: {UNTIMED_FPS:g} fps assumed"))
    print(_wrote(save_video(out[0], args.output, fps=fps, scale=args.scale), out.shape[1], fps, note))


def cmd_encode(args: argparse.Namespace) -> None:
    from motionbits.codec import encode_clip
    from motionbits.codec.format import pack, packet_frames
    from motionbits.atomic_files import atomic_path

    check_output_file(args.output, (".mbits",))
    pipe = _open_checkpoint(args)
    prior = None
    if args.prior:
        from motionbits.checkpoints import load_prior

        prior = load_prior(args.prior, "cpu")
    read = _read_timed(args.clip, pipe.cfg.data.image_size, args.frames, _input_fps(args, pipe))
    fps = read.fps if read.source_fps else args.fps or read.fps    # --fps: only for an input without a rate
    f = encode_clip(pipe, read.frames, prior, fps=fps, content=args.content, content_bytes=args.content_bytes,
                    tables=args.tables, packet_windows=args.packet_windows)
    data = pack(f)                                                 # every field checked before the file is written
    with atomic_path(args.output, shared=True) as tmp:
        tmp.write_bytes(data)
    s, frames = f.sizes, f.header.frames
    seconds = frames / fps
    note = _rate_note(read) if read.source_fps or not args.fps else "--fps"
    print(f"wrote {args.output}: {frames} frames at {fps:g} fps ({note}), {s['total']} bytes = header {s['header']} + "
          f"content {s['content']} (once) + motion {s['motion']} ({8 * s['motion'] / frames:.2f} bits per frame, "
          f"{8 * s['motion'] / seconds / 1000:.3f} kbps of motion; {8 * s['total'] / seconds / 1000:.3f} kbps in all "
          f"for this {seconds:.2f} s clip; content {f.header.content_coding}; motion coded under "
          f"{'the prior' if prior else 'the ' + args.tables + ' tables'}; streamable in {len(f.motion)} packets of "
          f"{packet_frames(f.header)} frames: a latency of {packet_frames(f.header) - 1} frames of look-ahead, "
          f"{(packet_frames(f.header) - 1) / fps:.2f} s, before coding time)")


def cmd_decode(args: argparse.Namespace) -> None:
    from motionbits.api import MotionBits
    from motionbits.codec import read_file
    from motionbits.codec.find_models import MODEL_KIND, PRIOR_KIND, find_checkpoint
    from motionbits.codec.format import read_bytes
    from motionbits.codec.stream import decode_stream
    from motionbits.visualize import save_video

    check_output_file(args.output, VIDEO_OUTPUTS)
    path = Path(args.file)
    data = read_bytes(path)
    f = read_file(data, str(path))      # every packet checked before a model is loaded
    # the model and prior by fingerprint: the file holds no path (codec/find_models.py)
    checkpoint = args.checkpoint or find_checkpoint(f.header.model_fingerprint, path, MODEL_KIND)
    pipe = MotionBits.from_checkpoint(checkpoint, args.device, args.fast_autoencoder)
    prior = None
    if f.header.uses_prior:
        from motionbits.checkpoints import load_prior

        prior_path = args.prior or find_checkpoint(f.header.prior_fingerprint, path, PRIOR_KIND)
        prior = load_prior(prior_path, "cpu")
    # packet by packet, as a receiver would (codec/stream.py); the video is written whole at the end
    out = decode_stream((data[i:i + 4096] for i in range(0, len(data), 4096)), pipe, prior, str(path),
                        steps=args.sample_steps, sampler=args.sampler, seed=args.seed)
    fps = args.fps or f.header.fps
    written = save_video(out, args.output, fps=fps, scale=args.scale)
    print(_wrote(written, f.header.frames, fps, "--fps" if args.fps else "the file's rate")
          + f" from {f.sizes['total']} bytes")


def cmd_evaluate(args: argparse.Namespace) -> None:
    out = check_output_dir(args.out or (Path(args.checkpoint).parent if Path(args.checkpoint).is_file() else args.checkpoint))
    counts = _number_list(args.step_study, int, "--step-study") if args.step_study else None
    pipe = _open_checkpoint(args)
    if args.data:
        pipe.cfg.data.root = args.data
    if args.step_study and (args.prior or pipe.cfg.data.kind != "sprites"):
        raise MotionbitsError("--step-study runs the Sprites protocol: not with --prior or a video dataset")
    if args.prior:
        from motionbits.evaluation.generation import evaluate_generation
        from motionbits.evaluation.sprites import get_judge
        from motionbits.checkpoints import load_prior

        if pipe.cfg.data.kind != "sprites":
            raise MotionbitsError("--prior evaluates generation with the Sprites judge: the model must be a Sprites model")
        prior = load_prior(args.prior, pipe.device)  # before the judge, which may take minutes to train
        judge = get_judge(pipe.cfg.data.root, args.judge, Path(out), pipe.cfg.eval.judge_steps, True)
        report = evaluate_generation(pipe, prior, judge, out, clips=args.clips or 300, steps=args.sample_steps)
        print(dumps_standard(report, indent=2))
        return
    if pipe.cfg.data.kind != "sprites":
        from motionbits.evaluation.video import evaluate_video

        evaluate_video(pipe, out, clips=args.clips, steps=args.sample_steps, lpips_path=args.lpips)
    elif args.step_study:
        from motionbits.evaluation.sprites import step_study

        step_study(pipe, out, counts, judge_path=args.judge, clips=args.clips, sampler=args.sampler)
        print((Path(out) / "steps.md").read_text())
        return
    else:
        from motionbits.evaluation.sprites import evaluate_sprites

        evaluate_sprites(pipe, out, judge_path=args.judge, clips=args.clips, steps=args.sample_steps,
                         sampler=args.sampler)
    print((Path(out) / "eval.md").read_text())


def cmd_sweep(args: argparse.Namespace) -> None:
    from motionbits.sweep import run_sweep

    cfg = _load_cfg(args)
    bits = _number_list(args.bits, float, "--bits", least=0)
    out = check_run_folder(args.out or f"runs/{cfg.name}-sweep")
    with hold_run_folder(out):
        run_sweep(cfg, bits, out, clips=args.clips, judge_path=args.judge)  # --steps is already in cfg
    print(Path(out, "sweep.md").read_text())
    print(f"wrote {out}/sweep.md, sweep.json and sweep.png")


def cmd_demo(args: argparse.Namespace) -> None:
    """Sprites end to end: compose the data, train sprites-cpu, write a transfer GIF, evaluate."""
    from motionbits.demo import run_demo

    with hold_run_folder(check_run_folder(args.out)):
        run_demo(args.out, args.config, sheets=args.sheets, steps=args.steps, max_minutes=args.max_minutes,
                 clips=args.clips, prior_steps=args.prior_steps)


def cmd_config(args: argparse.Namespace) -> None:
    """A config as training reads it (its `base:` chain resolved), or the table of every setting."""
    import yaml

    from motionbits.config import load_config, packaged_config_names, resolve_config_path, settings_table
    from motionbits.prior_config import is_prior_config, prior_settings_rows, read_prior_run

    if args.table:
        print("\n".join([settings_table(), *prior_settings_rows()]))
    elif args.name and is_prior_config(resolve_config_path(args.name)):
        name, run = read_prior_run(resolve_config_path(args.name))
        print(yaml.safe_dump({"name": name, "prior": run.to_dict()}, sort_keys=False), end="")
    elif args.name:
        print(yaml.safe_dump(load_config(args.name).to_dict(), sort_keys=False), end="")
    else:
        print("packaged configs: " + ", ".join(packaged_config_names()))


def cmd_score(args: argparse.Namespace) -> None:
    """Face metrics of video B against video A (and, with --content, of a transfer onto C)."""
    from motionbits.data.media import read_clip
    from motionbits.evaluation.faces import score_pair, score_table

    a = read_clip(args.a, args.size, args.frames)
    b = read_clip(args.b, args.size, args.frames)
    n = min(len(a), len(b))   # frame by frame: the shorter video sets the length
    content = read_clip(args.content, args.size, args.frames) if args.content else None
    report = score_pair(a[:n], b[:n], content, embed_every=args.embed_every)
    report.update({"A": args.a, "B": args.b, "content": args.content, "size": args.size})
    print(dumps_standard(report, indent=2) if args.json else score_table(report))   # non-finite as null


def cmd_bench(args: argparse.Namespace) -> None:
    from motionbits.bench import format_report, run_bench
    from motionbits.runtime import pick_device

    pick_device(args.device)
    if args.profile:
        from motionbits.bench import profile_training
        from motionbits.config import load_config

        for name in args.config:
            print(f"training step of {name}, operators by own time:")
            print(profile_training(load_config(name), pick_device(args.device)))
        return
    steps = _number_list(args.sample_steps, int, "--sample-steps")
    if args.out:
        check_output_file(args.out, (".json",))
    report = run_bench(args.config, args.device, steps, repeats=args.repeats, sample_clips=args.clips,
                       compile=args.compile, out=args.out, tokenizer_path=args.tokenizer_path,
                       codec_clip=args.codec_clip)
    print(format_report(report))
    if args.out:
        print(f"wrote {args.out}")


def cmd_app(args: argparse.Namespace) -> None:
    """The web page (gradio): transfer, bitrate, generation and the model's card; docs/app.md."""
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise MotionbitsError("the app needs gradio: pip install 'motionbits[app]'")
    from motionbits.app.server import serve

    serve(args.checkpoint, args.prior, host=args.host, port=args.port, device=args.device,
          fast_autoencoder=args.fast_autoencoder)


# ---- the parser ----------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        self.exit(2, f"motionbits: error: {self.prog.removeprefix('motionbits ')}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="motionbits", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("data", help="build a dataset")
    dsub = d.add_subparsers(dest="kind", required=True, parser_class=_Parser)
    ds = dsub.add_parser("sprites", help="compose the Sprites benchmark from the LPC sheets")
    ds.add_argument("--out", required=True, help="dataset folder to write")
    ds.add_argument("--sheets", help="LPC sheets folder (default: the sheets shipped with motionbits)")
    ds.add_argument("--seed", type=non_negative_int, default=0, help="seed of the 1000/296 character split")
    dv = dsub.add_parser("video", help="turn a folder of videos into clips")
    dv.add_argument("src", help="folder of videos (mp4, avi, mov, webm, mkv, gif) and/or frame folders, searched "
                                "recursively")
    dv.add_argument("out", help="dataset folder to write (frames as uint8 arrays, labels, manifest.json)")
    dv.add_argument("--size", type=positive_int, default=128, help="side of the square frames: centre crop, then resize")
    dv.add_argument("--frames", type=positive_int, default=16, help="frames per clip")
    dv.add_argument("--stride", type=positive_int, default=8, help="a clip starts every this many frames (after --fps)")
    dv.add_argument("--fps", type=frame_rate, default=None,
                    help="resample every video to this frame rate first, 1..240 (default: keep the source's)")
    dv.add_argument("--test-fraction", type=open_fraction, default=0.2,
                    help="share of identities (of videos when there is one identity) held out for testing")
    dv.add_argument("--seed", type=non_negative_int, default=0, help="seed of the train/test split")
    dv.add_argument("--test-videos", metavar="REGEX", default=None,
                    help="instead of a random share of people: the videos whose path matches this regex form the test "
                         "split, e.g. 'driver_|me/held_back' (new drivers, and videos of the person the model is for)")
    dv.add_argument("--identity-regex", default=None,
                    help="group files into identities for the split: the first group of this regex on the "
                         "path, e.g. 'mead_(\\w+?)_' puts all of a MEAD actor's clips on one side")
    dv.add_argument("--max-clips-per-video", type=positive_int, default=None, help="keep only each video's first clips")
    dv.add_argument("--crop", choices=["center", "face"], default="center",
                    help="center: the largest centred square; face: track the main person's face and crop a steady "
                         "square around it, one video per face track (needs pip install 'motionbits[faces]')")
    d.set_defaults(func=cmd_data)

    t = sub.add_parser("train", help="train a model (or a motion prior) from a config")
    t.add_argument("--config", required=True, help="config file or packaged name (sprites-cpu, talking-head-cpu, ...)")
    t.add_argument("--out", help="run folder (default runs/<config name>); resumes if it has a checkpoint")
    t.add_argument("--data", help="dataset folder (overrides data.root)")
    t.add_argument("--steps", type=positive_int, help="training steps (overrides train.steps); more than a finished "
                   "run's continues it with the learning-rate schedule stretched to the new length")
    t.add_argument("--tokenizer-path", help="weights of the config's tokenizer (overrides model.tokenizer_path)")
    t.add_argument("--init-from", help="a stage-1 run whose weights start this one (train.init_from)")
    t.add_argument("--max-minutes", type=positive_float, default=None,
                   help="stop (and save) after this much wall-clock training time, e.g. a GPU lease")
    t.add_argument("--device", type=device_name, help="auto, cpu, cuda, cuda:1 (default: train.device)")
    t.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    t.set_defaults(func=cmd_train)

    def use_args(q: argparse.ArgumentParser, sampling: bool = True, fast_autoencoder: bool = True) -> None:
        q.add_argument("--checkpoint", required=True, help="last.pt or its run folder")
        q.add_argument("--device", type=device_name, default="auto",
                       help="auto, cpu, cuda, cuda:N (default: CUDA when there is one)")
        q.add_argument("--input-fps", type=input_frame_rate, default=None,
                       help="resample input videos to this rate, 1..240 (default: the rate of the model's training "
                            "clips when its dataset was made with --fps; 0: the source rate)")
        if fast_autoencoder:   # not for evaluate, whose reports are of the model as trained
            fast_autoencoder_arg(q)
        if sampling:
            sampling_args(q)

    def fast_autoencoder_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("--fast-autoencoder", metavar="FOLDER",
                       help="encode and render frames through a fast autoencoder in taef2's latent space, made by "
                            "`motionbits distill-autoencoder` (about 2.5 times the frame rate on a CPU; the model and its files "
                            "stay the same)")

    def sampling_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--sample-steps", type=positive_int, default=None, help="denoising steps (default: config)")
        q.add_argument("--sampler", choices=["euler", "heun"], default=None, help="ODE sampler (default: config)")
        q.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sampling noise")

    def media_args(q: argparse.ArgumentParser, frames_help: str = "at most this many frames") -> None:
        q.add_argument("-o", "--output", required=True, help=", ".join(VIDEO_OUTPUTS))
        q.add_argument("--frames", type=positive_int, default=None, help=frames_help)
        q.add_argument("--fps", type=frame_rate, default=None,
                       help=f"output rate, 1..240 (default: the rate the input was read at, so its duration is kept; "
                            f"{UNTIMED_FPS:g} for images, frame folders and Sprites clips)")
        q.add_argument("--scale", type=upscale, default=1, help=f"integer upscaling of the output, 1..{MAX_SCALE}")

    da = sub.add_parser("distill-autoencoder",
                        help="a fast autoencoder in taef2's latent space, distilled on a dataset's frames (for --fast-autoencoder)")
    da.add_argument("data", help="dataset folder made by `motionbits data video` (its training frames are used; its test "
                                 "frames measure the result)")
    da.add_argument("out", help="folder to write fast_encoder.pth, fast_decoder.pth and distill_report.json (resumes "
                                "from its distill_state.pt)")
    da.add_argument("--steps", type=positive_int, default=2500, help="training steps (default 2500)")
    da.add_argument("--batch", type=positive_int, default=8, help="frames a step (default 8)")
    da.add_argument("--clips", type=positive_int, default=None, help="use at most this many training clips "
                                                                     "(default: every clip)")
    da.add_argument("--frames-per-clip", type=positive_int, default=2,
                    help="frames of each clip, evenly spaced (default 2; taef2 encodes and decodes each once, "
                         "about 0.1 s a 128x128 frame on 2 CPU cores)")
    da.add_argument("--seed", type=non_negative_int, default=0, help="seed of the frames drawn and the training")
    da.add_argument("--tokenizer-path", help="taef2 weights folder to distil (default: the shipped taef2)")
    da.set_defaults(func=cmd_distill_autoencoder)

    r = sub.add_parser("reconstruct", help="rebuild a clip from its own content and motion")
    use_args(r)
    r.add_argument("--input", required=True, help="video/GIF/frames folder, or sprites:ROOT:SPLIT:INDEX")
    media_args(r)
    r.add_argument("--side-by-side", action="store_true", help="input beside the result in each frame")
    r.set_defaults(func=cmd_reconstruct)

    x = sub.add_parser("transfer", help="content of one clip, motion of another")
    use_args(x)
    x.add_argument("--content", required=True, help="image, video or sprites:ROOT:SPLIT:INDEX")
    x.add_argument("--motion", required=True, help="driving video or sprites:ROOT:SPLIT:INDEX")
    media_args(x)
    x.add_argument("--side-by-side", action="store_true", help="content | driver | result in each frame")
    x.set_defaults(func=cmd_transfer)

    g = sub.add_parser("generate", help="new motion for a content, sampled by the motion prior")
    use_args(g)
    g.add_argument("--prior", required=True, help="prior.pt from `motionbits train --config prior-...`")
    g.add_argument("--content", required=True, help="image, video or sprites:ROOT:SPLIT:INDEX")
    g.add_argument("--prompt-motion", help="continue the motion of this clip")
    g.add_argument("--label", type=non_negative_int, default=None, help="motion class (a prior trained with labels)")
    g.add_argument("--temperature", type=non_negative_float, default=1.0, help="sampling temperature of the prior")
    g.add_argument("--top-k", type=positive_int, default=None, help="sample each code among its k likeliest only")
    media_args(g, "frames to generate (beyond the window: sliding context)")
    g.set_defaults(func=cmd_generate, frames=16)

    en = sub.add_parser("encode", help="a clip to a .mbits file: content once, motion entropy-coded")
    use_args(en, sampling=False)
    en.add_argument("clip", help="video, GIF, frames folder or sprites:ROOT:SPLIT:INDEX")
    en.add_argument("-o", "--output", required=True, help="the .mbits file to write")
    en.add_argument("--prior", help="code the motion under this motion prior (default: --tables)")
    en.add_argument("--tables", choices=("adaptive", "static"), default="adaptive",
                    help="without a prior: the training's code frequencies as they are (static) or updated by the "
                         "codes of each frame coded (adaptive, the default)")
    en.add_argument("--packet-windows", type=positive_int, default=1,
                    help="the model's windows per motion packet (at most 255): each packet's fixed cost (about 21 "
                         "bits) spread over more frames, for a look-ahead of this x the window - 1 frames (default 1)")
    en.add_argument("--content", choices=("compact", "float16", "image"), default=None,
                    help="the content tokens quantised to fit --content-bytes (compact), as float16 (what "
                         "reconstruct renders, 2 bytes a value), or, for a model that reads its content from a key "
                         "frame (model.content_reader: key_frame, as talking-head-person), the first frame as an AV1 "
                         "picture (image); default: image for such a model, compact otherwise")
    en.add_argument("--content-bytes", type=positive_int, default=None,
                    help="bytes the content may take (compact: default a quarter byte per value, 1024 for 16 x 256 "
                         "tokens; image: default 1024)")
    en.add_argument("--frames", type=positive_int, default=None, help="at most this many frames")
    en.add_argument("--fps", type=frame_rate, default=None,
                    help=f"frame rate to record when the input has none (a frame folder, a Sprites clip), 1..240 "
                         f"(default {UNTIMED_FPS:g}); a video's own rate (or --input-fps) is always recorded")
    en.set_defaults(func=cmd_encode)

    de = sub.add_parser("decode", help="a .mbits file back to a video")
    de.add_argument("file", help="the .mbits file")
    de.add_argument("-o", "--output", required=True, help=", ".join(VIDEO_OUTPUTS))
    de.add_argument("--checkpoint", help="the model (default: the *.pt or */last.pt, in the file's folder or the current "
                                         "one, whose fingerprint the file names)")
    de.add_argument("--prior", help="the prior the motion was coded under (default: found like the model, *.pt or "
                                    "*/prior.pt)")
    de.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda, cuda:N")
    fast_autoencoder_arg(de)
    sampling_args(de)
    de.add_argument("--fps", type=frame_rate, default=None, help="output rate, 1..240 (default: the file's, the clip's own)")
    de.add_argument("--scale", type=upscale, default=1, help=f"integer upscaling of the output, 1..{MAX_SCALE}")
    de.set_defaults(func=cmd_decode)

    e = sub.add_parser("evaluate", help="measure a trained model on the test split")
    use_args(e, fast_autoencoder=False)
    e.add_argument("--judge", help="judge .safetensors (trained and saved there if missing)")
    e.add_argument("--data", help="dataset folder (default: the checkpoint's)")
    e.add_argument("--clips", type=positive_int, default=None, help="test clips to evaluate (default: config)")
    e.add_argument("--out", help="report folder (default: the checkpoint's folder)")
    e.add_argument("--prior", help="evaluate motion generation with this prior.pt instead")
    e.add_argument("--lpips", metavar="DIR", help="video protocol: also report LPIPS-VGG, weights from DIR "
                                                  "(vgg16.pth + lin.pth, see motionbits/evaluation/lpips.py)")
    e.add_argument("--step-study", metavar="N,N,...",
                   help="Sprites: evaluate at each of these step counts and write steps.md / steps.json")
    e.set_defaults(func=cmd_evaluate)

    w = sub.add_parser("sweep", help="train and evaluate one config at several bitrates: table + plot")
    w.add_argument("--config", required=True, help="config file or packaged name")
    w.add_argument("--bits", required=True, help="comma-separated target bits per frame, e.g. 4,16,48")
    w.add_argument("--data", help="dataset folder (overrides data.root)")
    w.add_argument("--steps", type=positive_int, help="training steps per rate (default: config)")
    w.add_argument("--tokenizer-path", help="weights of the config's tokenizer (overrides model.tokenizer_path)")
    w.add_argument("--clips", type=positive_int, default=None, help="test clips to evaluate (default: config)")
    w.add_argument("--judge", help="Sprites judge .safetensors (trained once and shared)")
    w.add_argument("--out", help="sweep folder (default runs/<config>-sweep)")
    w.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda, cuda:N")
    w.set_defaults(func=cmd_sweep)

    m = sub.add_parser("demo", help="Sprites end to end on the CPU: data, training, GIF, evaluation")
    m.add_argument("--out", default="outputs/demo", help="folder for the data, run, GIF and report")
    m.add_argument("--config", default="sprites-cpu", help="a Sprites config (file or packaged name)")
    m.add_argument("--sheets", help="LPC sheets folder (default: the sheets shipped with motionbits)")
    m.add_argument("--steps", type=positive_int, help="training steps (default: the config's)")
    m.add_argument("--max-minutes", type=positive_float, default=None,
                   help="stop training (and go on to the GIF and evaluation) after this much wall-clock time")
    m.add_argument("--clips", type=positive_int, default=None, help="test clips to evaluate (default: config)")
    m.add_argument("--prior-steps", type=non_negative_int, default=0,
                   help="also train the motion prior (the app's Generate tab), this many steps (0: write its "
                        "config, prior.yaml, only)")
    m.set_defaults(func=cmd_demo)

    c = sub.add_parser("config", help="show a config as training reads it, or every setting with its meaning")
    c.add_argument("name", nargs="?", help="config file or packaged name (none: list the packaged ones)")
    c.add_argument("--table", action="store_true", help="every setting, its default and meaning (Markdown)")
    c.set_defaults(func=cmd_config)

    sc = sub.add_parser("score", help="face metrics of video B against A (AKD, AED, L1, PSNR); with --content: "
                                      "CSIM to the content and motion following of A (needs motionbits[faces])")
    sc.add_argument("a", help="reference video: the ground truth, or the driver of a transfer")
    sc.add_argument("b", help="the video to score (a reconstruction or a transfer)")
    sc.add_argument("--content", help="the content source of a transfer (image or video)")
    sc.add_argument("--size", type=positive_int, default=256, help="every video is centre-cropped and resized to this")
    sc.add_argument("--frames", type=positive_int, default=None, help="at most this many frames")
    sc.add_argument("--embed-every", type=positive_int, default=1,
                    help="identity descriptors on every Nth frame (landmarks are read on every frame)")
    sc.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    sc.set_defaults(func=cmd_score)

    b = sub.add_parser("bench", help="training and sampling speed, FLOPs and MFU of named configs")
    b.add_argument("--config", nargs="+", default=["sprites-cpu"], help="config files or packaged names")
    b.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda, cuda:N")
    b.add_argument("--sample-steps", default="1,4,8,25,50", help="comma-separated denoising step counts")
    b.add_argument("--repeats", type=positive_int, default=5, help="timed repeats of each measurement (their mean is reported)")
    b.add_argument("--clips", type=positive_int, default=4, help="clips per sampling batch")
    b.add_argument("--compile", action="store_true", help="also measure torch.compile")
    b.add_argument("--profile", action="store_true", help="instead: where the training step's time goes (torch.profiler)")
    b.add_argument("--out", default=None, help="write the JSON report here")
    b.add_argument("--tokenizer-path", default=None,
                   help="weights of the configs' tokenizer (default: the shipped taef2): sampling is timed to RGB frames")
    b.add_argument("--codec-clip", default=None,
                   help="time the codec on this clip's frames (a video, GIF, image folder) instead of random "
                        "ones, e.g. to see a lip model's encoder find real lips")
    b.set_defaults(func=cmd_bench)

    a = sub.add_parser("app", help="a web page to try the model: transfer, bitrate, generation (docs/app.md)")
    a.add_argument("--checkpoint", required=True, help="last.pt or its run folder")
    a.add_argument("--prior", help="prior.pt: adds the Generate tab and codes the Bitrate tab's motion under it")
    a.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every network interface)")
    a.add_argument("--port", type=port_number, default=7860, help="port to listen on (1-65535)")
    a.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda, cuda:N")
    fast_autoencoder_arg(a)
    a.set_defaults(func=cmd_app)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a bad option (already printed as one line)
        return int(done.code or 0)
    from motionbits.runtime import flush_denormals

    flush_denormals()  # before any parallel torch operation, so that every worker thread has it
    try:
        args.func(args)
    except MotionbitsError as err:
        print(f"motionbits: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file-system problem anywhere: the path and what went wrong
        where = f"{err.filename}: " if err.filename else ""
        print(f"motionbits: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("motionbits: interrupted (the last checkpoint is kept; run the same command to resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
