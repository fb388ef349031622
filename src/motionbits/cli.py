"""The `motionbits` command: data, train, reconstruct, transfer, evaluate, demo.

Every user-facing problem is a MotionbitsError, printed as one line `motionbits: error: ...`
with exit code 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from motionbits.errors import MotionbitsError

DEFAULT_SHEETS_HINT = "LPC sheets folder (default: download from github.com/YingzhenLi/Sprites)"


def cmd_data(args: argparse.Namespace) -> None:
    if args.kind == "sprites":
        from motionbits.data.sprites import compose_sprites, download_sheets

        sheets = args.sheets or download_sheets(Path(args.out) / "sheets")
        manifest = compose_sprites(sheets, args.out, seed=args.seed)
        print(f"wrote {args.out}: {manifest['clips']} clips of {manifest['characters']} characters")
    else:
        from motionbits.data.video import build_video_dataset

        build_video_dataset(args.src, args.out, size=args.size, frames=args.frames, stride=args.stride,
                            fps=args.fps, test_fraction=args.test_fraction, seed=args.seed,
                            identity_regex=args.identity_regex, max_clips_per_video=args.max_clips_per_video)


def _load_cfg(args: argparse.Namespace):
    from motionbits.config import load_config

    cfg = load_config(args.config)
    if getattr(args, "data", None):
        cfg.data.root = args.data
    if getattr(args, "steps", None):
        cfg.train.steps = args.steps
    if getattr(args, "device", None):
        cfg.train.device = args.device
    if getattr(args, "tokenizer_path", None):
        cfg.model.tokenizer_path = os.path.abspath(args.tokenizer_path)
    return cfg


def _number_list(text: str, kind, flag: str, least: float = 1) -> list:
    """'1,2,4' -> [1, 2, 4], or a one-line error naming the flag."""
    try:
        values = [kind(v) for v in text.split(",")]
    except ValueError:
        raise MotionbitsError(f"{flag} takes comma-separated numbers, got {text!r}") from None
    if any(v < least for v in values):
        raise MotionbitsError(f"{flag} takes numbers of at least {least:g}, got {text!r}")
    return values


def _check_minutes(minutes: float | None) -> None:
    if minutes is not None and minutes <= 0:
        raise MotionbitsError(f"--max-minutes must be above 0, got {minutes:g}")


def cmd_train(args: argparse.Namespace) -> None:
    from motionbits.config import resolve_config_path
    from motionbits.generate import is_prior_config, train_prior_from_config
    from motionbits.train import train

    _check_minutes(args.max_minutes)
    path = resolve_config_path(args.config)
    if is_prior_config(path):
        print(f"checkpoint: {train_prior_from_config(path, args.out, fresh=args.fresh)}")
        return
    cfg = _load_cfg(args)
    out = args.out or f"runs/{cfg.name}"
    path = train(cfg, out, fresh=args.fresh, max_minutes=args.max_minutes)
    print(f"checkpoint: {path}")


def _read_clip(spec: str, size: int, frames: int | None, fps: float | None = None):
    """A clip from 'sprites:ROOT:SPLIT:INDEX', a video/GIF file (resampled to fps when given), an
    image or a folder of frames."""
    import torch

    if spec.startswith("sprites:"):
        from motionbits.data.sprites import load_sprites

        try:
            _, root, split, index = spec.split(":")
            data = load_sprites(root, split)
            return torch.from_numpy(data.frames[int(index)])
        except ValueError:
            raise MotionbitsError(f"{spec}: expected sprites:ROOT:SPLIT:INDEX") from None
        except IndexError:
            raise MotionbitsError(f"{spec}: index out of range") from None
    from motionbits.data.video import read_clip

    return torch.from_numpy(read_clip(spec, size=size, max_frames=frames, fps=fps))


def _input_fps(args: argparse.Namespace, pipe) -> float | None:
    """--input-fps (0: the source rate), else the rate the model's training clips had."""
    if args.input_fps is not None:
        if args.input_fps < 0:
            raise MotionbitsError(f"--input-fps must be positive (0: the source rate), got {args.input_fps:g}")
        return args.input_fps or None
    return pipe.cfg.data.fps


def _output_fps(args: argparse.Namespace, fps_in: float | None) -> float:
    return args.fps or fps_in or 8.0


