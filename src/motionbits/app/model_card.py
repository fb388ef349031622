"""The Model tab: what the checkpoint is (its settings and rates) and how it was measured (the
eval.md / eval.json that `motionbits evaluate` or `motionbits demo` wrote beside it)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from motionbits.app.session import RUN_PRIOR, AppSession, public_name


def summary(session: AppSession) -> str:
    """A Markdown table: data, model sizes, the motion rate and the sampler."""
    pipe = session.pipe
    cfg, m = pipe.cfg, pipe.cfg.model
    fps = cfg.data.fps
    ceiling = pipe.model.quantizer.ceiling_bits
    rate_fps = fps or 8.0
    rows = [
        ("checkpoint", f"`{session.checkpoint_name}`"),
        ("config", cfg.name),
        ("data", f"{cfg.data.kind}, {cfg.data.image_size}x{cfg.data.image_size} frames, clips of {cfg.data.frames}"
                 + (f" at {fps:g} fps" if fps else "")),
        ("tokenizer", m.tokenizer + (f", frames in and out through the fast autoencoder `{session.fast_autoencoder_name}`"
                                    if session.fast_autoencoder else "")),
        ("content", f"{m.content_queries} tokens x {m.content_dim} values, sent once per clip "
                    f"({2 * m.content_queries * m.content_dim} bytes as float16)"),
        ("motion", f"{m.groups} codes a frame from {m.codebook_size} entries each, read {pipe.model.window} frames "
                   "at once"),
        ("motion rate", f"trained towards {cfg.train.target_bits:g} bits a frame (ceiling {ceiling:g}): "
                        f"{cfg.train.target_bits * rate_fps / 1000:.3f} kbps at {rate_fps:g} fps"
                        + ("" if fps else " (the data has no rate; 8 fps assumed)")),
        ("sampling", f"{cfg.diffusion.sampler}, {cfg.diffusion.sample_steps} steps by default"),
        ("motion prior", _prior_line(session)),
    ]
    return "| | this model |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def _prior_line(session: AppSession) -> str:
    if session.prior is None:
        return "none: the Generate tab says how to train one"
    p = session.prior.cfg
    labels = f", {p.num_classes} motion classes" if p.num_classes else ""
    found = " (the run's own, found in its folder)" if session.prior_found else ""
    return f"`{session.prior_name}`{found}: a context of {p.max_frames} frames{labels}"


def how_to_get_a_prior(session: AppSession) -> str:
    """The Generate tab's text when the app runs without a motion prior: the command for the
    demo's run (its prior.yaml beside the run folder), else how to write the config."""
    run = Path(session.pipe.source).parent
    intro = ("**Generating motion needs a motion prior**, a small model trained on this model's motion "
             "codes, and none came with this run. ")
    then = (f"Then start the app again: a prior in the run's `{RUN_PRIOR}` is used without `--prior` "
            "(or pass `--prior PRIOR`).")
    if (run.parent / "prior.yaml").is_file():                   # written by `motionbits demo`
        demo = run.parent.name
        return (intro + "`motionbits demo` wrote its config; train it (about 15 minutes on 2 CPU cores) with\n\n"
                f"```bash\nmotionbits train --config {demo}/prior.yaml --out {demo}/{run.name}/{RUN_PRIOR.parent}\n```"
                f"\n\n(`{demo}` is the demo's folder, `outputs/demo` by default). " + then)
    return (intro + "Write a prior config naming the checkpoint, for example `my-prior.yaml`:\n\n"
            f"```yaml\nbase: prior-sprites\nprior:\n  checkpoint: {run.name}/last.pt   # the path to this run's last.pt\n```"
            f"\n\nthen `motionbits train --config my-prior.yaml --out {run.name}/{RUN_PRIOR.parent}` (minutes on a "
            "CPU). `prior-sprites` is for Sprites models (it asks for the motion classes); for a video model add "
            "`labels: null` under `prior:`. " + then)


def config(session: AppSession) -> dict:
    """The config as training read it, paths shortened to their last folder and name (the page
    shows no path of the server)."""
    def shorten(value):
        if isinstance(value, dict):
            return {k: shorten(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shorten(v) for v in value]
        if isinstance(value, str) and os.path.isabs(value):
            return public_name(value)
        return value
    return shorten(session.pipe.cfg.to_dict())


def evaluation(session: AppSession) -> tuple[str, dict | None]:
    """(eval.md text, eval.json contents) from the checkpoint's folder or the one above it (where
    `motionbits demo` writes them); a note when there is none."""
    folder = Path(session.pipe.source).parent
    for where in (folder, folder.parent):
        if (where / "eval.md").is_file() or (where / "eval.json").is_file():
            text = (where / "eval.md").read_text() if (where / "eval.md").is_file() else ""
            try:
                figures = json.loads((where / "eval.json").read_text()) if (where / "eval.json").is_file() else None
            except json.JSONDecodeError:
                figures = None
                text += "\n\n(its eval.json is not valid JSON)"
            return f"From `{where.resolve().name}/`:\n\n{text}", figures
    return (f"No evaluation next to the checkpoint (`motionbits evaluate --checkpoint {session.checkpoint_name}` "
            "writes eval.md and eval.json there)."), None
