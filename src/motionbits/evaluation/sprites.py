"""The Sprites evaluation protocol, on the TEST split only.

1. A judge (4 attribute heads + 1 motion head) is trained on the TRAIN split (on the default
   benchmark the package ships one so trained) and its own test accuracy is measured and reported,
   so the reader knows how far the judge itself can be trusted.
2. Swap: each test clip A gets the motion codes of another test clip B (a random derangement of the
   evaluated clips, fixed seed); the judge must see A's 4 attributes and B's motion: its class AND
   B's poses frame by frame (judge.transferred; the class alone, the v1 judge's figure, counted
   outputs frozen on one pose), per driver class too, with the share of near-frozen outputs. Beside
   it, two baselines scored by the same judge: "copy motion clip" (B's own frames: every motion
   right, the look is B's) and "still content" (A's first frame held: the look right, no motion).
3. The standard protocol of the sequential-disentanglement papers (C-DSVAE, SKD): keep the motion
   codes of a clip, replace its content by that of a random other test clip (our content has no
   prior), and report motion accuracy, IS, H(y|x) and H(y) of the judge's motion head. These are
   the same generations as in 2, read from the motion clip's side.
4. Reconstruction: content and motion from the same clip; PSNR and SSIM against the input frames.
5. Rate: the controlled estimate, the empirical entropy of the hard test codes and the coded size
   of the motion stream, with codebook usage per group (evaluation/rate.py).
6. Content probes: what the content tokens encode (evaluation/content_probe.py).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from motionbits.assets import SPRITE_SHEETS, SPRITES_JUDGE
from motionbits.atomic_files import write_json_atomic, write_text_atomic
from motionbits.models.tokenizer import frames_to_float
from motionbits.data.sprites import ATTRIBUTE_NAMES, MOTION_NAMES, action_and_direction, frame_poses, load_sprites
from motionbits.diffusion import network_calls
from motionbits.errors import MotionbitsError
from motionbits.evaluation.content_probe import probe_content
from motionbits.data.folders import dataset_manifest
from motionbits.evaluation.judge import (MISREAD_FRAMES, SpritesJudge, judge_accuracies, judge_predict, load_judge,
                                         save_judge, train_judge, transferred)
from motionbits.evaluation.metrics import accuracy, flicker, frame_change, motion_distribution_scores, psnr, ssim
from motionbits.evaluation.rate import coded_rate, rate_lines, rate_report
from motionbits.reliance import EVAL_CLIPS, RELIANCE_NOTE, RelianceClips, reliance_lines
from motionbits.api import MotionBits


# An output counts as near-frozen when it changes from frame to frame by less than this share of its
# driver's change. Calibrated on real clips, where a perfect transfer is the content's character doing
# the driver's class: over every pair of two test characters in one class (785k pairs) that ratio is
# at least 0.394 (0.403 on the train split), so no real clip counts as near-frozen at 0.35.
NEAR_FROZEN_BELOW = 0.35


def derangement(n: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation with no fixed point: clip i never drives itself (needs n >= 2)."""
    if n < 2:
        raise MotionbitsError(f"pairing test clips with other test clips needs at least 2 of them, got {n}")
    perm = torch.randperm(n, generator=generator)
    return perm.roll(1)[torch.argsort(perm)]


# The training steps of the shipped judge (assets.SPRITES_JUDGE, scripts/make_sprites_judge.py).
SHIPPED_JUDGE_STEPS = 500


def composed_by_default(root: str | Path) -> bool:
    """Whether the Sprites data in `root` is the whole default benchmark: every character, composed from
    the shipped sheets with seed 0, so its test characters are the ones the shipped judge never saw."""
    try:
        _, manifest = dataset_manifest(root, "test", "sprites")
    except MotionbitsError:
        return False
    return (manifest.get("full") is True and manifest.get("seed") == 0
            and Path(str(manifest.get("source", ""))).resolve() == SPRITE_SHEETS.resolve())


def trained_judge(root: str | Path, steps: int, progress: bool = True) -> SpritesJudge:
    """A judge trained on the training split of the Sprites data in `root`."""
    train = load_sprites(root, "train")
    return train_judge(train.frames, train.attributes, train.motion, frame_poses(train.motion), steps=steps,
                       progress=progress)


