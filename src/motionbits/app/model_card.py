"""The Model tab: what the checkpoint is (its settings and rates) and how it was measured (the
eval.md / eval.json that `motionbits evaluate` or `motionbits demo` wrote beside it)."""
from __future__ import annotations

import json
from pathlib import Path

from motionbits.app.session import AppSession


def summary(session: AppSession) -> str:
    """A Markdown table: data, model sizes, the motion rate and the sampler."""
    pipe = session.pipe
    cfg, m = pipe.cfg, pipe.cfg.model
    fps = cfg.data.fps
    ceiling = pipe.model.quantizer.ceiling_bits
    rate_fps = fps or 8.0
    rows = [
        ("checkpoint", f"`{pipe.source}`"),
        ("config", cfg.name),
        ("data", f"{cfg.data.kind}, {cfg.data.image_size}x{cfg.data.image_size} frames, clips of {cfg.data.frames}"
                 + (f" at {fps:g} fps" if fps else "")),
        ("tokenizer", m.tokenizer),
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
        return "none (start with --prior PRIOR for the Generate tab)"
    p = session.prior.cfg
    labels = f", {p.num_classes} motion classes" if p.num_classes else ""
    return f"`{session.prior_path}`: a context of {p.max_frames} frames{labels}"


def config(session: AppSession) -> dict:
    return session.pipe.cfg.to_dict()


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
                text += f"\n\n({where / 'eval.json'} is not valid JSON)"
            return f"From `{where}`:\n\n{text}", figures
    return (f"No evaluation next to the checkpoint (`motionbits evaluate --checkpoint {session.pipe.source}` "
            "writes eval.md and eval.json there)."), None
