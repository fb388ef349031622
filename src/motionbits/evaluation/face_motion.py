"""Face motion measured with power: landmark signals over long sequences, pooled, with intervals.

The 8-frame motion-following r of face_protocol.py is noisy: eight frames of a talking head hold
one or two mouth movements, and an r of 0.05 cannot be told from 0. Here every sequence is long
(32 frames or more) and each signal is compared over many sequences at once:
- signals (faces.motion_signals, from each frame's 68 landmarks): mouth opening, eye closure, yaw,
  pitch, roll, and the face's centre x, y and size in the frame;
- per sequence, Pearson r between the output's signal and the reference's (the input video for a
  reconstruction, the driver for a transfer); `r_mean` is their mean over sequences;
- pooled, r over the frames of all sequences together after removing each sequence's own mean from
  both signals (the person's resting mouth or head position is not motion): a sequence counts in
  proportion to how much its reference moves, so long, lively sequences weigh most, still ones
  little; `r_pooled`;
- a 95 % bootstrap interval for both: whole videos are resampled with replacement (all sequences of
  a drawn video go in together; frames of one video are not independent), 2.5th and 97.5th
  percentiles of the statistic over the draws;
- groups: `mouth` (the mouth opening) and `head pose` (yaw, pitch, roll, centre x, centre y, size),
  each the mean of its signals' pooled r, with its own interval over the same draws.
A still output has r = 0; an output that copies the reference has r = 1; the null row (the
reference against another video's frames) shows what chance gives, and its interval should cover 0.
"""
from __future__ import annotations

import warnings

import numpy as np

from motionbits.evaluation.face_signals import MIN_FRAMES, PLACE_SIGNALS, SIGNALS, motion_signals

LONG_SIGNALS = SIGNALS + PLACE_SIGNALS
GROUPS = {"mouth": ("mouth",), "head pose": ("yaw", "pitch", "roll", "centre_x", "centre_y", "size")}
LONG_FRAMES = 32          # the shortest sequence the measure reads
BOOTSTRAP_DRAWS = 2000
TINY = 1e-12


def sums(output: np.ndarray, reference: np.ndarray) -> np.ndarray | None:
    """One sequence's signal pair [L] each (NaN: no face) -> [S_ab, S_aa, S_bb] of the
    mean-removed signals over the frames defined in both; None with fewer than MIN_FRAMES such frames."""
    ok = ~np.isnan(output) & ~np.isnan(reference)
    if ok.sum() < MIN_FRAMES:
        return None
    a, b = output[ok] - output[ok].mean(), reference[ok] - reference[ok].mean()
    return np.array([(a * b).sum(), (a * a).sum(), (b * b).sum()])


def correlation(s: np.ndarray) -> np.ndarray:
    """[..., 3] sums -> r [...]: NaN where the reference does not move, 0 where only the output is still."""
    ab, aa, bb = s[..., 0], s[..., 1], s[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = ab / np.sqrt(aa * bb)
    r = np.where(aa <= TINY, 0.0, r)
    return np.where(bb <= TINY, np.nan, r)


def _interval(draws: np.ndarray) -> list[float] | None:
    draws = draws[~np.isnan(draws)]
    return [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))] if len(draws) else None


def _value(x) -> float | None:
    return None if x is None or np.isnan(x) else float(x)


