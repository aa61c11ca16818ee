"""Stage 4, measured spectra in: :func:`read_data` reads a scan (NIfTI-MRS, vendor files, LCModel ``.RAW``, jMRUI
text) into rows of FIDs, combining coils and averaging aligned transients on request
(:func:`mrs_tf.preprocess.combine_dimensions`). The file formats themselves are :mod:`mrs_tf.formats`
(also reachable here as ``mrs_tf.io.nifti``, ``mrs_tf.io.lcmodel``, ...)."""
from __future__ import annotations

import numpy as np

from mrs_tf.core.errors import FileFormatError, ProtocolError
from mrs_tf.core.files import full_suffix, require_file
from mrs_tf.formats import basis_files, fslmrs, jmrui, lcmodel, nifti, vendor
from mrs_tf.formats.basis_files import basis_format
from mrs_tf.preprocess.combine import AVERAGED_TAGS, combine_dimensions

__all__ = ["read_data", "basis_format", "combine_dimensions", "AVERAGED_TAGS", "basis_files", "lcmodel", "jmrui",
           "fslmrs", "nifti", "vendor"]


def _synthesis_provenance(hdr: dict | None) -> dict | None:
    """What ``mrs-tf synth`` recorded about the spectra of a NIfTI-MRS file it wrote (basis source, refocusing
    pulses), or None for any other file."""
    import json

    value = (hdr or {}).get("mrs_tf_synthesis")
    if isinstance(value, dict) and "Value" in value:
        value = value["Value"]
    try:
        made = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return None
    return made if isinstance(made, dict) else None


def _sequence(hdr: dict | None) -> dict:
    """``{"sequence": family or None, "sequence_name": the header's name}`` from a NIfTI-MRS header extension: its
    ``SequenceName``, else its ``ProtocolName`` (:func:`mrs_tf.physics.protocols.sequence_kind`); a ``MixingTime``
    without a name says STEAM."""
    from mrs_tf.physics.protocols import sequence_kind

    hdr = hdr or {}
    for key in ("SequenceName", "ProtocolName"):
        value = hdr.get(key)
        value = value.get("Value") if isinstance(value, dict) else value
        kind = sequence_kind(value)
        if kind:
            return {"sequence": kind, "sequence_name": str(value)}
    if hdr.get("MixingTime") is not None:
        return {"sequence": "steam", "sequence_name": "MixingTime in the header"}
    return {"sequence": None, "sequence_name": None}


def read_data(path, *, field_mhz: float | None = None, dwell_s: float | None = None, combine: bool = False,
              role: str = "data", align: bool = True, restore_first_point: bool = True) -> dict:
    """Read measured (or synthesized) spectra for quantification.

    Formats by suffix: NIfTI-MRS (``.nii``/``.nii.gz``; every voxel and every higher dimension becomes one row),
    the vendors' files through spec2nii (:mod:`mrs_tf.io.vendor`: Philips ``.SDAT``/``.SPAR``, Siemens ``.rda`` and
    twix ``.dat``, GE P-files ``.7``, Bruker ``fid``/``2dseq`` or scan folders; read like NIfTI-MRS), LCModel
    ``.RAW``/``.H2O`` (one FID; ``field_mhz``/``dwell_s`` fill in what its header lacks) and jMRUI text
    (``.txt``). Returns ``{"fids": complex (n, n_points), "dwell_s", "field_mhz", "labels": [str, ...],
    "te_ms"}`` in mrs-tf's (NIfTI-MRS) sign convention; NIfTI-MRS adds ``"voxels"`` (n, 3) grid indices of every
    row, ``"grid"`` (x, y, z), ``"affine"`` (voxel to world), ``"sequence"`` (the sequence family its header names,
    :func:`mrs_tf.physics.protocols.sequence_kind`, or None; ``"sequence_name"`` as written) and ``"simulated"`` (what ``mrs-tf synth`` recorded
    about its own spectra: basis source and refocusing pulses; None for scanner files). ``combine=True`` combines
    coils and averages repetitions first (:func:`combine_dimensions`; transients frequency- and phase-aligned first unless
    ``align=False``); what it did is in ``"preprocessing"`` (``coils``, ``transients``, ``align_max_hz``,
    ``align_max_deg``). ``role="water"`` picks the water reference of a file that holds both (GE P-files).
    ``restore_first_point``: FIDs stored with the first point halved (the DFT's trapezoid weight; the Philips SDAT
    scans in ``../shared/data`` are) get it doubled back (:mod:`mrs_tf.formats.first_point`; one decision per
    file, on the sum of its rows); ``"preprocessing"`` then has ``first_point_restored: True``.
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
               "grid": tuple(int(v) for v in data.shape[:3]), "affine": content["affine"], "preprocessing": steps,
               "simulated": _synthesis_provenance(content.get("hdr_ext")),
               **_sequence(content.get("hdr_ext"))}
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
    out.setdefault("preprocessing", {})
    if restore_first_point:
        from mrs_tf.formats.first_point import restore_halved_first_point

        out["fids"], out["preprocessing"]["first_point_restored"] = restore_halved_first_point(out["fids"])
    return out
