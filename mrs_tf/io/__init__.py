"""Readers and writers of the field's file formats, one module per format.

``read_basis``/``write_basis`` pick the format from the path: ``.basis`` LCModel, ``.raw`` (or a folder of them)
LCModel RAW, ``.txt`` jMRUI text, ``.nii``/``.nii.gz`` NIfTI-MRS, ``.json`` or a folder of them FSL-MRS.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, ProtocolError
from . import fslmrs, jmrui, lcmodel, nifti, vendor
from ._files import full_suffix, require_file

__all__ = ["read_basis", "write_basis", "basis_format", "read_data", "lcmodel", "jmrui", "fslmrs", "nifti", "vendor"]


def basis_format(path: str | os.PathLike, for_writing: bool = False) -> str:
    """``lcmodel``, ``raw``, ``jmrui``, ``nifti`` or ``fsl`` from the path's suffix (and content, for folders)."""
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
    if path.is_dir() and not for_writing:
        if any(path.glob("*.json")):
            return "fsl"
        if any(p.suffix.lower() == ".raw" for p in path.iterdir()):
            return "raw"
        raise FileFormatError(f"{path}: folder holds neither FSL-MRS .json nor LCModel .RAW basis files")
    if for_writing and suffix == "":
        return "fsl"
    raise FileFormatError(f"{path}: unknown basis format {suffix!r}; use .BASIS, .RAW, .txt (jMRUI), .nii.gz or "
                          f"a folder of FSL-MRS .json files")


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


def read_basis(path, *, field_mhz=None, dwell_s=None, n_points=None, unknown="keep", conjugate=None):
    """Read a basis set file into a :class:`~mrs_tf.basis.BasisSet` (see ``BasisSet.load``)."""
    from ..basis import BasisSet, normalise_names

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
    elif fmt == "nifti":
        content = nifti.read_basis(path)
        protocol = dict(content["protocol"]) or {"te_ms": content["te_ms"]}
    else:
        content = fslmrs.read_folder(path)
        protocol = dict(content.get("meta", {}).get("protocol", {}))
    protocol = {k: v for k, v in protocol.items() if v is not None}
    protocol["loaded_from"] = str(path)
    protocol["format"] = fmt
    fids = content["fids"]
    if conjugate:
        fids = np.conj(fids)
    names, rows = normalise_names(content["names"], unknown)
    if field_mhz is not None and abs(content["field_mhz"] - field_mhz) > 0.005 * field_mhz:
        raise ProtocolError(f"{path}: basis is for {content['field_mhz']:.3f} MHz but {field_mhz:.3f} MHz was asked")
    basis = BasisSet(names, fids[rows], content["dwell_s"], content["field_mhz"], 4.65, protocol)
    if dwell_s is not None or n_points is not None:
        basis = basis.resample(dwell_s=dwell_s, n_points=n_points)
    return basis


def write_basis(basis, path, overwrite: bool = False) -> Path:
    fmt = basis_format(path, for_writing=True)
    te = basis.protocol.get("te_ms")
    if fmt == "lcmodel":
        return lcmodel.write_basis(path, basis.names, basis.fids, basis.dwell_s, basis.field_mhz, te,
                                   basis.protocol.get("sequence"), overwrite=overwrite)
    if fmt == "jmrui":
        return jmrui.write_text(path, basis.fids, basis.dwell_s, basis.field_mhz, basis.names, overwrite=overwrite)
    if fmt == "nifti":
        return nifti.write_basis(path, basis.names, basis.fids, basis.dwell_s, basis.field_mhz, basis.protocol,
                                 overwrite=overwrite)
    if fmt == "fsl":
        if full_suffix(path) == ".json":
            raise FileFormatError(f"{path}: an FSL-MRS basis is a folder of .json files; give a folder path")
        return fslmrs.write_folder(path, basis.names, basis.fids, basis.dwell_s, basis.field_mhz,
                                   {"protocol": basis.protocol}, overwrite=overwrite)
    raise FileFormatError(f"{path}: cannot write a basis as LCModel .RAW (one file per metabolite); use .BASIS")


