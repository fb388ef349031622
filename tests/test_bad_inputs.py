"""Bad input and faults across the whole `motionbits` command, one table.

Each case is a command line that must fail the way every user-facing problem fails: exit code 2,
exactly one line on stderr naming the file or option and what is wrong, no traceback, and nothing
written (a failing command leaves its working folder and its inputs as they were). The files the
cases need (a tiny trained model, a prior, a video dataset, a bitstream, broken files) are made by
the fixtures below, once per module.
"""
from __future__ import annotations

import os
import shlex
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from motionbits.cli import main
from tests.data.test_video import moving_square, write_video
from tests.helpers import tiny_config


def _yaml(path: Path, values) -> Path:
    path.write_text(yaml.safe_dump(values) if not isinstance(values, str) else values)
    return path


def _tiny_sprites_values(root: Path) -> dict:
    return tiny_config(data={"root": str(root), "image_size": 64}, model={"patch_size": 16},
                       train={"steps": 1}).to_dict()


# ---- what the cases need -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def junk(tmp_path_factory, sprites_root) -> dict:
    """Broken, empty and foreign files, bad configs, and a good tiny Sprites config."""
    d = tmp_path_factory.mktemp("junk")
    (d / "notes.txt").write_text("just some notes\n")
    (d / "text.pt").write_text("this is a text file, not a checkpoint\n")
    Image.new("RGB", (16, 16), (200, 30, 30)).save(d / "picture.png")
    shutil.copy(d / "picture.png", d / "png.mp4")                  # a PNG named .mp4
    (d / "empty.mp4").write_bytes(b"")                              # a 0-byte video
    (d / "folder.gif").mkdir()                                      # a folder where a file is expected
    (d / "no_frames").mkdir()
    (d / "no_frames" / "readme.txt").write_text("no images here\n")
    (d / "empty_dir").mkdir()
    (d / "bad_videos").mkdir()
    shutil.copy(d / "png.mp4", d / "bad_videos" / "a.mp4")
    (d / "bad_videos" / "b.mp4").write_bytes(b"")
    (d / "one_empty").mkdir()
    (d / "one_empty" / "clip.mp4").write_bytes(b"")
    good = _tiny_sprites_values(sprites_root)
    _yaml(d / "tiny.yaml", good)
    _yaml(d / "list.yaml", "- lr\n- steps\n")
    _yaml(d / "empty.yaml", "")
    _yaml(d / "lr_fast.yaml", {**good, "train": {**good["train"], "lr": "fast"}})
    _yaml(d / "batch_eight.yaml", {**good, "train": {**good["train"], "batch_size": "eight"}})
    _yaml(d / "size_string.yaml", {**good, "data": {**good["data"], "image_size": "64"}})
    _yaml(d / "unknown_key.yaml", {**good, "model": {**good["model"], "widht": 3}})
    _yaml(d / "ema_range.yaml", {**good, "train": {**good["train"], "ema_decay": 1.5}})
    _yaml(d / "odd_frames.yaml", {**good, "data": {**good["data"], "frames": 7}})     # each value fine, not together
    _yaml(d / "loop_a.yaml", "base: loop_b.yaml\n")
    _yaml(d / "loop_b.yaml", "base: loop_a.yaml\n")
    _yaml(d / "video_kind.yaml", {**good, "data": {**good["data"], "kind": "video"}})
    _yaml(d / "prior_text.yaml", {"name": "p", "prior": {"checkpoint": str(d / "text.pt"), "steps": 1}})
    _yaml(d / "prior_steps.yaml", {"name": "p", "prior": {"checkpoint": str(d / "text.pt"), "steps": 0}})
    _yaml(d / "codebook_huge.yaml", {**good, "model": {**good["model"], "codebook_size": 65536}})
    (d / "fifo").mkdir()
    os.mkfifo(d / "fifo" / "pipe.mbits")                           # reading it would wait for a writer forever
    return {"junk": d, "sprites": sprites_root, "fifo": d / "fifo" / "pipe.mbits"}


@pytest.fixture(scope="module")
def model(tmp_path_factory, junk) -> dict:
    """A tiny Sprites model trained 1 step, and broken copies of its checkpoint."""
    d = tmp_path_factory.mktemp("model")
    assert main(["train", "--config", str(junk["junk"] / "tiny.yaml"), "--out", str(d / "run"),
                 "--device", "cpu"]) == 0
    ckpt = d / "run" / "last.pt"
    (d / "truncated").mkdir()
    (d / "truncated" / "last.pt").write_bytes(ckpt.read_bytes()[:1000])   # a save cut short
    (d / "unreadable" / "last.pt").mkdir(parents=True)                    # a checkpoint that cannot be read
    return {**junk, "run": d / "run", "ckpt": ckpt, "truncated": d / "truncated", "unreadable": d / "unreadable"}


@pytest.fixture(scope="module")
def prior(tmp_path_factory, model) -> dict:
    """A tiny motion prior (labels: motion) on the tiny model's codes, trained 1 step."""
    d = tmp_path_factory.mktemp("prior")
    config = _yaml(d / "prior-tiny.yaml", {"name": "prior-tiny", "prior": {
        "checkpoint": str(model["ckpt"]), "labels": "motion", "steps": 1, "batch_size": 8,
        "model": {"width": 32, "depth": 1, "heads": 2}}})
    assert main(["train", "--config", str(config), "--out", str(d / "run"), "--device", "cpu"]) == 0
    _yaml(d / "prior_on_prior.yaml", {"name": "p", "prior": {"checkpoint": str(d / "run" / "prior.pt"), "steps": 1}})
    (d / "unreadable" / "prior.pt").mkdir(parents=True)
    return {**model, "prior": d / "run" / "prior.pt", "prior_dir": d}


