"""The motion prior's run config (configs/prior-*.yaml): typed and range-checked like a model config.

    name: prior-sprites
    prior:                      PriorRunConfig: which model's codes, which data, the schedule
      checkpoint: runs/sprites-cpu/last.pt
      model: {width: 192}       PriorModelSettings: the prior network's own sizes

The rest of the prior network's shape (code groups, codebook, content width, clip length, classes)
is read off the trained model it models (training/prior.py prior_config_for).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from motionbits.config import build_checked, config_values, setting
from motionbits.errors import MotionbitsError


@dataclass
class PriorModelSettings:
    width: int = setting(192, "width of the prior's transformer", low=8)
    depth: int = setting(4, "transformer blocks", low=1)
    heads: int = setting(4, "attention heads (width must divide by them)", low=1)
    dropout: float = setting(0.2, "dropout on each residual branch", low=0, high=0.95)
    label_dropout: float = setting(0.2, "share of clips trained without their label", low=0, high=1)
    group_autoregressive: bool = setting(False, "predict a frame's code groups one after another, not at once")


@dataclass
class PriorRunConfig:
    checkpoint: str = setting("runs/sprites-cpu/last.pt", "the trained motionbits model whose codes the prior models")
    data: str | None = setting(None, "dataset folder (null: the model's own data.root)")
    labels: Literal["motion"] | None = setting(None, "Sprites: condition on the motion class (with label dropout)")
    steps: int = setting(600, "training steps", low=1)
    batch_size: int = setting(128, "clips per step", low=1)
    lr: float = setting(1e-3, "peak learning rate", above=0)
    seed: int = setting(0, "seed", low=0)
    model: PriorModelSettings = field(default_factory=PriorModelSettings, metadata={"doc": "the prior network's sizes"})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRIOR_SECTIONS = {"prior": PriorRunConfig, "prior.model": PriorModelSettings}


def is_prior_config(path: Path) -> bool:
    try:
        return "prior" in config_values(path)   # with its `base:` chain, like a model config
    except MotionbitsError:
        return False  # load_config will report it


def read_prior_run(config_path: str | Path) -> tuple[str, PriorRunConfig]:
    """(name, checked settings) of a prior config, its `base:` chain resolved like a model config's."""
    path = Path(config_path)
    values = config_values(path)
    prior = values["prior"] if values["prior"] is not None else {}
    where = f"config {path}"
    if not isinstance(prior, dict):
        raise MotionbitsError(f"{where}: prior must be a mapping of keys to values, got {type(prior).__name__}")
    model = prior.get("model") if prior.get("model") is not None else {}
    run = build_checked(PriorRunConfig, {k: v for k, v in prior.items() if k != "model"}, f"{where}: prior")
    run.model = build_checked(PriorModelSettings, model, f"{where}: prior.model")
    if run.model.width % run.model.heads:
        raise MotionbitsError(f"{where}: prior.model.width = {run.model.width} must divide by prior.model.heads = "
                              f"{run.model.heads}")
    return values["name"], run


def prior_run_with_options(path: Path, data: str | None = None, steps: int | None = None,
                           init_from: str | None = None, tokenizer_path: str | None = None) -> tuple[str, PriorRunConfig]:
    """A prior config with `motionbits train`'s options applied: --data and --steps set prior.data and
    prior.steps; --init-from and --tokenizer-path, which only a model config has, are refused."""
    for flag, value in (("--init-from", init_from), ("--tokenizer-path", tokenizer_path)):
        if value:
            raise MotionbitsError(f"{flag}: {path.name} is a motion-prior config, which starts from its own "
                                  f"initialisation on its model's codes; {flag} is for model configs")
    name, run = read_prior_run(path)
    if data:
        run.data = data
    if steps:
        run.steps = steps
    return name, run


def prior_settings_rows() -> list[str]:
    """The prior config's settings as rows of config.settings_table's Markdown table."""
    rows = []
    for section, cls in PRIOR_SECTIONS.items():
        for f in dataclasses.fields(cls):
            if f.name == "model":   # a section of its own
                continue
            default = f.default
            shown = "null" if default is None else str(default).lower() if isinstance(default, bool) else f"{default}"
            rows.append(f"| `{section}.{f.name}` | `{shown}` | {f.metadata['doc']} |")
    return rows