class MotionFollowing:
    """Pairs of (output, reference) landmark sequences, grouped by video, under named rows (the model,
    the null, the tokenizer-only ceiling); summary() gives every signal's and group's r with intervals."""

    def __init__(self):
        self.rows: dict[str, list[tuple[int, dict[str, np.ndarray | None]]]] = {}

    def add(self, row: str, video: int, output: np.ndarray, reference: np.ndarray) -> None:
        """output, reference: landmarks [L, 68, 2] (NaN rows where no face) of one sequence of `video`."""
        out, ref = motion_signals(output), motion_signals(reference)
        self.rows.setdefault(row, []).append((int(video), {s: sums(out[s], ref[s]) for s in LONG_SIGNALS}))

    def add_signals(self, row: str, video: int, output: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> None:
        """The same from signals {name: [L]} already computed (LONG_SIGNALS; a missing one is left out)."""
        self.rows.setdefault(row, []).append(
            (int(video), {s: sums(output[s], reference[s]) if s in output and s in reference else None
                          for s in LONG_SIGNALS}))

    def summary(self, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> dict:
        return {row: following_summary(seqs, draws, seed) for row, seqs in self.rows.items()}


def following_summary(sequences: list[tuple[int, dict]], draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> dict:
    """[(video, {signal: sums or None})] -> per signal r_pooled, r_mean and their 95 % intervals and
    r_each (every sequence's r, None where undefined), per group the mean pooled r with its
    interval, and the counts."""
    videos = sorted({v for v, _ in sequences})
    index = {v: i for i, v in enumerate(videos)}
    n_videos = len(videos)
    # The same video draws for every signal and group: counts [D, V] of each video in each draw.
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_videos, np.full(n_videos, 1 / n_videos), size=draws) if n_videos else np.zeros((draws, 0))
    pooled_draws, out = {}, {"sequences": len(sequences), "videos": n_videos, "signals": {}, "groups": {}}
    for s in LONG_SIGNALS:
        per_video = np.zeros((n_videos, 3))                  # pooled sums of each video's sequences
        r_sum, r_count, r_each = np.zeros(n_videos), np.zeros(n_videos), []
        for v, stats in sequences:
            if stats[s] is None:
                r_each.append(None)
                continue
            per_video[index[v]] += stats[s]
            r = correlation(stats[s])
            r_each.append(_value(r))
            if not np.isnan(r):
                r_sum[index[v]] += r
                r_count[index[v]] += 1
        if r_count.sum() == 0:
            out["signals"][s] = {"r_pooled": None, "ci": None, "r_mean": None, "r_mean_ci": None, "sequences": 0,
                                 "r_each": r_each}
            pooled_draws[s] = np.full(draws, np.nan)
            continue
        pooled_draws[s] = correlation(counts @ per_video)                                  # [D]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_draws = (counts @ r_sum) / (counts @ r_count)
        out["signals"][s] = {"r_pooled": _value(correlation(per_video.sum(0))), "ci": _interval(pooled_draws[s]),
                             "r_mean": float(r_sum.sum() / r_count.sum()), "r_mean_ci": _interval(mean_draws),
                             "sequences": int(r_count.sum()), "r_each": r_each}
    for group, members in GROUPS.items():
        point = [out["signals"][s]["r_pooled"] for s in members if out["signals"][s]["r_pooled"] is not None]
        with warnings.catch_warnings():   # a draw where no member is defined is NaN, left out of the interval
            warnings.simplefilter("ignore", RuntimeWarning)
            group_draws = np.nanmean(np.stack([pooled_draws[s] for s in members]), axis=0)       # [D]
        out["groups"][group] = {"r_pooled": float(np.mean(point)) if point else None,
                                "ci": _interval(group_draws) if point else None}
    return out


# ---- the table ---------------------------------------------------------------------------------
def _with_interval(x: dict) -> str:
    if x["r_pooled"] is None:
        return "n/a"
    lo_hi = f" [{x['ci'][0]:.2f}, {x['ci'][1]:.2f}]" if x.get("ci") else ""
    return f"{x['r_pooled']:.2f}{lo_hi}"


def long_motion_lines(report: dict, set_names: dict[str, str]) -> list[str]:
    """eval.md's section: {"min_frames": L, set: long_face_motion(...)} -> markdown lines, one row per
    set, comparison (reconstruction, transfer) and method (the model, the ceiling, the null)."""
    sets = [k for k in set_names if k in report]
    lines = [f"## Face motion over long sequences (windows of {report['min_frames']} frames or more)", "",
             "Pearson r of landmark signals against the driver (in a reconstruction the driver is the input video), "
             "pooled over windows with each window's mean removed, with a 95 % bootstrap interval over videos; "
             "mouth = the mouth opening, head pose = the mean of yaw, pitch, roll, face centre x, y and size. "
             "tokenizer only = the driver through the tokenizer (the ceiling); null = another person's window "
             "against the driver (chance; its interval should cover 0).", ""]
    if not sets:
        return lines + [f"No test video has {report['min_frames']} frames of back-to-back clips."]
    lines += ["| set | against the driver | method | windows (videos) | mouth r | head pose r | eyes | yaw | pitch | roll "
              "| centre x | centre y | size |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k in sets:
        r = report[k]
        for kind in ("reconstruction", "transfer"):
            for method, row in r[kind].items():
                signals = " | ".join("n/a" if row["signals"][s]["r_pooled"] is None else f"{row['signals'][s]['r_pooled']:.2f}"
                                     for s in LONG_SIGNALS if s != "mouth")
                lines.append(f"| {set_names[k] if kind == 'reconstruction' and method == 'model' else ''} "
                             f"| {kind if method == 'model' else ''} | {method} | {row['sequences']} ({row['videos']}) "
                             f"| {_with_interval(row['groups']['mouth'])} | {_with_interval(row['groups']['head pose'])} "
                             f"| {signals} |")
    return lines


def pair_motion(driver: np.ndarray, output: np.ndarray, other: np.ndarray | None = None) -> dict:
    """`motionbits score`: landmarks [L, 68, 2] of A (driver), B (output) and optionally C (another
    video's frames, at least L of them) -> {"B": ..., "null: C's frames": ...}, each with every
    signal's r and the two groups' (one sequence: no interval)."""
    rows = MotionFollowing()
    rows.add("B", 0, output, driver)
    if other is not None and len(other) >= len(driver):
        rows.add("null: C's frames", 0, other[:len(driver)], driver)
    return {row: {"groups": {g: v["r_pooled"] for g, v in s["groups"].items()},
                  "signals": {k: v["r_pooled"] for k, v in s["signals"].items()}}
            for row, s in rows.summary(draws=1).items()}


def pair_motion_lines(report: dict) -> list[str]:
    """The score verb's table of pair_motion's report."""
    rows = list(report)
    lines = ["| motion against A, whole length (Pearson r) | " + " | ".join(rows) + " |", "|---|" + "---|" * len(rows)]
    cell = lambda v: "n/a" if v is None else f"{v:.3f}"                        # noqa: E731
    lines += [f"| {g} group | " + " | ".join(cell(report[r]["groups"][g]) for r in rows) + " |" for g in GROUPS]
    lines += [f"| r {s.replace('_', ' ')} | " + " | ".join(cell(report[r]["signals"][s]) for r in rows) + " |"
              for s in LONG_SIGNALS]
    return lines
