"""What the app holds while it serves: the model, the optional motion prior, the example clips, and
a private temporary folder for its outputs, a fresh subfolder per request.

Outputs get fixed names inside their request's folder (nothing is named after an upload), gradio
copies each returned file into its own cache before serving it, and request folders older than
MAX_AGE_S are removed when the next request starts; the whole folder goes when the app stops.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from motionbits.app.examples import make_examples

MAX_AGE_S = 600


class AppSession:
    def __init__(self, checkpoint: str | Path, prior: str | Path | None = None, device: str = "auto"):
        from motionbits.api import MotionBits
        from motionbits.checkpoints import load_prior

        self.pipe = MotionBits.from_checkpoint(checkpoint, device)
        self.prior = load_prior(prior, self.pipe.device) if prior else None
        self.prior_path = Path(prior).resolve() if prior else None
        self.root = Path(tempfile.mkdtemp(prefix="motionbits-app-"))
        self.examples = make_examples(self.root / "examples")

    @property
    def input_fps(self) -> float | None:
        """The rate uploads are resampled to, as `motionbits transfer` does (None: the source rate)."""
        return self.pipe.cfg.data.fps

    def request_folder(self) -> Path:
        """A new empty folder for one request's outputs (old requests' folders are removed)."""
        requests = self.root / "requests"
        requests.mkdir(exist_ok=True)
        for old in requests.iterdir():
            if time.time() - old.stat().st_mtime > MAX_AGE_S:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=requests))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
