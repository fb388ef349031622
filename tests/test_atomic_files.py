"""Atomic writes: the target is the old file or the whole new one, and nothing is left behind."""
import os
import stat

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


def test_a_pipe_or_device_is_never_replaced(tmp_path):
    """Renaming over a named pipe (or /dev/full, as root) would remove it: refused, the pipe kept."""
    pipe = tmp_path / "out.gif"
    os.mkfifo(pipe)
    with pytest.raises(FileExistsError, match="not a regular file"):
        write_text_atomic(pipe, "data")
    assert stat.S_ISFIFO(pipe.stat().st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["out.gif"]


def test_a_symbolic_link_keeps_pointing_at_the_file_it_names(tmp_path):
    (tmp_path / "results").mkdir()
    write_text_atomic(tmp_path / "results" / "eval.json", "old")
    (tmp_path / "latest.json").symlink_to(tmp_path / "results" / "eval.json")
    write_text_atomic(tmp_path / "latest.json", "new")
    assert (tmp_path / "latest.json").is_symlink() and (tmp_path / "results" / "eval.json").read_text() == "new"