@pytest.fixture(scope="module")
def video(tmp_path_factory, junk) -> dict:
    """A tiny video dataset (two people, one clip file each) and a config for it."""
    d = tmp_path_factory.mktemp("video")
    for person, seed in (("anna", 0), ("ben", 1)):
        write_video(d / "src" / person / "talk.mp4", moving_square(20, seed))
    assert main(["data", "video", str(d / "src"), str(d / "data"), "--size", "16", "--frames", "8",
                 "--stride", "4"]) == 0
    values = tiny_config(data={"kind": "video", "root": str(d / "data")}, train={"steps": 1}).to_dict()
    _yaml(d / "video.yaml", values)
    return {**junk, "video_src": d / "src", "video_data": d / "data", "video_yaml": d / "video.yaml"}


@pytest.fixture(scope="module")
def mbits(tmp_path_factory, model, junk) -> dict:
    """A real .mbits bitstream of a test clip and a truncated copy."""
    d = tmp_path_factory.mktemp("mbits")
    assert main(["encode", f"sprites:{junk['sprites']}:test:0", "--checkpoint", str(model["run"]),
                 "--device", "cpu", "-o", str(d / "clip.mbits")]) == 0
    data = (d / "clip.mbits").read_bytes()
    (d / "cut.mbits").write_bytes(data[:-8])        # not half: a compact-content file is ~100 bytes, its header 48
    (d / "v1.mbits").write_bytes(data[:4] + bytes([1]) + data[5:])
    for name, at in (("header", 30), ("content", 50), ("codes", len(data) - 15)):   # one flipped byte in each part
        (d / f"flip_{name}.mbits").write_bytes(data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:])
    for name, (offset, fmt, *values) in FORGED_FIELDS.items():
        (d / f"{name}.mbits").write_bytes(_forged(data, offset, fmt, *values))
    return {**model, "mbits": d / "clip.mbits", "cut_mbits": d / "cut.mbits", "mbits_dir": d}


# header fields (offset >= 0) or end-packet fields (offset < 0, from the end) set out of range (or off
# the model) with their CRC made right again: what only the field checks can refuse (codec/format.py's layout)
FORGED_FIELDS = {"frames_zero": (-12, "<I", 0), "frames_huge": (-12, "<I", 2**32 - 1), "fps_nan": (22, "<d", float("nan")),
                 "fps_inf": (22, "<d", float("inf")), "fps_negative": (22, "<d", -30.0), "fps_zero": (22, "<d", 0.0),
                 "size_zero": (30, "<H", 0), "groups_huge": (32, "<H", 65535), "groups_five": (32, "<H", 5),
                 "entries_huge": (34, "<H", 65535), "tokens_swapped": (36, "<HH", 16, 2),
                 "width_huge": (38, "<H", 65535), "motion_long": (-12, "<I", 9), "flags_unknown": (5, "<B", 0x80),
                 "prior_without_fingerprint": (5, "<B", 1)}


def _forged(data: bytes, offset: int, fmt: str, *values) -> bytes:
    data = bytearray(data)
    struct.pack_into(fmt, data, offset if offset >= 0 else len(data) + offset, *values)
    start, crc_at = (0, 44) if offset >= 0 else (len(data) - 13, len(data) - 4)   # the header, or the end packet
    struct.pack_into("<I", data, crc_at, zlib.crc32(bytes(data[start:crc_at])))
    return bytes(data)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, junk) -> dict:
    """Configs built to hang or crash a reader (an alias bomb, deep nesting, keys that are not
    strings or come twice, NUL characters, megabytes), pipes where files are expected, a run folder
    whose name is not UTF-8 and one that another training holds."""
    from motionbits.run_lock import hold_run_folder

    d = tmp_path_factory.mktemp("hostile")
    tiny = _yaml(d / "tiny.yaml", _tiny_sprites_values(junk["sprites"]))
    # billion laughs inside one value: 9^10 strings once expanded, which printing the value in an error walks
    laughs = "[&l0 [" + ", ".join(["lol"] * 9) + "], " + ", ".join(
        f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)) + "]"
    _yaml(d / "bomb.yaml", f"base: {tiny}\ntrain:\n  lr: {laughs}\n")
    _yaml(d / "bomb_base.yaml", f"base: {d / 'bomb.yaml'}\n")
    _yaml(d / "bomb_prior.yaml", f"name: p\nprior:\n  steps: {laughs}\n")
    _yaml(d / "deep.yaml", f"base: {tiny}\ntrain:\n  lr: " + "[" * 5000 + "]" * 5000 + "\n")   # RecursionError
    _yaml(d / "deep_block.yaml", "".join(" " * i + f"k{i}:\n" for i in range(40)) + " " * 40 + "v: 1\n")
    _yaml(d / "int_key.yaml", f"base: {tiny}\n1: 2\n")
    _yaml(d / "int_key_train.yaml", f"base: {tiny}\ntrain:\n  7: 2\n")
    _yaml(d / "bool_key.yaml", f"base: {tiny}\ntrain:\n  on: 1\n")             # YAML 1.1: `on` is true
    _yaml(d / "null_key.yaml", f"base: {tiny}\n~: 1\n")
    _yaml(d / "list_key.yaml", f"base: {tiny}\n? [a, b]\n: 1\n")
    _yaml(d / "dup_lr.yaml", f"base: {tiny}\ntrain:\n  lr: 0.1\n  lr: 0.2\n")
    _yaml(d / "dup_name.yaml", f"name: a\nbase: {tiny}\nname: b\n")
    _yaml(d / "dup_prior.yaml", "name: p\nprior:\n  steps: 1\n  steps: 2\n")
    _yaml(d / "nul_name.yaml", f'base: {tiny}\nname: "run\\0x"\n')
    _yaml(d / "nul_root.yaml", f'base: {tiny}\ndata:\n  root: "/tmp\\0/x"\n')
    _yaml(d / "nul_base.yaml", 'base: "tiny\\0.yaml"\n')
    _yaml(d / "big.yaml", f"base: {tiny}\n# " + "x" * (1 << 20) + "\n")
    _yaml(d / "long_value.yaml", f"base: {tiny}\ntrain:\n  lr: " + "x" * 500_000 + "\n")
    _yaml(d / "long_key.yaml", f"base: {tiny}\ntrain:\n  ? " + "k" * 500_000 + "\n  : 1\n")   # `?`: no 1024 limit
    _yaml(d / "self_alias.yaml", f"base: {tiny}\ntrain: &t\n  lr: *t\n")
    (d / "latin1.yaml").write_bytes(f"base: {tiny}\nname: caf\xe9\n".encode("latin-1"))
    _yaml(d / "base_device.yaml", "base: /dev/zero\n")
    for name in ("pipe.yaml", "pipe.gif", "pipe.mp4", "pipe.mbits", "pipe.json"):
        os.mkfifo(d / name)                                         # opening one to write waits forever
    locked = d / "locked"
    with hold_run_folder(locked):   # another training's lock (another open file: flock refuses it too)
        yield {"hostile": d, "tiny": tiny, "locked": locked,
               "not_utf8": f"{d}/run-{os.fsdecode(bytes([0xff]))}"}   # as Linux hands such a name to Python


