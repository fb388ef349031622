"""Can the decoder draw a mouth at all? A diagnostic with the true mouth opening as an extra condition.

A face model's codes carry the mouth (a probe reads it back at r 0.39) while its rebuilt frames do
not show it (r at the null's level). Either the codes say it too faintly, or the decoder cannot draw
a mouth from a per-frame condition in the training it gets. This script tells the two apart: it
trains a copy of a finished face model further (the run's own data, draws and loss) with one added
input, the true inner-lip opening of each rebuilt frame (dlib landmarks of the training frames),
projected by a small layer whose output starts at zero onto the frame's motion condition; with
--mouth-weight the mouth's latent cells count that many times in the loss. Then it rebuilds
clips with (a) the true opening, (b) the opening held at the clip's first rebuilt frame, and the
original model with its codes alone, and reads the mouth of every rebuilt frame with dlib.

If (a) follows the mouth and (b) does not, the decoder can draw a mouth from its condition and the
codes are what lacks; if (a) does not either, the decoder (its conditioning, its training) is.
The oracle is a diagnostic, not a model: nothing a user trains has it.

    python scripts/mouth_oracle.py --checkpoint RUN --out OUT [--mouth-weight 8] [--steps 1200] [--person obama]

Writes OUT/mouth_oracle.{json,md}; the training clips' mouth openings are cached in OUT/mouth.npz and the
trained copy in OUT/oracle_copy.pt (tensors only; a second run with the same OUT measures it again).
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from motionbits.atomic_files import atomic_path, write_json_atomic, write_text_atomic
from motionbits.checkpoints import checkpoint_config, read_checkpoint
from motionbits.data.clips import load_clips
from motionbits.data.colour_copies import colour_copies
from motionbits.data.folders import dataset_manifest
from motionbits.errors import MotionbitsError
from motionbits.evaluation.faces import read_faces
from motionbits.evaluation.face_motion import correlation, sums
from motionbits.evaluation.face_signals import motion_signals
from motionbits.models.bcd import MOUTH_COLUMNS, MOUTH_ROWS, SameVideoClips, mouth_loss_map
from motionbits.training.bcd import BCDTask
from motionbits.api import MotionBits

GAP_SIGMAS = (0.5, 2.0, 5.0, 10.0, 20.0)


def mouth_openings(frames: np.ndarray, label: str) -> np.ndarray:
    """uint8 clips [N, T, H, W, 3] -> inner-lip opening [N, T] (NaN where dlib finds no face)."""
    out = np.full(frames.shape[:2], np.nan)
    for i in tqdm(range(len(frames)), desc=f"landmarks ({label})", file=sys.stderr):
        out[i] = motion_signals(read_faces(frames[i], embed=False).landmarks)["mouth"]
    return out


def pooled_r(output: np.ndarray, truth: np.ndarray, draws: int = 2000, seed: int = 0) -> dict:
    """Pooled r of [N, T] signals after removing each clip's mean (face_motion's sums, so a clip needs
    MIN_FRAMES frames with a mouth in both), with a 95 % bootstrap over clips; 0 where nothing moves."""
    per_clip = [sums(a, b) for a, b in zip(output, truth)]
    kept = np.array([s for s in per_clip if s is not None]).reshape(-1, 3)           # [N kept, 3]

    def r(s):
        return float(np.nan_to_num(correlation(s)))
    rng = np.random.default_rng(seed)
    boot = [r(kept[rng.integers(0, len(kept), len(kept))].sum(0)) for _ in range(draws)]
    return {"r": r(kept.sum(0)), "interval": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "clips": len(kept)}


class Oracle(nn.Module):
    """The standardised mouth opening of each rebuilt frame [B, T'] -> an addition to its condition [B, T', Cm]."""
    def __init__(self, dim: int, mean: float, std: float):
        super().__init__()
        self.mean, self.std = mean, std
        self.proj = nn.Sequential(nn.Linear(1, 64), nn.SiLU(), nn.Linear(64, dim))
        nn.init.zeros_(self.proj[-1].weight)
        nn.init.zeros_(self.proj[-1].bias)

    def forward(self, opening: torch.Tensor) -> torch.Tensor:
        x = ((opening - self.mean) / self.std).nan_to_num(0.0)
        return self.proj(x[..., None].float())


def mouth_cells(size: int) -> tuple[slice, slice]:
    """The rows and columns of a size x size latent where the mouth lies in a face crop."""
    return (slice(int(MOUTH_ROWS[0] * size), int(np.ceil(MOUTH_ROWS[1] * size))),
            slice(int(MOUTH_COLUMNS[0] * size), int(np.ceil(MOUTH_COLUMNS[1] * size))))


def oracle_loss(task: BCDTask, oracle: Oracle, mouth: torch.Tensor, draws, mouth_weight: float = 1.0) -> torch.Tensor:
    """BCDModel.forward's loss with the oracle added to the rebuilt frames' condition, and the mouth's
    latent cells counting `mouth_weight` times the others (the map's mean kept at 1)."""
    model, half = task.model, task.model.window
    z = task.latents(draws.index, draws.colour_copy)                              # [b, T, C, h, w]
    if draws.content_index is not None:
        z = torch.cat([task.latents(draws.content_index, draws.colour_copy)[:, :half], z[:, half:]], dim=1)
    content, motion, target = model.split_clip(z, draws)
    q = model.quantizer(motion, draws.gumbel)
    quantized = q.quantized if model.motion_context is None else model.motion_context(q.quantized)
    quantized = quantized + oracle(mouth[draws.index])                             # [b, T', Cm]
    where = mouth_loss_map(target.shape[-1], mouth_weight)                          # [h, w] or None
    per_frame = model.edm.loss(lambda x, c: model.denoiser(x, c, quantized, content), target, draws.sigma,
                               draws.noise, None if where is None else where.to(target.device))      # [b, T']
    cfg = task.cfg.train
    return per_frame.mean() + cfg.bitrate_lambda * (q.rate_bits - cfg.target_bits) ** 2


@torch.no_grad()
def conditions(model, oracle: Oracle | None, clips, index: torch.Tensor, content_index: torch.Tensor,
               opening: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The second half of clips `index` as the decoder sees it, read from the first half of clips
    `content_index` (the content, and the reference the codes are read against, as in training)
    -> content [B, K, Cc], motion condition [B, T', Cm], target latents [B, T', C, h, w]."""
    half = model.window
    source = clips.latents(content_index)[:, :half]
    target = clips.latents(index)[:, half:]
    condition = model.motion_condition(model.encode_motion(target, reference=source))
    if oracle is not None:
        condition = condition + oracle(opening)
    return model.encode_content(source), condition, target


@torch.no_grad()
def rebuild(pipe: MotionBits, model, content: torch.Tensor, condition: torch.Tensor, seed: int = 0) -> np.ndarray:
    """-> uint8 frames [B, T', H, W, 3], rendered with the config's sampler from seeded noise."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn((*condition.shape[:2], model.latent_channels, model.latent_size, model.latent_size), generator=g)
    return pipe.to_frames(model.render_condition(content, condition, noise)).numpy()


@torch.no_grad()
def loss_gaps(model, content: torch.Tensor, right: torch.Tensor, wrong: torch.Tensor, target: torch.Tensor,
              seed: int = 0) -> dict:
    """Denoising error with the `wrong` condition over the error with the `right` one, minus 1, at
    each of GAP_SIGMAS, on the mouth's latent cells and on the whole frame (0: the difference is ignored)."""
    rows, cols = mouth_cells(target.shape[-1])
    g = torch.Generator().manual_seed(seed)
    out = {}
    for sigma in GAP_SIGMAS:
        s = torch.full(target.shape[:2], sigma)
        noisy = target + sigma * torch.randn(target.shape, generator=g)
        errors = [(model.edm.denoise(lambda x, c: model.denoiser(x, c, cond, content), noisy, s) - target).pow(2)
                  for cond in (right, wrong)]
        out[str(sigma)] = {"mouth": float(errors[1][..., rows, cols].mean() / errors[0][..., rows, cols].mean() - 1),
                           "frame": float(errors[1].mean() / errors[0].mean() - 1)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a finished face run (folder or last.pt)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", help="the run's data folder, if it moved")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--mouth-weight", type=float, default=1.0,
                    help="the mouth's latent cells count this many times in the loss")
    ap.add_argument("--clips", type=int, default=96, help="clips rebuilt per split")
    ap.add_argument("--person", default="obama", help="the held-back clips are this identity's test clips")
    args = ap.parse_args(argv)
    try:
        measure(args)
    except MotionbitsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def measure(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = read_checkpoint(args.checkpoint)
    cfg = checkpoint_config(ckpt)
    if args.data:
        cfg.data.root = args.data
    device = torch.device("cpu")
    clips = load_clips(cfg, "train", device=device, progress=True)
    test = load_clips(cfg, "test", device=device, progress=True)
    task = BCDTask(cfg, clips, colour_copies(cfg, clips, progress=True) if cfg.train.augment_clip_colors else [])
    task.model.load_state_dict(ckpt["ema"])
    original = copy.deepcopy(task.model).eval()
    pipe = MotionBits(original, clips.tokenizer, cfg)

    half = task.model.window
    pick = torch.Generator().manual_seed(0)
    names = dataset_manifest(cfg.data.root, "test", "video")[1]["identities"]
    test_ids = np.flatnonzero(np.asarray(test.labels["identity"]) == names.index(args.person)) if args.person in names else []
    if not len(test_ids):
        raise MotionbitsError(f"{cfg.data.root}: no held-back clips of {args.person!r} (its people: {', '.join(names)})")
    test_index = torch.from_numpy(test_ids[np.linspace(0, len(test_ids) - 1, min(args.clips, len(test_ids))).astype(int)])
    cache = out / "mouth.npz"     # the rebuilt halves' openings of every training clip (a few minutes of dlib)
    if cache.exists():
        train_mouth = np.load(cache)["train"]
    else:
        train_mouth = mouth_openings(clips.frames[:, half:].numpy(), "training clips")
        with atomic_path(cache) as tmp, open(tmp, "wb") as f:
            np.savez(f, train=train_mouth)
    test_mouth = mouth_openings(test.frames[test_index, half:].numpy(), "held-back clips")
    mean, std = float(np.nanmean(train_mouth)), float(np.nanstd(train_mouth))
    oracle = Oracle(task.model.quantizer.dim, mean, std)
    mouth = torch.from_numpy(train_mouth)

    # ---- train the copy with the oracle (the run's draws, a warm-up then a constant rate), or read it back
    model = task.model
    saved = out / "oracle_copy.pt"      # tensors only, read with weights_only
    settings = torch.tensor([args.steps, args.lr, args.mouth_weight], dtype=torch.float64)
    if saved.exists():
        state = torch.load(saved, map_location="cpu", weights_only=True)
        if "settings" not in state or not torch.equal(state["settings"], settings):
            raise MotionbitsError(f"{saved}: a copy trained with other --steps, --lr or --mouth-weight; "
                                  "give another --out or delete it")
        model.load_state_dict(state["model"])
        oracle.load_state_dict(state["oracle"])
        losses, minutes = state["losses"].tolist(), float(state["minutes"])
    else:
        started, losses = time.time(), []
        model.train()
        params = list(model.parameters()) + list(oracle.parameters())
        opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
        g = torch.Generator().manual_seed(cfg.train.seed + 1)
        for step in tqdm(range(args.steps), desc="oracle training", file=sys.stderr):
            for group in opt.param_groups:
                group["lr"] = args.lr * min(1.0, (step + 1) / 50)
            draws = task.draw(g, cfg.train.batch_size)
            loss = oracle_loss(task, oracle, mouth, draws, args.mouth_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
            opt.step()
            losses.append(loss.item())
        minutes = (time.time() - started) / 60
        with atomic_path(saved) as tmp, open(tmp, "wb") as f:
            torch.save({"model": model.state_dict(), "oracle": oracle.state_dict(), "losses": torch.tensor(losses),
                        "minutes": torch.tensor(minutes), "settings": settings}, f)
    model.eval()
    oracle.eval()

    # ---- rebuild and read the mouths
    splits = {}
    train_index = torch.randperm(len(clips), generator=pick)[: args.clips]
    gap = round(cfg.train.content_gap_seconds * (cfg.data.fps or 0)) if cfg.train.content_from_video else 0
    train_video = SameVideoClips(clips.labels["video"], clips.labels["start"], gap)   # the content as the run read it
    test_video = SameVideoClips(test.labels["video"], test.labels["start"], gap)
    splits["training clips"] = (clips, train_index, train_video.draw(train_index, pick), train_mouth[train_index.numpy()])
    splits["held-back clips"] = (test, test_index, test_video.draw(test_index, pick), test_mouth)
    report = {"checkpoint": str(ckpt["path"]), "steps": args.steps, "lr": args.lr, "mouth_weight": args.mouth_weight,
              "minutes": minutes,
              "final_loss": float(np.mean(losses[-50:])) if losses else None, "splits": {}}
    for name, (data, index, content_index, truth) in splits.items():
        opening = torch.from_numpy(truth)
        held = opening[:, :1].expand_as(opening)
        content, plain, target = conditions(original, None, data, index, content_index, None)
        oracle_content, right, _ = conditions(model, oracle, data, index, content_index, opening)
        _, wrong, _ = conditions(model, oracle, data, index, content_index, held)
        rows = {
            "codes alone (the model as trained)": rebuild(pipe, original, content, plain),
            "oracle copy, true opening": rebuild(pipe, model, oracle_content, right),
            "oracle copy, opening held": rebuild(pipe, model, oracle_content, wrong),
            "tokenizer only": pipe.to_frames(target).numpy(),
        }
        following = {row: pooled_r(mouth_openings(frames, row), truth) for row, frames in rows.items()}
        report["splits"][name] = {"mouth_r": following,
                                  "loss_gap_opening_held": loss_gaps(model, oracle_content, right, wrong, target)}
    write_json_atomic(out / "mouth_oracle.json", report)
    lines = ["# Can the decoder draw a mouth? (scripts/mouth_oracle.py)", "",
             f"A copy of `{Path(report['checkpoint']).parent.name}` trained {args.steps} more steps with the true "
             f"inner-lip opening of each rebuilt frame as an extra condition"
             + (f", the mouth's latent cells weighted {args.mouth_weight:g} times in the loss" if args.mouth_weight != 1 else "")
             + f" ({report['minutes']:.1f} min, loss "
             f"{report['final_loss'] or 0:.4f}). Mouth opening of the rebuilt frames against the true one: pooled r "
             "over the 4 rebuilt frames of each clip (each clip's mean removed), 95 % bootstrap over clips.", ""]
    for name, split in report["splits"].items():
        lines += [f"## {name}", "", "| row | mouth r | clips |", "|---|---|---|"]
        lines += [f"| {row} | {v['r']:.2f} [{v['interval'][0]:.2f}, {v['interval'][1]:.2f}] | {v['clips']} |"
                  for row, v in split["mouth_r"].items()]
        gaps = split["loss_gap_opening_held"]
        lines += ["", "The oracle copy's denoising error with the opening held over its error with the true one, "
                  "minus 1 (0: the opening is ignored), on the mouth's latent cells and on the whole frame:", "",
                  "| sigma | " + " | ".join(gaps) + " |", "|---" * (len(gaps) + 1) + "|",
                  "| mouth cells | " + " | ".join(f"{v['mouth']:+.3f}" for v in gaps.values()) + " |",
                  "| whole frame | " + " | ".join(f"{v['frame']:+.3f}" for v in gaps.values()) + " |", ""]
    write_text_atomic(out / "mouth_oracle.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