def measure_judge(judge: SpritesJudge, root: str | Path) -> dict[str, float]:
    """The judge's own accuracies on the test split of `root` (also kept in judge.accuracies)."""
    test = load_sprites(root, "test")
    return judge_accuracies(judge, test.frames, test.attributes, test.motion, frame_poses(test.motion))


def get_judge(root: str, judge_path: str | Path | None, out_dir: Path, steps: int, progress: bool):
    """The judge at judge_path; else, on the default benchmark, the shipped one; else one trained on
    the training split. A judge not given is measured on the test split and saved at judge_path
    (default out_dir/judge.safetensors)."""
    if judge_path and Path(judge_path).is_file():
        return load_judge(judge_path, "auto")  # on the GPU where there is one
    shipped = steps == SHIPPED_JUDGE_STEPS and composed_by_default(root) and SPRITES_JUDGE.is_file()
    judge = load_judge(SPRITES_JUDGE, "auto") if shipped else trained_judge(root, steps, progress)
    measure_judge(judge, root)   # the shipped one's too: its accuracy on this very test split
    save_judge(judge, Path(judge_path) if judge_path else out_dir / "judge.safetensors")
    if shipped and progress:
        print(f"judge: the shipped one ({SPRITES_JUDGE.name}, trained on the default benchmark's training characters)")
    return judge


def evaluate_sprites(pipe: MotionBits, out_dir: str | Path, judge_path: str | Path | None = None,
                     clips: int | None = None, steps: int | None = None, sampler: str | None = None,
                     batch_size: int | None = None, progress: bool = True, content_probes: bool = True,
                     decoder_reliance: bool = True) -> dict:
    cfg = pipe.cfg
    out_dir = Path(out_dir)
    judge = get_judge(cfg.data.root, judge_path, out_dir, cfg.eval.judge_steps, progress)  # a bad judge: nothing written
    out_dir.mkdir(parents=True, exist_ok=True)
    test = load_sprites(cfg.data.root, "test")
    gen = torch.Generator().manual_seed(cfg.eval.seed)
    n_all = len(test)
    n = min(clips if clips is not None else (cfg.eval.clips or n_all), n_all)
    chosen = torch.randperm(n_all, generator=gen)[:n]                # the evaluated test clips
    drivers = chosen[derangement(n, gen)]                            # clip B for each clip A
    frames = torch.from_numpy(test.frames)                           # [N, 8, 64, 64, 3] uint8
    batch_size = batch_size or cfg.eval.batch_size
    steps = steps or cfg.diffusion.sample_steps

    swapped, recon, logits = [], [], []
    for start in tqdm(range(0, n, batch_size), desc=f"evaluate ({steps} steps)", disable=not progress):
        a, b = chosen[start:start + batch_size], drivers[start:start + batch_size]
        z_a, z_b = pipe.to_latents(frames[a]), pipe.to_latents(frames[b])
        content_a = pipe.content_of_latents(z_a)
        logits_a = pipe.motion_logits_of_latents(z_a)
        codes_a, codes_b = logits_a.argmax(-1), pipe.motion_of_latents(z_b)
        swapped.append(pipe.render(content_a, codes_b, steps, sampler, seed=start))
        recon.append(pipe.render(content_a, codes_a, steps, sampler, seed=start))
        logits.append(logits_a.cpu())
    swapped, recon, logits = torch.cat(swapped), torch.cat(recon), torch.cat(logits)

    attrs_a = torch.from_numpy(test.attributes)[chosen]
    motion_a, motion_b = torch.from_numpy(test.motion)[chosen], torch.from_numpy(test.motion)[drivers]
    probs = judge_predict(judge, swapped)
    swap = swap_scores(probs, attrs_a, motion_b, motion_a)
    frozen = near_frozen(swapped, frames[drivers])                   # [N] bool
    swap["near_frozen"] = float(frozen.float().mean())
    swap["motion_by_class"] = motion_by_class(probs, motion_b, frozen)
    # The floor and ceiling of each column, judged the same way: B's own frames (motion right,
    # look wrong) and A's first frame held still (look right, motion wrong).
    baselines = {"copy motion clip": swap_scores(judge_predict(judge, frames[drivers]), attrs_a, motion_b),
                 "still content": swap_scores(judge_predict(judge, frames[chosen][:, :1].expand_as(frames[chosen])),
                                              attrs_a, motion_b)}
    standard = {"motion_accuracy": swap["motion"], **motion_distribution_scores(probs["motion"])}

    real = frames_to_float(frames[chosen])                           # [N, T, 3, H, W]
    fake = frames_to_float(recon)
    recon_probs = judge_predict(judge, recon)
    content_probe = (probe_content(pipe, load_sprites(cfg.data.root, "train"), test, chosen.numpy(), seed=cfg.eval.seed)
                     if content_probes else None)
    reliance = (RelianceClips.of_dataset(cfg, pipe.tokenizer, pipe.device, EVAL_CLIPS).measure(pipe.model, cfg.eval.seed)
                if decoder_reliance else None)
    m = cfg.model
    report = {
        "config": cfg.name,
        "test_clips_evaluated": n,
        "sample_steps": steps,
        "sampler": sampler or cfg.diffusion.sampler,
        "judge_test_accuracy": getattr(judge, "accuracies", {}),
        "motion_judging": {"misread_frames_allowed": MISREAD_FRAMES, "near_frozen_below": NEAR_FROZEN_BELOW},
        "swap": swap,
        "baselines": baselines,
        "content_swap_standard": standard,
        "reconstruction": {"psnr_db": psnr(fake.flatten(0, 1), real.flatten(0, 1)), "ssim": ssim(fake, real),
                           "flicker": flicker(fake, real),
                           "judge_attributes_mean": accuracy(recon_probs["attributes"].flatten(0, 1), attrs_a.flatten()),
                           "judge_motion": float(transferred(recon_probs, motion_a, frame_poses(motion_a.numpy())).float().mean()),
                           "pose_frames_by_index": poses_by_frame(recon_probs, motion_a)},
        **({"content_probe": content_probe} if content_probe is not None else {}),
        **({"decoder_reliance": reliance} if reliance is not None else {}),
        "rate": rate_report(logits, m.codebook_size, m.rate_estimate, m.groups * math.log2(m.codebook_size),
                            cfg.train.target_bits,
                            coded_bits_per_frame=coded_rate(pipe.model.quantizer, logits.argmax(-1), pipe.model.window),
                            coded_adaptive_bits_per_frame=coded_rate(pipe.model.quantizer, logits.argmax(-1),
                                                                     pipe.model.window, "adaptive")),
    }
    write_json_atomic(out_dir / "eval.json", report)
    write_text_atomic(out_dir / "eval.md", markdown_report(report))
    return report


