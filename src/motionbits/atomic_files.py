"""Atomic file writes: readers see the old file or the whole new one, never half of it.

Every writer (checkpoints, datasets, the latent cache, the judge) writes a fresh temporary file
beside its target and renames it over the target once complete; on an error the temporary file
is removed and the target is untouched.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _plain_file_mode() -> int:
    umask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | Path, shared: bool = False) -> Iterator[Path]:
    """A fresh temporary file beside `path` for the block to write; renamed over `path` when the
    block ends without error, removed otherwise. The file keeps mkstemp's mode 0600 (checkpoints:
    the owner's), or with shared=True gets a plain new file's mode (datasets others read)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        if shared:
            os.chmod(tmp, _plain_file_mode())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def temporary_files(path: str | Path) -> list[Path]:
    """The temporary files `atomic_path(path)` makes beside `path` (left behind only by a killed writer)."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.is_dir() else []


def remove_temporary_files(path: str | Path) -> None:
    """Delete the temporary files killed writers of `path` left behind (before writing it again)."""
    for tmp in temporary_files(path):
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path, shared=True) as tmp:
        tmp.write_text(text)
