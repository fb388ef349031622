"""Configuration: one typed dataclass tree, read from a YAML file under configs/.

A config names everything a run needs (data, model sizes, training schedule, sampler), so a
checkpoint carries its config and can be rebuilt without the file it came from. Every value is
checked against its declared type and range when the file is read, with one line naming the file,
the key, the value and what is expected. A config file may start from another one with
`base: NAME` (a packaged name or a path) and say only what differs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from motionbits.bounded_yaml import RefusedYaml, load_bounded_yaml, shorten
from motionbits.errors import MotionbitsError

PACKAGED_CONFIGS = Path(__file__).parent / "configs"


CODEC_MAX_ENTRIES = 4096   # the most entries per group a .mbits file carries (codec/format.py MAX_ENTRIES)


def setting(default: Any, doc: str, low: float | None = None, high: float | None = None,
            above: float | None = None) -> Any:
    """A config field with its meaning and its allowed range (low <= v <= high, v > above)."""
    return field(default=default, metadata={"doc": doc, "low": low, "high": high, "above": above})


@dataclass
class DataConfig:
    kind: Literal["sprites", "video"] = setting("sprites", "`sprites` (the benchmark) or `video` (a `data video` folder)")
    root: str = setting("data/sprites", "dataset folder made by `motionbits data ...`")
    sheets: str | None = setting(None, "Sprites only: LPC sheets folder (null: the sheets shipped with the package)")
    frames: int = setting(8, "clip length T seen by training", low=2)
    image_size: int = setting(64, "side of the square frames", low=8)
    fps: float | None = setting(None, "video: rate of the training clips, filled from the dataset; inputs are "
                                      "resampled to it (null: the source rate)", above=0)


@dataclass
class ModelConfig:
    tokenizer: Literal["pixels", "taef2", "diffusers"] = setting(
        "pixels", "frozen image tokenizer: pixel patches, the shipped taef2, or a local diffusers VAE folder")
    tokenizer_path: str | None = setting(None, "taef2: weights folder (null: the shipped weights); diffusers: the "
                                               "VAE folder")
    encoder_width: int = setting(256, "encoder transformer width", low=8)
    encoder_depth: int = setting(4, "encoder transformer blocks", low=1)
    encoder_heads: int = setting(4, "encoder attention heads", low=1)
    content_queries: int = setting(4, "K: learnable content queries (content tokens per clip)", low=1)
    content_dim: int = setting(128, "Cc: width of each content token", low=1)
    content_reader: Literal["encoder", "patch_pool", "key_frame"] = setting(
        "encoder", "`encoder`: the shared encoder's query outputs (the paper); `patch_pool`: queries pool the content "
                   "frames' patches without positions, so the content cannot hold the pose; `key_frame`: the first "
                   "content frame, one token added onto each of the denoiser's patches (K = patches per frame), a "
                   "source picture as in FOMM")
    content_width: int = setting(0, "patch_pool, key_frame: the reader's width (0: encoder_width)", low=0)
    draw_change: bool = setting(False, "key_frame: the denoiser draws each frame's change from the key frame and adds "
                                       "the key frame back, so codes that say nothing give the key frame, not a "
                                       "training video's look; the content is then the key frame's latent patches "
                                       "(content_dim = latent channels x (latent size / sqrt(content_queries))^2)")
    groups: int = setting(8, "N: code groups per frame", low=1)
    codebook_size: int = setting(16, "K_e: entries per group; ceiling = N log2 K_e bits per frame", low=2)
    group_dim: int = setting(8, "size of each group's vector; motion width = N x group_dim", low=1)
    gumbel_alpha: float = setting(1.0, "code logits = -alpha x squared distance to each entry", above=0)
    gumbel_tau: float = setting(1.0, "temperature of the Gumbel-softmax sample and of the code distribution "
                                     "the rate is measured on", above=0)
    rate_estimate: Literal["information", "marginal"] = setting(
        "information", "the controlled rate: `information` = I(frame; code) from softmax(logits / tau); `marginal` = "
                       "the paper's entropy of the mean sampling histogram")
    relative_motion: bool = setting(False, "codes read against a reference's mean motion feature (training: the "
                                           "content half; transfer: the driver's first window), FOMM's relative mode")
    lip_groups: int = setting(0, "the last this many code groups read the lips alone (dlib's 20 lip points, aligned to "
                                 "the eyes: lip_points.py), the others the latents alone (0: none); a face model's "
                                 "mouth gets a rate of its own, train.lip_bits", low=0)
    lip_relative: bool = setting(False, "lip_groups: the lip points read as their change from a reference's mean "
                                        "(training: the content half; inference: the clip's or the driver's first "
                                        "window), so a driver's own lip shape stays out of the codes")
    lip_reads: Literal["points", "openings"] = setting(
        "points", "lip_groups: what they read, the 20 aligned lip points or five numbers of them that the head's "
                  "turn changes little (lip_points.lip_openings: the lips' inner and outer opening and width, the "
                  "corners' height; a nod still foreshortens the openings)")
    patch_size: int = setting(8, "denoiser patch side, in latent cells", low=1)
    denoiser_width: int = setting(256, "denoiser (DiT) width", low=8)
    denoiser_depth: int = setting(4, "denoiser blocks", low=1)
    denoiser_heads: int = setting(4, "denoiser attention heads", low=1)
    temporal_attention: bool = setting(False, "attention across frames at each patch position after every spatial "
                                              "block (zero-initialised; relative frame positions)")
    motion_context: int = setting(0, "blocks of a small transformer that reads each frame's codes beside the other "
                                     "frames of its encoder window before they condition the denoiser (0: each "
                                     "frame's codes alone)", low=0)


@dataclass
class DiffusionConfig:
    sigma_data: float | None = setting(None, "std of the clean latents, or with model.draw_change of their "
                                             "change from the clip's first frame (null: measured on the training "
                                             "data and stored in the run)", above=0)
    p_mean: float = setting(1.0, "training noise levels: log sigma ~ N(p_mean, p_std^2)")
    p_std: float = setting(1.0, "see p_mean", above=0)
    noise_levels: Literal["frame", "clip"] = setting(
        "frame", "training draws one noise level per rebuilt frame, or one per clip (sampling always uses one)")
    sigma_min: float = setting(0.002, "lowest sampling noise level", above=0)
    sigma_max: float = setting(20.0, "highest sampling noise level", above=0)
    rho: float = setting(7.0, "spacing of the sampling levels (EDM)", above=0)
    sample_steps: int = setting(2, "noise levels visited when sampling", low=1)
    sampler: Literal["heun", "euler"] = setting("euler", "ODE sampler: EDM's 2nd-order Heun or Euler")


@dataclass
class TrainConfig:
    steps: int = setting(2000, "optimizer steps", low=1)
    batch_size: int = setting(32, "global batch in clips, whatever the number of processes", low=1)
    grad_accum: int = setting(1, "micro-batches per step", low=1)
    lr: float = setting(1.5e-3, "peak learning rate (linear warm-up, cosine decay to 10 %)", above=0)
    weight_decay: float = setting(0.0, "AdamW weight decay", low=0)
    warmup_steps: int = setting(100, "linear warm-up steps", low=0)
    grad_clip: float = setting(1.0, "gradient norm clip", above=0)
    ema_decay: float = setting(0.995, "EMA of the weights (the EMA model is what inference uses)", low=0, high=1)
    cross_drive: bool = setting(True, "content from the first half of a clip, motion from the second, which is "
                                      "rebuilt (the paper's cross-driving)")
    content_from_video: float = setting(0.0, "video: with this probability the content half comes from another clip "
                                             "of the same video", low=0, high=1)
    content_gap_seconds: float = setting(0.0, "video: that other clip starts at least this far from the rebuilt one, so "
                                              "the content cannot show the pose and mouth to copy (0: any clip)", low=0)
    person: str | None = setting(None, "video: one identity of the dataset (its manifest's name) whose clips are "
                                       "drawn person_weight times as often as each other clip")
    person_weight: float = setting(1.0, "how many times as often train.person's clips are drawn", low=1, high=100)
    rebuild_either_half: bool = setting(False, "cross-driving: rebuild the first half from the second as often as the "
                                               "second from the first, so the decoder learns every frame's pose of "
                                               "clips that all start at one phase (Sprites)")
    augment_content_flip: bool = setting(False, "pixels: mirror the content frames at random")
    augment_motion_colors: bool = setting(False, "pixels: permute the motion frames' colour channels at random")
    augment_clip_colors: int = setting(0, "video: this many recoloured copies of the training clips (channels "
                                          "permuted, gains and offsets, one draw per video), each clip read whole "
                                          "from one copy, so a decoder must take the colours from the content", low=0,
                                       high=8)
    render_frames: int = setting(0, "the loss renders this many of the rebuilt frames per clip (0: all)", low=0)
    mouth_loss_weight: float = setting(1.0, "face crops (`data video --crop face`): the denoising loss of the latent cells "
                                            "where the mouth lies (rows 0.65-0.80, columns 0.38-0.62 of the frame) "
                                            "counts this many times the rest, the map's mean kept at 1", low=1)
    target_bits: float = setting(8.0, "H_target: the rate the penalty pulls to, bits per frame", low=0)
    lip_bits: float = setting(2.0, "model.lip_groups: the lip groups are pulled to this rate of their own, the "
                                   "other groups to target_bits", low=0)
    bitrate_lambda: float = setting(0.01, "weight of (rate - target)^2", low=0)
    init_from: str | None = setting(None, "a stage-1 run (folder or last.pt) whose weights start this run; modules "
                                          "it lacks (temporal layers) start at zero and are listed")
    seed: int = setting(0, "seed of every random draw", low=0)
    amp: Literal["auto", "bf16", "off"] = setting("auto", "bf16 autocast: auto = on GPUs and on CPUs with AMX")
    compile: bool = setting(False, "torch.compile the training step")
    log_every: int = setting(50, "steps between log lines", low=1)
    checkpoint_every: int = setting(250, "steps between checkpoints", low=1)
    checkpoint_minutes: float = setting(5.0, "also checkpoint after this many minutes of training", above=0)
    sample_every: int = setting(0, "steps between TensorBoard sample grids (0: none)", low=0)
    device: str = setting("auto", "auto, cpu, cuda, cuda:N")


@dataclass
class EvalConfig:
    judge_steps: int = setting(500, "Sprites: training steps of the judge classifier", low=1)
    clips: int = setting(0, "test clips to evaluate (0: the whole test split)", low=0)
    batch_size: int = setting(64, "clips per evaluation batch", low=1)
    seed: int = setting(0, "seed of the evaluated subset and the pairings", low=0)


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
        """Hash of what shapes the weights (sizes, not temporal layers: those load by init_from).
        A checkpoint resumes only into the same one."""
        blob = json.dumps({"data": {"frames": self.data.frames, "image_size": self.data.image_size},
                           "model": dataclasses.asdict(self.model)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


SECTIONS = {"data": DataConfig, "model": ModelConfig, "diffusion": DiffusionConfig, "train": TrainConfig,
            "eval": EvalConfig}


# ---- reading and checking values --------------------------------------------------------------
def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args:
        return _type_name(args[0]) + " or null"
    return {int: "a whole number", float: "a number", bool: "true or false", str: "a string",
            dict: "a mapping"}.get(hint, str(hint))


def _coerce(hint: Any, value: Any) -> tuple[bool, Any]:
    """(ok, value as the type means it): YAML's `1e-3` (a string to YAML 1.1) is the number it means."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return True, None
        return _coerce(next(a for a in typing.get_args(hint) if a is not type(None)), value)
    if origin is Literal:
        return value in typing.get_args(hint), value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return False, value
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else value
    if hint in (str, dict):
        return isinstance(value, hint), value
    return False, value


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxstring, _SHOWN.maxother = 2, 4, 4, 60, 60


