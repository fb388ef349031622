"""`motionbits sweep`: the same setup trained at several bitrates, one table and one plot.

The paper's central claim is that the bitrate alone decides the split: too few bits per frame and
motion is lost, too many and the content leaks into the motion codes. For each target rate this
trains the config (everything else unchanged, same seed), evaluates it on the test split with the
data's own protocol (Sprites: swap accuracies; videos: same-identity reconstruction and
cross-identity code agreement / content cosine) and writes sweep.json, sweep.md and sweep.png.
"""
from __future__ import annotations

import copy
from pathlib import Path

from motionbits.atomic_files import write_json_atomic, write_text_atomic
from motionbits.config import Config
from motionbits.visualize import line_chart


def _row(bits: float, report: dict, kind: str) -> dict:
    if kind == "sprites":
        return {"target_bits": bits, "measured_bits": report["rate"]["empirical_bits_per_frame"],
                "coded_bits": report["rate"]["coded_bits_per_frame"],
                "reconstruction_psnr_db": report["reconstruction"]["psnr_db"],
                "swap_attributes": report["swap"]["attributes_mean"], "swap_motion": report["swap"]["motion"]}
    # video: the first set the split has: unseen people, else known people in new videos / with new drivers
    rec_set = next(k for k in ("unseen", "new_drivers", "seen") if report["reconstruction"][k])
    pair_set = next((k for k in ("unseen", "new_drivers", "seen") if report["transfers"][k]["pairs"]), "seen")
    transfer = report["transfers"][pair_set]
    faces = report["faces"].get("transfers", {}).get(pair_set, {}).get("model", {})
    return {"target_bits": bits, "measured_bits": (report.get("rate") or {}).get("empirical_bits_per_frame"),
            "coded_bits": (report.get("rate") or {}).get("coded_bits_per_frame"), "set": pair_set,
            "reconstruction_psnr_db": report["reconstruction"][rec_set]["model"]["psnr_db"],
            "code_agreement": transfer["code_agreement"],
            "untransferred_code_agreement": transfer["untransferred_code_agreement"],
            # face identity and motion following (docs/faces.md), where the faces extra is installed
            "csim": faces.get("csim"), "motion_following": faces.get("motion")}


def run_sweep(cfg: Config, bits_list: list[float], out_dir: str | Path, steps: int | None = None,
              clips: int | None = None, judge_path: str | None = None, progress: bool = True) -> list[dict]:
    from motionbits.api import MotionBits
    from motionbits.training.bcd import train

    out_dir = Path(out_dir)  # made by the first run's training, once its data and config have passed their checks
    rows = []
    for bits in bits_list:
        run_cfg = copy.deepcopy(cfg)
        run_cfg.train.target_bits = bits
        if steps:
            run_cfg.train.steps = steps
        run_dir = out_dir / f"bits_{bits:g}"
        train(run_cfg, run_dir, progress=progress)  # resumes a run cut short
        pipe = MotionBits.from_checkpoint(run_dir / "last.pt")
        if cfg.data.kind == "sprites":
            from motionbits.evaluation.sprites import evaluate_sprites

            report = evaluate_sprites(pipe, run_dir, judge_path=judge_path or out_dir / "judge.safetensors",
                                      clips=clips, progress=progress)
        else:
            from motionbits.evaluation.video import evaluate_video

            report = evaluate_video(pipe, run_dir, clips=clips, progress=progress)
        rows.append({**_row(bits, report, cfg.data.kind), "steps": run_cfg.train.steps})
        write_sweep(rows, out_dir, cfg)  # after every rate, so a long sweep shows progress
    return rows


def write_sweep(rows: list[dict], out_dir: Path, cfg: Config) -> None:
    write_json_atomic(out_dir / "sweep.json", rows)
    transfer_keys = (["swap_attributes", "swap_motion"] if cfg.data.kind == "sprites"
                     else ["code_agreement", "untransferred_code_agreement", "csim", "motion_following"])
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"# Bitrate sweep: {cfg.name}", "",
             f"Same config and seed at each target rate, {rows[0]['steps']} training steps each; test split.", "",
             "| target bits/frame | measured bits/frame | reconstruction PSNR (dB) | " + " | ".join(transfer_keys) + " |",
             "|---|---|---|" + "---|" * len(transfer_keys)]
    for r in rows:
        r = {k: r.get(k) for k in ["target_bits", "measured_bits", "reconstruction_psnr_db", *transfer_keys]}
        lines.append(f"| {r['target_bits']:g} | {fmt(r['measured_bits'])} | {r['reconstruction_psnr_db']:.2f} | "
                     + " | ".join(fmt(r[k]) for k in transfer_keys) + " |")
    write_text_atomic(out_dir / "sweep.md", "\n".join(lines) + "\n")
    line_chart([{"title": key, "x": "target bits per frame", "y": key, "log_x": True,
                 "series": {cfg.name: [(r["target_bits"], r[key]) for r in rows]}}
                for key in ["reconstruction_psnr_db", *transfer_keys]], out_dir / "sweep.png", panel_size=(240, 240))