def swap_scores(probs: dict[str, torch.Tensor], attributes: torch.Tensor, motion: torch.Tensor,
                content_motion: torch.Tensor | None = None) -> dict:
    """Judge accuracy of clips that should show `attributes` [N, 4] and `motion` [N]: "motion" counts a
    clip when the judge sees the class and its poses frame by frame (judge.transferred), "motion_class_only"
    when it sees the class (the v1 judge's figure); with content_motion [N] (the content clip's own
    class), how often action and direction (class head) follow each clip."""
    attribute_acc = {name: accuracy(probs["attributes"][:, i], attributes[:, i]) for i, name in enumerate(ATTRIBUTE_NAMES)}
    out = {"attributes_mean": float(np.mean(list(attribute_acc.values()))), **attribute_acc,
           "motion": float(transferred(probs, motion, frame_poses(motion.numpy())).float().mean()),
           "motion_class_only": accuracy(probs["motion"], motion),
           # the share of frames that show the driver's pose of that frame: how close a miss came
           "pose_frames": accuracy(probs["poses"], torch.as_tensor(frame_poses(motion.numpy())))}
    if content_motion is not None:  # which part of the motion follows B, and how often it stays A's: a leak shows here
        judged = probs["motion"].argmax(-1)
        (j_action, j_dir), (a_action, a_dir), (b_action, b_dir) = (
            action_and_direction(m) for m in (judged, content_motion, motion))
        out["motion_parts"] = {
            "action_follows_motion_clip": float((j_action == b_action).float().mean()),
            "action_follows_content_clip": float((j_action == a_action).float().mean()),
            "direction_follows_motion_clip": float((j_dir == b_dir).float().mean()),
            "direction_follows_content_clip": float((j_dir == a_dir).float().mean()),
        }
    return out