# ---- the cases: command line, what it needs, words the one line must contain ------------------------
USE = "--checkpoint {run} --device cpu"
TRANSFER = "transfer " + USE + " --content sprites:{sprites}:test:0 --motion sprites:{sprites}:test:1"
RECON = "reconstruct " + USE + " --input sprites:{sprites}:test:0"
GENERATE = "generate " + USE + " --prior {prior} --content sprites:{sprites}:test:0"
EVALUATE = "evaluate " + USE
ENCODE = "encode sprites:{sprites}:test:0 " + USE

CASES = [
    # -- train: configs
    ("train --config {junk}/missing.yaml", "junk", "missing.yaml: no such file"),
    ("train --config {junk}", "junk", "is a folder, expected a YAML file"),
    ("train --config {junk}/list.yaml", "junk", "list.yaml: expected a mapping of keys to values, got a list"),
    ("train --config {junk}/empty.yaml", "junk", "empty.yaml: the file is empty"),
    ("train --config {junk}/lr_fast.yaml", "junk", "train.lr = 'fast', expected a number"),
    ("train --config {junk}/batch_eight.yaml", "junk", "train.batch_size = 'eight', expected a whole number"),
    ("train --config {junk}/size_string.yaml", "junk", "data.image_size = '64', expected a whole number"),
    ("train --config {junk}/unknown_key.yaml", "junk", "unknown key(s) model.widht"),
    ("train --config {junk}/loop_a.yaml", "junk", "`base:` chain loops back"),
    ("train --config {junk}/ema_range.yaml", "junk", "train.ema_decay = 1.5, expected at most 1"),
    ("train --config {junk}/odd_frames.yaml", "junk", "train.cross_drive needs an even data.frames, got 7"),
    ("train --config {junk}/prior_text.yaml --out {tmp}/p", "junk", "text.pt: unreadable or truncated"),
    ("train --config {junk}/prior_steps.yaml --out {tmp}/p", "junk", "prior: steps = 0, expected at least 1"),
    ("train --config {prior_dir}/prior_on_prior.yaml --out {tmp}/p", "prior",
     "not a motionbits model checkpoint (it is a motion-prior checkpoint)"),
    ("train --config {junk}/codebook_huge.yaml --out {tmp}/run", "junk",
     "model.codebook_size = 65536 is above 4096, the most entries per group the bitstream codes"),
    # -- train: options and data
    ("train --config {junk}/tiny.yaml --steps 0", "junk", "--steps: 0 must be above 0"),
    ("train --config {junk}/tiny.yaml --steps -5", "junk", "--steps: -5 must be above 0"),
    ("train --config {junk}/tiny.yaml --steps many", "junk", "--steps: 'many' is not a whole number"),
    ("train --config {junk}/tiny.yaml --max-minutes 0", "junk", "--max-minutes: 0 must be above 0"),
    ("train --config {junk}/tiny.yaml --device cuda", "junk", "--device: device 'cuda': this machine has no CUDA GPU"),
    ("train --config {junk}/tiny.yaml --device tpu", "junk", "--device: device 'tpu': not a device name"),
    ("train --config {junk}/tiny.yaml --data {tmp}/nowhere --out {tmp}/run", "junk",
     "nowhere: Sprites folder does not exist"),
    ("train --config {junk}/tiny.yaml --data {junk}/notes.txt --out {tmp}/run", "junk",
     "notes.txt: not a folder (expected a Sprites folder)"),
    ("train --config {junk}/tiny.yaml --data {video_data} --out {tmp}/run", "video",
     "is a video dataset folder, not a Sprites folder"),
    ("train --config {junk}/video_kind.yaml --out {tmp}/run", "junk", "is a Sprites folder, not a video dataset folder"),
    ("train --config {junk}/tiny.yaml --init-from {junk}/text.pt --out {tmp}/run", "junk",
     "text.pt: unreadable or truncated"),
    ("train --config {junk}/tiny.yaml --out {truncated}", "model",
     "last.pt: unreadable or truncated"),
    ("train --config {junk}/tiny.yaml --out {unreadable}", "model", "last.pt: is a folder, not a checkpoint file"),
    ("train --config {junk}/tiny.yaml --out {junk}/notes.txt", "junk", "notes.txt: exists and is not a folder"),
    ("train --config {junk}/tiny.yaml --out {junk}/notes.txt/run", "junk", "notes.txt: exists and is not a folder"),
    ("train --config {junk}/tiny.yaml --out /proc/motionbits-run", "junk", "/proc: cannot write there"),
    # -- data sprites
    ("data sprites --out {junk}/notes.txt", "junk", "notes.txt: exists and is not a folder"),
    ("data sprites --out {tmp}/s --sheets {tmp}/nowhere", "junk", "nowhere: LPC sheets folder does not exist"),
    ("data sprites --out {tmp}/s --sheets {junk}/notes.txt", "junk", "notes.txt: not a folder"),
    ("data sprites --out {tmp}/s --sheets {junk}/empty_dir", "junk", "empty_dir: not an LPC sheets folder"),
    ("data sprites --out {tmp}/s --seed -1", "junk", "--seed: -1 must be at least 0"),
    # -- data video
    ("data video {tmp}/nowhere {tmp}/v", "junk", "nowhere: no such folder"),
    ("data video {junk}/notes.txt {tmp}/v", "junk", "notes.txt: not a folder"),
    ("data video {junk}/empty_dir {tmp}/v", "junk", "empty_dir: no videos"),
    ("data video {junk}/bad_videos {tmp}/v", "junk",
     "all 2 videos were skipped, no clips written (a.mp4: is a PNG image, not a video"),
    ("data video {junk}/one_empty {tmp}/v", "junk", "clip.mp4: empty file (0 bytes)"),
    ("data video {video_src} {junk}/notes.txt", "video", "notes.txt: exists and is not a folder"),
    ("data video {video_src} {tmp}/v --frames 0", "video", "--frames: 0 must be above 0"),
    ("data video {video_src} {tmp}/v --fps -3", "video", "--fps: -3 must be above 0"),
    ("data video {video_src} {tmp}/v --fps inf", "video", "--fps: inf is not a finite number"),
    ("data video {video_src} {tmp}/v --test-fraction 1.5", "video", "--test-fraction: 1.5 must be below 1"),
    ("data video {video_src} {tmp}/v --identity-regex (", "video", "'(' is not a valid regular expression"),
    # -- reconstruct
    ("reconstruct --checkpoint {tmp}/nothing.pt --input x.gif -o {tmp}/o.gif", "junk", "nothing.pt: no such file"),
    ("reconstruct --checkpoint {junk}/text.pt --input x.gif -o {tmp}/o.gif", "junk",
     "text.pt: unreadable or truncated"),
    ("reconstruct --checkpoint {truncated} --input x.gif -o {tmp}/o.gif", "model", "train again with --fresh"),
    ("reconstruct --checkpoint {prior} --input x.gif -o {tmp}/o.gif", "prior",
     "not a motionbits model checkpoint (it is a motion-prior checkpoint)"),
    ("reconstruct --checkpoint {unreadable} --input x.gif -o {tmp}/o.gif", "model",
     "last.pt: is a folder, not a checkpoint file"),
    ("reconstruct " + USE + " --input {junk}/png.mp4 -o {tmp}/o.gif", "model", "png.mp4: is a PNG image, not a video"),
    ("reconstruct " + USE + " --input {junk}/empty.mp4 -o {tmp}/o.gif", "model", "empty.mp4: empty file (0 bytes)"),
    ("reconstruct " + USE + " --input {junk}/notes.txt -o {tmp}/o.gif", "model", "notes.txt: unsupported file type"),
    ("reconstruct " + USE + " --input {junk}/no_frames -o {tmp}/o.gif", "model", "no_frames: folder has no image frames"),
    ("reconstruct " + USE + " --input {tmp}/gone.mp4 -o {tmp}/o.gif", "model", "gone.mp4: no such file or folder"),
    ("reconstruct " + USE + " --input sprites:{sprites}:test:9999 -o {tmp}/o.gif", "model", "index out of range"),
    ("reconstruct " + USE + " --input sprites:{sprites} -o {tmp}/o.gif", "model", "expected sprites:ROOT:SPLIT:INDEX"),
    ("reconstruct " + USE + " --input sprites:{video_data}:test:0 -o {tmp}/o.gif", "video+model",
     "is a video dataset folder, not a Sprites folder"),
    (RECON + " -o {junk}/folder.gif", "model", "folder.gif: is a folder, expected a file name"),
    (RECON + " -o {tmp}/o.xyz", "model", "o.xyz: unsupported output type '.xyz'"),
    (RECON + " -o {tmp}/o.gif --frames 0", "model", "--frames: 0 must be above 0"),
    (RECON + " -o {tmp}/o.gif --scale 0", "model", "--scale: 0 must be above 0"),
    (RECON + " -o {tmp}/o.gif --sample-steps 0", "model", "--sample-steps: 0 must be above 0"),
    (RECON + " -o {tmp}/o.gif --sampler rk4", "model", "--sampler: invalid choice: 'rk4'"),
    (RECON + " -o {tmp}/o.gif --input-fps -1", "model", "--input-fps: -1 must be at least 0"),
    (RECON + " -o {tmp}/o.gif --input-fps inf", "model", "--input-fps: inf is not a finite number"),
    (RECON + " -o {tmp}/o.gif --input-fps 0.5", "model", "--input-fps: 0.5 fps is outside 1..240 frames per second"),
    (RECON + " -o {tmp}/o.gif --fps inf", "model", "--fps: inf is not a finite number"),
    (RECON + " -o {tmp}/o.gif --fps nan", "model", "--fps: nan must be above 0"),
    (RECON + " -o {tmp}/o.gif --fps 0.001", "model", "--fps: 0.001 fps is outside 1..240 frames per second"),
    (RECON + " -o {tmp}/o.mp4 --fps 1000", "model", "--fps: 1000 fps is outside 1..240 frames per second"),
    (RECON + " -o {tmp}/o.gif --scale 2000", "model", "--scale: 2000 must be at most 16"),
    ("reconstruct --checkpoint {run} --device cuda --input x.gif -o {tmp}/o.gif", "model",
     "--device: device 'cuda': this machine has no CUDA GPU"),
    # -- transfer
    (TRANSFER + " -o {junk}/notes.txt/out.gif", "model", "notes.txt: exists and is not a folder"),
    (TRANSFER + " -o /proc/out.gif", "model", "/proc: cannot write there"),
    (TRANSFER + " -o {tmp}/o.gif --fps -3", "model", "--fps: -3 must be above 0"),
    (TRANSFER + " -o {tmp}/o.gif --fps 0.001", "model", "--fps: 0.001 fps is outside 1..240 frames per second"),
    (TRANSFER + " -o {tmp}/o.gif --scale 17", "model", "--scale: 17 must be at most 16"),
    (TRANSFER + " -o {tmp}/o.gif --frames 0", "model", "--frames: 0 must be above 0"),
    (TRANSFER + " -o {tmp}/o.gif --device tpu", "model", "--device: device 'tpu': not a device name"),
    ("transfer " + USE + " --content {tmp}/gone.png --motion x.gif -o {tmp}/o.gif", "model",
     "gone.png: no such file or folder"),
    ("transfer " + USE + " --content {junk}/picture.png --motion {junk}/empty_dir -o {tmp}/o.gif", "model",
     "empty_dir: folder has no image frames"),
    ("transfer --checkpoint {prior} --content a.png --motion b.gif -o {tmp}/o.gif", "prior",
     "not a motionbits model checkpoint"),
    # -- generate
    ("generate " + USE + " --prior {ckpt} --content a.png -o {tmp}/o.gif", "model",
     "not a motion-prior checkpoint (it is a motionbits model checkpoint)"),
    ("generate " + USE + " --prior {tmp}/none.pt --content a.png -o {tmp}/o.gif", "model", "none.pt: no such file"),
    ("generate " + USE + " --prior {prior_dir}/unreadable --content a.png -o {tmp}/o.gif", "prior",
     "prior.pt: is a folder, not a checkpoint file"),
    (GENERATE + " -o {tmp}/o.gif --label 99", "prior", "--label 99: this prior knows classes 0..8"),
    (GENERATE + " -o {tmp}/o.gif --frames 0", "prior", "--frames: 0 must be above 0"),
    (GENERATE + " -o {tmp}/o.gif --fps inf", "prior", "--fps: inf is not a finite number"),
    (GENERATE + " -o {tmp}/o.gif --scale 2000", "prior", "--scale: 2000 must be at most 16"),
    (GENERATE + " -o {tmp}/o.gif --top-k 0", "prior", "--top-k: 0 must be above 0"),
    (GENERATE + " -o {tmp}/o.gif --temperature -1", "prior", "--temperature: -1 must be at least 0"),
    (GENERATE + " -o {tmp}/o.gif --prompt-motion {junk}/png.mp4", "prior", "png.mp4: is a PNG image, not a video"),
    (GENERATE + " -o {junk}/notes.txt/o.gif", "prior", "notes.txt: exists and is not a folder"),
    # -- evaluate
    (EVALUATE + " --data {video_data} --clips 2", "video+model",
     "is a video dataset folder, not a Sprites folder"),
    (EVALUATE + " --data {tmp}/nowhere", "model", "nowhere: Sprites folder does not exist"),
    (EVALUATE + " --out {junk}/notes.txt", "model", "notes.txt: exists and is not a folder"),
    (EVALUATE + " --step-study 0,2", "model", "--step-study takes numbers of at least 1"),
    (EVALUATE + " --step-study two", "model", "--step-study takes comma-separated numbers, got 'two'"),
    (EVALUATE + " --clips 0", "model", "--clips: 0 must be above 0"),
    (EVALUATE + " --judge {junk}/text.pt --out {tmp}/e", "model", "text.pt is not a readable safetensors file"),
    (EVALUATE + " --prior {junk}/text.pt --out {tmp}/e", "model", "text.pt: unreadable or truncated"),
    ("evaluate --checkpoint {truncated} --device cpu", "model", "train again with --fresh"),
    # -- encode
    (ENCODE + " -o {tmp}/clip.gif", "model", "clip.gif: unsupported output type '.gif' (use .mbits)"),
    (ENCODE + " -o {junk}/notes.txt/clip.mbits", "model", "notes.txt: exists and is not a folder"),
    (ENCODE + " -o {tmp}/c.mbits --prior {ckpt}", "model", "not a motion-prior checkpoint"),
    (ENCODE + " -o {tmp}/c.mbits --frames 0", "model", "--frames: 0 must be above 0"),
    (ENCODE + " -o {tmp}/c.mbits --fps 0", "model", "--fps: 0 must be above 0"),
    (ENCODE + " -o {tmp}/c.mbits --fps inf", "model", "--fps: inf is not a finite number"),
    (ENCODE + " -o {tmp}/c.mbits --fps 0.001", "model", "--fps: 0.001 fps is outside 1..240 frames per second"),
    (ENCODE + " -o {tmp}/c.mbits --input-fps 1e9", "model", "--input-fps: 1e+09 fps is outside 1..240"),
    ("encode {junk}/empty.mp4 " + USE + " -o {tmp}/c.mbits", "model", "empty.mp4: empty file (0 bytes)"),
    ("encode {junk}/text.pt --checkpoint {junk}/text.pt -o {tmp}/c.mbits", "junk", "text.pt: unreadable or truncated"),
    # -- decode
    ("decode {tmp}/none.mbits -o {tmp}/o.gif", "junk", "none.mbits: no such file"),
    ("decode {junk}/empty_dir -o {tmp}/o.gif", "junk", "empty_dir: is a folder, expected a .mbits file"),
    ("decode {junk}/notes.txt -o {tmp}/o.gif", "junk", "notes.txt: not a motionbits bitstream"),
    ("decode {cut_mbits} -o {tmp}/o.gif", "mbits", "cut.mbits: truncated or corrupt bitstream"),
    ("decode {mbits} --checkpoint {prior} --device cpu -o {tmp}/o.gif", "mbits+prior",
     "not a motionbits model checkpoint"),
    ("decode {mbits} -o {junk}/notes.txt/o.gif", "mbits", "notes.txt: exists and is not a folder"),
    ("decode {mbits} -o {tmp}/o.gif --scale 0", "mbits", "--scale: 0 must be above 0"),
    ("decode {mbits} -o {tmp}/o.gif --scale 2000", "mbits", "--scale: 2000 must be at most 16"),
    ("decode {mbits} -o {tmp}/o.gif --fps inf", "mbits", "--fps: inf is not a finite number"),
    ("decode {mbits} -o {tmp}/o.gif --fps 0.001", "mbits", "--fps: 0.001 fps is outside 1..240 frames per second"),
    ("decode {fifo} -o {tmp}/o.gif", "junk", "pipe.mbits: not a regular file (a pipe or a device)"),
    ("decode /dev/zero -o {tmp}/o.gif", "junk", "/dev/zero: not a regular file (a pipe or a device)"),
    ("decode {mbits} --device cpu -o {tmp}/o.gif", "mbits",      # no checkpoint beside it or in the current folder
     "clip.mbits: needs the model with fingerprint "),
    ("decode {mbits_dir}/v1.mbits -o {tmp}/o.gif", "mbits",
     "v1.mbits: was written by motionbits format v1; this version reads v5"),
    ("decode {mbits_dir}/flip_header.mbits -o {tmp}/o.gif", "mbits", "its header's CRC-32 does not match"),
    ("decode {mbits_dir}/flip_content.mbits -o {tmp}/o.gif", "mbits", "packet 0 (content) is damaged: its CRC-32"),
    ("decode {mbits_dir}/flip_codes.mbits -o {tmp}/o.gif", "mbits", "(motion, from frame 4) is damaged: its CRC-8"),
    ("decode {mbits_dir}/frames_zero.mbits -o {tmp}/o.gif", "mbits", "end packet field frames = 0 is outside 1..36000"),
    ("decode {mbits_dir}/frames_huge.mbits -o {tmp}/o.gif", "mbits", "frames = 4294967295 is outside 1..36000"),
    ("decode {mbits_dir}/fps_nan.mbits -o {tmp}/o.gif", "mbits", "header field fps: nan is not a finite number"),
    ("decode {mbits_dir}/fps_inf.mbits -o {tmp}/o.gif", "mbits", "header field fps: inf is not a finite number"),
    ("decode {mbits_dir}/fps_negative.mbits -o {tmp}/o.gif", "mbits", "header field fps: -30 fps is outside 1..240"),
    ("decode {mbits_dir}/fps_zero.mbits -o {tmp}/o.gif", "mbits", "header field fps: 0 fps is outside 1..240"),
    ("decode {mbits_dir}/size_zero.mbits -o {tmp}/o.gif", "mbits", "header field size = 0 is outside 8..4096"),
    ("decode {mbits_dir}/groups_huge.mbits -o {tmp}/o.gif", "mbits", "header field groups = 65535 is outside 1..1024"),
    ("decode {mbits_dir}/entries_huge.mbits -o {tmp}/o.gif", "mbits",
     "header field codebook_size = 65535 is outside 2..4096"),
    ("decode {mbits_dir}/width_huge.mbits -o {tmp}/o.gif", "mbits", "header field content_dim = 65535 is outside 1..4096"),
    ("decode {mbits_dir}/motion_long.mbits -o {tmp}/o.gif", "mbits", "motion_long.mbits: truncated or corrupt bitstream"),
    ("decode {mbits_dir}/flags_unknown.mbits -o {tmp}/o.gif", "mbits", "corrupt bitstream (unknown flags 0x80)"),
    ("decode {mbits_dir}/prior_without_fingerprint.mbits -o {tmp}/o.gif", "mbits",
     "header says coded under a prior but names none"),
    ("decode {mbits_dir}/groups_five.mbits --checkpoint {run} --device cpu -o {tmp}/o.gif", "mbits",
     "groups_five.mbits: corrupt bitstream (its header says 64px frames, 5 groups of 8 entries"),
    ("decode {mbits_dir}/tokens_swapped.mbits --checkpoint {run} --device cpu -o {tmp}/o.gif", "mbits",
     "tokens_swapped.mbits: corrupt bitstream (its header says 64px frames, 4 groups of 8 entries, content 16 x 2"),
    # -- sweep
    ("sweep --config {junk}/tiny.yaml --bits 4,x", "junk", "--bits takes comma-separated numbers, got '4,x'"),
    ("sweep --config {junk}/tiny.yaml --bits -1", "junk", "--bits takes numbers of at least 0"),
    ("sweep --config {junk}/list.yaml --bits 4", "junk", "list.yaml: expected a mapping"),
    ("sweep --config {junk}/tiny.yaml --bits 4 --out {junk}/notes.txt", "junk", "notes.txt: exists and is not a folder"),
    ("sweep --config {junk}/tiny.yaml --bits 4 --steps 0", "junk", "--steps: 0 must be above 0"),
    ("sweep --config {junk}/tiny.yaml --bits 4 --device tpu", "junk", "--device: device 'tpu': not a device name"),
    ("sweep --config {junk}/tiny.yaml --bits 4 --data {video_data} --out {tmp}/w", "video",
     "is a video dataset folder, not a Sprites folder"),
    # -- bench
    ("bench --config {junk}/list.yaml", "junk", "list.yaml: expected a mapping"),
    ("bench --config {junk}/tiny.yaml {junk}/lr_fast.yaml", "junk", "train.lr = 'fast'"),
    ("bench --config no-such-config", "junk", "config no-such-config: no such file"),
    ("bench --sample-steps 0", "junk", "--sample-steps takes numbers of at least 1"),
    ("bench --repeats 0", "junk", "--repeats: 0 must be above 0"),
    ("bench --device tpu", "junk", "--device: device 'tpu': not a device name"),
    ("bench --out {tmp}/report.txt", "junk", "report.txt: unsupported output type '.txt' (use .json)"),
    ("bench --out {junk}/notes.txt/r.json", "junk", "notes.txt: exists and is not a folder"),
    # -- demo
    ("demo --out {junk}/notes.txt", "junk", "notes.txt: exists and is not a folder"),
    ("demo --out {junk}/notes.txt/demo", "junk", "notes.txt: exists and is not a folder"),
    ("demo --out {tmp}/d --config {junk}/lr_fast.yaml", "junk", "train.lr = 'fast'"),
    ("demo --out {tmp}/d --config {junk}/video_kind.yaml", "junk", "the demo runs the Sprites benchmark"),
    ("demo --out {tmp}/d --sheets {tmp}/nowhere", "junk", "nowhere: LPC sheets folder does not exist"),
    ("demo --out {tmp}/d --steps 0", "junk", "--steps: 0 must be above 0"),
    ("demo --out {tmp}/d --clips 0", "junk", "--clips: 0 must be above 0"),
]


