"""Safe file writing shared by every writer: refuse to overwrite, write to a temporary name, then rename."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import FileFormatError, OutputExistsError

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
    try:
        yield tmp
        if directory and path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=parent))
            os.rmdir(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
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


def require_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file or folder")
    return path
