"""One training at a time per run folder: an exclusive lock on RUN/.lock for the whole run.

Two trainings writing one folder would overwrite each other's checkpoints and interleave their
metrics logs. The lock is an `flock` on RUN/.lock held from before the data is loaded to the end
of the command; the kernel releases it when the process ends in any way (a kill -9 included), so
a killed run never leaves a stale lock behind. Under torchrun only rank 0 takes it (the other
ranks write nothing to the folder). A folder the lock had to create is removed again when the
command fails before writing anything into it.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from motionbits.errors import MotionbitsError

LOCK_NAME = ".lock"


def _is_rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _acquire(lock: Path) -> int:
    """An open descriptor holding the lock on `lock`, or a one-line refusal. The file is unlinked
    on release, so after locking check that it is still the file at that path (a run ending
    between our open and our flock unlinks it, and a third run may make and lock a new one)."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise MotionbitsError(f"{lock.parent}: another training is using this run folder{holder}; "
                                  "wait for it to end or pass another --out") from None
        except OSError:
            os.close(fd)
            raise
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (process {pid})" if pid.isdigit() else ""


@contextmanager
def hold_run_folder(run_dir: str | Path) -> Iterator[Path]:
    """Hold RUN/.lock for the block (rank 0 only); refuse with one line if another process holds it."""
    run_dir = Path(run_dir)
    if not _is_rank_zero():
        yield run_dir
        return
    created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]   # innermost first
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK_NAME
    try:
        fd = _acquire(lock)
    except BaseException:
        _remove_if_empty(run_dir, created)
        raise
    try:
        yield run_dir
    finally:
        lock.unlink(missing_ok=True)   # while still holding it: see _acquire
        os.close(fd)
        _remove_if_empty(run_dir, created)


def _remove_if_empty(run_dir: Path, created: list[Path]) -> None:
    """Remove the folders hold_run_folder made, innermost first, as long as they are empty."""
    for folder in created:
        try:
            folder.rmdir()
        except OSError:  # not empty: the run wrote something, keep it
            return
