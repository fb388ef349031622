"""Configuration: one dataclass tree, read from a YAML file under configs/.

A config names everything a run needs (data, model sizes, training schedule, sampler), so a
checkpoint carries its config and can be rebuilt without the file it came from.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from motionbits.errors import MotionbitsError

PACKAGED_CONFIGS = Path(__file__).parent / "configs"


@dataclass
class DataConfig:
    kind: str = "sprites"          # "sprites" | "video"
    root: str = "data/sprites"     # folder made by `motionbits data ...`
    sheets: str | None = None      # sprites only: LPC sheets folder (None: download when online)
    frames: int = 8                # clip length T seen by training
    image_size: int = 64
    # video: the rate the training clips were resampled to (filled from the dataset when training;
    # None = the source rate); transfer and reconstruct resample input videos to it.
    fps: float | None = None


@dataclass
class ModelConfig:
    # Tokenizer: "pixels" (denoiser patchifies pixels), "autoencoder", "taef2", "diffusers".
    tokenizer: str = "pixels"
    tokenizer_path: str | None = None
    # Encoder (T5-style transformer over K content queries + T frame tokens).
    encoder_width: int = 256
    encoder_depth: int = 4
    encoder_heads: int = 4
    content_queries: int = 4       # K
    content_dim: int = 128         # Cc, per content token
    # "encoder": content = the shared encoder's query outputs (the paper); "patch_set": a separate
    # reader of the content frames' patches without positions (see encoder.PatchSetContentReader);
    # "patch_pool": the same idea at a fraction of the cost (encoder.PatchPoolContentReader).
    content_reader: str = "encoder"
    # patch readers only: read the content from the first this-many frames of the content half (0: all of
    # them). One frame already shows the whole look, and the reader's cost grows with its patches.
    content_frames: int = 0
    content_patch: int = 0         # patch readers only: patch side in latent cells (0: latent_size // 8)
    content_width: int = 0         # patch readers only: the reader's width (0: encoder_width)
    content_rows: bool = False     # patch_pool only: tell the reader each patch's row (not its column)
    # Group VQ bottleneck on per-frame motion.
    groups: int = 8                # N
    codebook_size: int = 16        # K_e; ceiling = N * log2(K_e) bits per frame
    group_dim: int = 8             # each group's vector size; motion dim Cm = N * group_dim
    gumbel_alpha: float = 1.0      # logits = -alpha * squared L2 distance
    gumbel_tau: float = 1.0
    rate_estimate: str = "information"  # "information" (I(frame; code)) | "marginal" (the paper's H)
    dead_code_threshold: float = 0.0   # >0: re-seed codes whose usage falls below this share (off: see quantizer.py)
    # Subtract each window's mean motion feature before quantizing: the codes then carry only what
    # changes between frames, and what stays (who it is, the resting pose) must come from the content.
    center_motion: bool = False
    # Relative motion, as in FOMM's relative mode: subtract a reference's mean motion feature instead
    # (training: the content half of the same clip; inference: the driving video's first window), so
    # the codes carry how the driver moved since its start, and the pose changes add up over a long
    # transfer instead of returning to the content's pose in every window. Needs cross_drive.
    relative_motion: bool = False
    # Denoiser (DiT with per-frame adaLN conditioning on time + motion).
    patch_size: int = 8
    denoiser_width: int = 256
    denoiser_depth: int = 6
    denoiser_heads: int = 4
    temporal_attention: bool = False
    content_adaln: bool = True     # also feed the pooled content to the adaLN condition
    # >0: share of training clips whose content is replaced by a learned null content (as DiT drops
    # class labels), so the denoiser also learns the motion-only render and diffusion.guidance works.
    content_dropout: float = 0.0
    mlp_ratio: float = 4.0


@dataclass
class DiffusionConfig:
    sigma_data: float = 0.5
    p_mean: float = -1.2           # log-normal training noise levels (EDM)
    p_std: float = 1.2
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    sample_steps: int = 8
    sampler: str = "heun"          # "heun" (EDM 2nd order) | "euler"
    # Classifier-free guidance on the content: D = D_null + w * (D_content - D_null); 1 = off.
    # Needs a model trained with model.content_dropout > 0.
    guidance: float = 1.0


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 32           # global batch (clips), whatever the number of processes
    grad_accum: int = 1
    lr: float = 3e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    cross_drive: bool = True       # content from the first half, motion from the second half
    # >0: with this probability a training clip's content half is the first half of another clip of
    # the same video (same person, another moment), so the motion half is read against a pose up to a
    # whole video away instead of half a clip: what transfer asks of it. Video data only.
    content_from_video: float = 0.0
    augment_content_flip: bool = False   # mirror the content frames at random (pixels only)
    augment_motion_colors: bool = False  # permute the motion frames' channels at random (pixels only)
    # recolour each whole clip (content, motion and target alike) at random, so that with few people
    # the codes cannot bring the look along (motionbits.augment; pixels only)
    augment_clip_colors: bool = False
    # >0: the loss rebuilds only this many of the rebuilt frames, picked at random per clip. Without
    # temporal attention the denoiser (the dearest part) works frame by frame, so the loss stays an
    # unbiased estimate while a step costs less; spend the saving on more clips per batch.
    render_frames: int = 0
    # >0: weight of the motion-swap consistency term (BCDModel.swap_consistency): a fraction of each
    # batch is rendered with another clip's motion codes and must re-encode to those codes. Off by
    # default: on the CPU it moved the motion into the codes but lost the look (README).
    swap_consistency: float = 0.0
    swap_fraction: float = 0.25
    # >0: weight of the reversed gradient from an identity classifier on the codes
    # (models/identity_adversary.py), so the codes cannot name the person. Video data with identities;
    # off by default: on the CPU it kept the look but emptied the codes (README).
    identity_adversary: float = 0.0
    target_bits: float = 12.0      # H_target, bits per frame
    bitrate_lambda: float = 0.04
    seed: int = 0
    amp: str = "auto"              # "auto" | "bf16" | "off"
    compile: bool = False
    log_every: int = 50
    checkpoint_every: int = 500
    sample_every: int = 1000
    device: str = "auto"


@dataclass
class EvalConfig:
    judge_steps: int = 1500
    clips: int = 0                 # 0 = the whole test split
    batch_size: int = 64
    seed: int = 0


@dataclass
class Config:
    name: str = "unnamed"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def model_fingerprint(self) -> str:
        """Hash of everything that shapes the weights: a checkpoint only loads into the same one."""
        blob = json.dumps({"data": {"frames": self.data.frames, "image_size": self.data.image_size},
                           "model": dataclasses.asdict(self.model)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def config_changes(old: Config, new: Config) -> list[str]:
    """'section.key: old -> new' for every setting that differs, e.g. a resumed run given more steps."""
    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in d.items():
            out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out

    a, b = flat(old.to_dict()), flat(new.to_dict())
    return [f"{key}: {a.get(key)!r} -> {b.get(key)!r}" for key in sorted(a.keys() | b.keys()) if a.get(key) != b.get(key)]


def _build(cls, values: dict[str, Any], where: str):
    if not isinstance(values, dict):
        raise MotionbitsError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise MotionbitsError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(known)}")
    kwargs = {}
    for name, value in values.items():
        f = known[name]
        if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
            kwargs[name] = _build(f.default_factory, value, f"{where}.{name}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any], where: str = "config") -> Config:
    cfg = _build(Config, values, where)
    validate(cfg, where)
    return cfg


def resolve_config_path(name_or_path: str) -> Path:
    """A path to a YAML file, or the name of a packaged config such as `sprites-cpu`."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    packaged = PACKAGED_CONFIGS / f"{name_or_path.removesuffix('.yaml')}.yaml"
    if packaged.is_file():
        return packaged
    names = ", ".join(sorted(p.stem for p in PACKAGED_CONFIGS.glob("*.yaml")))
    raise MotionbitsError(f"config {name_or_path}: no such file and no packaged config of that name (packaged: {names})")


