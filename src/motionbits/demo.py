"""`motionbits demo`: the Sprites benchmark end to end on a CPU, offline, no flags.

Composes the benchmark from the LPC sheets shipped with the package, trains `sprites-cpu`, draws a
motion-transfer GIF (4 test contents x 4 test motions), evaluates on test characters the model
never saw; prints the time each phase took. Everything goes to one folder (default outputs/demo).

It also writes OUT/prior.yaml, the motion prior's config for its model (prior-sprites), but trains
it only with prior_steps (`--prior-steps N`): on an AMD EPYC in fp32, extracting the codes of the
11,664 clips costs about 450 CPU-seconds and each prior step 2.1 (the 600-step recipe about 15
minutes on 2 cores, 100 steps still 6), far more than the minute or two the demo may add;
`motionbits train --config OUT/prior.yaml --out RUN/prior` trains it later.
`motionbits app` finds a prior in RUN/prior/ for its Generate tab, and says how to train one.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from motionbits.atomic_files import write_json_atomic, write_text_atomic
from motionbits.errors import MotionbitsError


def run_demo(out: str | Path = "outputs/demo", config: str = "sprites-cpu", sheets: str | None = None,
             steps: int | None = None, max_minutes: float | None = None, clips: int | None = None,
             prior_steps: int = 0) -> dict:
    from motionbits.api import MotionBits
    from motionbits.config import load_config
    from motionbits.data.sprites import compose_sprites, load_sprites
    from motionbits.evaluation.sprites import evaluate_sprites
    from motionbits.training.bcd import train
    from motionbits.training.prior import train_prior_from_config
    from motionbits.visualize import transfer_matrix

    out = Path(out)
    cfg = load_config(config)
    if cfg.data.kind != "sprites":
        raise MotionbitsError(f"config {config}: the demo runs the Sprites benchmark, this config has "
                              f"data.kind: {cfg.data.kind} (use `motionbits train` for it)")
    cfg.data.root = str(out / "data")  # not out/<config name>: that is the run folder
    if steps:
        cfg.train.steps = steps
    minutes: dict[str, float] = {}

    def phase(name: str, started: float) -> None:
        minutes[name] = round((time.time() - started) / 60, 2)

    t = time.time()
    if not (Path(cfg.data.root) / "manifest.json").exists():
        compose_sprites(sheets or cfg.data.sheets, cfg.data.root)
    phase("data", t)
    t = time.time()
    run_dir = out / cfg.name
    train(cfg, run_dir, max_minutes=max_minutes)
    phase("training", t)
    t = time.time()
    pipe = MotionBits.from_checkpoint(run_dir / "last.pt")
    test = load_sprites(cfg.data.root, "test")
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(1))[:8]  # 4 contents x 4 motions
    clips_u8 = torch.from_numpy(test.frames[pick.numpy()])
    gif, png = transfer_matrix(pipe, clips_u8[:4], clips_u8[4:], out / "transfer.gif")
    print(f"wrote {gif} and {png}")
    phase("transfer picture", t)
    t = time.time()
    # A judge already in the folder (an earlier demo, or one copied in) is reused; else, on the default
    # benchmark, the one the package ships (about 50 s less on 2 CPU cores); else one is trained there.
    report = evaluate_sprites(pipe, out, judge_path=out / "judge.safetensors", clips=clips)
    phase("judge and evaluation", t)
    prior_config = write_prior_config(run_dir, out, prior_steps or None)
    if prior_steps:
        t = time.time()
        print(f"wrote {train_prior_from_config(prior_config, run_dir / 'prior')}")
        phase("motion prior", t)
    minutes["total"] = round(sum(minutes.values()), 2)
    write_json_atomic(out / "timings.json", minutes)
    print((out / "eval.md").read_text())
    print("minutes: " + ", ".join(f"{k} {v:g}" for k, v in minutes.items()) + f"; everything is in {out}/")
    return report



def write_prior_config(run_dir: Path, out: Path, steps: int | None = None) -> Path:
    """out/prior.yaml: prior-sprites on the demo's model (its recipe's steps unless `steps`)."""
    import yaml

    prior = {"checkpoint": str((run_dir / "last.pt").resolve()), **({"steps": steps} if steps else {})}
    path = out / "prior.yaml"
    write_text_atomic(path, yaml.safe_dump({"base": "prior-sprites", "name": "prior-sprites-demo", "prior": prior},
                                           sort_keys=False))
    return path