#: NIfTI-MRS higher dimensions that ``combine=True`` reduces: coils combined, repetitions averaged
AVERAGED_TAGS = ("DIM_DYN", "DIM_MEAS", "DIM_PHASE_CYCLE")


def combine_dimensions(data: np.ndarray, dim_tags, align: bool = False, info: dict | None = None,
                       dwell_s: float | None = None) -> tuple[np.ndarray, list[str]]:
    """Reduce the higher dimensions (5-7) of NIfTI-MRS ``data`` (x, y, z, points, ...): ``DIM_COIL`` by a
    signal-weighted combination (each coil multiplied by the conjugate of its mean first 4 points: phase-aligned and
    weighted by its signal; divided by the root-sum-of-squares of those, so coils of gains g_c give the signal times
    sqrt(sum |g_c|^2), phased at t = 0), and the repetition dimensions of :data:`AVERAGED_TAGS` averaged, after
    frequency and phase alignment of the transients when ``align`` (:func:`mrs_tf.preprocess.spectral_registration`,
    which needs ``dwell_s``); other dimensions stay. Returns the array and the remaining tags; ``info`` (a dict)
    receives ``coils``, ``transients`` and, when aligned, ``align_max_hz``/``align_max_deg`` (the largest corrections)."""
    tags = [t for t in list(dim_tags)[: data.ndim - 4]]
    axis = 4
    out = data
    kept = []
    info = {} if info is None else info
    for tag in tags:
        if tag == "DIM_COIL":
            info["coils"] = info.get("coils", 1) * out.shape[axis]
            ref = np.mean(np.take(out, range(4), axis=3), axis=3, keepdims=True)
            w = np.conj(ref)  # phase alignment and |signal| weighting in one
            norm = np.sqrt(np.sum(np.abs(ref) ** 2, axis=axis, keepdims=True)) + 1e-30
            out = np.sum(out * w, axis=axis) / np.squeeze(norm, axis=axis)
        elif tag in AVERAGED_TAGS:
            info["transients"] = info.get("transients", 1) * out.shape[axis]
            if align and out.shape[axis] > 1:
                if dwell_s is None:
                    raise ValueError("aligning transients needs dwell_s")
                out = _align_along(out, axis, dwell_s, info)
            out = np.mean(out, axis=axis)
        else:
            kept.append(tag)
            axis += 1
    return out, kept


def _align_along(data: np.ndarray, axis: int, dwell_s: float, info: dict) -> np.ndarray:
    """Spectral registration of the transients along ``axis`` of (x, y, z, points, ...), voxel by voxel."""
    from ..preprocess import spectral_registration

    moved = np.moveaxis(data, (axis, 3), (-2, -1))
    shape = moved.shape
    flat = moved.reshape(-1, shape[-2], shape[-1]).copy()
    for i in range(len(flat)):
        if np.any(flat[i]):
            flat[i], f, p = spectral_registration(flat[i], dwell_s)
            info["align_max_hz"] = max(info.get("align_max_hz", 0.0), float(np.abs(f).max()))
            info["align_max_deg"] = max(info.get("align_max_deg", 0.0), float(np.abs(p).max()))
    return np.moveaxis(flat.reshape(shape), (-2, -1), (axis, 3))


