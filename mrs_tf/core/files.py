"""Safe file writing shared by every writer: refuse to overwrite, write to a temporary name, then rename."""
from __future__ import annotations

import os
import shutil
import tempfile
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
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise


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
