"""Training the motion prior on the codes of a trained motionbits model.

    frames uint8 [N, T, H, W, 3] ──extract_codes(pipe)──► codes [N, T, Ng] int16, content [N, K, Cc] fp16
    (codes, content, labels) ──train_prior──► out_dir/prior.pt  (+ out_dir/tensorboard, metrics.jsonl)
    load_prior(out_dir/prior.pt) ──► MotionPrior (EMA weights) ──generate──► codes ──pipe.render──► video

The loop mirrors motionbits.train: batches drawn from a seeded generator, AdamW with warm-up and
cosine decay, an EMA copy, atomic checkpoints holding everything needed to resume exactly (a
killed run started again with the same arguments continues bit for bit).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from motionbits import checkpoint as ckpt_io
from motionbits.config import Config
from motionbits.errors import MotionbitsError
from motionbits.models.prior import MotionPrior, PriorConfig
from motionbits.runtime import autocast
from motionbits.train import update_ema

PRIOR_FORMAT = "motionbits-prior"
CHECKPOINT_NAME = "prior.pt"


# ---- codes from a trained model --------------------------------------------------------------------
@torch.no_grad()
def extract_codes(pipe, frames_u8: np.ndarray, batch_size: int = 64,
                  progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """frames uint8 [N, T, H, W, 3] (an array or memmap) -> codes int16 [N, T, Ng] and content
    float16 [N, K, Cc], both numpy. `pipe` is a motionbits.pipeline.MotionBits."""
    frames_u8 = np.asarray(frames_u8) if not isinstance(frames_u8, np.ndarray) else frames_u8
    if frames_u8.ndim != 5 or frames_u8.dtype != np.uint8:
        raise MotionbitsError(f"expected uint8 frames [N, T, H, W, 3], got {frames_u8.dtype} {frames_u8.shape}")
    codes, content = [], []
    for start in tqdm(range(0, len(frames_u8), batch_size), desc="extract codes", disable=not progress,
                      dynamic_ncols=True):
        # Tokenize once, read both content and motion from the same latents.
        z = pipe.to_latents(np.ascontiguousarray(frames_u8[start:start + batch_size]))
        with autocast(pipe.device, pipe.bf16):
            content.append(pipe.model.encode_content(z).float().cpu().numpy().astype(np.float16))
            codes.append(pipe.model.encode_motion(z).cpu().numpy().astype(np.int16))
    return np.concatenate(codes), np.concatenate(content)


# ---- data -------------------------------------------------------------------------------------------
def _as_tensors(codes, content, labels) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    codes_t = torch.as_tensor(np.asarray(codes)).long()                       # [N, T, Ng]
    content_t = torch.as_tensor(np.asarray(content)).float()                  # [N, K, Cc]
    labels_t = None if labels is None else torch.as_tensor(np.asarray(labels)).long().reshape(-1)
    if codes_t.ndim != 3 or content_t.ndim != 3 or codes_t.shape[0] != content_t.shape[0]:
        raise MotionbitsError(f"expected codes [N, T, Ng] and content [N, K, Cc] for the same N clips, "
                              f"got {tuple(codes_t.shape)} and {tuple(content_t.shape)}")
    if labels_t is not None and labels_t.shape[0] != codes_t.shape[0]:
        raise MotionbitsError(f"{labels_t.shape[0]} labels for {codes_t.shape[0]} clips")
    return codes_t, content_t, labels_t


def _fingerprint(codes: torch.Tensor, content: torch.Tensor, labels: torch.Tensor | None) -> str:
    """A resumed run must see the same training data, or it would not continue the same run."""
    h = hashlib.sha256()
    for t in (codes.to(torch.int16), content.to(torch.float16), labels):
        if t is not None:
            h.update(str(tuple(t.shape)).encode())
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def prior_config_for(model_cfg: Config, **overrides: Any) -> PriorConfig:
    """A PriorConfig matching a trained motionbits model's config (groups, codebook, content width,
    clip length); `overrides` set the other fields (width, depth, num_classes, ...)."""
    m = model_cfg.model
    values = {"max_frames": model_cfg.data.frames, "groups": m.groups, "codebook_size": m.codebook_size,
              "content_dim": m.content_dim, **overrides}
    return PriorConfig.from_dict(values)


def default_prior_config(codes: torch.Tensor, content: torch.Tensor, labels: torch.Tensor | None) -> PriorConfig:
    """Sizes read off the data: groups, codebook (at least the largest code seen), content width,
    clip length, classes."""
    return PriorConfig(max_frames=codes.shape[1], groups=codes.shape[2],
                       codebook_size=max(16, int(codes.max()) + 1), content_dim=content.shape[2],
                       num_classes=0 if labels is None else int(labels.max()) + 1)


def prior_learning_rate(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak (as motionbits.train)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


# ---- evaluation -------------------------------------------------------------------------------------
@torch.no_grad()
def test_nll_bits(prior: MotionPrior, codes, content, labels=None, batch_size: int = 1024) -> float:
    """Mean negative log-likelihood of held-out clips, in bits per frame (lower is better; the
    ceiling of a uniform prior is groups * log2(codebook_size))."""
    codes_t, content_t, labels_t = _as_tensors(codes, content, labels)
    device = next(prior.parameters()).device
    was_training = prior.training
    prior.eval()
    total, count = 0.0, 0
    for start in range(0, len(codes_t), batch_size):
        sl = slice(start, start + batch_size)
        label = None if labels_t is None else labels_t[sl].to(device)
        out = prior.loss(codes_t[sl].to(device), content_t[sl].to(device), label)
        n = codes_t[sl].shape[0]
        total += out["bits_per_frame"].item() * n
        count += n
    prior.train(was_training)
    return total / max(count, 1)


test_nll_bits.__test__ = False  # a library function, not a pytest test, even when imported into one


def unigram_bits(train_codes: torch.Tensor, eval_codes: torch.Tensor, codebook_size: int) -> float:
    """Bits per frame of the per-group code frequencies (add-one smoothed): the baseline a prior
    must beat to have learned anything about motion beyond code usage."""
    n = train_codes.shape[-1]
    counts = torch.stack([torch.bincount(train_codes[..., g].reshape(-1), minlength=codebook_size)
                          for g in range(n)]).double() + 1                        # [Ng, K_e]
    logp = (counts / counts.sum(-1, keepdim=True)).log2()
    flat = eval_codes.reshape(-1, n)
    return float(-logp[torch.arange(n), flat].sum(-1).mean())


# ---- training ---------------------------------------------------------------------------------------
def train_prior(codes, content, labels=None, prior_cfg: PriorConfig | None = None, steps: int = 600,
                batch_size: int = 128, lr: float = 1e-3, out_dir: str | Path = "runs/prior", seed: int = 0,
                progress: bool = True, val: tuple | None = None, *, warmup_steps: int = 50,
                weight_decay: float = 0.05, ema_decay: float = 0.995, grad_clip: float = 1.0,
                log_every: int = 50, checkpoint_every: int = 250, eval_every: int = 100,
                max_steps: int | None = None, fresh: bool = False,
                device: str | torch.device = "cpu") -> tuple[MotionPrior, dict[str, float]]:
    """Train a MotionPrior; returns (EMA prior in eval mode, metrics).

    codes [N, T, Ng] int, content [N, K, Cc], labels [N] int (or None; -1 = unlabelled clip);
    val = (codes, content, labels) held out, scored every `eval_every` steps. out_dir/prior.pt is
    resumed when present (unless fresh); `max_steps` stops early as if killed (tests). metrics:
    train/val bits per frame of the EMA model (with and without labels when the prior has them),
    plus the uniform and unigram baselines.

    The defaults are sized for Sprites (9000 clips x 8 frames x 8 groups): 600 steps of 128 clips
    (~8 epochs). On Sprites-sized synthetic codes the held-out bits stop improving after ~300
    steps and slowly rise past ~500 (the content is unique per clip, so the model can memorise);
    watch val_bits_per_frame.
    """
    codes_t, content_t, labels_t = _as_tensors(codes, content, labels)
    cfg = prior_cfg or default_prior_config(codes_t, content_t, labels_t)
    if codes_t.shape[1] > cfg.max_frames or codes_t.shape[2] != cfg.groups or content_t.shape[2] != cfg.content_dim:
        raise MotionbitsError(f"data (clips of {codes_t.shape[1]} frames x {codes_t.shape[2]} groups, content "
                              f"width {content_t.shape[2]}) does not fit the prior config {cfg.to_dict()}")
    if int(codes_t.max()) >= cfg.codebook_size or int(codes_t.min()) < 0:
        raise MotionbitsError(f"codes must lie in 0..{cfg.codebook_size - 1}, found {int(codes_t.min())}..{int(codes_t.max())}")
    if labels_t is not None and (cfg.num_classes == 0 or int(labels_t.max()) >= cfg.num_classes):
        raise MotionbitsError(f"labels need num_classes > {int(labels_t.max())} in the prior config, got {cfg.num_classes}")
    device = torch.device(device)
    out_dir = Path(out_dir)
    path = out_dir / CHECKPOINT_NAME
    hparams = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "warmup_steps": warmup_steps,
               "weight_decay": weight_decay, "ema_decay": ema_decay, "grad_clip": grad_clip,
               "data": _fingerprint(codes_t, content_t, labels_t)}

    torch.manual_seed(seed)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # tiny optimizer moments turn denormal and crawl on CPUs
    prior = MotionPrior(cfg).to(device)
    ema = copy.deepcopy(prior).requires_grad_(False).eval()
    # Decay matrices and embeddings only; biases, norms and the start vector stay free.
    decay = [p for p in prior.parameters() if p.ndim >= 2]
    no_decay = [p for p in prior.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.99))
    generator = torch.Generator().manual_seed(seed)
    step = 0

    if path.exists() and not fresh:
        ckpt = read_prior_checkpoint(path)
        if ckpt["config"] != cfg.to_dict() or ckpt.get("train") != hparams:
            raise MotionbitsError(f"{path} was made with another prior config, schedule or training data; "
                                  f"use a fresh out_dir (or fresh=True) to start over")
        prior.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step = ckpt["step"]
        generator.set_state(ckpt["generator"])
        ckpt_io.set_rng_state(ckpt["rng"])
        if progress:
            print(f"resuming {path} at step {step}")
    out_dir.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        ckpt_io.save_atomic({"format": PRIOR_FORMAT, "version": ckpt_io.FORMAT_VERSION, "config": cfg.to_dict(),
                             "train": hparams, "model": prior.state_dict(), "ema": ema.state_dict(),
                             "optimizer": optimizer.state_dict(), "step": step,
                             "generator": generator.get_state(), "rng": ckpt_io.rng_state()}, path)

    val_t = None if val is None else _as_tensors(*val)
    eval_clips = 1024
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out_dir / "tensorboard"))
    stop_at = min(steps, max_steps) if max_steps else steps
    bar = tqdm(total=stop_at, initial=step, desc="train prior", disable=not progress, dynamic_ncols=True)
    running: dict[str, torch.Tensor] = {}
    postfix: dict[str, str] = {}
    count, started = 0, time.time()
    prior.train()
    while step < stop_at:
        for group in optimizer.param_groups:
            group["lr"] = prior_learning_rate(step, steps, lr, warmup_steps)
        index = torch.randint(0, len(codes_t), (batch_size,), generator=generator)
        label = None if labels_t is None else labels_t[index].to(device)
        out = prior.loss(codes_t[index].to(device), content_t[index].to(device), label)
        out["loss"].backward()
        out["grad_norm"] = torch.nn.utils.clip_grad_norm_(prior.parameters(), grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        update_ema(ema, prior, min(ema_decay, (1 + step) / (10 + step)))  # short EMA warm-up
        step += 1
        for k, v in out.items():
            running[k] = running.get(k, 0) + v.detach()
        count += 1
        bar.update(1)
        if step % log_every == 0 or step == stop_at:
            means = {k: (v / count).item() for k, v in running.items()}
            means["clips_per_s"] = count * batch_size / max(time.time() - started, 1e-9)
            with open(out_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": step, **means}) + "\n")
            for k, v in means.items():
                writer.add_scalar(f"prior/{k}", v, step)
            writer.add_scalar("prior/lr", prior_learning_rate(step, steps, lr, warmup_steps), step)
            postfix["bits"] = f"{means['bits_per_frame']:.2f}"
            bar.set_postfix(postfix)
            running, count, started = {}, 0, time.time()
        if val_t is not None and eval_every and step % eval_every == 0 and step < stop_at:
            # The EMA on held-out clips: the curve to watch for over-fitting (content is unique per
            # clip, so a large prior can memorise a clip's codes from its content).
            val_bits = test_nll_bits(ema, val_t[0][:eval_clips], val_t[1][:eval_clips],
                                     None if val_t[2] is None else val_t[2][:eval_clips])
            writer.add_scalar("prior/val_bits_per_frame", val_bits, step)
            with open(out_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": step, "val_bits_per_frame": val_bits}) + "\n")
            postfix["val"] = f"{val_bits:.2f}"
            bar.set_postfix(postfix)
        if step % checkpoint_every == 0 and step < stop_at:
            save()
    bar.close()
    save()

    metrics = evaluate_prior(ema, codes_t, content_t, labels_t, val_t)
    for k, v in metrics.items():
        writer.add_scalar(f"prior_eval/{k}", v, step)
    writer.close()
    if progress:
        tqdm.write("prior: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    return ema, metrics


def evaluate_prior(prior: MotionPrior, codes: torch.Tensor, content: torch.Tensor, labels: torch.Tensor | None,
                   val: tuple | None, max_clips: int = 2048) -> dict[str, float]:
    """Bits per frame of `prior` on (a slice of) the training clips and on the held-out ones."""
    cfg = prior.cfg
    train_part = (codes[:max_clips], content[:max_clips], None if labels is None else labels[:max_clips])
    sets = {"train": train_part}
    if val is not None:
        sets["val"] = val if isinstance(val[0], torch.Tensor) else _as_tensors(*val)
    metrics = {"uniform_bits_per_frame": cfg.groups * math.log2(cfg.codebook_size)}
    for name, (c, x, y) in sets.items():
        metrics[f"{name}_bits_per_frame"] = test_nll_bits(prior, c, x, y)
        if cfg.num_classes and y is not None:
            metrics[f"{name}_bits_per_frame_nolabel"] = test_nll_bits(prior, c, x, None)
        metrics[f"{name}_unigram_bits_per_frame"] = unigram_bits(codes, c, cfg.codebook_size)
    return metrics


# ---- loading ----------------------------------------------------------------------------------------
def read_prior_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a prior checkpoint on the CPU, with one-line errors for bad files."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise MotionbitsError(f"prior checkpoint {path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)  # our own file: RNG states, dicts
    except Exception as err:  # truncated zip, garbage bytes, pickle errors: all mean "bad file"
        raise MotionbitsError(f"prior checkpoint {path}: unreadable or truncated ({type(err).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != PRIOR_FORMAT or "config" not in ckpt:
        raise MotionbitsError(f"prior checkpoint {path}: not a motionbits prior checkpoint")
    ckpt["path"] = str(path)
    return ckpt


def load_prior(path: str | Path, device: str | torch.device = "cpu") -> MotionPrior:
    """The EMA prior from out_dir/prior.pt (or its folder), in eval mode."""
    ckpt = read_prior_checkpoint(path)
    cfg = PriorConfig.from_dict(ckpt["config"], where=f"prior checkpoint {ckpt['path']} config")
    prior = MotionPrior(cfg)
    try:
        prior.load_state_dict(ckpt["ema"])
    except (RuntimeError, KeyError) as err:
        raise MotionbitsError(f"prior checkpoint {ckpt['path']}: weights do not fit its config "
                              f"({str(err).splitlines()[0]})") from None
    return prior.to(device).eval()
