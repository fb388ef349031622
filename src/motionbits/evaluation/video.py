"""The talking-head protocol on a held-out video set (the test split of `motionbits data video`).

Definitions (all on test clips only):
- same-identity reconstruction: content from the FIRST clip of a test video, motion from a LATER
  clip of the same video (a model with model.relative_motion reads that motion relative to the
  first clip, as in training); the rendered clip is compared with that later clip's real frames:
  L1 (mean absolute error in [0, 1] units), PSNR (dB, peak 1 in [0, 1] units) and SSIM (Gaussian
  window 11, sigma 1.5, averaged over channels and frames) and, when weights are given by path,
  LPIPS-VGG (v0.1 linear heads, frames in [-1, 1], averaged over frames);
- cross-identity transfer (content of identity A, motion of a clip of another identity B):
  * motion consistency = code agreement: the fraction of (frame, group) motion codes re-encoded from
    the result that equal the codes of B's clip (chance = 1/K_e);
  * content consistency: cosine similarity between the content tokens (flattened) re-encoded from
    the result and those of A's clip.
  * whose look (a check that does not use the model): a clip's look is its mean frame over time,
    shrunk to 16x16 (layout, colours, background; the motion averages out). Every identity of the
    dataset, train and test, gets the mean look of all its clips; a result is attributed to the
    identity with the nearest look (L2). Reported: the fraction of results attributed to A (the
    look was kept), to B (the driver was copied) and to anyone else (a third person, e.g. a
    training person drawn from memory); the same attribution of the real test clips to their own
    identity is the instrument's accuracy.
- window seams (long transfers): for each test video, up to `seam_frames` consecutive frames are
  assembled from its non-overlapping clips and driven onto another identity's content. Motion is
  encoded in windows of the training length, so a seam would show as a jump between the last
  frame of one window and the first of the next. With d_t = mean |y_{t+1} - y_t| (frames in
  [0, 1]), seam ratio = (mean d over window borders / mean d inside windows) of the result divided
  by the same ratio of the driving frames (which may move more or less at those instants by
  chance). 1 = borders are no jumpier than the driving motion; above 1 = visible seams.
- movement follows the driver (the same long transfers; a check that does not use the model):
  change c_t = mean |y_{t+1} - y_t| and drift d_t = mean |y_t - y_0| of the result and of its
  driving frames; Pearson r between the result's course and the driver's, averaged over videos,
  next to the same r against another video's driver (chance). Change says the result moves when
  the driver moves (mouth, blinks, nods); drift says it goes as far from its first frame as the
  driver does (a head turn held over seconds).
- baselines (every number gets a floor and a ceiling): "still" (the content's first frame held),
  "copy driver" (the driving frames; in reconstruction the target itself) and "tokenizer only"
  (the target through the tokenizer's encoder and decoder: the best image quality the model can
  reach); same-identity reconstruction and cross-identity transfer are reported for held-out
  people (unseen) and for training people (seen) in separate columns.
- face measures (CSIM, AKD, AED, motion following from landmarks, the share of transfers that beat
  both baselines) when the faces extra is installed: evaluation/faces.py and face_protocol.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from motionbits.models.tokenizer import frames_to_float
from motionbits.data.video import load_video_clips
from motionbits.errors import MotionbitsError
from motionbits.evaluation.metrics import psnr, ssim
from motionbits.evaluation.rate import coded_rate, rate_lines, rate_report
from motionbits.reliance import EVAL_CLIPS, RELIANCE_NOTE, RelianceClips, reliance_lines
from motionbits.api import MotionBits
from motionbits.atomic_files import write_json_atomic, write_text_atomic
from motionbits.evaluation.face_motion import LONG_FRAMES, long_motion_lines
from motionbits.evaluation.faces import EMBED_EVERY, nth
from motionbits.face_models import INSTALL_HINT, faces_available
from motionbits.visualize import long_transfer_pictures


LOOK_SIZE = 16


def looks(frames: np.ndarray | torch.Tensor, batch: int = 256) -> torch.Tensor:
    """uint8 clips [N, T, H, W, 3] -> their looks [N, 3 * 16 * 16]: the mean frame, area-shrunk."""
    out = []
    for i in range(0, len(frames), batch):
        x = torch.as_tensor(np.asarray(frames[i:i + batch])).float().mean(dim=1) / 255   # [b, H, W, 3]
        out.append(F.adaptive_avg_pool2d(x.permute(0, 3, 1, 2), LOOK_SIZE).flatten(1))
    return torch.cat(out)


def identity_gallery(clip_looks: torch.Tensor, identity: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Looks of clips [N, D] and their identities [N] -> the mean look of every identity [I, D], ids [I]."""
    unique = np.unique(identity)
    return torch.stack([clip_looks[torch.from_numpy(identity == u)].mean(0) for u in unique]), unique


