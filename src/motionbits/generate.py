"""Motion generation: the prior samples motion codes, the denoiser renders them.

    content clip ──encoder──► content c          (optional) prompt clip ──encoder──► prompt codes
    prior.generate(c, frames, prompt, label, temperature, top_k) ──► codes [B, F, N]
    pipe.render(c, codes) ──► frames

Also trains a prior from a config file (`motionbits train --config prior-sprites`): codes are
extracted once from a trained motionbits model, then the prior is fitted on them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from motionbits.errors import MotionbitsError
from motionbits.models.prior import MotionPrior
from motionbits.pipeline import MotionBits

PRIOR_KEYS = {"checkpoint", "data", "labels", "steps", "batch_size", "lr", "seed", "model"}


def is_prior_config(path: Path) -> bool:
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False  # load_config will report it
    return isinstance(values, dict) and "prior" in values


def _labelled_splits(pipe: MotionBits, root: str, labels: str | None):
    """(train frames, train labels, test frames, test labels) of the model's dataset."""
    if pipe.cfg.data.kind == "sprites":
        from motionbits.data.sprites import load_sprites

        train, test = load_sprites(root, "train"), load_sprites(root, "test")
        if labels not in (None, "motion"):
            raise MotionbitsError(f"prior.labels must be 'motion' or null for Sprites, got {labels!r}")
        pick = (lambda s: s.motion) if labels == "motion" else (lambda s: None)
        return train.frames, pick(train), test.frames, pick(test)
    from motionbits.data.video import load_video_clips

    if labels is not None:
        raise MotionbitsError("prior.labels is only available for Sprites (video clips have no motion labels)")
    train, _ = load_video_clips(root, "train")
    test, _ = load_video_clips(root, "test")
    return train, None, test, None


def train_prior_from_config(config_path: str | Path, out_dir: str | Path | None = None, fresh: bool = False,
                            progress: bool = True) -> Path:
    from motionbits.prior_train import extract_codes, prior_config_for, train_prior

    path = Path(config_path)
    values: dict[str, Any] = yaml.safe_load(path.read_text())
    prior = values["prior"] or {}
    unknown = sorted(set(prior) - PRIOR_KEYS)
    if unknown:
        raise MotionbitsError(f"config {path}: unknown prior key(s) {', '.join(unknown)}; valid: {', '.join(sorted(PRIOR_KEYS))}")
    if "checkpoint" not in prior:
        raise MotionbitsError(f"config {path}: prior.checkpoint (the trained motionbits model) is required")
    name = values.get("name", path.stem)
    out_dir = Path(out_dir or f"runs/{name}")
    pipe = MotionBits.from_checkpoint(prior["checkpoint"])
    root = prior.get("data") or pipe.cfg.data.root
    train_frames, train_labels, test_frames, test_labels = _labelled_splits(pipe, root, prior.get("labels"))
    codes, content = extract_codes(pipe, train_frames, progress=progress)
    val_codes, val_content = extract_codes(pipe, test_frames, progress=progress)
    num_classes = 9 if train_labels is not None else 0
    cfg = prior_config_for(pipe.cfg, num_classes=num_classes, **(prior.get("model") or {}))
    _, metrics = train_prior(codes, content, train_labels, cfg, steps=prior.get("steps", 600),
                             batch_size=prior.get("batch_size", 128), lr=prior.get("lr", 1e-3),
                             seed=prior.get("seed", 0), out_dir=out_dir, progress=progress, fresh=fresh,
                             val=(val_codes, val_content, test_labels))
    if progress:
        print("prior:", ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()),
              f"(bottleneck ceiling {pipe.model.quantizer.ceiling_bits:g} bits/frame)")
    return out_dir / "prior.pt"


@torch.no_grad()
def generate_motion(pipe: MotionBits, prior: MotionPrior, content_frames, frames: int,
                    prompt_frames=None, label: int | None = None, temperature: float = 1.0,
                    top_k: int | None = None, seed: int = 0, steps: int | None = None,
                    sampler: str | None = None) -> torch.Tensor:
    """New motion for the given content: uint8 frames [B, frames, H, W, 3]."""
    content = pipe.encode_content(content_frames)                       # [B, K, Cc]
    prompt = pipe.encode_motion(prompt_frames) if prompt_frames is not None else None
    if prompt is not None and prompt.shape[1] >= frames:
        raise MotionbitsError(f"the motion prompt has {prompt.shape[1]} frames: ask for more than that with --frames")
    gen = torch.Generator(device=content.device).manual_seed(seed)
    labels = None if label is None else torch.full((content.shape[0],), label, dtype=torch.long, device=content.device)
    codes = prior.to(content.device).generate(content, frames, prompt=prompt, label=labels, temperature=temperature,
                                              top_k=top_k, generator=gen)
    return pipe.render(content, codes, steps=steps, sampler=sampler, seed=seed)
