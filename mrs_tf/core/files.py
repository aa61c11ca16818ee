"""Safe file writing shared by every writer: refuse to overwrite, write to a temporary name, then rename."""
from __future__ import annotations

import errno
import glob
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mrs_tf.core.errors import FileFormatError, OutputExistsError

_MULTI_SUFFIXES = (".nii.gz",)


def full_suffix(path: str | os.PathLike) -> str:
    """Lower-case suffix, ``.nii.gz`` counted as one."""
    name = Path(path).name.lower()
    for suffix in _MULTI_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return Path(name).suffix


@contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it to ``path`` in one rename.

    On any error the temporary file (or folder) is removed and ``path`` is untouched.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; refusing to overwrite it (pass overwrite=True / --overwrite)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise FileFormatError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise FileFormatError(f"cannot write {path}: folder {parent} is not writable")
    if not directory and path.is_dir():
        raise FileFormatError(f"{path} is a folder; give a file name (e.g. {path / ('results' + (full_suffix(path) or '.csv'))})")
    remove_stale_temporaries(path)
    suffix = full_suffix(path)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=parent)
        os.close(fd)
        tmp = Path(name)
    if directory and path.exists() and not path.is_dir():
        raise FileFormatError(f"{path} exists and is not a folder")
    try:
        yield tmp
        if directory and path.exists():
            # --overwrite into an existing folder replaces only what this command wrote, entry by entry: the
            # folder may hold the user's other files (the input scan, the model being exported)
            for entry in sorted(tmp.iterdir()):
                dst = path / entry.name
                if dst.is_dir() and not dst.is_symlink():
                    shutil.rmtree(dst)
                os.replace(entry, dst)
            os.rmdir(tmp)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the user's usual permissions
            os.replace(tmp, path)
    except BaseException as exc:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise FileFormatError(f"cannot write {path}: {exc.strerror} (disk or quota full); nothing was written, "
                                  f"the partial file is removed") from None
        raise


#: a temporary output older than this (s) belongs to a run that was killed: it is removed by the next write
STALE_AFTER_S = 3600.0


def remove_stale_temporaries(path: str | os.PathLike, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporaries that killed runs left beside ``path`` (``.<name>.<random>[suffix]`` files or folders of
    :func:`atomic_output`) when they are older than ``older_than_s``; a run writing the same output right now keeps
    its own. Returns what was removed."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    suffix = full_suffix(path)
    removed = []
    now = time.time()
    try:
        candidates = list(parent.glob(f".{glob.escape(path.name)}.*"))
    except OSError:
        return removed
    for tmp in candidates:
        rest = tmp.name[len(path.name) + 2:]
        if suffix and rest.endswith(suffix):
            rest = rest[:-len(suffix)]
        if not re.fullmatch(r"[a-z0-9_]{8}", rest):  # tempfile's eight random characters
            continue
        try:
            if now - tmp.lstat().st_mtime < older_than_s:
                continue
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
            removed.append(tmp)
        except OSError:
            continue
    return removed



def safe_filename(name: str, what: str = "name") -> str:
    """``name`` if it can be a file name inside an output folder; FileFormatError for a path (``/``, ``\\``,
    ``..``) or a hidden name, which would write outside the folder or hide the file."""
    text = str(name)
    if not text or "/" in text or "\\" in text or text in (".", "..") or text.startswith(".") or "\0" in text:
        raise FileFormatError(f"{what} {text!r} cannot be a file name in an output folder (no paths, no leading dot)")
    return text


def require_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file or folder")
    return path
