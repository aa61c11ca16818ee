"""FSL-MRS basis folders: one JSON file per metabolite with a ``basis`` object
(``basis_re``, ``basis_im``: time-domain FID; ``basis_dwell`` s; ``basis_centre`` MHz; ``basis_width`` Hz;
``basis_name``). Same sign convention as NIfTI-MRS (and mrs-tf); nothing is conjugated.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mrs_tf.core.errors import FileFormatError
from mrs_tf.core.files import atomic_output, safe_filename, require_file

_REQUIRED = ("basis_re", "basis_im", "basis_dwell", "basis_centre")


def read_folder(path) -> dict:
    """Read every ``*.json`` in ``path`` (or one JSON file): dict with names, fids, dwell_s, field_mhz, meta."""
    path = require_file(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise FileFormatError(f"{path}: no .json basis files in this folder")
    names, fids, dwells, centres, metas = [], [], [], [], []
    for file in files:
        try:
            content = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FileFormatError(f"{file}: not valid JSON ({exc}); the file is corrupt or truncated") from None
        basis = content.get("basis") if isinstance(content, dict) else None
        if not isinstance(basis, dict):
            raise FileFormatError(f"{file}: FSL-MRS basis file must have a 'basis' object")
        missing = [k for k in _REQUIRED if k not in basis]
        if missing:
            raise FileFormatError(f"{file}: FSL-MRS basis lacks {', '.join(missing)}")
        try:
            re_, im_ = np.asarray(basis["basis_re"], float), np.asarray(basis["basis_im"], float)
        except (TypeError, ValueError):
            raise FileFormatError(f"{file}: basis_re/basis_im are not lists of numbers") from None
        if re_.shape != im_.shape or re_.ndim != 1:
            raise FileFormatError(f"{file}: basis_re and basis_im differ in length ({re_.size} vs {im_.size})")
        fid = re_ + 1j * im_
        if not np.all(np.isfinite(fid)):
            raise FileFormatError(f"{file}: basis contains NaN or Inf values")
        names.append(str(basis.get("basis_name") or file.stem))
        fids.append(fid)
        dwells.append(float(basis["basis_dwell"]))
        centres.append(float(basis["basis_centre"]))
        metas.append(content.get("meta", {}))
    order = [m.get("mrs_tf_index") if isinstance(m, dict) else None for m in metas]
    if all(isinstance(i, int) for i in order):  # written by mrs-tf: keep the basis order
        perm = np.argsort(order, kind="stable")
        names, fids, metas = [names[i] for i in perm], [fids[i] for i in perm], [metas[i] for i in perm]
    if len({f.size for f in fids}) > 1:
        raise FileFormatError(f"{path}: basis files have different numbers of points: {sorted({f.size for f in fids})}")
    if not np.allclose(dwells, dwells[0], rtol=1e-6) or not np.allclose(centres, centres[0], rtol=1e-4):
        raise FileFormatError(f"{path}: basis files disagree on dwell time or centre frequency")
    return {"names": names, "fids": np.array(fids), "dwell_s": dwells[0], "field_mhz": centres[0],
            "meta": {k: v for k, v in metas[0].items() if k != "mrs_tf_index"} if isinstance(metas[0], dict) else {}}


def write_folder(path, names, fids, dwell_s: float, field_mhz: float, meta: dict | None = None,
                 overwrite: bool = False) -> Path:
    """Write one ``<name>.json`` per metabolite into the folder ``path`` (created atomically)."""
    for name in names:
        safe_filename(name, "metabolite name")
    with atomic_output(path, overwrite, directory=True) as tmp:
        for index, (name, fid) in enumerate(zip(names, np.asarray(fids))):
            content = {"basis": {"basis_re": fid.real.tolist(), "basis_im": fid.imag.tolist(),
                                 "basis_dwell": float(dwell_s), "basis_centre": float(field_mhz),
                                 "basis_width": 0.0, "basis_name": name},
                       "meta": dict(meta or {}, mrs_tf_index=index)}
            (tmp / f"{name}.json").write_text(json.dumps(content))
    return Path(path)