def poses_by_frame(probs: dict[str, torch.Tensor], motion: torch.Tensor) -> list[float]:
    """For each frame index t, the share of clips whose frame t the judge reads in the pose that
    frame of `motion` [N] shows: a decoder that never learned some frames' poses (one that only ever
    rebuilt the second half of clips that all start at one phase) shows near 0 at those indices."""
    expected = torch.as_tensor(frame_poses(motion.numpy()))                     # [N, T]
    return (probs["poses"].argmax(-1) == expected).float().mean(0).tolist()


def near_frozen(outputs: torch.Tensor, drivers: torch.Tensor) -> torch.Tensor:
    """bool [N]: outputs [N, T, H, W, 3] uint8 that change from frame to frame by less than
    NEAR_FROZEN_BELOW of what their drivers [N, T, H, W, 3] change."""
    return frame_change(outputs) < NEAR_FROZEN_BELOW * frame_change(drivers)


def motion_by_class(probs: dict[str, torch.Tensor], motion: torch.Tensor, frozen: torch.Tensor) -> dict:
    """Per driver class (the 9 Sprites motions): clips, motion transferred (class and poses), the
    class alone, and the share of near-frozen outputs (frozen: bool [N]); a class that does not move shows."""
    out = {}
    for k, name in enumerate(MOTION_NAMES):
        sel = motion == k
        n = int(sel.sum())
        hit = transferred({key: v[sel] for key, v in probs.items()}, motion[sel], frame_poses(motion[sel].numpy()))
        out[name] = {"clips": n,
                     "motion": float(hit.float().mean()) if n else float("nan"),
                     "motion_class_only": accuracy(probs["motion"][sel], motion[sel]),
                     "pose_frames": accuracy(probs["poses"][sel], torch.as_tensor(frame_poses(motion[sel].numpy()))),
                     "near_frozen": float(frozen[sel].float().mean()) if n else float("nan")}
    return out


def motion_lines(r: dict) -> list[str]:
    """eval.md's per-class motion table (r: the report)."""
    pct = lambda v: "-" if v != v else f"{100 * v:.1f} %"  # noqa: E731  (nan: no clip of that class)
    mj = r["motion_judging"]
    lines = ["", "## Motion by the driver's class", "",
             f"Transferred: the judge sees the class and the driver's pose in every frame but at most "
             f"{mj['misread_frames_allowed']}. Class only: the class head alone (it counts an output frozen on one "
             f"pose). Near-frozen: the output changes from frame to frame by less than "
             f"{100 * mj['near_frozen_below']:.0f} % of its driver's change. Frames in the driver's pose: the share of "
             "the output's frames the judge reads in the driver's pose of that frame.", "",
             "| driver's class | clips | transferred | class only | frames in the driver's pose | near-frozen |",
             "|---|---|---|---|---|---|"]
    for name, c in r["swap"]["motion_by_class"].items():
        lines.append(f"| {name} | {c['clips']} | {pct(c['motion'])} | {pct(c['motion_class_only'])} | "
                     f"{pct(c['pose_frames'])} | {pct(c['near_frozen'])} |")
    return lines