def _hold_still(clip, window: int):
    """A still image (or a clip shorter than the encoder window) held for a whole window."""
    return clip[:1].expand(window, -1, -1, -1) if clip.shape[0] < window else clip


def _open_checkpoint(args: argparse.Namespace):
    """The trained pipeline of --checkpoint, with --guidance applied to its sampler (checked by the
    config's own rules: guidance needs a model trained with content dropout)."""
    from motionbits.config import validate
    from motionbits.pipeline import MotionBits

    pipe = MotionBits.from_checkpoint(args.checkpoint, args.device)
    if args.guidance is not None:
        pipe.cfg.diffusion.guidance = args.guidance
        validate(pipe.cfg, f"checkpoint {args.checkpoint} with --guidance")
    return pipe


def cmd_reconstruct(args: argparse.Namespace) -> None:
    from motionbits.visualize import save_video, side_by_side

    pipe = _open_checkpoint(args)
    fps_in = _input_fps(args, pipe)
    clip = _read_clip(args.input, pipe.cfg.data.image_size, args.frames, fps_in)
    out = pipe.reconstruct(clip, steps=args.sample_steps, sampler=args.sampler, seed=args.seed)[0]
    result = side_by_side([clip, out]) if args.side_by_side else out
    print(f"wrote {save_video(result, args.output, fps=_output_fps(args, fps_in), scale=args.scale)}")


def cmd_transfer(args: argparse.Namespace) -> None:
    from motionbits.visualize import save_video, side_by_side

    pipe = _open_checkpoint(args)
    size = pipe.cfg.data.image_size
    fps_in = _input_fps(args, pipe)
    content = _read_clip(args.content, size, None, fps_in)
    motion = _read_clip(args.motion, size, args.frames, fps_in)
    content = _hold_still(content, pipe.model.window)
    out = pipe.transfer(content, motion, steps=args.sample_steps, sampler=args.sampler, seed=args.seed)[0]
    if args.side_by_side:
        held = content[:1].expand(out.shape[0], -1, -1, -1)
        out = side_by_side([held, motion, out])
    print(f"wrote {save_video(out, args.output, fps=_output_fps(args, fps_in), scale=args.scale)}")


