"""Basis files of every format the field uses, as plain arrays: ``read`` gives ``{"names", "fids", "dwell_s",
"field_mhz", "protocol"}`` and ``write`` takes the same, the format chosen from the path. ``.basis`` LCModel, ``.raw``
(or a folder of them) LCModel RAW, ``.txt`` jMRUI text, ``.nii``/``.nii.gz`` NIfTI-MRS, ``.json`` or a folder of
them FSL-MRS, ``.mat`` Osprey's MATLAB basis (read only). :meth:`mrs_tf.BasisSet.load` and
:meth:`~mrs_tf.BasisSet.save` build on it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mrs_tf.core.errors import FileFormatError, ProtocolError
from mrs_tf.core.files import full_suffix, require_file
from mrs_tf.formats import fslmrs, jmrui, lcmodel, nifti, osprey

__all__ = ["basis_format", "read", "write"]


def basis_format(path: str | os.PathLike, for_writing: bool = False) -> str:
    """``lcmodel``, ``raw``, ``jmrui``, ``nifti``, ``fsl`` or ``osprey`` from the path's suffix (and content, for
    folders)."""
    path = Path(path)
    suffix = full_suffix(path)
    if suffix == ".basis":
        return "lcmodel"
    if suffix in (".raw", ".h2o"):
        return "raw"
    if suffix == ".txt":
        return "jmrui"
    if suffix in (".nii", ".nii.gz"):
        return "nifti"
    if suffix == ".json":
        return "fsl"
    if suffix == ".mat":
        if for_writing:
            raise FileFormatError(f"{path}: mrs-tf reads Osprey's .mat basis files but does not write them; use "
                                  f".BASIS, .txt (jMRUI), .nii.gz or a folder of FSL-MRS .json files")
        return "osprey"
    if path.is_dir() and not for_writing:
        if any(path.glob("*.json")):
            return "fsl"
        if any(p.suffix.lower() == ".raw" for p in path.iterdir()):
            return "raw"
        raise FileFormatError(f"{path}: folder holds neither FSL-MRS .json nor LCModel .RAW basis files")
    if for_writing and suffix == "":
        return "fsl"
    raise FileFormatError(f"{path}: unknown basis format {suffix!r}; use .BASIS, .RAW, .txt (jMRUI), .nii.gz, "
                          f".mat (Osprey) or a folder of FSL-MRS .json files")


def _read_raw_basis(path: Path, field_mhz, dwell_s) -> dict:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".raw") if path.is_dir() else [path]
    names, fids, dwells, fields = [], [], [], []
    for file in files:
        content = lcmodel.read_raw(file)
        names.append(file.stem)
        fids.append(content["fid"])
        dwells.append(content["dwell_s"] or dwell_s)
        fields.append(content["field_mhz"] or field_mhz)
    if any(d is None for d in dwells) or any(f is None for f in fields):
        raise ProtocolError(f"{path}: LCModel .RAW files do not give the field and dwell time; "
                            f"pass field_mhz= and dwell_s= (--field-mhz/--bandwidth-hz)")
    if len({len(f) for f in fids}) > 1:
        raise FileFormatError(f"{path}: .RAW files have different numbers of points")
    return {"names": names, "fids": np.array(fids), "dwell_s": dwells[0], "field_mhz": fields[0]}


def read(path: str | os.PathLike, *, field_mhz: float | None = None, dwell_s: float | None = None) -> dict:
    """The signals of a basis file as written: ``{"names": [str], "fids": complex (m, n), "dwell_s" (s),
    "field_mhz" (MHz), "protocol": {...}}``; ``field_mhz``/``dwell_s`` fill in what LCModel ``.RAW`` files lack."""
    path = require_file(path)
    fmt = basis_format(path)
    if fmt == "lcmodel":
        content = lcmodel.read_basis(path)
        protocol = {"sequence": content["sequence"], "te_ms": content["te_ms"]}
    elif fmt == "raw":
        content = _read_raw_basis(path, field_mhz, dwell_s)
        protocol = {}
    elif fmt == "jmrui":
        content = jmrui.read_text(path)
        if content["names"] is None:
            raise FileFormatError(f"{path}: jMRUI file has no 'SignalNames:' header line naming its signals")
        protocol = {}
    elif fmt == "osprey":
        content = osprey.read_basis(path)
        protocol = {"sequence": content["sequence"], "te_ms": content["te_ms"], **content["protocol"]}
    elif fmt == "nifti":
        content = nifti.read_basis(path)
        protocol = dict(content["protocol"]) or {"te_ms": content["te_ms"]}
    else:
        content = fslmrs.read_folder(path)
        protocol = dict(content.get("meta", {}).get("protocol", {}))
    protocol = {k: v for k, v in protocol.items() if v is not None}
    protocol["loaded_from"] = str(path)
    protocol["format"] = fmt
    return {"names": list(content["names"]), "fids": content["fids"], "dwell_s": content["dwell_s"],
            "field_mhz": content["field_mhz"], "protocol": protocol}


def write(path: str | os.PathLike, names, fids, dwell_s: float, field_mhz: float, protocol: dict,
          overwrite: bool = False) -> Path:
    """Write basis signals in the format of ``path``'s suffix (atomically; an existing path refused unless
    ``overwrite``)."""
    fmt = basis_format(path, for_writing=True)
    te = protocol.get("te_ms")
    if fmt == "lcmodel":
        return lcmodel.write_basis(path, names, fids, dwell_s, field_mhz, te, protocol.get("sequence"),
                                   overwrite=overwrite)
    if fmt == "jmrui":
        return jmrui.write_text(path, fids, dwell_s, field_mhz, names, overwrite=overwrite)
    if fmt == "nifti":
        return nifti.write_basis(path, names, fids, dwell_s, field_mhz, protocol, overwrite=overwrite)
    if fmt == "fsl":
        if full_suffix(path) == ".json":
            raise FileFormatError(f"{path}: an FSL-MRS basis is a folder of .json files; give a folder path")
        return fslmrs.write_folder(path, names, fids, dwell_s, field_mhz, {"protocol": protocol},
                                   overwrite=overwrite)
    raise FileFormatError(f"{path}: cannot write a basis as LCModel .RAW (one file per metabolite); use .BASIS")