def markdown_report(r: dict) -> str:
    pct = lambda v: f"{100 * v:.1f} %"  # noqa: E731
    j = r["judge_test_accuracy"]
    s, st, rec, rate = r["swap"], r["content_swap_standard"], r["reconstruction"], r["rate"]
    lines = [
        f"# Sprites evaluation: {r['config']}",
        "",
        f"Test split (characters never seen in training), {r['test_clips_evaluated']} clips, {r['sample_steps']} "
        f"{r['sampler']} sampling steps.",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    if j:
        lines.append(f"| judge's own test accuracy (attributes mean / motion class / motion, class and poses) | "
                     f"{pct(j.get('attributes_mean', float('nan')))} / {pct(j.get('motion', float('nan')))} / "
                     f"{pct(j.get('motion_time_aware', float('nan')))} |")
        lines += [f"| judge on test clips made {name}: rejected (the class alone would count) | "
                  f"{pct(j[name + '_rejected'])} ({pct(j[name + '_class_alone'])}) |"
                  for name in ("frozen", "shuffled", "reversed") if name + "_rejected" in j]
    lines += [
        f"| swap: content attributes kept (mean of 4) | {pct(s['attributes_mean'])} |",
        *[f"| swap: {name} | {pct(s[name])} |" for name in ATTRIBUTE_NAMES],
        f"| swap: motion class transferred and the driver's poses followed frame by frame | {pct(s['motion'])} |",
        f"| swap: motion class only (v1 judge: counts outputs frozen on one pose) | {pct(s['motion_class_only'])} |",
        f"| swap: output frames in the driver's pose of that frame | {pct(s['pose_frames'])} |",
        f"| swap: near-frozen outputs (change < {100 * r['motion_judging']['near_frozen_below']:.0f} % of the driver's) | "
        f"{pct(s['near_frozen'])} |",
        *[f"| swap: {k.replace('_', ' ')} | {pct(v)} |" for k, v in s.get("motion_parts", {}).items()],
        f"| content swapped, motion kept: motion accuracy | {pct(st['motion_accuracy'])} |",
        f"| IS (motion head) | {st['inception_score']:.3f} |",
        f"| H(y\\|x) (nats) | {st['h_y_given_x']:.3f} |",
        f"| H(y) (nats) | {st['h_y']:.3f} |",
        *[f"| baseline \"{name}\": attributes / motion | {pct(b['attributes_mean'])} / {pct(b['motion'])} |"
          for name, b in r["baselines"].items()],
        f"| reconstruction PSNR | {rec['psnr_db']:.2f} dB |",
        f"| reconstruction SSIM | {rec['ssim']:.3f} |",
        f"| reconstruction flicker (frame-difference error, 0-1 pixels) | {rec['flicker']:.4f} |",
        *([f"| reconstruction: frames in their own pose, by frame index | "
           f"{' / '.join(f'{100 * v:.0f}' for v in rec['pose_frames_by_index'])} % |"]
          if "pose_frames_by_index" in rec else []),
        *rate_lines(rate),
    ]
    if "content_probe" in r:  # linear probes on the content tokens (chance: 16.7 % attributes, 33.3 % action/direction)
        lines += [f"| content probe: {name} (linear, test) | {pct(v)} |" for name, v in r["content_probe"].items()]
    if "decoder_reliance" in r:
        lines += ["", "## Decoder reliance", "", RELIANCE_NOTE, "", *reliance_lines(r["decoder_reliance"])]
    lines += motion_lines(r)
    lines.append("")
    return "\n".join(lines)


def step_study(pipe: MotionBits, out_dir: str | Path, step_counts: list[int], judge_path: str | Path | None = None,
               clips: int | None = None, sampler: str | None = None, progress: bool = True) -> list[dict]:
    """The same evaluation at several numbers of denoising steps: how few steps are enough.
    Each count's full report goes to out_dir/steps_N/; the summary to steps.json and steps.md."""
    out_dir = Path(out_dir)
    judge_path = judge_path or out_dir / "judge.safetensors"  # trained once, then shared by every count
    rows = []
    for steps in step_counts:
        # the content does not depend on the step count: no content probes here
        r = evaluate_sprites(pipe, out_dir / f"steps_{steps}", judge_path, clips, steps, sampler, progress=progress,
                             content_probes=False, decoder_reliance=False)
        rows.append({"steps": steps, "sampler": r["sampler"],
                     "network_calls": network_calls(steps, r["sampler"]),
                     "swap_attributes": r["swap"]["attributes_mean"], "swap_motion": r["swap"]["motion"],
                     "psnr_db": r["reconstruction"]["psnr_db"], "ssim": r["reconstruction"]["ssim"],
                     "test_clips": r["test_clips_evaluated"]})
    write_json_atomic(out_dir / "steps.json", rows)
    lines = [f"# Sampling steps against quality: {pipe.cfg.name}", "",
             f"Test split, {rows[0]['test_clips']} clips, the same clips and noise at every count.", "",
             "| steps | sampler | network calls | swap attributes | swap motion | PSNR (dB) | SSIM |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['steps']} | {r['sampler']} | {r['network_calls']} | {100 * r['swap_attributes']:.1f} % | "
                     f"{100 * r['swap_motion']:.1f} % | {r['psnr_db']:.2f} | {r['ssim']:.3f} |")
    write_text_atomic(out_dir / "steps.md", "\n".join(lines) + "\n")
    return rows
