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
from .errors import BasisError, FileFormatError, MRSError, ProtocolError
from .preprocess import as_fid_matrix, cropped_spectrum
from .table import ResultTable

__all__ = ["Quantifier"]


class Quantifier:
    """A trained network and the protocol it belongs to."""

    def __init__(self, model, meta: dict, runner=None, folder=None):
        self.model = model
        self.folder = folder  # where it was loaded from (train_config.json may be there)
        self.runner = runner  # a LiteRTModel (backend="litert"): takes full spectra
        self.meta = dict(meta)
        self.names = list(meta["names"])
        self.outputs = list(meta.get("outputs", self.names))  # names, then combinations with their own sigma
        self.n_points = int(meta["n_points"])
        self.dwell_s = float(meta["dwell_s"])
        self.field_mhz = float(meta["field_mhz"])
        self.ref_ppm = float(meta.get("ref_ppm", 4.65))
        self.ppm_range = tuple(meta["ppm_range"])
        self.uncertainty = bool(meta.get("uncertainty", False))
        self._graph = None
        self._basis = None

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str = "keras", tflite: str = "model.tflite",
             num_threads: int | None = None, basis=None) -> "Quantifier":
        """Load ``path/quantifier.json`` and the network: ``path/model.keras`` (``backend="keras"``) or the LiteRT
        flatbuffer ``tflite`` (``backend="litert"``; a file as given, absolute or relative to the working folder,
        else ``path/<tflite>``, e.g. ``tflite="model_int8.tflite"``), same columns.
        ``basis``: a :class:`~mrs_tf.basis.BasisSet` or basis file for reconstructions and references instead of
        the training basis (see :meth:`use_basis`; checked before the network is loaded)."""
        if backend not in ("keras", "litert"):
            raise MRSError(f"unknown backend {backend!r}; use keras or litert")
        folder = cls._folder(path)
        model_file = folder / "model.keras"
        if backend == "litert":
            # a tflite path that exists as given (absolute, or relative to the working folder: the file just
            # exported) wins over the model folder's file of the same name
            given = Path(tflite)
            model_file = given if given.is_file() else folder / tflite
        if not model_file.is_file():
            raise FileFormatError(f"{folder}: no {model_file.name}; a quantifier folder holds model.keras and "
                                  f"quantifier.json (written by mrs-tf train)")
        meta = cls.read_meta(folder).meta
        if basis is not None:  # a bad basis fails before the (slow) model load
            user_basis = cls(None, meta, folder=folder).check_basis(basis)
        if backend == "litert":
            from .export import LiteRTModel

            q = cls(None, meta, runner=LiteRTModel(model_file, num_threads=num_threads), folder=folder)
        else:
            from .quiet import import_tensorflow, quiet_stderr

            import_tensorflow()  # without its C++ start-up lines on stderr
            import keras

            from . import layers  # noqa: F401  (registers the custom layers and losses)

            try:
                with quiet_stderr():  # TensorFlow's device start-up ("failed call to cuInit" on a CPU machine)
                    model = keras.saving.load_model(model_file)
            except Exception as exc:  # zip/h5 errors of a corrupt or truncated file
                raise FileFormatError(f"{model_file}: cannot load the Keras model ({type(exc).__name__}: "
                                      f"{exc})") from None
            q = cls(model, meta, folder=folder)
        if basis is not None:
            q._basis = user_basis
        return q

    def train_config(self):
        """The :class:`~mrs_tf.train.TrainConfig` of the folder's ``train_config.json`` (None without one)."""
        from .train import TrainConfig

        path = Path(self.folder) / "train_config.json" if self.folder else None
        if path is None or not path.exists():
            return None
        return TrainConfig(**json.loads(path.read_text()))

    def basis(self):
        """The basis set the model was trained on (cached): the user's (``mrs-tf train --basis``) or mrs-tf's
        simulated basis for the model's protocol, points and dwell time. Test sets, references and reports use it."""
        if self._basis is None:
            from .basis import simulate_basis
            from .train import load_training_basis

            cfg = self.train_config()
            if cfg is not None and cfg.basis_path:  # the user's file, which may have changed since training
                self._basis = self.check_basis(load_training_basis(cfg.basis_path, cfg.protocol_from),
                                               source=cfg.basis_path, normalise=False)
            else:
                proto = {k: v for k, v in self.meta.get("protocol", {}).items()
                         if k in ("sequence", "field_mhz", "te_ms", "te1_ms", "te2_ms", "tm_ms", "n_refocus")}
                self._basis = simulate_basis(**proto, n_points=self.n_points, bandwidth_hz=1 / self.dwell_s)
        return self._basis

    def amplitude_per_proton(self) -> tuple[float, dict]:
        """FID amplitude per proton per unit concentration of the units the network reports in (the training
        basis's normalisation; see :func:`mrs_tf.water.basis_amplitude_per_proton`): ``(value, {source: value})``."""
        stored = self.meta.get("basis_amplitude_per_proton")
        if stored:
            return float(stored), {"quantifier.json": float(stored)}
        cfg = self.train_config()
        if cfg is None or not cfg.basis_path:
            return 1.0, {"mrs-tf basis": 1.0}
        from .water import basis_amplitude_per_proton

        return basis_amplitude_per_proton(self.basis())

    def check_basis(self, basis, source: str | None = None, normalise: bool = True):
        """A basis set (``BasisSet`` or file) made fit for this model, or a clear error: it must hold every
        metabolite the model quantifies (:class:`BasisError` naming the missing ones), be for the model's field
        and, where both are known, echo time (:class:`ProtocolError`); other points or dwell time are resampled to
        the model's. Returns the subset in the model's order, scaled (``normalise``) to the model's units when both
        normalisations can be measured."""
        from .basis import BasisSet

        if not isinstance(basis, BasisSet):
            source = source or str(basis)
            basis = BasisSet.load(basis, unknown="keep", field_mhz=self.field_mhz)
        from .metabolites import MM_NAME

        source = source or "the basis set"
        missing = [n for n in self.names if n not in basis.names and n != MM_NAME]  # MM: mrs-tf's is added
        if missing:
            raise BasisError(f"{source} lacks {', '.join(missing)}, which this model quantifies (it needs "
                             f"{', '.join(self.names)}; the basis holds {', '.join(basis.names)}). Use a basis with "
                             f"all of them (mrs-tf basis simulate writes mrs-tf's), or train a model for yours: "
                             f"mrs-tf train --basis YOUR_BASIS --protocol-from YOUR_DATA")
        expected = f"this model expects {self.protocol_text()}"
        if not math.isclose(basis.field_mhz, self.field_mhz, rel_tol=5e-3):
            raise ProtocolError(f"{source} is for {basis.field_mhz:g} MHz; {expected}")
        te, model_te = basis.protocol.get("te_ms"), self.meta.get("protocol", {}).get("te_ms")
        if te and model_te and abs(float(te) - float(model_te)) > 0.5:
            raise ProtocolError(f"{source} is for TE {float(te):g} ms; {expected}")
        if basis.n_points != self.n_points or not math.isclose(basis.dwell_s, self.dwell_s, rel_tol=1e-6):
            basis = basis.resample(dwell_s=self.dwell_s, n_points=self.n_points)
        basis = basis.subset([n for n in self.names if n in basis.names])
        names, fids, protocol = list(basis.names), basis.fids, dict(basis.protocol)
        units = 1.0  # the model's FID amplitude per proton (mrs-tf's MM is added in these units)
        if normalise:
            from .water import basis_amplitude_per_proton

            units = self.amplitude_per_proton()[0]
            try:
                factor = units / basis_amplitude_per_proton(basis)[0]
            except BasisError:  # no reference singlet to compare: keep the basis as it is
                factor = 1.0
            if not math.isclose(factor, 1.0, rel_tol=1e-3):
                fids, protocol["rescaled_by"] = fids * factor, factor
        if MM_NAME in self.names and MM_NAME not in names:
            from .basis_prep import parametric_mm

            fids = np.vstack([fids, parametric_mm(basis, units)])
            names.append(MM_NAME)
            protocol["mm_model"] = "mrs-tf parametric MM (added)"
        return BasisSet(names, fids, basis.dwell_s, basis.field_mhz, basis.ref_ppm, protocol).subset(self.names)

    def use_basis(self, basis, source: str | None = None) -> "Quantifier":
        """Reconstruct, reference and report with ``basis`` (checked by :meth:`check_basis`) instead of the
        training basis; e.g. the basis file a QUEST fit of the same data uses. Returns self."""
        self._basis = self.check_basis(basis, source)
        return self

    def protocol_text(self) -> str:
        proto = self.meta.get("protocol", {})
        seq = proto.get("sequence", "")
        te = f" TE {proto['te_ms']:g} ms" if proto.get("te_ms") else ""
        return (f"{seq.upper()}{te}, {self.field_mhz:g} MHz, {self.n_points} points, "
                f"{1 / self.dwell_s:g} Hz bandwidth (dwell {self.dwell_s:.6g} s)")

    def check(self, fids, dwell_s: float, field_mhz: float, te_ms: float | None = None) -> np.ndarray:
        """Validate data against the model's protocol (``te_ms`` where the data's echo time is known); returns
        complex (n, n_points)."""
        arr = as_fid_matrix(fids)
        self.check_protocol(arr.shape[1], dwell_s, field_mhz, te_ms)
        bad = ~np.all(np.isfinite(arr), axis=1)
        if bad.any():
            raise MRSError(f"spectra {np.flatnonzero(bad)[:10].tolist()} contain NaN or Inf")
        zero = ~np.any(arr, axis=1)
        if zero.any():
            raise MRSError(f"spectra {np.flatnonzero(zero)[:10].tolist()} are all zeros")
        return arr

    def check_protocol(self, n_points: int, dwell_s: float, field_mhz: float, te_ms: float | None = None,
                       resample: bool = False) -> None:
        """ProtocolError when data of ``n_points`` points, dwell ``dwell_s`` (s), field ``field_mhz`` (MHz) and echo
        time ``te_ms`` (ms, where known) do not match the model's protocol; the message lists every mismatch at
        once, each with its way out. ``resample``: points and a wider bandwidth are fine (they will be resampled)."""
        message = self.protocol_mismatch(n_points, dwell_s, field_mhz, te_ms, resample)
        if message:
            raise ProtocolError(message)

    def protocol_mismatch(self, n_points: int, dwell_s: float, field_mhz: float, te_ms: float | None = None,
                          resample: bool = False) -> str:
        """Every mismatch between the data's protocol and the model's, and the way out, in one message ('' when
        they match)."""
        out, retrain = [], False
        model_te = self.meta.get("protocol", {}).get("te_ms")
        if te_ms is not None and model_te is not None and abs(float(te_ms) - float(model_te)) > 0.5:
            out.append(f"echo time {te_ms:g} ms (the model's: {float(model_te):g} ms; metabolite signals change with "
                       f"TE, J evolution)")
            retrain = True
        if field_mhz is None or dwell_s is None:
            out.append("field and dwell time unknown: give them (--field-mhz, --bandwidth-hz; field_mhz=, dwell_s=)")
        else:
            if not math.isclose(field_mhz, self.field_mhz, rel_tol=5e-3):
                out.append(f"field {field_mhz:g} MHz (the model's: {self.field_mhz:g} MHz)")
                retrain = True
            wider = dwell_s < self.dwell_s * (1 + 1e-3)
            if not math.isclose(dwell_s, self.dwell_s, rel_tol=1e-3) and not (resample and wider):
                out.append(f"bandwidth {1 / dwell_s:g} Hz (the model's: {1 / self.dwell_s:g} Hz" +
                           ("; a narrower bandwidth cannot be resampled up)" if not wider else ")"))
                retrain |= not wider
        if n_points != self.n_points and not resample:
            out.append(f"{n_points} points (the model's: {self.n_points})")
        if not out:
            return ""
        way = ("train a model for your protocol (mrs-tf train --basis YOUR_BASIS --protocol-from YOUR_DATA) or fit "
               "with a matching basis (mrs-tf fit --basis YOUR_BASIS)" if retrain else
               "resample the data (mrs-tf quantify --resample; in Python mrs_tf.preprocess.resample_fids)")
        return (f"this model expects {self.protocol_text()}; the data differ: {'; '.join(out)}. Way out: {way}")

    @classmethod
    def read_meta(cls, path) -> "Quantifier":
        """The folder's protocol and outputs without the network (no TensorFlow): for checks before loading."""
        folder = cls._folder(path)
        meta_file = folder / "quantifier.json"
        if not (folder / "model.keras").is_file() and not any(folder.glob("*.tflite")):
            raise FileFormatError(f"{folder}: no model.keras; a quantifier folder holds model.keras and "
                                  f"quantifier.json (written by mrs-tf train)")
        if not meta_file.is_file():
            raise FileFormatError(f"{folder}: no quantifier.json; a quantifier folder holds model.keras and "
                                  f"quantifier.json (written by mrs-tf train)")
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as exc:
            raise FileFormatError(f"{meta_file}: not valid JSON ({exc})") from None
        for key in ("names", "n_points", "dwell_s", "field_mhz", "ppm_range"):
            if key not in meta:
                raise FileFormatError(f"{meta_file}: no {key!r}; not a quantifier written by mrs-tf train")
        return cls(None, meta, folder=folder)

    @staticmethod
    def _folder(path) -> Path:
        folder = Path(path)
        if not folder.exists() and not folder.is_absolute():  # e.g. "saved_models/press3t_te30" outside the checkout
            shipped = Path(__file__).resolve().parents[1] / folder
            folder = shipped if shipped.exists() else folder
        return folder

    def _infer(self, x: np.ndarray) -> np.ndarray:
        """The network on one batch of cropped spectra, through a compiled graph (no per-call Keras overhead)."""
        if self._graph is None:
            import tensorflow as tf

            model = self.model

            @tf.function(reduce_retracing=True)
            def graph(spectrum):
                out = model({"spectrum": spectrum}, training=False)
                return out["concentrations"] if isinstance(out, dict) else out

            self._graph = graph
        return np.asarray(self._graph(x))

    def predict(self, fids, dwell_s: float, field_mhz: float, batch_size: int = 4096, te_ms: float | None = None):
        """(mean (n, M), sd (n, M) or None) in basis units."""
        arr = self.check(fids, dwell_s, field_mhz, te_ms)
        parts = []
        for start in range(0, len(arr), batch_size):
            chunk = arr[start:start + batch_size].astype(np.complex64)
            if self.runner is not None:
                from .preprocess import full_spectrum

                parts.append(self.runner.predict(full_spectrum(chunk)))
                continue
            parts.append(self._infer(cropped_spectrum(chunk, self.dwell_s, self.field_mhz, self.ppm_range,
                                                      self.ref_ppm)))
        pred = np.concatenate(parts).astype(float)
        if pred.shape[-1] != len(self.outputs):
            raise FileFormatError(f"the model has {pred.shape[-1]} outputs but quantifier.json lists "
                                  f"{len(self.outputs)} ({', '.join(self.outputs[:4])}, ...)")
        if pred.ndim == 3:
            scale = np.asarray(self.meta.get("sd_scale", np.ones(pred.shape[-1])), float)  # see train.calibrate_sd
            return pred[:, 0], pred[:, 1] * scale
        return pred, None

    def quantify(self, fids, dwell_s: float | None = None, field_mhz: float | None = None,
                 batch_size: int = 4096, te_ms: float | None = None, *, method: str = "network", basis=None,
                 options=None, n_jobs: int | None = 2, fallback: bool = True) -> ResultTable:
        """Quantify every FID.

        ``method="network"`` (default): the table has ``<met>`` (basis units, mM for mrs-tf's basis), ``<met>_sd``
        (the network's sigma, when it has one), ``<met>_over_tCr``, and the same for NAA+NAAG, Cr+PCr, GPC+PCh,
        Glu+Gln: the value is the sum of the parts; its sd is the network's own sigma for the sum where the model
        outputs one (the parts' errors are correlated), else the parts' sigmas in quadrature.

        ``method="hybrid"``: the network's amplitudes start a short fit of QUEST's signal model with ``basis`` (a
        :class:`~mrs_tf.basis.BasisSet` or file, checked by :meth:`check_basis`; default: the basis set by
        :meth:`use_basis` or the training basis) and ``options`` (:data:`mrs_tf.hybrid.HYBRID_OPTIONS` by
        default): :func:`mrs_tf.hybrid.fit`, QUEST's columns (CRLBs, fit diagnostics, ``status``) and ``method``
        per spectrum (``hybrid``, or ``quest_fallback`` where the refined fit was poor and QUEST's full search
        did better). ``n_jobs`` worker processes; ``fallback=False`` keeps every refined fit.
        """
        if method not in ("network", "hybrid"):
            raise MRSError(f"unknown method {method!r}; use network or hybrid (mrs_tf.quest.fit for QUEST)")
        if method == "hybrid":
            return self._hybrid(fids, dwell_s, field_mhz, batch_size, te_ms, basis, options, n_jobs, fallback)
        mean, sd = self.predict(fids, dwell_s, field_mhz, batch_size, te_ms)
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
            if sd is None:
                combo_sd = None
            elif combo in self.outputs:
                combo_sd = sd[:, self.outputs.index(combo)]
            else:
                combo_sd = np.sqrt((sd[:, idx] ** 2).sum(1))
            add(combo, mean[:, idx].sum(1), combo_sd)
        return table

    def _hybrid(self, fids, dwell_s, field_mhz, batch_size, te_ms, basis, options, n_jobs, fallback) -> ResultTable:
        """The network's amplitudes as the start of :func:`mrs_tf.hybrid.fit` (see :meth:`quantify`)."""
        from . import hybrid

        basis = self.check_basis(basis) if basis is not None else self.basis()
        arr = self.check(fids, dwell_s, field_mhz, te_ms)
        mean, _ = self.predict(arr, dwell_s, field_mhz, batch_size, te_ms)
        initial = np.stack([mean[:, self.names.index(n)] if n in self.names else np.zeros(len(mean))
                            for n in basis.names], axis=1)
        return hybrid.fit(arr, basis, initial=initial, options=options, fallback=fallback, n_jobs=n_jobs)