def clip_at(frames: np.ndarray, i: int) -> torch.Tensor:
    """One clip of a memory-mapped split as a tensor [T, H, W, 3] uint8."""
    return torch.from_numpy(np.ascontiguousarray(frames[i]))


def nearest_identity(x: torch.Tensor, gallery: torch.Tensor, ids: np.ndarray) -> np.ndarray:
    """Looks [N, D] -> the identity id with the nearest mean look, [N]."""
    return ids[torch.cdist(x, gallery).argmin(dim=1).numpy()]


def same_video_pairs(video: np.ndarray, start: np.ndarray) -> list[tuple[int, int]]:
    """(first clip, later clip) index pairs, one per test video with at least two clips."""
    pairs = []
    for v in np.unique(video):
        idx = np.flatnonzero(video == v)
        idx = idx[np.argsort(start[idx])]
        if len(idx) >= 2:
            pairs.append((int(idx[0]), int(idx[-1])))
    return pairs


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def long_sequences(video: np.ndarray, start: np.ndarray, clip_frames: int, frames: int) -> list[list[int]]:
    """Per test video, the clips that tile its first `frames` frames back to back (start 0, T, 2T...),
    when at least two of them exist; these are concatenated into one long driving sequence."""
    sequences = []
    for v in np.unique(video):
        idx = np.flatnonzero(video == v)
        by_start = {int(start[i]): int(i) for i in idx}
        tiles = []
        while len(tiles) * clip_frames < frames and len(tiles) * clip_frames in by_start:
            tiles.append(by_start[len(tiles) * clip_frames])
        if len(tiles) >= 2:
            sequences.append(tiles)
    return sequences


