"""Judging generated motion on Sprites test contents (the motion prior's protocol).

For a fixed random subset of test clips, the content is read from each clip and the prior samples
new motion codes, which the denoiser renders:
- unconditioned (label dropped): the distribution of judged motion classes, H(y) (all 9 classes
  covered means H(y) near ln 9 = 2.20 nats), H(y|x) (judge confidence) and IS; and the content
  attributes kept from the given content (attribute accuracy);
- class-conditioned (a prior trained with labels): each clip gets a random motion class; the
  judge's motion accuracy against it;
- code-level test NLL in bits per frame (how much of the bottleneck's rate the prior predicts),
  each clip's codes read with the content of another clip of the same character;
- generation speed in frames per second (prior + rendering).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from motionbits.atomic_files import write_json_atomic
from motionbits.data.sprites import NUM_MOTIONS, load_sprites
from motionbits.evaluation.judge import judge_predict
from motionbits.evaluation.metrics import accuracy, motion_distribution_scores
from motionbits.evaluation.rate import group_usage
from motionbits.models.prior import MotionPrior
from motionbits.api import MotionBits
from motionbits.training.prior import content_partners, extract_codes, test_nll_bits


@torch.no_grad()
def evaluate_generation(pipe: MotionBits, prior: MotionPrior, judge, out_dir: str | Path, clips: int = 300,
                        frames: int | None = None, temperature: float = 1.0, top_k: int | None = None,
                        steps: int | None = None, seed: int = 0, batch_size: int = 64,
                        progress: bool = True) -> dict:
    cfg = pipe.cfg
    frames = frames or cfg.data.frames
    test = load_sprites(cfg.data.root, "test")
    gen = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(test), generator=gen)[:clips]
    targets = torch.randint(0, NUM_MOTIONS, (len(chosen),), generator=gen)
    prior = prior.to(pipe.device).eval()
    conditioned = prior.cfg.num_classes > 0
    outputs: dict[str, list[torch.Tensor]] = {"free": [], "labelled": []}
    started, rendered = time.perf_counter(), 0
    for start in tqdm(range(0, len(chosen), batch_size), desc="generate", disable=not progress):
        idx = chosen[start:start + batch_size]
        content = pipe.encode_content(torch.from_numpy(test.frames[idx.numpy()]))
        runs = [("free", None)] + ([("labelled", targets[start:start + batch_size])] if conditioned else [])
        for name, label in runs:
            g = torch.Generator(device=content.device).manual_seed(seed + start)
            codes = prior.generate(content, frames, label=None if label is None else label.to(content.device),
                                   temperature=temperature, top_k=top_k, generator=g)
            outputs[name].append(pipe.render(content, codes, steps=steps, seed=seed + start))
            rendered += codes.shape[0] * frames
    seconds = time.perf_counter() - started
    attrs = torch.from_numpy(test.attributes)[chosen]
    free = judge_predict(judge, torch.cat(outputs["free"]))
    report = {
        "test_clips": len(chosen), "frames": frames, "temperature": temperature, "top_k": top_k,
        "unconditioned": {**motion_distribution_scores(free["motion"]),
                          "attributes_kept": accuracy(free["attributes"].flatten(0, 1), attrs.flatten()),
                          "judged_classes": np.bincount(free["motion"].argmax(-1).numpy(), minlength=NUM_MOTIONS).tolist()},
        "generation_frames_per_s": rendered / seconds, "device": str(pipe.device),
    }
    if conditioned:
        labelled = judge_predict(judge, torch.cat(outputs["labelled"]))
        report["conditioned"] = {"motion_accuracy": accuracy(labelled["motion"], targets),
                                 "attributes_kept": accuracy(labelled["attributes"].flatten(0, 1), attrs.flatten())}
    # The test NLL reads each clip's codes with the content of another clip of the same character,
    # so the content cannot hold the motion it is asked to predict.
    codes, _ = extract_codes(pipe, test.frames[chosen.numpy()], progress=False)
    _, content = extract_codes(pipe, test.frames[content_partners(test.character)[chosen.numpy()]], progress=False)
    labels = torch.from_numpy(test.motion)[chosen] if conditioned else None
    report["test_nll_bits_per_frame"] = test_nll_bits(prior, codes, content, labels)
    if conditioned:
        report["test_nll_bits_per_frame_unlabelled"] = test_nll_bits(prior, codes, content, None)
    report["bottleneck_bits_per_frame"] = sum(group_usage(torch.as_tensor(codes).long().flatten(0, 1),
                                                          cfg.model.codebook_size)["entropy_bits"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "generation_eval.json", report)
    return report
