"""What the app holds while it serves: the model, the optional motion prior, the example clips, and
a private temporary folder for its outputs, a fresh subfolder per request.

Outputs get fixed names inside their request's folder (nothing is named after an upload), gradio
copies each returned file into its own cache before serving it, and request folders older than
MAX_AGE_S are removed when the next request starts; the whole folder goes when the app stops.
gradio's own uploads and cache go into `uploads` inside it (server.py points GRADIO_TEMP_DIR there),
so stopping the app removes every file it was given or made.

Without --prior the app uses the run's own prior, RUN/prior/prior.pt (where `motionbits demo`
trains it), when its code shape fits the model. The page names the checkpoint and the prior by
their run folder and file only, never by the server's path.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from motionbits.app.examples import clip_thumbnails, make_examples, pair_thumbnails

MAX_AGE_S = 600
RUN_PRIOR = Path("prior") / "prior.pt"      # a run's own motion prior, inside its folder


def public_name(path: str | Path) -> str:
    """A file by its folder's name and its own ("sprites-cpu/last.pt"): what the page may show."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


class AppSession:
    def __init__(self, checkpoint: str | Path, prior: str | Path | None = None, device: str = "auto",
                 fast_autoencoder: str | Path | None = None):
        from motionbits.api import MotionBits
        from motionbits.checkpoints import load_prior

        # with a fast autoencoder, every tab's frames go in and out through it
        self.pipe = MotionBits.from_checkpoint(checkpoint, device, fast_autoencoder)
        self.fast_autoencoder = Path(fast_autoencoder).resolve() if fast_autoencoder else None
        self.prior_found = False                         # True: the run's own prior, not --prior
        if prior is None and self.run_prior_fits():
            prior, self.prior_found = Path(self.pipe.source).parent / RUN_PRIOR, True
        self.prior = load_prior(prior, self.pipe.device) if prior else None
        self.prior_path = Path(prior).resolve() if prior else None
        # In the system's temporary folder ($TMPDIR), where gradio may read the files the app returns.
        self.root = Path(tempfile.mkdtemp(prefix="motionbits-app-"))
        self.uploads = self.root / "uploads"             # gradio's uploads and cache (server.py)
        self.examples = make_examples(self.root / "examples")
        self.example_thumbnails = clip_thumbnails(self.examples, self.root / "examples")
        self.pair_thumbnails = pair_thumbnails(self.examples, self.root / "examples")

    def run_prior_fits(self) -> bool:
        """Whether RUN/prior/prior.pt exists and predicts codes of this model's shape."""
        from motionbits.checkpoints import load_prior

        path = Path(self.pipe.source).parent / RUN_PRIOR
        if not path.is_file():
            return False
        cfg, m = load_prior(path).cfg, self.pipe.cfg.model
        return (cfg.groups, cfg.codebook_size, cfg.content_dim) == (m.groups, m.codebook_size, m.content_dim)

    @property
    def checkpoint_name(self) -> str:
        return public_name(self.pipe.source)

    @property
    def fast_autoencoder_name(self) -> str:
        return public_name(self.fast_autoencoder) if self.fast_autoencoder else ""

    @property
    def prior_name(self) -> str:
        return public_name(self.prior_path) if self.prior_path else ""

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

    def keep_gradio_files_inside(self) -> None:
        """Point gradio's uploads and cache (GRADIO_TEMP_DIR, read per page and per upload) into
        self.uploads until close()."""
        self._gradio_temp_dir = os.environ.get("GRADIO_TEMP_DIR")
        os.environ["GRADIO_TEMP_DIR"] = str(self.uploads)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        if hasattr(self, "_gradio_temp_dir"):
            if self._gradio_temp_dir is None:
                os.environ.pop("GRADIO_TEMP_DIR", None)
            else:
                os.environ["GRADIO_TEMP_DIR"] = self._gradio_temp_dir
