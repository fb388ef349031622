"""What is committed names no machine: no absolute path into a home, a scratch or a work folder
(results/ and docs/ write DATA/..., WEIGHTS/..., OUT/... or a path relative to the checkout)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# An absolute path into a machine's own folders; "runs/tmp/x" or "$TMPDIR/x" are not one.
MACHINE_PATH = re.compile(r"(?<![\w.~$}/-])/(?:root|home|tmp|work|Users|mnt|scratch)/[\w.-]")


def machine_paths(files: list[str]) -> list[str]:
    found = []
    for name in files:
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue                                     # images, weights; a file deleted but not yet committed
        found += [f"{name}:{n}: {line.strip()[:120]}" for n, line in enumerate(text.splitlines(), 1)
                  if MACHINE_PATH.search(line)]
    return found


def test_no_committed_file_holds_a_machine_path():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\n")
    files = [f for f in files if f and f != "tests/test_repository.py"]
    assert len(files) > 100
    assert machine_paths(files) == []


def test_the_pattern_finds_machine_paths_and_spares_placeholders():
    lines = {'"root": "/tmp/heads128f10"': True, "cp /root/out/x.mp4 .": True, "/home/me/videos": True,
             "--target /work/shared/site": True, '"root": "DATA/heads128f10"': False, "runs/tmp/x": False,
             "${TMPDIR:-/tmp}/motionbits-gpu": False, "/usr/bin/chromium": False, '"/tmp/" not in text': False}
    for line, machine in lines.items():
        assert bool(MACHINE_PATH.search(line)) == machine, line