def seam_ratio(result: torch.Tensor, driving: torch.Tensor, window: int) -> dict[str, float]:
    """result, driving: uint8 [B, L, H, W, 3]; `window` = frames the encoder reads at once.
    Frame-to-frame change at window borders vs inside windows, of the result relative to the driver."""
    def changes(x: torch.Tensor) -> tuple[float, float]:
        d = (x[:, 1:].float() - x[:, :-1].float()).abs().mean(dim=(0, 2, 3, 4)) / 255   # [L-1]
        border = torch.zeros_like(d, dtype=torch.bool)
        border[window - 1::window] = True        # transition t -> t+1 where t+1 starts a window
        return d[border].mean().item(), d[~border].mean().item()

    rb, ri = changes(result)
    db, di = changes(driving)
    return {"result_border": rb, "result_inside": ri, "driving_border": db, "driving_inside": di,
            "seam_ratio": (rb / max(ri, 1e-8)) / max(db / max(di, 1e-8), 1e-8)}


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Correlation along the last axis of a, b [B, L] -> [B] (0 where either is constant)."""
    a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-8)


def movement_follow(result: torch.Tensor, driving: torch.Tensor) -> dict[str, float]:
    """Does the result move when and as far as the driver moves? result, driving: uint8 [B, L, H, W, 3].

    Two time courses per clip, frames in [0, 1]: change c_t = mean |y_{t+1} - y_t| (when it moves)
    and drift d_t = mean |y_t - y_0| (how far it has gone from its first frame; a pose that returns
    to the start every window shows here). Reported: the Pearson correlation of the result's course
    with its driver's, averaged over clips, and the same with each result paired with another
    clip's driver (the chance level; needs at least two clips)."""
    def courses(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.float() / 255
        return ((x[:, 1:] - x[:, :-1]).abs().mean(dim=(2, 3, 4)),       # [B, L-1]
                (x[:, 1:] - x[:, :1]).abs().mean(dim=(2, 3, 4)))         # [B, L-1]

    (rc, rd), (dc, dd) = courses(result), courses(driving)
    out = {"change_follow": _pearson(rc, dc).mean().item(), "drift_follow": _pearson(rd, dd).mean().item(),
           "change_follow_mismatched": None, "drift_follow_mismatched": None}
    if len(result) >= 2:
        shifts = range(1, len(result))
        out["change_follow_mismatched"] = float(np.mean([_pearson(rc, dc.roll(s, 0)).mean().item() for s in shifts]))
        out["drift_follow_mismatched"] = float(np.mean([_pearson(rd, dd.roll(s, 0)).mean().item() for s in shifts]))
    return out


def other_identity_picker(identity: np.ndarray, gen: torch.Generator):
    """i -> a random clip of another identity than clip i's (None when there is only one identity)."""
    def pick(i: int) -> int | None:
        others = np.flatnonzero(identity != identity[i])
        return int(others[torch.randint(len(others), (1,), generator=gen).item()]) if len(others) else None
    return pick


def long_transfers(pipe: MotionBits, frames: np.ndarray, labels: dict[str, np.ndarray], pick_content,
                   seam_frames: int, steps: int | None, seed: int, progress: bool,
                   desc: str = "window seams", examples: int = 4) -> tuple[dict, torch.Tensor] | tuple[None, None]:
    """Each video's first `seam_frames` frames (tiled from its clips) drive the clip pick_content(first
    tile) picks -> (seam ratio and movement follow, the first `examples` transfers [E, 3, L, H, W, 3]:
    content's first frame held still, driver, result); (None, None) when no video is longer than one window."""
    sequences = long_sequences(labels["video"], labels["start"], frames.shape[1], seam_frames)
    sequences = [q for q in sequences if len(q) * frames.shape[1] > pipe.model.window]
    if not sequences:
        return None, None
    results, drivers, contents = [], [], []
    for i, tiles in enumerate(tqdm(sequences, desc=desc, disable=not progress)):
        other = pick_content(tiles[0])
        content_clip = clip_at(frames, tiles[0] if other is None else other)
        driving = torch.cat([clip_at(frames, t) for t in tiles])[None]       # [1, L, H, W, 3]
        results.append(pipe.transfer(content_clip[None], driving, steps=steps, seed=seed + i))
        drivers.append(driving)
        contents.append(content_clip[:1])
    length = min(x.shape[1] for x in drivers)
    results = torch.cat([x[:, :length] for x in results])                   # [V, L, H, W, 3]
    drivers = torch.cat([x[:, :length] for x in drivers])
    out = seam_ratio(results, drivers, pipe.model.window)
    out.update({"sequences": len(sequences), "frames": length, "window": pipe.model.window})
    out.update(movement_follow(results, drivers))
    stills = torch.stack(contents[:examples]).expand(-1, length, -1, -1, -1)  # [E, L, H, W, 3]
    return out, torch.stack([stills, drivers[:examples], results[:examples]], dim=1)


RECONSTRUCTIONS = ("model", "still", "tokenizer_only")


def same_identity(pipe: MotionBits, frames: np.ndarray, pairs: list[tuple[int, int]], steps: int | None,
                  batch_size: int, seed: int, progress: bool, lpips=None, faces=None,
                  desc: str = "same-identity") -> dict[str, dict[str, float | None]]:
    """Content from each (first, later) pair's first clip, motion from the later one, compared with
    the later clip's frames -> {kind: {l1, psnr_db, ssim, lpips}} for kind = the model, "still" (the
    first clip's first frame held: no motion at all) and "tokenizer_only" (the later clip through the
    tokenizer's encoder and decoder: the ceiling of image quality). faces: a
    face_protocol.ReconstructionFaces that also reads the targets and results."""
    scores = {kind: {"l1": [], "psnr_db": [], "ssim": [], "lpips": []} for kind in RECONSTRUCTIONS}
    for i in tqdm(range(0, len(pairs), batch_size), desc=desc, disable=not progress):
        part = pairs[i:i + batch_size]
        first = torch.stack([clip_at(frames, a) for a, _ in part])         # [B, T, H, W, 3]
        later = torch.stack([clip_at(frames, b) for _, b in part])
        # A relative-motion model reads the later clip against the first, as in training.
        outputs = {"model": pipe.transfer(first, later, steps=steps, seed=seed + i, motion_reference=first),
                   "still": first[:, :1].expand_as(later),
                   "tokenizer_only": pipe.to_frames(pipe.to_latents(later))}
        real = frames_to_float(later.flatten(0, 1))
        for kind, out in outputs.items():
            fake = frames_to_float(out.flatten(0, 1))
            s = scores[kind]
            s["l1"].append((real - fake).abs().mean().item() / 2)
            s["psnr_db"].append(psnr(fake, real))
            s["ssim"].append(ssim(fake, real))
            if lpips is not None:
                s["lpips"].append(lpips(fake.to(pipe.device), real.to(pipe.device)).mean().item())
        if faces is not None:
            faces.add(later, {k: outputs[k] for k in ("model", "tokenizer_only")}, first)
    return {kind: {k: float(np.mean(v)) if v else None for k, v in s.items()} for kind, s in scores.items()}


def random_cross_pairs(identity: np.ndarray, n: int, gen: torch.Generator) -> list[tuple[int, int]]:
    """n (content clip, driving clip) pairs of different identities, drawn at random."""
    if len(np.unique(identity)) < 2:
        return []
    pairs = []
    while len(pairs) < n:
        a, b = torch.randint(len(identity), (2,), generator=gen).tolist()
        if identity[a] != identity[b]:
            pairs.append((a, b))
    return pairs


def cross_identity(pipe: MotionBits, frames: np.ndarray, identity: np.ndarray, pairs: list[tuple[int, int]],
                   gallery: torch.Tensor, gallery_ids: np.ndarray, steps: int | None, batch_size: int, seed: int,
                   progress: bool, desc: str = "cross-identity", faces=None) -> tuple[dict, torch.Tensor | None]:
    """Content of clip a, motion of clip b, for each (a, b) of another identity -> (code agreement,
    its untransferred floor, content cosine, whose look; the driving clips' code logits [P*T', N, K_e]).
    faces: a face_protocol.TransferFaces that also reads each batch's content, driver and result."""
    if not pairs:
        return {"code_agreement": None, "untransferred_code_agreement": None, "content_cosine": None,
                "whose_look": None, "pairs": 0}, None
    agreement, reference, cosine, driving_codes, result_looks = [], [], [], [], []
    for i in tqdm(range(0, len(pairs), batch_size), desc=desc, disable=not progress):
        part = pairs[i:i + batch_size]
        content_clips = torch.stack([clip_at(frames, a) for a, _ in part])
        motion_clips = torch.stack([clip_at(frames, b) for _, b in part])
        # Each clip goes through the tokenizer once (its encoder is the slow part on a CPU); the
        # transfer is pipe.transfer's, the result is read back from its pixels.
        z_content, z_motion = pipe.to_latents(content_clips), pipe.to_latents(motion_clips)
        lips_of = pipe.model.lips_of_frames             # None, or the frames' lip points (model.lip_groups)
        content = pipe.content_of_latents(z_content)
        logits = pipe.motion_logits_of_latents(z_motion, lips=lips_of(motion_clips))
        codes = logits.argmax(-1)
        out = pipe.render(content, codes, steps=steps, seed=seed + i)
        if faces is not None:
            faces.add(content_clips, motion_clips, out)
        z_out = pipe.to_latents(out)
        result_looks.append(looks(out.cpu()))
        driving_codes.append(logits.flatten(0, 1).cpu())
        agreement.append((pipe.motion_of_latents(z_out, lips=lips_of(out)) == codes).float().mean().item())
        reference.append((pipe.motion_of_latents(z_content, lips=lips_of(content_clips)) == codes).float().mean().item())
        cosine.append(F.cosine_similarity(pipe.content_of_latents(z_out).flatten(1), content.flatten(1)).mean().item())
    attributed = nearest_identity(torch.cat(result_looks), gallery, gallery_ids)
    content_id, driver_id = identity[[a for a, _ in pairs]], identity[[b for _, b in pairs]]
    whose = {"content": float(np.mean(attributed == content_id)), "driver": float(np.mean(attributed == driver_id)),
             "other": float(np.mean((attributed != content_id) & (attributed != driver_id)))}
    measures = {"code_agreement": float(np.mean(agreement)), "untransferred_code_agreement": float(np.mean(reference)),
                "content_cosine": float(np.mean(cosine)), "whose_look": whose, "pairs": len(pairs)}
    return measures, torch.cat(driving_codes)


def new_driver_pairs(frames: np.ndarray, identity: np.ndarray, known: np.ndarray, train_frames: np.ndarray,
                     train_identity: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list] | None:
    """n (content, driver) pairs for "a person the run trained on, driven by someone it never saw"
    (the own-footage case): content from the test videos of known people when the split holds some
    back (`data video --test-videos`), else from their training clips; drivers from test people the
    run never saw. -> (clips [2n, T, H, W, 3], identities [2n], pairs (i, n + i)); None without
    unseen drivers."""
    drivers = np.flatnonzero(~known)
    if not len(drivers) or n == 0:
        return None
    gen = torch.Generator().manual_seed(seed + 2)
    source, source_id = (frames, identity) if known.any() else (train_frames, train_identity)
    candidates = np.flatnonzero(known) if known.any() else np.arange(len(train_frames))
    content = candidates[torch.randint(len(candidates), (n,), generator=gen).numpy()]
    driver = drivers[torch.randint(len(drivers), (n,), generator=gen).numpy()]
    clips = np.concatenate([np.asarray(source[content]), np.asarray(frames[driver])])   # [2n, T, H, W, 3]
    return clips, np.concatenate([source_id[content], identity[driver]]), [(i, n + i) for i in range(n)]


def leave_video_out_accuracy(clip_looks: torch.Tensor, identity: np.ndarray, video: np.ndarray) -> float:
    """The look instrument's accuracy: each real clip attributed among identity looks built from
    every clip except those of its own video (so no clip is compared with itself)."""
    hits = []
    for v in np.unique(video):
        rest = video != v
        gallery, ids = identity_gallery(clip_looks[torch.from_numpy(rest)], identity[rest])
        hits.append(nearest_identity(clip_looks[torch.from_numpy(~rest)], gallery, ids) == identity[~rest])
    return float(np.concatenate(hits).mean())


SETS = ("unseen", "new_drivers", "seen")
SET_NAMES = {"unseen": "unseen people (held out)", "new_drivers": "seen people, new videos / new drivers",
             "seen": "seen people, training videos"}


@torch.no_grad()
def evaluate_video(pipe: MotionBits, out_dir: str | Path, clips: int | None = None, steps: int | None = None,
                   batch_size: int = 8, seed: int = 0, progress: bool = True, seam_frames: int = 32,
                   lpips_path: str | Path | None = None, faces: bool | None = None,
                   face_every: int = EMBED_EVERY, long_frames: int = LONG_FRAMES, long_windows: int = 24) -> dict:
    """The protocol of the module doc, written to out_dir/eval.json and eval.md. faces: the face
    measures (None: when the faces extra is installed); their identity descriptors are computed on
    every `face_every`-th frame (landmarks on every frame). Face motion over long sequences reads
    the test videos in windows of at least `long_frames` frames, at most `long_windows` per set."""
    faces_on = faces_available() if faces is None else faces
    frames, labels = load_video_clips(pipe.cfg.data.root, "test")
    frames = frames[:, : pipe.cfg.data.frames]
    train_frames, train_labels = load_video_clips(pipe.cfg.data.root, "train")
    train_frames = train_frames[:, : pipe.cfg.data.frames]
    identity = labels["identity"]
    # A test clip of a person who also has training videos (new footage of a known person) is
    # "seen"; the unseen column holds only people the run never saw.
    known = np.isin(identity, train_labels["identity"])
    video_pairs = same_video_pairs(labels["video"], labels["start"])
    if not video_pairs:
        raise MotionbitsError(f"{pipe.cfg.data.root}: no test video has two clips; same-identity reconstruction needs them")
    pairs = {"unseen": [p for p in video_pairs if not known[p[0]]], "new_drivers": [p for p in video_pairs if known[p[0]]]}
    gen = torch.Generator().manual_seed(seed)
    n = min(clips or pipe.cfg.eval.clips or len(frames), len(frames))
    chosen = torch.randperm(len(frames), generator=gen)[:n].numpy()
    other_identity = other_identity_picker(identity, gen)
    cross = [(int(a), b) for a in chosen[~known[chosen]] if (b := other_identity(a)) is not None]

    lpips = None
    if lpips_path is not None:
        from motionbits.evaluation.lpips import load_lpips
        lpips = load_lpips(lpips_path, pipe.device)
    recon_faces = {k: None for k in SETS}
    transfer_faces = {k: None for k in SETS}
    if faces_on:
        from motionbits.evaluation.face_protocol import ReconstructionFaces, TransferFaces

        recon_faces = {k: ReconstructionFaces(embed_every=face_every) for k in SETS}
        transfer_faces = {k: TransferFaces(embed_every=face_every) for k in SETS}

    # Same-identity reconstruction: held-out people's videos, new videos of known people, training videos.
    seen_video_pairs = same_video_pairs(train_labels["video"], train_labels["start"])
    pick = torch.randperm(len(seen_video_pairs), generator=torch.Generator().manual_seed(seed + 1))[:len(video_pairs)]
    recon = {k: same_identity(pipe, frames, pairs[k], steps, batch_size, seed, progress, lpips, recon_faces[k],
                              desc=f"same-identity ({SET_NAMES[k]})") if pairs[k] else None
             for k in ("unseen", "new_drivers")}
    recon["seen"] = same_identity(pipe, train_frames, [seen_video_pairs[i] for i in pick.tolist()], steps, batch_size,
                                  seed, progress, lpips, recon_faces["seen"], desc="same-identity (training people)")
    recon_videos = {"unseen": len(pairs["unseen"]), "new_drivers": len(pairs["new_drivers"]), "seen": len(pick)}

    # Cross-identity transfers: the three sets.
    test_looks = looks(frames)
    all_looks = torch.cat([looks(train_frames), test_looks])
    all_ids = np.concatenate([train_labels["identity"], identity])
    gallery, gallery_ids = identity_gallery(all_looks, all_ids)
    transfers, driving_codes = {}, None
    transfers["unseen"], driving_codes = cross_identity(pipe, frames, identity, cross, gallery, gallery_ids, steps,
                                                        batch_size, seed, progress, desc="cross-identity (unseen people)",
                                                        faces=transfer_faces["unseen"])
    mixed = new_driver_pairs(frames, identity, known, train_frames, train_labels["identity"], len(cross) or n, seed)
    transfers["new_drivers"], new_codes = (cross_identity(pipe, mixed[0], mixed[1], mixed[2], gallery, gallery_ids, steps,
                                                          batch_size, seed, progress,
                                                          desc="cross-identity (seen people, new drivers)",
                                                          faces=transfer_faces["new_drivers"])
                                           if mixed else cross_identity(pipe, frames, identity, [], gallery,
                                                                        gallery_ids, steps, batch_size, seed, progress))
    driving_codes = driving_codes if driving_codes is not None else new_codes
    seen_pairs = random_cross_pairs(train_labels["identity"], len(cross) or n, gen)
    transfers["seen"], _ = cross_identity(pipe, train_frames, train_labels["identity"], seen_pairs, gallery, gallery_ids,
                                          steps, batch_size, seed, progress, desc="cross-identity (training people)",
                                          faces=transfer_faces["seen"])
    seams, held_out_examples = long_transfers(pipe, frames, labels, other_identity, seam_frames, steps, seed, progress)
    seen_seams, seen_examples = long_transfers(pipe, train_frames, train_labels,
                                               other_identity_picker(train_labels["identity"], gen),
                                               seam_frames, steps, seed, progress, desc="long transfers (training people)")
    long_motion = {}
    if faces_on:  # after every other draw of `gen`, so the pairs above stay what they were
        from motionbits.evaluation.face_protocol import long_face_motion, video_windows

        windows = video_windows(labels["video"], labels["start"], frames.shape[1], long_frames)
        for k in ("unseen", "new_drivers"):
            chosen_windows = [w for w in windows if bool(known[w[1][0]]) == (k == "new_drivers")][:long_windows]
            if chosen_windows:
                long_motion[k] = long_face_motion(pipe, frames, labels, chosen_windows, other_identity, steps, seed,
                                                  progress, desc=f"face motion ({SET_NAMES[k]})")
    all_videos = np.concatenate([train_labels["video"], labels["video"]])
    reliance = RelianceClips.of_dataset(pipe.cfg, pipe.tokenizer, pipe.device, EVAL_CLIPS).measure(pipe.model, seed)
    look_instrument = {"real_clips_own_identity": leave_video_out_accuracy(all_looks, all_ids, all_videos),
                       "identities": int(len(gallery_ids))}
    report = {
        "config": pipe.cfg.name, "sample_steps": steps or pipe.cfg.diffusion.sample_steps,
        "sets": SET_NAMES,
        "reconstruction": {k: (None if recon[k] is None else {"videos": recon_videos[k], **recon[k]}) for k in SETS},
        "transfers": {k: {**transfers[k], "chance_code_agreement": 1 / pipe.cfg.model.codebook_size} for k in SETS},
        "whose_look_instrument": look_instrument,
        "rate": (rate_report(driving_codes, pipe.cfg.model.codebook_size, pipe.cfg.model.rate_estimate,
                             pipe.model.quantizer.ceiling_bits, pipe.cfg.train.target_bits,
                             *(coded_rate(pipe.model.quantizer,                  # [clips, T, N]: each clip a stream
                                          driving_codes.argmax(-1).view(-1, frames.shape[1], driving_codes.shape[-2]),
                                          pipe.model.window, tables) for tables in ("static", "adaptive")))
                 if driving_codes is not None else None),
        "window_seams": seams,
        "long_transfers_training_people": seen_seams,
        "decoder_reliance": reliance,
        "faces": ({"embed_every": face_every,
                   "reconstruction": {k: f.summary() for k, f in recon_faces.items() if f is not None and f.rows},
                   "transfers": {k: f.summary() for k, f in transfer_faces.items() if f is not None and f.counts},
                   "long_motion": {"min_frames": long_frames, **long_motion}}
                  if faces_on else {"missing": f"the faces extra is not installed: {INSTALL_HINT}"}),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "eval.json", report)
    pictures = {name: long_transfer_pictures(examples, out_dir / name)
                for name, examples in (("transfers_held_out", held_out_examples),
                                       ("transfers_training_people", seen_examples)) if examples is not None}
    write_text_atomic(out_dir / "eval.md", markdown_report(report, pictures, lpips is not None))
    return report


def markdown_report(report: dict, pictures: dict, with_lpips: bool) -> str:
    """eval.md: a reconstruction table and a transfer table, one row per set and method (the model,
    then its baselines), and the model's other measures."""
    rec, tra, f = report["reconstruction"], report["transfers"], report["faces"]
    faces_on = "missing" not in f
    lines = [f"# Video evaluation: {report['config']}", "",
             f"{report['sample_steps']} sampling steps. Unseen people: held out of training (the test score); seen "
             "people, new videos / new drivers: people the run trained on, in videos it never saw (reconstruction) or "
             "driven by people it never saw (transfer), the own-footage case; seen people, training videos: what the "
             "run trained on (not a test score). Baselines: still = the content's first frame held (the right person, "
             "no motion); copy driver = the driving frames (all the motion, the wrong person); tokenizer only = the "
             "target through the tokenizer (the ceiling of image quality)"
             + (f"; face identity descriptors on {nth(f['embed_every'])}, landmarks on every frame." if faces_on else "."), "",
             "## Same-identity reconstruction (content from a video's first clip, motion from a later one)", "",
             "| set | method | videos | L1 | PSNR (dB) | SSIM |" + (" LPIPS |" if with_lpips else "")
             + (" AKD | AED | frames with a face |" if faces_on else ""),
             "|---|---|---|---|---|---|" + ("---|" if with_lpips else "") + ("---|---|---|" if faces_on else "")]
    for k in SETS:
        if rec[k] is None:
            lines.append(f"| {SET_NAMES[k]} | no such videos in this split | | | | |")
            continue
        for method in RECONSTRUCTIONS:
            r = rec[k][method]
            row = f"| {SET_NAMES[k] if method == 'model' else ''} | {method.replace('_', ' ')} | {rec[k]['videos']} | " \
                  f"{_fmt(r['l1'], 4)} | {_fmt(r['psnr_db'], 2)} | {_fmt(r['ssim'])} |"
            if with_lpips:
                row += f" {_fmt(r['lpips'], 4)} |"
            if faces_on:
                fr = f["reconstruction"].get(k, {}).get(method, {})
                row += f" {_fmt(fr.get('akd'))} | {_fmt(fr.get('aed'))} | {_fmt(fr.get('found'), 2)} |"
            lines.append(row)
    lines += ["", "## Cross-identity transfer (content of person A, motion of person B)", ""]
    if faces_on:
        lines += ["| set | method | pairs | CSIM to A (dlib cosine) | frames that are A | motion following r "
                  "| mouth / eyes / yaw / pitch / roll | transfers that count |", "|---|---|---|---|---|---|---|---|"]
        for k in SETS:
            t = f["transfers"].get(k)
            if not t:
                lines.append(f"| {SET_NAMES[k]} | no such pairs | | | | | | |")
                continue
            for method in ("model", "still", "copy driver"):
                m = t[method]
                signals = " / ".join(_fmt(m[s], 2) for s in ("mouth", "eyes", "yaw", "pitch", "roll"))
                counts = f"{_fmt(t['counts'], 2)}" if method == "model" else ""
                lines.append(f"| {SET_NAMES[k] if method == 'model' else ''} | {method} | {t['pairs']} | {_fmt(m['csim'])} "
                             f"| {_fmt(m['same_person'], 2)} | {_fmt(m['motion'])} | {signals} | {counts} |")
        lines += ["", "A transfer counts when it follows the driver more than still does and is nearer A than copy driver "
                  "is (evaluation/face_protocol.py).", ""]
    else:
        lines += [f"Face measures (CSIM, AKD, AED, motion following): not measured: {f['missing']}", ""]

    def whose(c: dict) -> str:
        w = c["whose_look"]
        return "n/a" if w is None else f"{w['content']:.2f} / {w['driver']:.2f} / {w['other']:.2f}"

    def follow(x: dict | None) -> str:
        if x is None:
            return "n/a"
        return (f"{x['change_follow']:.3f} / {x['drift_follow']:.3f} "
                f"({_fmt(x['change_follow_mismatched'])} / {_fmt(x['drift_follow_mismatched'])}; {x['sequences']} videos)")

    seams, seen_seams = report["window_seams"], report["long_transfers_training_people"]
    instrument = report["whose_look_instrument"]
    lines += ["## The model's own reading, looks, rate and long transfers", "",
              "| measure | " + " | ".join(SET_NAMES[k] for k in SETS) + " |", "|---|---|---|---|",
              f"| code agreement: the result re-encoded against the driver's codes (chance "
              f"{tra['unseen']['chance_code_agreement']:.3f}) | " + " | ".join(_fmt(tra[k]["code_agreement"]) for k in SETS) + " |",
              "| the same for the untransferred content clip (the floor) | "
              + " | ".join(_fmt(tra[k]["untransferred_code_agreement"]) for k in SETS) + " |",
              "| content cosine: the result's content against A's | " + " | ".join(_fmt(tra[k]["content_cosine"]) for k in SETS) + " |",
              f"| whose look (mean frame, 16x16): A / B / someone else, among {instrument['identities']} people | "
              + " | ".join(whose(tra[k]) for k in SETS) + " |",
              f"| the look's accuracy on real clips (gallery without the clip's own video) | "
              f"{instrument['real_clips_own_identity']:.3f} | | |"]
    if report["rate"]:
        lines += [f"{line} | |" for line in rate_lines(report["rate"])]
    if seams or seen_seams:
        lines += [f"| window seam ratio (1 = no seam) | {_fmt(seams and seams['seam_ratio'])} | | "
                  f"{_fmt(seen_seams and seen_seams['seam_ratio'])} |",
                  f"| long transfers: change / drift follow the driver, Pearson r (another video's driver) | "
                  f"{follow(seams)} | | {follow(seen_seams)} |"]
    if pictures:
        lines += ["", "Long transfers to look at (per transfer: driver above, result below with the content's frame on the "
                  f"left): {', '.join(f'`{p.name}`' for paths in pictures.values() for p in paths)}."]
    if faces_on and "long_motion" in f:
        lines += ["", *long_motion_lines(f["long_motion"], SET_NAMES)]
    if report.get("decoder_reliance"):
        lines += ["", "## Decoder reliance", "", RELIANCE_NOTE, "", *reliance_lines(report["decoder_reliance"])]
    return "\n".join(lines) + "\n"