def shown(value: Any) -> str:
    """A value as an error line shows it: its repr, at most 80 characters (a config value can be
    a string or list of a megabyte)."""
    return shorten(_SHOWN.repr(value))


def _check_range(f: dataclasses.Field, value: Any) -> str | None:
    meta = f.metadata
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if meta.get("low") is not None and value < meta["low"]:
        return f"at least {meta['low']:g}"
    if meta.get("high") is not None and value > meta["high"]:
        return f"at most {meta['high']:g}"
    if meta.get("above") is not None and not value > meta["above"]:
        return f"above {meta['above']:g}"
    return None


def _build(cls, values: Any, where: str, prefix: str = ""):
    if not isinstance(values, dict):
        raise MotionbitsError(f"{where}: {prefix.rstrip('.') or 'the file'} must be a mapping of keys to values, "
                              f"got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise MotionbitsError(f"{where}: unknown key(s) {shorten(', '.join(prefix + k for k in unknown))}; "
                              f"valid: {', '.join(known)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        if name in SECTIONS and cls is Config:
            kwargs[name] = _build(SECTIONS[name], value if value is not None else {}, where, f"{name}.")
            continue
        ok, value = _coerce(hints[name], value)
        problem = None if ok else _type_name(hints[name])
        problem = problem or _check_range(known[name], value)
        if problem:
            raise MotionbitsError(f"{where}: {prefix}{name} = {shown(values[name])}, expected {problem}")
        kwargs[name] = value
    return cls(**kwargs)


def build_checked(cls, values: Any, where: str):
    """A dataclass from a mapping, every value checked against its field's type and range."""
    return _build(cls, values, where)


def config_from_dict(values: dict[str, Any], where: str = "config") -> Config:
    cfg = _build(Config, values, where)
    validate(cfg, where)
    return cfg


def config_changes(old: Config, new: Config) -> list[str]:
    """'section.key: old -> new' for every setting that differs, e.g. a resumed run given more steps."""
    a, b = _flat(old.to_dict()), _flat(new.to_dict())
    return [f"{key}: {a.get(key)!r} -> {b.get(key)!r}" for key in sorted(a.keys() | b.keys()) if a.get(key) != b.get(key)]


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


# ---- files --------------------------------------------------------------------------------------
def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path to a YAML file, or the name of a packaged config such as `sprites-cpu`."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir():
        raise MotionbitsError(f"config {path}: is a folder, expected a YAML file")
    if path.exists():
        raise MotionbitsError(f"config {path}: not a regular file (a pipe, device or socket), expected a YAML file")
    packaged = PACKAGED_CONFIGS / f"{str(name_or_path).removesuffix('.yaml')}.yaml"
    if packaged.is_file():
        return packaged
    names = ", ".join(packaged_config_names())
    raise MotionbitsError(f"config {name_or_path}: no such file and no packaged config of that name (packaged: {names})")


def packaged_config_names() -> list[str]:
    return sorted(p.stem for p in PACKAGED_CONFIGS.glob("*.yaml"))


def read_yaml(path: Path, what: str = "config") -> Any:
    """A YAML file's contents, or one line saying why it cannot be read."""
    try:
        values = load_bounded_yaml(path)
    except RefusedYaml as err:
        at = f" line {err.line}:" if err.line is not None else ""
        raise MotionbitsError(f"{what} {path}:{at} {err.message}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = shorten(str(getattr(err, "problem", err)))
        raise MotionbitsError(f"{what} {path}: not valid YAML{at} ({problem})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise MotionbitsError(f"{what} {path}: cannot be read ({getattr(err, 'strerror', None) or err})") from None
    if values is None:
        raise MotionbitsError(f"{what} {path}: the file is empty")
    if not isinstance(values, dict):
        raise MotionbitsError(f"{what} {path}: expected a mapping of keys to values, got a {type(values).__name__}")
    return values


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def config_values(name_or_path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's values over those of its `base:` chain (the name is the file's own)."""
    path = resolve_config_path(name_or_path)
    if path.resolve() in _chain:
        raise MotionbitsError(f"config {path}: `base:` chain loops back to itself")
    values = read_yaml(path)
    values.setdefault("name", path.stem)
    base = values.pop("base", None)
    if base is None:
        return values
    if not isinstance(base, str):
        raise MotionbitsError(f"config {path}: base = {shown(base)}, expected a config name or path")
    relative = path.parent / base
    parent = config_values(relative if relative.is_file() else base, (*_chain, path.resolve()))
    parent.pop("name", None)
    return _merge(parent, values)


def load_config(name_or_path: str | Path) -> Config:
    path = resolve_config_path(name_or_path)
    values = config_values(path)
    if "prior" in values:
        raise MotionbitsError(f"config {path}: a motion-prior config (train it with `motionbits train --config`)")
    return config_from_dict(values, where=f"config {path}")


# ---- rules between values -------------------------------------------------------------------------
def validate(cfg: Config, where: str = "config") -> None:
    m, d, t = cfg.model, cfg.data, cfg.train
    half = d.frames // 2 if t.cross_drive else d.frames  # frames the content is read from = frames rebuilt
    checks = [
        (not t.cross_drive or d.frames % 2 == 0, f"train.cross_drive needs an even data.frames, got {d.frames}"),
        (m.encoder_width % m.encoder_heads == 0, "model.encoder_width must be divisible by model.encoder_heads"),
        (m.denoiser_width % m.denoiser_heads == 0, "model.denoiser_width must be divisible by model.denoiser_heads"),
        (m.content_width == 0 or m.content_reader != "encoder", "model.content_width needs content_reader: patch_pool or key_frame"),
        ((m.content_width or m.encoder_width) % m.encoder_heads == 0,
         "model.content_width must be divisible by model.encoder_heads"),
        (not m.draw_change or m.content_reader == "key_frame", "model.draw_change needs content_reader: key_frame"),
        (not (m.draw_change and m.content_width), "model.content_width is the key frame reader's width, and "
                                                  "model.draw_change reads the key frame's patches as they are"),
        (not (m.draw_change and t.augment_content_flip),
         "model.draw_change and train.augment_content_flip exclude each other (a mirrored key frame is not the "
         "frames' start)"),
        (not m.relative_motion or t.cross_drive,
         "model.relative_motion needs train.cross_drive (the content half is the training reference)"),
        (t.render_frames <= half, f"train.render_frames={t.render_frames} is more than the {half} frames a clip rebuilds"),
        (t.render_frames == 0 or not m.temporal_attention,
         "train.render_frames needs model.temporal_attention: false (frames attend to each other)"),
        (not t.rebuild_either_half or t.cross_drive, "train.rebuild_either_half needs train.cross_drive (it swaps the halves)"),
        (not (t.rebuild_either_half and m.relative_motion),
         "train.rebuild_either_half and model.relative_motion exclude each other (the reference must precede the motion)"),
        (t.content_from_video == 0 or t.cross_drive,
         "train.content_from_video needs train.cross_drive (it replaces the content half)"),
        (t.content_from_video == 0 or d.kind == "video",
         "train.content_from_video needs data.kind: video (clips with their videos)"),
        (t.content_gap_seconds == 0 or t.content_from_video > 0,
         "train.content_gap_seconds needs train.content_from_video above 0 (it says how far that clip is)"),
        (t.person is None or d.kind == "video", "train.person needs data.kind: video (clips with their identities)"),
        (t.person_weight == 1 or t.person is not None, "train.person_weight needs train.person"),
        (t.augment_clip_colors == 0 or d.kind == "video",
         "train.augment_clip_colors needs data.kind: video (a recolouring is drawn per video)"),
        (not (t.augment_content_flip or t.augment_motion_colors) or m.tokenizer == "pixels",
         "train.augment_content_flip / augment_motion_colors act on pixels: turn them off with a latent tokenizer"),
        (m.codebook_size <= CODEC_MAX_ENTRIES,
         f"model.codebook_size = {m.codebook_size} is above {CODEC_MAX_ENTRIES}, the most entries per group the "
         "bitstream codes (docs/bitstream.md)"),
        (t.target_bits <= m.groups * math.log2(m.codebook_size),
         f"train.target_bits={t.target_bits:g} is above the ceiling groups x log2(codebook_size) = "
         f"{m.groups * math.log2(m.codebook_size):g}"),
        (m.lip_groups == 0 or (m.content_reader != "encoder" and not t.augment_motion_colors
                               and m.rate_estimate == "information" and m.lip_groups < m.groups),
         "model.lip_groups needs content_reader patch_pool or key_frame, rate_estimate information, "
         "lip_groups below groups and no train.augment_motion_colors"),
        (not m.lip_relative or m.lip_groups, "model.lip_relative needs model.lip_groups"),
        (m.lip_reads == "points" or m.lip_groups, "model.lip_reads needs model.lip_groups"),
        (cfg.diffusion.sigma_min < cfg.diffusion.sigma_max, "diffusion.sigma_min must be below diffusion.sigma_max"),
    ]
    for ok, message in checks:
        if not ok:
            raise MotionbitsError(f"{where}: {message}")


def settings_table() -> str:
    """Every setting with its default and meaning, as a Markdown table (docs/configuration.md)."""
    lines = ["| setting | default | meaning |", "|---|---|---|"]
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            default = f.default
            shown = "null" if default is None else str(default).lower() if isinstance(default, bool) else f"{default}"
            lines.append(f"| `{section}.{f.name}` | `{shown}` | {f.metadata['doc']} |")
    return "\n".join(lines)
