"""Osprey's MATLAB basis sets (``.mat``, a ``BASIS`` struct): the basis files Osprey simulates for a vendor's
sequence (its ``fit-makeBasis``), read into mrs-tf's convention.

Fields read: ``fids`` (points x signals, complex), ``name`` (signal names), ``dwelltime`` (s; or
``spectralwidth``, Hz), ``Bo`` (T), ``centerFreq`` (the ppm of the receiver frequency, 3.0 in Osprey's files),
``te`` (ms) and ``seq`` where present. Conversion:

* **frequency reference**: the file's frequencies are relative to ``centerFreq``; every FID is moved so that they are
  relative to mrs-tf's 4.65 ppm;
* **sign convention**: the orientation (as stored or conjugated) is the one that puts the CH3 singlets of NAA
  (2.008 ppm) and Cr/PCr (3.027/3.029 ppm) where they belong, measured on the file's own signals (Osprey's files
  need the conjugate: as stored, NAA sits mirrored at 3.99 ppm); a file without those signals is conjugated, as
  Osprey's are, and ``protocol["sign"]`` says that it was assumed;
* ``CrCH2`` (Osprey's negative copy of creatine's 3.9 ppm CH2 line, a fitting device rather than a signal) is left
  out, and ``protocol["left_out"]`` says so. Everything else is kept, also signals mrs-tf does not simulate and
  Osprey's Gaussian MM/lipid components (``MM09`` ... ``Lip20``); water (``H2O``) is dropped later by the basis
  hygiene (:mod:`mrs_tf.basis_prep`) as every format's is.

The first points, which Osprey's files store halved, are doubled back by :meth:`mrs_tf.BasisSet.load`
(:mod:`mrs_tf.formats.first_point`), as for its LCModel ``.BASIS`` files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mrs_tf.core.errors import FileFormatError
from mrs_tf.core.files import require_file

__all__ = ["GAMMA_MHZ_PER_T", "LEFT_OUT", "read_basis"]

#: proton gyromagnetic ratio / 2 pi (MHz/T): the field from ``Bo``
GAMMA_MHZ_PER_T = 42.577478
#: signals of Osprey's basis files that are fitting devices, not signals: left out on reading
LEFT_OUT = {"CrCH2": "Osprey's negative copy of creatine's 3.9 ppm CH2 line (a fitting device)"}
#: (name, ppm) of the singlets that decide the sign convention
_SINGLETS = (("NAA", 2.008), ("Cr", 3.027), ("PCr", 3.029))


def _field(struct, name: str, path: Path, required: bool = True):
    if name in getattr(struct, "_fieldnames", ()):
        return getattr(struct, name)
    if required:
        raise FileFormatError(f"{path}: Osprey basis struct lacks the field {name!r} (has: "
                              f"{', '.join(getattr(struct, '_fieldnames', ()))})")
    return None


def _number(struct, name: str, path: Path, required: bool = True) -> float | None:
    value = _field(struct, name, path, required)
    if value is None:
        return None
    try:
        out = float(np.asarray(value).ravel()[0])
    except (TypeError, ValueError, IndexError):
        raise FileFormatError(f"{path}: Osprey basis field {name!r} = {value!r} is not a number") from None
    if not np.isfinite(out):
        raise FileFormatError(f"{path}: Osprey basis field {name!r} is {out}")
    return out


def _singlet_score(fids: np.ndarray, names: list[str], dwell_s: float, field_mhz: float) -> float:
    """How much of the reference singlets' signal sits within 0.05 ppm of where they belong (mrs-tf convention,
    4.65 ppm reference): the sum over NAA/Cr/PCr of the peak |spectrum| there over the signal's peak."""
    n = fids.shape[1]
    t = np.arange(n) * dwell_s
    ppm = 4.65 - np.fft.fftfreq(n, dwell_s) / field_mhz
    score = 0.0
    for name, centre in _SINGLETS:
        if name in names:
            spec = np.abs(np.fft.fft(fids[names.index(name)] * np.exp(-np.pi * 3.0 * t)))
            score += spec[np.abs(ppm - centre) < 0.05].max(initial=0.0) / max(spec.max(), 1e-30)
    return score


def read_basis(path) -> dict:
    """Read an Osprey ``.mat`` basis: ``{"names", "fids" (m, n) complex in mrs-tf's convention at 4.65 ppm,
    "dwell_s", "field_mhz", "te_ms", "sequence", "protocol"}`` (see the module docstring)."""
    import scipy.io

    path = require_file(path)
    try:
        content = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError ... on corrupt files
        raise FileFormatError(f"{path}: not a readable MATLAB file ({exc})") from None
    if "BASIS" not in content:
        raise FileFormatError(f"{path}: no 'BASIS' struct (an Osprey basis file holds one); variables: "
                              f"{', '.join(k for k in content if not k.startswith('__'))}")
    struct = content["BASIS"]
    names = [str(n).strip() for n in np.atleast_1d(_field(struct, "name", path))]
    fids = np.asarray(_field(struct, "fids", path))
    if fids.ndim == 1:
        fids = fids[:, None]
    if fids.ndim != 2 or len(names) not in fids.shape:
        raise FileFormatError(f"{path}: fids of shape {fids.shape} do not hold one FID per name ({len(names)} names)")
    fids = (fids.T if fids.shape[1] == len(names) and fids.shape[0] != len(names) else fids).astype(np.complex128)
    if not np.all(np.isfinite(fids)):
        raise FileFormatError(f"{path}: fids hold NaN or infinite values")
    dwell = _number(struct, "dwelltime", path, required=False)
    if dwell is None:
        dwell = 1.0 / _number(struct, "spectralwidth", path)
    field_mhz = _number(struct, "Bo", path) * GAMMA_MHZ_PER_T
    centre = _number(struct, "centerFreq", path, required=False)
    centre = 3.0 if centre is None else centre
    if dwell <= 0 or field_mhz <= 0:
        raise FileFormatError(f"{path}: dwell time {dwell} s and field {field_mhz} MHz must be positive")
    keep = [i for i, n in enumerate(names) if n not in LEFT_OUT]
    left_out = [n for n in names if n in LEFT_OUT]
    names, fids = [names[i] for i in keep], fids[keep]
    t = np.arange(fids.shape[1]) * dwell
    move = np.exp(2j * np.pi * (4.65 - centre) * field_mhz * t)[None, :]
    as_stored, conjugated = fids * move, np.conj(fids) * move
    s_stored = _singlet_score(as_stored, names, dwell, field_mhz)
    s_conj = _singlet_score(conjugated, names, dwell, field_mhz)
    if s_stored == s_conj == 0.0:
        fids, sign = conjugated, "conjugated (no NAA/Cr singlet to check the orientation: Osprey's convention assumed)"
    elif s_stored > s_conj:
        fids, sign = as_stored, "as stored (the NAA/Cr singlets where they belong)"
    else:
        fids, sign = conjugated, "conjugated (as stored, the NAA/Cr singlets sat mirrored)"
    te = _number(struct, "te", path, required=False)
    seq = _field(struct, "seq", path, required=False)
    sequence = str(seq).strip().split("_")[0].lower() if seq is not None and str(seq).strip() else None
    protocol = {"sign": sign, "reference": f"moved from the receiver's {centre:g} ppm to 4.65 ppm"}
    if left_out:
        protocol["left_out"] = "; ".join(f"{n}: {LEFT_OUT[n]}" for n in left_out)
    return {"names": names, "fids": fids, "dwell_s": float(dwell), "field_mhz": float(field_mhz),
            "te_ms": te, "sequence": sequence, "protocol": protocol}