def read_data(path, *, field_mhz: float | None = None, dwell_s: float | None = None, combine: bool = False,
              role: str = "data", align: bool = True) -> dict:
    """Read measured (or synthesized) spectra for quantification.

    Formats by suffix: NIfTI-MRS (``.nii``/``.nii.gz``; every voxel and every higher dimension becomes one row),
    the vendors' files through spec2nii (:mod:`mrs_tf.io.vendor`: Philips ``.SDAT``/``.SPAR``, Siemens ``.rda`` and
    twix ``.dat``, GE P-files ``.7``, Bruker ``fid``/``2dseq`` or scan folders; read like NIfTI-MRS), LCModel
    ``.RAW``/``.H2O`` (one FID; ``field_mhz``/``dwell_s`` fill in what its header lacks) and jMRUI text
    (``.txt``). Returns ``{"fids": complex (n, n_points), "dwell_s", "field_mhz", "labels": [str, ...],
    "te_ms"}`` in mrs-tf's (NIfTI-MRS) sign convention; NIfTI-MRS adds ``"voxels"`` (n, 3) grid indices of every
    row, ``"grid"`` (x, y, z) and ``"affine"`` (voxel to world). ``combine=True`` combines coils and averages
    repetitions first (:func:`combine_dimensions`; transients frequency- and phase-aligned first unless
    ``align=False``); what it did is in ``"preprocessing"`` (``coils``, ``transients``, ``align_max_hz``,
    ``align_max_deg``). ``role="water"`` picks the water reference of a file that holds both (GE P-files).
    """
    path = require_file(path)
    suffix = full_suffix(path)
    from_vendor = vendor.is_vendor_file(path)
    if suffix in (".nii", ".nii.gz") or from_vendor:
        content = vendor.read(path, role) if from_vendor else nifti.read(path)
        raw = content["data"]
        steps: dict = {}
        if combine and raw.ndim > 4:
            raw, _ = combine_dimensions(raw, content["dim_tags"], align=align, info=steps,
                                        dwell_s=content["dwell_s"])
        data = np.moveaxis(raw, 3, -1)
        labels = [f"{path.name}[{':'.join(str(i) for i in idx)}]" for idx in np.ndindex(data.shape[:-1])]
        fids = data.reshape(-1, data.shape[-1])
        out = {"fids": fids, "dwell_s": content["dwell_s"], "field_mhz": content["field_mhz"], "labels": labels,
               "te_ms": content["te_s"] * 1e3 if content["te_s"] else None,
               # MRSI: the voxel (x, y, z) of every row, the grid and its affine (maps are written on it)
               "voxels": np.array([idx[:3] for idx in np.ndindex(data.shape[:-1])], int).reshape(-1, 3),
               "grid": tuple(int(v) for v in data.shape[:3]), "affine": content["affine"], "preprocessing": steps}
    elif suffix in (".raw", ".h2o"):
        content = lcmodel.read_raw(path)
        out = {"fids": content["fid"][None, :], "dwell_s": content["dwell_s"] or dwell_s,
               "field_mhz": content["field_mhz"] or field_mhz, "labels": [path.name], "te_ms": content["te_ms"]}
        if out["dwell_s"] is None or out["field_mhz"] is None:
            raise ProtocolError(f"{path}: the .RAW header gives no dwell time or field; pass --bandwidth-hz and "
                                f"--field-mhz (dwell_s=, field_mhz=)")
    elif suffix == ".txt":
        content = jmrui.read_text(path)
        n = len(content["fids"])
        labels = [f"{path.name}[{i}]" for i in range(n)] if n > 1 else [path.name]
        out = {"fids": content["fids"], "dwell_s": content["dwell_s"], "field_mhz": content["field_mhz"],
               "labels": labels, "te_ms": None}
    else:
        raise FileFormatError(f"{path}: unknown data format {suffix!r}; use NIfTI-MRS (.nii.gz), Philips .SDAT/.SPAR, "
                              f"Siemens .rda/.dat, GE .7, Bruker fid/2dseq, LCModel .RAW or jMRUI text (.txt)")
    for key, given in (("dwell_s", dwell_s), ("field_mhz", field_mhz)):
        if given is not None and out[key] is not None and abs(out[key] - given) > 5e-3 * given:
            raise ProtocolError(f"{path}: file says {key} = {out[key]:.6g} but {given:.6g} was given")
    return out
