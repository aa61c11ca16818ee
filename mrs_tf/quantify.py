"""Quantification with a trained network: ``Quantifier.load(folder).quantify(fids, dwell_s=..., field_mhz=...)``.

The folder holds ``model.keras`` and ``quantifier.json`` (the protocol the model was trained for, the output names,
the ppm crop), as written by :func:`mrs_tf.train.train` and shipped in ``saved_models/``. Data are checked against
that protocol: a mismatch in points, dwell time or field is refused with a message naming the expected protocol,
never silently accepted.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from .crlb import combination_rows, tcr_rows
from .errors import FileFormatError, MRSError, ProtocolError
from .preprocess import as_fid_matrix, cropped_spectrum
from .table import ResultTable

__all__ = ["Quantifier"]


class Quantifier:
    """A trained network and the protocol it belongs to."""

    def __init__(self, model, meta: dict):
        self.model = model
        self.meta = dict(meta)
        self.names = list(meta["names"])
        self.n_points = int(meta["n_points"])
        self.dwell_s = float(meta["dwell_s"])
        self.field_mhz = float(meta["field_mhz"])
        self.ref_ppm = float(meta.get("ref_ppm", 4.65))
        self.ppm_range = tuple(meta["ppm_range"])
        self.uncertainty = bool(meta.get("uncertainty", False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Quantifier":
        """Load ``path/model.keras`` and ``path/quantifier.json``."""
        import keras

        from . import layers  # noqa: F401  (registers the custom layers and losses)

        folder = Path(path)
        model_file, meta_file = folder / "model.keras", folder / "quantifier.json"
        for f in (model_file, meta_file):
            if not f.is_file():
                raise FileFormatError(f"{folder}: no {f.name}; a quantifier folder holds model.keras and "
                                      f"quantifier.json (written by mrs-tf train)")
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as exc:
            raise FileFormatError(f"{meta_file}: not valid JSON ({exc})") from None
        try:
            model = keras.saving.load_model(model_file)
        except Exception as exc:  # zip/h5 errors of a corrupt or truncated file
            raise FileFormatError(f"{model_file}: cannot load the Keras model ({type(exc).__name__}: {exc})") from None
        return cls(model, meta)

    def protocol_text(self) -> str:
        proto = self.meta.get("protocol", {})
        seq = proto.get("sequence", "")
        te = f" TE {proto['te_ms']:g} ms" if proto.get("te_ms") else ""
        return (f"{seq.upper()}{te}, {self.field_mhz:g} MHz, {self.n_points} points, "
                f"{1 / self.dwell_s:g} Hz bandwidth (dwell {self.dwell_s:.6g} s)")

    def check(self, fids, dwell_s: float, field_mhz: float) -> np.ndarray:
        """Validate data against the model's protocol; returns complex (n, n_points)."""
        arr = as_fid_matrix(fids)
        expected = f"this model expects {self.protocol_text()}"
        if arr.shape[1] != self.n_points:
            raise ProtocolError(f"data have {arr.shape[1]} points; {expected}")
        if dwell_s is None or field_mhz is None:
            raise ProtocolError(f"give dwell_s and field_mhz of the data; {expected}")
        if not math.isclose(dwell_s, self.dwell_s, rel_tol=1e-3):
            raise ProtocolError(f"data dwell time {dwell_s:.6g} s ({1 / dwell_s:g} Hz); {expected}")
        if not math.isclose(field_mhz, self.field_mhz, rel_tol=5e-3):
            raise ProtocolError(f"data field {field_mhz:g} MHz; {expected}")
        bad = ~np.all(np.isfinite(arr), axis=1)
        if bad.any():
            raise MRSError(f"spectra {np.flatnonzero(bad)[:10].tolist()} contain NaN or Inf")
        zero = ~np.any(arr, axis=1)
        if zero.any():
            raise MRSError(f"spectra {np.flatnonzero(zero)[:10].tolist()} are all zeros")
        return arr

    def predict(self, fids, dwell_s: float, field_mhz: float, batch_size: int = 1024):
        """(mean (n, M), sd (n, M) or None) in basis units."""
        arr = self.check(fids, dwell_s, field_mhz)
        x = cropped_spectrum(arr, self.dwell_s, self.field_mhz, self.ppm_range, self.ref_ppm)
        out = self.model.predict({"spectrum": x}, batch_size=batch_size, verbose=0)
        pred = np.asarray(out["concentrations"] if isinstance(out, dict) else out, float)
        if pred.ndim == 3:
            return pred[:, 0], pred[:, 1]
        return pred, None

    def quantify(self, fids, dwell_s: float | None = None, field_mhz: float | None = None,
                 batch_size: int = 1024) -> ResultTable:
        """Table with ``<met>`` (basis units, mM for mrs-tf's basis), ``<met>_sd`` (the network's sigma, when it has
        one), ``<met>_over_tCr``, and the same for NAA+NAAG, Cr+PCr, GPC+PCh, Glu+Gln (sd of a sum: in quadrature)."""
        mean, sd = self.predict(fids, dwell_s, field_mhz, batch_size)
        names = self.names
        parts = tcr_rows(names)
        tcr = mean[:, parts].sum(1) if parts else np.full(len(mean), np.nan)
        table = ResultTable()
        table["index"] = np.arange(len(mean), dtype=float)

        def add(name, value, sdev):
            table[name] = value
            if sdev is not None:
                table[f"{name}_sd"] = sdev
            with np.errstate(divide="ignore", invalid="ignore"):
                table[f"{name}_over_tCr"] = value / tcr

        for j, nm in enumerate(names):
            add(nm, mean[:, j], None if sd is None else sd[:, j])
        for combo, idx in combination_rows(names).items():
            add(combo, mean[:, idx].sum(1), None if sd is None else np.sqrt((sd[:, idx] ** 2).sum(1)))
        return table
