"""Scanner vendors' raw spectroscopy files, through the ``spec2nii`` package's Python API.

Each reader returns the same dict as :func:`mrs_tf.io.nifti.read` (``data`` (x, y, z, points, ...), ``dwell_s``,
``field_mhz``, ``te_s``, ``dim_tags``, ``affine``, ``hdr_ext``) in the NIfTI-MRS sign convention: spec2nii applies
each vendor's convention (Philips SDAT stores the complex conjugate; Siemens, GE and Bruker their own) when it builds
the NIfTI-MRS image, and mrs-tf reads that image's raw array as it does a NIfTI-MRS file.

Formats (by suffix): Philips ``.sdat``/``.spar`` (the pair; either name), Siemens ``.rda`` and twix ``.dat``, GE
P-files ``.7``, Bruker ``fid``/``2dseq`` files or a scan folder (holding ``method``).
A GE P-file holds the water-suppressed scan and its unsuppressed reference: ``role="water"`` picks the reference.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from mrs_tf.core.errors import FileFormatError

__all__ = ["VENDOR_SUFFIXES", "is_vendor_file", "read"]

#: suffixes (lower case) read through spec2nii
VENDOR_SUFFIXES = (".sdat", ".spar", ".rda", ".dat", ".7")


def is_vendor_file(path) -> bool:
    path = Path(path)
    if path.is_dir():
        return (path / "method").exists()
    return path.suffix.lower() in VENDOR_SUFFIXES or path.name in ("fid", "2dseq", "ser")


def _partner(path: Path, suffix: str) -> Path:
    """The other half of a Philips SDAT/SPAR pair (same stem, either case of the suffix)."""
    for cand in (path.with_suffix(suffix.lower()), path.with_suffix(suffix.upper())):
        if cand.exists():
            return cand
    for cand in path.parent.glob(path.stem + ".*"):
        if cand.suffix.lower() == suffix.lower():
            return cand
    raise FileFormatError(f"{path}: Philips data come as a .SDAT/.SPAR pair; {path.stem}{suffix.upper()} is missing")


def _philips(path: Path) -> list:
    from spec2nii.Philips.philips import read_sdat_spar_pair

    sdat = path if path.suffix.lower() == ".sdat" else _partner(path, ".sdat")
    spar = path if path.suffix.lower() == ".spar" else _partner(path, ".spar")
    images, _ = read_sdat_spar_pair(sdat, spar, tags=[])
    return images


def _rda(path: Path) -> list:
    from spec2nii.Siemens.rda import convert_rda

    images, _ = convert_rda(path, None, False)
    return images


def _twix(path: Path) -> list:
    from mapvbvd import mapVBVD
    from spec2nii.Siemens.twixfunctions import process_twix

    twix = mapVBVD(str(path), quiet=True)
    if isinstance(twix, list):
        twix = twix[-1]  # multi-RAID files: the last measurement is the scan
    overrides = {"dims": (None, None, None), "tags": (None, None, None)}
    images, _ = process_twix(twix, None, path.name, "image", overrides, True, False, remove_os=True)
    return images


def _ge(path: Path, role: str) -> list:
    from spec2nii.GE.ge_pfile import read_pfile

    images, names = read_pfile(path, None)
    refs = [img for img, name in zip(images, names) if name.endswith("_ref")]
    acts = [img for img, name in zip(images, names) if not name.endswith("_ref")]
    chosen = refs if role == "water" else acts
    if not chosen:
        raise FileFormatError(f"{path}: the P-file holds no {'water reference' if role == 'water' else 'scan'}")
    return chosen


def _bruker(path: Path) -> list:
    from argparse import Namespace

    from spec2nii.bruker import read_bruker

    mode = "2DSEQ" if path.name == "2dseq" else "FID"
    images, _ = read_bruker(Namespace(file=str(path), mode=mode, query=[], dump_headers=False))
    return images


def _image_dict(img, path: Path) -> dict:
    data = np.asarray(img.image[:])
    hdr = json.loads(img.hdr_ext.to_json())
    te = hdr.get("EchoTime")
    return {"data": data, "dwell_s": float(img.dwelltime), "field_mhz": float(img.spectrometer_frequency[0]),
            "te_s": float(te) if te is not None else None, "dim_tags": list(img.dim_tags),
            "affine": np.asarray(img.getAffine("voxel", "world")), "hdr_ext": hdr}


def read(path, role: str = "data") -> dict:
    """Read a vendor file (see the module docstring) into :func:`mrs_tf.io.nifti.read`'s dict.

    ``role``: ``"data"`` or ``"water"`` (selects the reference of files that hold both, e.g. GE P-files).
    A missing or corrupt file is a :class:`~mrs_tf.errors.FileFormatError` that names it."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if suffix in (".sdat", ".spar"):
                images = _philips(path)
            elif suffix == ".rda":
                images = _rda(path)
            elif suffix == ".dat":
                images = _twix(path)
            elif suffix == ".7":
                images = _ge(path, role)
            else:
                images = _bruker(path)
    except FileFormatError:
        raise
    except ImportError as exc:
        raise FileFormatError(f"{path}: reading this vendor format needs {exc.name!r} (pip install spec2nii "
                              f"brings it)") from None
    except Exception as exc:  # spec2nii's readers raise anything on a truncated or foreign file
        raise FileFormatError(f"{path}: cannot read it with spec2nii ({type(exc).__name__}: {exc}); the file is "
                              f"corrupt, truncated or not this vendor's spectroscopy format") from None
    if not images:
        raise FileFormatError(f"{path}: spec2nii found no spectroscopy data in it")
    out = _image_dict(images[0], path)
    if not np.iscomplexobj(out["data"]) or not np.all(np.isfinite(out["data"])):
        raise FileFormatError(f"{path}: data are not finite complex values (NaN, Inf or real)")
    return out
