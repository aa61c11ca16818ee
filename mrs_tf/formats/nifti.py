"""NIfTI-MRS files (through the ``nifti-mrs`` package) for data and for basis sets.

mrs-tf arrays already follow the NIfTI-MRS convention, so data are stored as given (``no_conj=True``) and read from
the raw image (not through ``NIFTI_MRS.__getitem__``, which conjugates into FSL-MRS's internal frame).
A basis set is a 5-D file (1, 1, 1, points, metabolites) whose 5th dimension is ``DIM_USER_0`` and whose
metabolite names are in the user-defined header key ``MetaboliteNames``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mrs_tf.core.errors import FileFormatError
from mrs_tf.core.files import atomic_output, require_file


def write(path, data, dwell_s: float, field_mhz: float, *, te_s: float | None = None, dim_tags=None,
          affine=None, user: dict | None = None, overwrite: bool = False, sequence: str | None = None) -> Path:
    """Write a complex array (x, y, z, points[, d5, d6, d7]) as NIfTI-MRS, atomically.

    ``user``: extra header keys, each ``{key: (value, description)}``. ``sequence``: the standard ``SequenceName``
    (e.g. ``press``, ``steam``, ``slaser``).
    """
    from nifti_mrs.create_nmrs import gen_nifti_mrs

    data = np.asarray(data)
    if not np.iscomplexobj(data) or not 4 <= data.ndim <= 7:
        raise FileFormatError(f"NIfTI-MRS data must be complex with 4 to 7 dimensions, got {data.dtype} {data.shape}")
    tags = list(dim_tags or []) + [None] * 3
    img = gen_nifti_mrs(data.astype(np.complex128), float(dwell_s), float(field_mhz), nucleus="1H", affine=affine,
                        dim_tags=tags[:3], no_conj=True)
    if te_s is not None:
        img.add_hdr_field("EchoTime", float(te_s))
    if sequence:
        img.add_hdr_field("SequenceName", str(sequence))
    for key, (value, doc) in (user or {}).items():
        img.add_hdr_field(key, value, doc=doc)
    with atomic_output(path, overwrite) as tmp:
        img.save(str(tmp))
    return Path(path)


def _tags(path) -> list:
    """The dim_5..dim_7 tags of a NIfTI-MRS header extension, read without validation (for error messages)."""
    try:
        import nibabel as nib

        ext = nib.load(str(path)).header.extensions
        hdr = json.loads(ext[0].get_content()) if len(ext) else {}
        return [hdr[k] for k in ("dim_5", "dim_6", "dim_7") if k in hdr]
    except Exception:  # the message is best-effort
        return []


def read(path) -> dict:
    """Read a NIfTI-MRS file: dict with data (x, y, z, points, ...), dwell_s, field_mhz, te_s, dim_tags, affine,
    hdr_ext (the header extension as a dict)."""
    from nifti_mrs.nifti_mrs import NIFTI_MRS, NotNIFTI_MRS

    path = require_file(path)
    try:
        img = NIFTI_MRS(str(path))
        data = np.asarray(img.image[:])
        hdr = json.loads(img.hdr_ext.to_json())
    except NotNIFTI_MRS as exc:
        raise FileFormatError(f"{path}: not a NIfTI-MRS file ({exc})") from None
    except ValueError as exc:
        if "dimension tag" in str(exc):
            raise FileFormatError(f"{path}: unknown NIfTI-MRS dimension tag(s) {_tags(path)}; the standard defines "
                                  f"DIM_COIL, DIM_DYN, DIM_INDIRECT_0-2, DIM_PHASE_CYCLE, DIM_EDIT, DIM_MEAS, "
                                  f"DIM_USER_0-2, DIM_ISIS, ... (fix the header, e.g. with spec2nii/mrs_tools)") from None
        raise FileFormatError(f"{path}: cannot read NIfTI-MRS (ValueError: {exc})") from None
    except Exception as exc:  # nibabel/gzip errors for truncated or corrupt files
        raise FileFormatError(f"{path}: cannot read NIfTI-MRS ({type(exc).__name__}: {exc}); "
                              f"the file is corrupt or truncated") from None
    if not np.iscomplexobj(data):
        raise FileFormatError(f"{path}: NIfTI-MRS data are not complex")
    if not np.isfinite(data).any():
        raise FileFormatError(f"{path}: data contain only NaN or Inf values")
    # a NaN or Inf sample spoils its own FID (an MRSI voxel, a transient), not the file: quantification gives that row
    # status nan_input and the others their numbers
    te = hdr.get("EchoTime")
    return {"data": data, "dwell_s": float(img.dwelltime), "field_mhz": float(img.spectrometer_frequency[0]),
            "te_s": float(te) if te is not None else None, "dim_tags": list(img.dim_tags),
            "affine": np.asarray(img.getAffine("voxel", "world")), "hdr_ext": hdr}


def write_basis(path, names, fids, dwell_s: float, field_mhz: float, protocol: dict | None = None,
                overwrite: bool = False) -> Path:
    fids = np.asarray(fids)
    data = fids.T.reshape(1, 1, 1, fids.shape[1], fids.shape[0])
    te = (protocol or {}).get("te_ms")
    user = {"MetaboliteNames": (list(names), "mrs-tf: basis metabolite of each index of dimension 5"),
            "mrs_tf_protocol": (json.dumps(protocol or {}), "mrs-tf: protocol and provenance of the basis set")}
    return write(path, data, dwell_s, field_mhz, te_s=te * 1e-3 if te is not None else None,
                 dim_tags=["DIM_USER_0"], user=user, overwrite=overwrite)


def _user_value(hdr: dict, key: str):
    value = hdr.get(key)
    if isinstance(value, dict) and "Value" in value:
        return value["Value"]
    return value


def read_basis(path) -> dict:
    content = read(path)
    data = content["data"]
    if data.ndim == 4:
        data = data[..., None]
    if data.ndim != 5 or data.shape[:3] != (1, 1, 1):
        raise FileFormatError(f"{path}: a NIfTI-MRS basis must have shape (1, 1, 1, points, metabolites), "
                              f"got {data.shape}")
    names = _user_value(content["hdr_ext"], "MetaboliteNames")
    if not isinstance(names, list) or len(names) != data.shape[4]:
        raise FileFormatError(f"{path}: NIfTI-MRS basis lacks a 'MetaboliteNames' list of {data.shape[4]} names")
    protocol = _user_value(content["hdr_ext"], "mrs_tf_protocol")
    try:
        protocol = json.loads(protocol) if isinstance(protocol, str) else {}
    except json.JSONDecodeError:
        protocol = {}
    return {"names": [str(n) for n in names], "fids": data[0, 0, 0].T.copy(), "dwell_s": content["dwell_s"],
            "field_mhz": content["field_mhz"], "protocol": protocol,
            "te_ms": content["te_s"] * 1e3 if content["te_s"] is not None else None}
