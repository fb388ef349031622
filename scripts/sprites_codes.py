"""What a Sprites model's motion codes carry, and which frames its decoder draws in their pose.

    python scripts/sprites_codes.py --checkpoint RUN --data DATA --judge JUDGE [--clips 500] [--steps 2]

Every Sprites clip of a motion class shows the same poses in the same order, so a model that moves
right must (1) give frames of different poses different code tuples and (2) draw each frame in the
pose its codes name. This prints both, on clips of the test split (characters never seen in training):

- codes: each frame's code tuple (all groups) names a pose and a class by majority vote over the
  frames of train-split clips with that tuple; the share of test frames whose tuple names their
  true pose and class, and how many distinct tuples occur, by frame index too, and the poses most
  often named as another. Class right but pose wrong: the codes carry the motion class but not
  where in it a frame is; one pose always named as another: the two share their tuples.
- decoder: the judge's reading of each reconstructed frame (content and codes from the same clip),
  the share in their own pose for each frame index. Near 0 at some indices: the decoder never
  learned those frames' poses.
"""
from __future__ import annotations

import argparse
from collections import Counter, defaultdict

import numpy as np
import torch

from motionbits.api import MotionBits
from motionbits.data.sprites import FRAMES, MOTION_NAMES, frame_poses, load_sprites
from motionbits.evaluation.judge import judge_predict, load_judge
from motionbits.evaluation.sprites import poses_by_frame


def majority_vote_accuracy(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray,
                           test_labels: np.ndarray) -> float:
    """Codes [N, G] int and labels [N]: the share of test rows whose code tuple's most frequent
    training label is their label (a tuple never seen in training counts as wrong)."""
    return float(np.mean(majority_pose(train_codes, train_labels, test_codes) == test_labels))


def majority_pose(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray) -> np.ndarray:
    """The label each test row's code tuple names (its most frequent training label; -1: a tuple
    never seen in training). Codes [N, G] int, labels [N] -> [N]."""
    votes: dict[tuple, Counter] = defaultdict(Counter)
    for code, label in zip(map(tuple, train_codes), train_labels):
        votes[code][label] += 1
    return np.array([votes[code].most_common(1)[0][0] if code in votes else -1 for code in map(tuple, test_codes)])


def pose_name(pose: int) -> str:
    return "a tuple never seen" if pose < 0 else f"{MOTION_NAMES[pose // FRAMES]} frame {pose % FRAMES}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True, help="the Sprites dataset folder (motionbits data sprites)")
    parser.add_argument("--judge", required=True, help="a judge.safetensors with the pose head (motionbits evaluate writes one)")
    parser.add_argument("--clips", type=int, default=500, help="test clips (train clips: three times as many)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    args = parser.parse_args()

    pipe = MotionBits.from_checkpoint(args.checkpoint)
    rng = np.random.default_rng(0)

    def codes_of(split: str, n: int):
        data = load_sprites(args.data, split)
        pick = np.sort(rng.permutation(len(data))[:n])
        frames = torch.from_numpy(data.frames[pick])
        codes = torch.cat([pipe.motion_of_latents(pipe.to_latents(frames[i:i + 64])) for i in range(0, n, 64)])
        return frames, codes.numpy(), data.motion[pick]                   # [n, T, ...], [n, T, G], [n]

    _, train_codes, train_motion = codes_of("train", 3 * args.clips)
    test_frames, test_codes, test_motion = codes_of("test", args.clips)
    flat = lambda c: c.reshape(-1, c.shape[-1])                          # noqa: E731  [n*T, G]
    pose = majority_vote_accuracy(flat(train_codes), frame_poses(train_motion).ravel(),
                                  flat(test_codes), frame_poses(test_motion).ravel())
    motion = majority_vote_accuracy(flat(train_codes), np.repeat(train_motion, FRAMES),
                                    flat(test_codes), np.repeat(test_motion, FRAMES))
    tuples = len(set(map(tuple, flat(train_codes))))
    print(f"codes: {tuples} distinct tuples on {3 * args.clips} train clips; a test frame's tuple names "
          f"its pose {100 * pose:.1f} %, its class {100 * motion:.1f} %")
    true = frame_poses(test_motion)                                                   # [n, T]
    named = majority_pose(flat(train_codes), frame_poses(train_motion).ravel(), flat(test_codes)).reshape(true.shape)
    print("codes: the tuple names its frame's pose, by frame index: "
          + " / ".join(f"{100 * v:.0f}" for v in (named == true).mean(0)) + " %")
    merged = Counter((t, n) for t, n in zip(true.ravel(), named.ravel()) if t != n)
    print("codes: poses most often named as another (test frames):")
    for (t, n), count in merged.most_common(8):
        print(f"  {pose_name(t)} as {pose_name(n)}: {count}")

    recon = torch.cat([pipe.reconstruct(test_frames[i:i + 64], steps=args.steps)
                       for i in range(0, args.clips, 64)])
    probs = judge_predict(load_judge(args.judge), recon)
    by_frame = poses_by_frame(probs, torch.from_numpy(test_motion))
    print("decoder: reconstructed frames in their own pose, by frame index: "
          + " / ".join(f"{100 * v:.0f}" for v in by_frame) + " %")
    drawn = probs["poses"].argmax(-1).numpy()                                         # [n, T]
    wrong = Counter((t, d, i) for clip_true, clip_drawn in zip(true, drawn)
                    for i, (t, d) in enumerate(zip(clip_true, clip_drawn)) if t != d)
    print("decoder: poses most often drawn as another (reconstructed test frames):")
    for (t, d, i), count in wrong.most_common(8):
        print(f"  frame {i}: {pose_name(t)} as {pose_name(d)}: {count}")


if __name__ == "__main__":
    main()