def cmd_generate(args: argparse.Namespace) -> None:
    from motionbits.generate import generate_motion
    from motionbits.prior_train import load_prior
    from motionbits.visualize import save_video

    pipe = _open_checkpoint(args)
    prior = load_prior(args.prior, pipe.device)
    size = pipe.cfg.data.image_size
    fps_in = _input_fps(args, pipe)
    content = _read_clip(args.content, size, None, fps_in)
    content = _hold_still(content, pipe.model.window)
    prompt = _read_clip(args.prompt_motion, size, None, fps_in) if args.prompt_motion else None
    out = generate_motion(pipe, prior, content, args.frames, prompt_frames=prompt, label=args.label,
                          temperature=args.temperature, top_k=args.top_k, seed=args.seed, steps=args.sample_steps,
                          sampler=args.sampler)
    print(f"wrote {save_video(out[0], args.output, fps=_output_fps(args, fps_in), scale=args.scale)}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from motionbits.evaluate.sprites_eval import evaluate_sprites

    pipe = _open_checkpoint(args)
    if args.data:
        pipe.cfg.data.root = args.data
    out = args.out or str(Path(args.checkpoint).parent if Path(args.checkpoint).is_file() else args.checkpoint)
    if args.step_study and (args.prior or pipe.cfg.data.kind != "sprites"):
        raise MotionbitsError("--step-study runs the Sprites protocol: not with --prior or a video dataset")
    if args.prior:
        from motionbits.evaluate.generation_eval import evaluate_generation
        from motionbits.evaluate.sprites_eval import get_judge
        from motionbits.prior_train import load_prior

        judge = get_judge(pipe.cfg.data.root, args.judge, Path(out), pipe.cfg.eval.judge_steps, True)
        report = evaluate_generation(pipe, load_prior(args.prior, pipe.device), judge, out,
                                     clips=args.clips or 300, steps=args.sample_steps)
        print(json.dumps(report, indent=2))
        return
    if pipe.cfg.data.kind != "sprites":
        from motionbits.evaluate.video_eval import evaluate_video

        report = evaluate_video(pipe, out, clips=args.clips, steps=args.sample_steps, lpips_path=args.lpips)
    elif args.step_study:
        from motionbits.evaluate.sprites_eval import step_study

        counts = _number_list(args.step_study, int, "--step-study")
        step_study(pipe, out, counts, judge_path=args.judge, clips=args.clips, sampler=args.sampler)
        print((Path(out) / "steps.md").read_text())
        return
    else:
        report = evaluate_sprites(pipe, out, judge_path=args.judge, clips=args.clips, steps=args.sample_steps,
                                  sampler=args.sampler)
    print((Path(out) / "eval.md").read_text() if (Path(out) / "eval.md").exists() else json.dumps(report, indent=2))


def cmd_sweep(args: argparse.Namespace) -> None:
    from motionbits.sweep import run_sweep

    cfg = _load_cfg(args)
    bits = _number_list(args.bits, float, "--bits", least=0)
    out = args.out or f"runs/{cfg.name}-sweep"
    run_sweep(cfg, bits, out, clips=args.clips, judge_path=args.judge)  # --steps is already in cfg
    print(Path(out, "sweep.md").read_text())
    print(f"wrote {out}/sweep.md, sweep.json and sweep.png")


def cmd_demo(args: argparse.Namespace) -> None:
    """Sprites end to end: build the data, train sprites-cpu, write a transfer GIF, evaluate."""
    import torch

    from motionbits.config import load_config
    from motionbits.data.sprites import compose_sprites, download_sheets, load_sprites
    from motionbits.evaluate.sprites_eval import evaluate_sprites
    from motionbits.pipeline import MotionBits
    from motionbits.train import train
    from motionbits.visualize import transfer_matrix

    _check_minutes(args.max_minutes)
    started = time.time()
    out = Path(args.out)
    cfg = load_config(args.config)
    cfg.data.root = str(out / "data")  # not out/<config name>: that is the run folder
    if args.steps:
        cfg.train.steps = args.steps
    if not (Path(cfg.data.root) / "manifest.json").exists():
        sheets = args.sheets or download_sheets(out / "sheets")
        compose_sprites(sheets, cfg.data.root)
    run_dir = out / cfg.name
    train(cfg, run_dir, max_minutes=args.max_minutes)
    pipe = MotionBits.from_checkpoint(run_dir / "last.pt")
    test = load_sprites(cfg.data.root, "test")
    # 4 contents (rows) x 4 motions (columns) from different test characters.
    pick = torch.Generator().manual_seed(1)
    idx = torch.randperm(len(test), generator=pick)[:8]
    clips = torch.from_numpy(test.frames[idx.numpy()])
    gif, png = transfer_matrix(pipe, clips[:4], clips[4:], out / "transfer.gif")
    print(f"wrote {gif} and {png}")
    # A judge already in the folder (an earlier demo, or one copied in) is reused, else trained there.
    evaluate_sprites(pipe, out, judge_path=out / "judge.safetensors", clips=args.clips)
    print((out / "eval.md").read_text())
    print(f"demo finished in {(time.time() - started) / 60:.1f} min; everything is in {out}/")


def cmd_bench(args: argparse.Namespace) -> None:
    from motionbits.bench import format_report, run_bench

    if args.profile:
        from motionbits.bench import profile_training
        from motionbits.config import load_config
        from motionbits.runtime import pick_device

        for name in args.config:
            print(f"training step of {name}, operators by own time:")
            print(profile_training(load_config(name), pick_device(args.device)))
        return
    steps = _number_list(args.sample_steps, int, "--sample-steps")
    report = run_bench(args.config, args.device, steps, repeats=args.repeats, sample_clips=args.clips,
                       compile=args.compile, out=args.out, tokenizer_path=args.tokenizer_path)
    print(format_report(report))
    if args.out:
        print(f"wrote {args.out}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="motionbits", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="build a dataset")
    dsub = d.add_subparsers(dest="kind", required=True)
    ds = dsub.add_parser("sprites", help="compose the Sprites benchmark from the LPC sheets")
    ds.add_argument("--out", required=True, help="dataset folder to write")
    ds.add_argument("--sheets", help=DEFAULT_SHEETS_HINT)
    ds.add_argument("--seed", type=int, default=0, help="seed of the 1000/296 character split")
    dv = dsub.add_parser("video", help="turn a folder of videos into clips")
    dv.add_argument("src", help="folder of videos (mp4, avi, mov, webm, mkv, gif) and/or frame folders, searched "
                                "recursively")
    dv.add_argument("out", help="dataset folder to write (frames as uint8 arrays, labels, manifest.json)")
    dv.add_argument("--size", type=int, default=128, help="side of the square frames: centre crop, then resize")
    dv.add_argument("--frames", type=int, default=16, help="frames per clip")
    dv.add_argument("--stride", type=int, default=8, help="a clip starts every this many frames (after --fps)")
    dv.add_argument("--fps", type=float, default=None,
                    help="resample every video to this frame rate first (default: keep the source's)")
    dv.add_argument("--test-fraction", type=float, default=0.2,
                    help="share of identities (of videos when there is one identity) held out for testing")
    dv.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    dv.add_argument("--identity-regex", default=None,
                    help="group files into identities for the split: the first group of this regex on the "
                         "path, e.g. 'mead_(\\w+?)_' puts all of a MEAD actor's clips on one side")
    dv.add_argument("--max-clips-per-video", type=int, default=None, help="keep only each video's first clips")
    d.set_defaults(func=cmd_data)

    t = sub.add_parser("train", help="train a model from a config")
    t.add_argument("--config", required=True, help="config file or packaged name (sprites-cpu, sprites)")
    t.add_argument("--out", help="run folder (default runs/<config name>); resumes if it has last.pt")
    t.add_argument("--data", help="dataset folder (overrides data.root)")
    t.add_argument("--steps", type=int, help="training steps (overrides train.steps); more than a finished "
                   "run's continues it with the learning-rate schedule stretched to the new length")
    t.add_argument("--tokenizer-path", help="weights of the config's tokenizer (overrides model.tokenizer_path), "
                   "e.g. the taef2 folder")
    t.add_argument("--max-minutes", type=float, default=None,
                   help="stop (and save) after this much wall-clock training time, e.g. a GPU lease")
    t.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: train.device; auto = CUDA when there is one)")
    t.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    t.set_defaults(func=cmd_train)

    def use_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--checkpoint", required=True, help="last.pt or its run folder")
        q.add_argument("--device", default="auto", help="cpu, cuda, ... (default: CUDA when there is one)")
        q.add_argument("--sample-steps", type=int, default=None, help="denoising steps (default: config)")
        q.add_argument("--sampler", choices=["euler", "heun"], default=None, help="ODE sampler (default: config)")
        q.add_argument("--guidance", type=float, default=None,
                       help="content guidance scale w (default: config; 1 = off; needs model.content_dropout)")
        q.add_argument("--seed", type=int, default=0, help="seed of the sampling noise")
        q.add_argument("--input-fps", type=float, default=None,
                       help="resample input videos to this rate (default: the rate of the model's training "
                            "clips when its dataset was made with --fps; 0: the source rate)")

    def media_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("-o", "--output", required=True, help=".gif, .mp4, .webm or .png")
        q.add_argument("--frames", type=int, default=None, help="at most this many frames")
        q.add_argument("--fps", type=float, default=None, help="output rate (default: the input rate, else 8)")
        q.add_argument("--scale", type=int, default=1, help="integer upscaling of the output")
        q.add_argument("--side-by-side", action="store_true", help="inputs beside the result in each frame")

    r = sub.add_parser("reconstruct", help="rebuild a clip from its own content and motion")
    use_args(r)
    r.add_argument("--input", required=True, help="video/GIF/frames folder, or sprites:ROOT:SPLIT:INDEX")
    media_args(r)
    r.set_defaults(func=cmd_reconstruct)

    x = sub.add_parser("transfer", help="content of one clip, motion of another")
    use_args(x)
    x.add_argument("--content", required=True, help="image, video or sprites:ROOT:SPLIT:INDEX")
    x.add_argument("--motion", required=True, help="driving video or sprites:ROOT:SPLIT:INDEX")
    media_args(x)
    x.set_defaults(func=cmd_transfer)

    g = sub.add_parser("generate", help="new motion for a content, sampled by the motion prior")
    use_args(g)
    g.add_argument("--prior", required=True, help="prior.pt from `motionbits train --config prior-...`")
    g.add_argument("--content", required=True, help="image, video or sprites:ROOT:SPLIT:INDEX")
    g.add_argument("--prompt-motion", help="continue the motion of this clip")
    g.add_argument("--label", type=int, default=None, help="motion class (a prior trained with labels)")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of the prior")
    g.add_argument("--top-k", type=int, default=None, help="sample each code among its k likeliest only")
    g.add_argument("-o", "--output", required=True, help=".gif, .mp4, .webm or .png")
    g.add_argument("--frames", type=int, default=16, help="frames to generate (beyond the window: sliding context)")
    g.add_argument("--fps", type=float, default=None, help="output rate (default: the input rate, else 8)")
    g.add_argument("--scale", type=int, default=1, help="integer upscaling of the output")
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("evaluate", help="measure a trained model on the test split")
    use_args(e)
    e.add_argument("--judge", help="judge .safetensors (trained and saved there if missing)")
    e.add_argument("--data", help="dataset folder (default: the checkpoint's)")
    e.add_argument("--clips", type=int, default=None, help="test clips to evaluate (default: config)")
    e.add_argument("--out", help="report folder (default: the checkpoint's folder)")
    e.add_argument("--prior", help="evaluate motion generation with this prior.pt instead")
    e.add_argument("--lpips", metavar="DIR", help="video protocol: also report LPIPS-VGG, weights from DIR "
                                                  "(vgg16.pth + lin.pth, see motionbits/evaluate/lpips.py)")
    e.add_argument("--step-study", metavar="N,N,...",
                   help="Sprites: evaluate at each of these step counts and write steps.md / steps.json")
    e.set_defaults(func=cmd_evaluate)

    w = sub.add_parser("sweep", help="train and evaluate one config at several bitrates: table + plot")
    w.add_argument("--config", required=True, help="config file or packaged name")
    w.add_argument("--bits", required=True, help="comma-separated target bits per frame, e.g. 4,16,48")
    w.add_argument("--data", help="dataset folder (overrides data.root)")
    w.add_argument("--steps", type=int, help="training steps per rate (default: config)")
    w.add_argument("--tokenizer-path", help="weights of the config's tokenizer (overrides model.tokenizer_path)")
    w.add_argument("--clips", type=int, default=None, help="test clips to evaluate (default: config)")
    w.add_argument("--judge", help="Sprites judge .safetensors (trained once and shared)")
    w.add_argument("--out", help="sweep folder (default runs/<config>-sweep)")
    w.add_argument("--device", default="auto", help="cpu, cuda, ... (default: CUDA when there is one)")
    w.set_defaults(func=cmd_sweep)

    m = sub.add_parser("demo", help="Sprites end to end on the CPU: data, training, GIF, evaluation")
    m.add_argument("--out", default="outputs/demo", help="folder for the data, run, GIF and report")
    m.add_argument("--config", default="sprites-cpu", help="a Sprites config (file or packaged name)")
    m.add_argument("--sheets", help=DEFAULT_SHEETS_HINT)
    m.add_argument("--steps", type=int, help="training steps (default: the config's)")
    m.add_argument("--max-minutes", type=float, default=None,
                   help="stop training (and go on to the GIF and evaluation) after this much wall-clock time")
    m.add_argument("--clips", type=int, default=None, help="test clips to evaluate (default: config)")
    m.set_defaults(func=cmd_demo)
    b = sub.add_parser("bench", help="training and sampling speed, FLOPs and MFU of named configs")
    b.add_argument("--config", nargs="+", default=["sprites-cpu"], help="config files or packaged names")
    b.add_argument("--device", default="auto", help="cpu, cuda, ... (default: CUDA when there is one)")
    b.add_argument("--sample-steps", default="1,4,8,25,50", help="comma-separated denoising step counts")
    b.add_argument("--repeats", type=int, default=5, help="timed repeats of each measurement (their mean is reported)")
    b.add_argument("--clips", type=int, default=4, help="clips per sampling batch")
    b.add_argument("--compile", action="store_true", help="also measure torch.compile")
    b.add_argument("--profile", action="store_true", help="instead: where the training step's time goes (torch.profiler)")
    b.add_argument("--out", default=None, help="write the JSON report here")
    b.add_argument("--tokenizer-path", default=None,
                   help="weights of the configs' tokenizer (e.g. the taef2 folder): sampling is then timed to RGB frames")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except MotionbitsError as err:
        print(f"motionbits: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("motionbits: interrupted (the last checkpoint is kept; run the same command to resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
