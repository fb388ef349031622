"""Atomic writes: the target is the old file or the whole new one, and nothing is left behind."""
import os

import pytest

from motionbits.atomic_files import atomic_path, write_text_atomic


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "manifest.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, shared=True) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_shared_files_get_a_plain_file_mode_and_private_ones_stay_the_owner_s(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "shared.txt", "data")
        with atomic_path(tmp_path / "private.pt") as tmp:
            tmp.write_bytes(b"weights")
    finally:
        os.umask(umask)
    assert (tmp_path / "shared.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private.pt").stat().st_mode & 0o777 == 0o600