CASES += [
    # -- configs built to hang or crash the reader (bounded_yaml.py)
    ("train --config {hostile}/bomb.yaml", "hostile", "line 3: more than 100,000 values once its aliases are expanded"),
    ("train --config {hostile}/bomb_base.yaml", "hostile", "bomb.yaml: line 3: more than 100,000 values"),
    ("train --config {hostile}/bomb_prior.yaml --out {tmp}/p", "hostile", "line 3: more than 100,000 values"),
    ("train --config {hostile}/deep.yaml", "hostile", "deep.yaml: line 3: nested more than 32 levels deep"),
    ("train --config {hostile}/deep_block.yaml", "hostile", "nested more than 32 levels deep"),
    ("train --config {hostile}/int_key.yaml", "hostile", "int_key.yaml: line 2: key '1' is not a string (quote it)"),
    ("train --config {hostile}/int_key_train.yaml", "hostile", "line 3: key '7' is not a string"),
    ("train --config {hostile}/bool_key.yaml", "hostile", "line 3: key 'on' is not a string"),
    ("train --config {hostile}/null_key.yaml", "hostile", "line 2: key '~' is not a string"),
    ("train --config {hostile}/list_key.yaml", "hostile", "line 2: a sequence as a key"),
    ("train --config {hostile}/dup_lr.yaml", "hostile", "dup_lr.yaml: line 4: key 'lr' appears twice (also on line 3)"),
    ("train --config {hostile}/dup_name.yaml", "hostile", "line 3: key 'name' appears twice (also on line 1)"),
    ("train --config {hostile}/dup_prior.yaml --out {tmp}/p", "hostile", "line 4: key 'steps' appears twice"),
    ("train --config {hostile}/nul_name.yaml", "hostile", "line 2: value 'run\\x00x' holds a NUL character"),
    ("train --config {hostile}/nul_root.yaml", "hostile", "line 3: value '/tmp\\x00/x' holds a NUL character"),
    ("train --config {hostile}/nul_base.yaml", "hostile", "nul_base.yaml: line 1: value 'tiny\\x00.yaml' holds a NUL"),
    ("train --config {hostile}/big.yaml", "hostile", "big.yaml: larger than 1 MB, not a config"),
    ("train --config {hostile}/long_value.yaml", "hostile", "train.lr = 'xxxxx"),
    ("train --config {hostile}/long_key.yaml", "hostile", "unknown key(s) train.kkkkk"),
    ("train --config {hostile}/self_alias.yaml", "hostile", "an alias refers to a value that contains it"),
    ("train --config {hostile}/latin1.yaml", "hostile", "latin1.yaml: cannot be read ('utf-8' codec can't decode"),
    ("train --config {hostile}/pipe.yaml", "hostile", "pipe.yaml: not a regular file (a pipe, device or socket)"),
    ("train --config /dev/null", "junk", "config /dev/null: not a regular file"),
    ("train --config {hostile}/base_device.yaml", "hostile", "config /dev/zero: not a regular file"),
    ("config {hostile}/dup_lr.yaml", "hostile", "key 'lr' appears twice"),
    ("bench --config {hostile}/bomb.yaml", "hostile", "more than 100,000 values"),
    ("sweep --config {hostile}/deep.yaml --bits 4", "hostile", "nested more than 32 levels deep"),
    ("demo --out {tmp}/d --config {hostile}/int_key_train.yaml", "hostile", "key '7' is not a string"),
    # -- ports
    ("app --checkpoint {tmp}/run --port 70000", "junk", "--port: 70000 must be at most 65535"),
    ("app --checkpoint {tmp}/run --port 65536", "junk", "--port: 65536 must be at most 65535"),
    # -- run folders: a name TensorBoard cannot write to, a folder another training holds (run_lock.py)
    ("train --config {tiny} --out {not_utf8}", "hostile", "run-\\xff: the run folder's name is not UTF-8 text"),
    ("train --config {junk}/prior_text.yaml --out {not_utf8}", "junk+hostile", "the run folder's name is not UTF-8"),
    ("sweep --config {tiny} --bits 4 --out {not_utf8}", "hostile", "the run folder's name is not UTF-8"),
    ("demo --out {not_utf8}", "hostile", "the run folder's name is not UTF-8"),
    ("train --config {tiny} --out {locked} --device cpu", "hostile",
     "locked: another training is using this run folder (process "),
    ("train --config {junk}/prior_text.yaml --out {locked}", "junk+hostile", "another training is using this run folder"),
    ("sweep --config {tiny} --bits 4 --out {locked}", "hostile", "another training is using this run folder"),
    ("demo --out {locked}", "hostile", "another training is using this run folder"),
    # -- Sprites clip indices: int() takes -1 (the last clip), ' 1' and '1_0'
    ("reconstruct " + USE + " --input sprites:{sprites}:test:-1 -o {tmp}/o.gif", "model",
     "test:-1: INDEX '-1' is not a whole number from 0"),
    ("reconstruct " + USE + " --input 'sprites:{sprites}:test: 1' -o {tmp}/o.gif", "model",
     "INDEX ' 1' is not a whole number from 0"),
    ("transfer " + USE + " --content sprites:{sprites}:test:-36 --motion sprites:{sprites}:test:1 -o {tmp}/o.gif",
     "model", "INDEX '-36' is not a whole number from 0"),
    ("transfer " + USE + " --content sprites:{sprites}:test:0 --motion sprites:{sprites}:test:1_0 -o {tmp}/o.gif",
     "model", "INDEX '1_0' is not a whole number from 0"),
    ("generate " + USE + " --prior {prior} --content sprites:{sprites}:test:-1 -o {tmp}/o.gif", "prior",
     "INDEX '-1' is not a whole number from 0"),
    ("encode sprites:{sprites}:test:-1 " + USE + " -o {tmp}/c.mbits", "model", "INDEX '-1' is not a whole number"),
    # -- outputs that exist and are not files: a pipe (writing waits forever; replacing it is not ours to do)
    (RECON + " -o {hostile}/pipe.gif", "model+hostile", "pipe.gif: exists and is not a regular file"),
    (TRANSFER + " -o {hostile}/pipe.mp4", "model+hostile", "pipe.mp4: exists and is not a regular file"),
    (GENERATE + " -o {hostile}/pipe.gif", "prior+hostile", "pipe.gif: exists and is not a regular file"),
    (ENCODE + " -o {hostile}/pipe.mbits", "model+hostile", "pipe.mbits: exists and is not a regular file"),
    ("decode {mbits} -o {hostile}/pipe.gif", "mbits+hostile", "pipe.gif: exists and is not a regular file"),
    ("bench --out {hostile}/pipe.json", "hostile", "pipe.json: exists and is not a regular file"),
]


