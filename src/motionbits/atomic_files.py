"""Atomic file writes: readers see the old file or the whole new one, never half of it.

Every writer (checkpoints, datasets, the latent cache, the judge, videos, GIFs and pictures,
reports) writes a fresh temporary file beside its target and renames it over the target once
complete; on an error the temporary file is removed and the target is untouched. A write that
fails for a full disk, a quota or an I/O error is reported as an OSError naming the target.
"""
from __future__ import annotations

import errno
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
    path = Path(os.path.realpath(path)) if Path(path).is_symlink() else Path(path)   # write the link's file
    if path.exists() and not path.is_file() and not path.is_dir():   # a folder: os.replace says so
        raise FileExistsError(errno.EEXIST, "exists and is not a regular file (a pipe, device or socket), "
                                            "not replaced", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        if shared:
            os.chmod(tmp, _plain_file_mode())
        os.replace(tmp, path)
    except Exception as err:
        failed = _write_failure(err)
        if failed is None:
            raise
        raise OSError(failed.errno, f"{failed.strerror or failed} (the old file, if any, is kept)", str(path)) from err
    finally:
        Path(tmp).unlink(missing_ok=True)


# What a full disk, a quota or a failing device look like: the write, not the caller, failed.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


def _write_failure(err: BaseException) -> OSError | None:
    """The OSError (full disk, quota, I/O) behind `err`, if any: writers report it in their own
    ways (torch.save raises RuntimeError 'unexpected pos' while handling the OSError, and the
    OSError names no file), so the caller can name the file that was being written."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
            return err
        err = err.__cause__ or err.__context__
    return None


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


def write_json_atomic(path: str | Path, value, indent: int = 2) -> None:
    """A JSON report, written atomically, with non-finite numbers as null (json_text): every
    reader of the standard can parse it."""
    from motionbits.json_text import dumps_standard

    write_text_atomic(path, dumps_standard(value, indent=indent))
