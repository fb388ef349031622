"""Files the package ships so it works offline: the LPC sprite sheets, the taef2 weights and the
Sprites judge of the default benchmark.

Each folder carries its licence and a CREDITS.md naming where it comes from.
"""
from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent
SPRITE_SHEETS = ASSETS / "lpc_sprites"   # composed into the Sprites benchmark by `motionbits data sprites`
TAEF2_WEIGHTS = ASSETS / "taef2"         # the default model.tokenizer_path of the taef2 tokenizer
# The judge trained on the training characters of the benchmark composed from SPRITE_SHEETS with
# seed 0 (scripts/make_sprites_judge.py), so the demo need not train one (evaluation/sprites.py).
SPRITES_JUDGE = ASSETS / "sprites_judge" / "judge.safetensors"