def load_config(name_or_path: str) -> Config:
    path = resolve_config_path(name_or_path)
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise MotionbitsError(f"config {path}: not valid YAML{at} ({getattr(err, 'problem', err)})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise MotionbitsError(f"config {path}: cannot be read ({err})") from None
    if values is None:
        raise MotionbitsError(f"config {path}: the file is empty")
    values.setdefault("name", path.stem)
    return config_from_dict(values, where=f"config {path}")


def validate(cfg: Config, where: str = "config") -> None:
    m, d, t = cfg.model, cfg.data, cfg.train
    half = d.frames // 2 if t.cross_drive else d.frames  # frames the content is read from = frames rebuilt
    checks = [
        (d.kind in ("sprites", "video"), f"data.kind must be 'sprites' or 'video', got {d.kind!r}"),
        (d.frames >= 2, f"data.frames must be >= 2, got {d.frames}"),
        (d.fps is None or d.fps > 0, f"data.fps must be positive (or left out), got {d.fps}"),
        (not t.cross_drive or d.frames % 2 == 0, f"cross_drive needs an even data.frames, got {d.frames}"),
        (m.encoder_width % m.encoder_heads == 0, "model.encoder_width must be divisible by encoder_heads"),
        (m.denoiser_width % m.denoiser_heads == 0, "model.denoiser_width must be divisible by denoiser_heads"),
        (m.codebook_size >= 2, "model.codebook_size must be >= 2"),
        (m.groups >= 1 and m.group_dim >= 1, "model.groups and model.group_dim must be >= 1"),
        (t.batch_size >= 1 and t.steps >= 1, "train.batch_size and train.steps must be >= 1"),
        (t.log_every >= 1 and t.checkpoint_every >= 1,
         "train.log_every and train.checkpoint_every must be >= 1 (sample_every: 0 turns samples off)"),
        (t.sample_every >= 0, f"train.sample_every must be >= 0, got {t.sample_every}"),
        (t.amp in ("auto", "bf16", "off"), f"train.amp must be auto, bf16 or off, got {t.amp!r}"),
        (cfg.diffusion.sampler in ("heun", "euler"), "diffusion.sampler must be heun or euler"),
        (m.rate_estimate in ("information", "marginal"), "model.rate_estimate must be information or marginal"),
        (m.content_reader in ("encoder", "patch_set", "patch_pool"),
         "model.content_reader must be encoder, patch_set or patch_pool"),
        (m.content_frames == 0 or m.content_reader != "encoder",
         "model.content_frames needs a patch reader (the encoder reads content and motion alike)"),
        ((m.content_patch == 0 and m.content_width == 0) or m.content_reader != "encoder",
         "model.content_patch / content_width need model.content_reader: patch_set or patch_pool"),
        (not m.center_motion or half >= 2,
         "model.center_motion needs at least 2 frames in the motion window (a lone frame centres to zero)"),
        (not m.relative_motion or t.cross_drive,
         "model.relative_motion needs train.cross_drive (the content half is the training reference)"),
        (not (m.relative_motion and m.center_motion), "model.relative_motion and model.center_motion exclude each other"),
        (not m.content_rows or m.content_reader == "patch_pool", "model.content_rows needs model.content_reader: patch_pool"),
        (m.content_patch >= 0 and (m.content_patch == 0 or d.image_size % m.content_patch == 0 or m.tokenizer != "pixels"),
         f"model.content_patch={m.content_patch} must divide data.image_size={d.image_size}"),
        (m.content_width == 0 or m.content_width % m.encoder_heads == 0,
         "model.content_width must be divisible by model.encoder_heads"),
        (0 <= m.content_frames <= half,
         f"model.content_frames={m.content_frames} is outside 0..the frames the content is read from"),
        (0 <= t.render_frames <= half,
         f"train.render_frames={t.render_frames} is outside 0..the frames a training clip rebuilds"),
        (t.render_frames == 0 or not m.temporal_attention,
         "train.render_frames needs model.temporal_attention: false (frames attend to each other)"),
        (0 <= t.content_from_video <= 1, f"train.content_from_video={t.content_from_video} is outside [0, 1]"),
        (t.content_from_video == 0 or t.cross_drive,
         "train.content_from_video needs train.cross_drive (it replaces the content half)"),
        (t.content_from_video == 0 or d.kind == "video",
         "train.content_from_video needs data.kind: video (clips with their videos)"),
        (t.swap_consistency >= 0, f"train.swap_consistency={t.swap_consistency} must be >= 0"),
        (0 < t.swap_fraction <= 1, f"train.swap_fraction={t.swap_fraction} is outside (0, 1]"),
        (t.swap_consistency == 0 or t.batch_size * t.swap_fraction >= 2,
         "train.swap_consistency needs at least 2 clips a step in the swap (batch_size x swap_fraction)"),
        (0 <= m.content_dropout < 1, f"model.content_dropout={m.content_dropout} is outside [0, 1)"),
        (cfg.diffusion.guidance == 1 or m.content_dropout > 0,
         f"diffusion.guidance={cfg.diffusion.guidance} needs a model trained with model.content_dropout > 0"),
        (0 <= t.target_bits <= m.groups * _log2(m.codebook_size),
         f"train.target_bits={t.target_bits} is outside 0..groups*log2(codebook_size)"),
    ]
    for ok, message in checks:
        if not ok:
            raise MotionbitsError(f"{where}: {message}")


def _log2(x: int) -> float:
    return math.log2(x)