class WorkBeforeCheck(Exception):
    """Raised by the long work a bad input must stop before (not a MotionbitsError: main() lets it through)."""


@pytest.fixture
def no_long_work(monkeypatch):
    """Training, sampling, benchmarking, judge training, code extraction and Sprites compositing all
    fail the case: every bad input here is noticed before them."""
    import motionbits.api
    import motionbits.bench
    import motionbits.data.sprites
    import motionbits.evaluation.sprites
    import motionbits.training.loop
    import motionbits.training.prior

    def refuse(*args, **kwargs):
        raise WorkBeforeCheck("long work started before the bad input was noticed")

    for owner, name in ((motionbits.training.loop.Trainer, "fit"), (motionbits.api.MotionBits, "render"),
                        (motionbits.bench, "bench_training"), (motionbits.data.sprites, "_load_layer"),
                        (motionbits.evaluation.sprites, "train_judge"), (motionbits.training.prior, "extract_codes")):
        monkeypatch.setattr(owner, name, refuse)


def _listing(folder: Path) -> dict[str, int]:
    """Every file and folder under `folder` with its size (folders: -1)."""
    return {str(p.relative_to(folder)): (p.stat().st_size if p.is_file() else -1) for p in folder.rglob("*")}


@pytest.mark.parametrize("argv,need,expected", CASES, ids=[f"{i:03d}-{c[0].split()[0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_and_exit_code_2(argv, need, expected, request, tmp_path, monkeypatch, capsys):
    places = {"tmp": tmp_path}
    for name in need.split("+"):
        places.update(request.getfixturevalue(name))
    request.getfixturevalue("no_long_work")        # after the fixtures, which train and sample for real
    watched = [tmp_path, *{p for p in places.values() if isinstance(p, Path) and p.is_dir()}]
    before = [_listing(p) for p in watched]
    monkeypatch.chdir(tmp_path)                    # default output folders (runs/...) land here
    capsys.readouterr()
    code = main(shlex.split(argv.format(**places)))
    out, err = capsys.readouterr()
    assert code == 2, f"exit code {code}; stderr: {err}"
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert len(err) < 2000, f"a {len(err)}-character line: {err[:300]}"   # a value of megabytes is cut short
    assert err.startswith("motionbits: error: ") and expected in err, err
    assert [_listing(p) for p in watched] == before, "a failing command wrote files"


def test_console_script_prints_one_line_not_a_traceback(junk, tmp_path):
    """The installed `motionbits` script (not main() in-process): a text file given as checkpoint."""
    script = Path(sys.executable).with_name("motionbits")
    assert script.is_file(), "the package is installed with its console script"
    proc = subprocess.run([str(script), "reconstruct", "--checkpoint", str(junk["junk"] / "text.pt"),
                           "--input", "x.gif", "-o", str(tmp_path / "o.gif")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and "text.pt: unreadable or truncated" in proc.stderr
