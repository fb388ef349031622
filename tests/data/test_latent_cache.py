"""The on-disk latent cache: written once, read back bit for bit, never stale, never fatal."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from motionbits.data import latent_cache
from motionbits.data.clips import ClipSet, load_clips
from motionbits.models.tokenizer import TAEF2, build_tokenizer, frames_to_float
from tests.helpers import tiny_config


def _frames(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 4, 16, 16, 3), dtype=np.uint8)  # [N, T, H, W, 3]


def _tokenizer(seed: int | None = None) -> TAEF2:
    """The shipped taef2, or (with a seed) the same network with random weights."""
    if seed is None:
        return build_tokenizer("taef2")
    torch.manual_seed(seed)
    return TAEF2()


def test_second_clip_set_reads_the_latents_back_without_encoding(tmp_path, monkeypatch, one_thread):
    frames, tok = _frames(), _tokenizer()
    path = latent_cache.cache_path(tmp_path, "train", latent_cache.latent_key(frames, tok))
    first = ClipSet(frames, tok, torch.device("cpu"), cache_file=path)
    assert path.is_file() and first.cached.shape == (3, 4, 32, 2, 2)
    assert first.latent_std == pytest.approx(first.cached.double().std().item(), rel=1e-3)

    def no_encoding(*_args, **_kwargs):
        raise AssertionError("encoded although the cache holds the latents")

    monkeypatch.setattr(ClipSet, "_encode_all", no_encoding)
    second = ClipSet(frames, tok, torch.device("cpu"), cache_file=path)
    assert torch.equal(second.cached, first.cached) and second.latent_std == first.latent_std  # stored with them
    assert not list(path.parent.glob("*.tmp"))  # the atomic write left no temporary file


def test_key_changes_with_the_frames_and_with_the_weights():
    frames, tok = _frames(), _tokenizer()
    key = latent_cache.latent_key(frames, tok)
    assert latent_cache.latent_key(frames.copy(), _tokenizer()) == key  # same bytes, same weights
    changed = frames.copy()
    changed[2, 3, 15, 15, 2] ^= 1
    assert latent_cache.latent_key(changed, tok) != key
    assert latent_cache.latent_key(frames, _tokenizer(seed=1)) != key
    tok.scale = 0.5
    assert latent_cache.latent_key(frames, tok) != key


def test_key_reads_the_weights_values_not_their_memory_layout():
    # taef2 keeps its weights channels-last; a cache keyed before (default layout) must still match
    frames, tok = _frames(), _tokenizer()
    plain = _tokenizer().to(memory_format=torch.contiguous_format)
    assert tok.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert plain.encoder[0].weight.is_contiguous()
    assert latent_cache.latent_key(frames, tok) == latent_cache.latent_key(frames, plain)


def test_corrupt_or_mismatched_cache_is_encoded_again(tmp_path, one_thread):
    frames, tok = _frames(), _tokenizer()
    path = latent_cache.cache_path(tmp_path, "test", "0123456789abcdef")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not safetensors")
    with pytest.warns(UserWarning, match="unreadable latent cache"):
        clips = ClipSet(frames, tok, torch.device("cpu"), cache_file=path)
    assert latent_cache.read_latents(path, expected_clips=3) is not None  # rewritten whole
    with pytest.warns(UserWarning, match="expected 5 clips"):
        assert latent_cache.read_latents(path, expected_clips=5) is None
    assert clips.cached.shape[0] == 3


def test_unwritable_data_folder_warns_and_still_trains(tmp_path, one_thread):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the latents folder would go")
    path = latent_cache.cache_path(blocker, "train", "0123456789abcdef")
    with pytest.warns(UserWarning, match="cannot write the latent cache"):
        clips = ClipSet(_frames(), _tokenizer(), torch.device("cpu"), cache_file=path)
    assert clips.cached.shape == (3, 4, 32, 2, 2)


def test_load_clips_caches_latent_splits_beside_the_data(tmp_path, monkeypatch, one_thread):
    import motionbits.data.video as video

    frames = _frames()
    monkeypatch.setattr(video, "load_video_clips", lambda root, split: (frames, {}))
    cfg = tiny_config(data={"kind": "video", "root": str(tmp_path), "frames": 4, "image_size": 16})
    tok = _tokenizer()
    load_clips(cfg, "train", torch.device("cpu"), tokenizer=tok)
    load_clips(cfg, "test", torch.device("cpu"), tokenizer=tok)
    names = sorted(p.name.split("-")[0] for p in (tmp_path / "latents").glob("*.safetensors"))
    assert names == ["test", "train"]
    # The pixel tokenizer needs no latents, so nothing is written for it.
    pixels_root = tmp_path / "pixels"
    pixels_root.mkdir()
    load_clips(tiny_config(data={"kind": "video", "root": str(pixels_root), "frames": 4, "image_size": 16}),
               "train", torch.device("cpu"))
    assert not (pixels_root / "latents").exists()


def test_writing_the_cache_again_removes_what_a_killed_write_left(tmp_path):
    path = latent_cache.cache_path(tmp_path, "train", "0123456789abcdef")
    path.parent.mkdir(parents=True)
    stale = path.parent / f".{path.name}.k3j2x9.tmp"                # a kill while the cache was written
    stale.write_bytes(b"half a cache")
    latents = torch.zeros(2, 4, 3, 2, 2, dtype=torch.bfloat16)     # [N, T, C, h, w]
    assert latent_cache.write_latents(path, latents, 0.5)
    assert not stale.exists() and latent_cache.read_latents(path, expected_clips=2)[1] == 0.5


def test_overlapping_clips_encode_each_distinct_frame_once_into_every_place(one_thread):
    video = np.random.default_rng(1).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)   # 10 frames
    frames = np.stack([video[s:s + 4] for s in range(0, 7, 2)])          # clips of 4 every 2: [4, 4, 16, 16, 3]
    tok = _tokenizer()
    seen = []
    encode = tok.encode
    tok.encode = lambda x: seen.append(len(x)) or encode(x)
    clips = ClipSet(frames, tok, torch.device("cpu"))
    assert sum(seen) == 10                                               # 16 places, 10 distinct frames
    alone = encode(frames_to_float(torch.from_numpy(video))).to(torch.bfloat16)
    for c, s in enumerate(range(0, 7, 2)):
        assert torch.allclose(clips.cached[c].float(), alone[s:s + 4].float(), atol=1e-2)
