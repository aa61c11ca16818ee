"""A trained network's folder on disk: ``model.keras`` (or a LiteRT flatbuffer) and ``quantifier.json`` (the protocol
it was trained for, its output names, the ppm crop, the sigma calibration), as written by :func:`mrs_tf.train.train`
and shipped in ``saved_models/``. :class:`ModelBundle` loads it, knows its training basis and units, and runs the
network on spectra already in its protocol; :class:`mrs_tf.Quantifier` adds the checks and the tables."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from mrs_tf.core.errors import BasisError, FileFormatError, MRSError, ProtocolError
from mrs_tf.preprocess.spectra import cropped_spectrum, full_spectrum

__all__ = ["ModelBundle"]


#: the network ``Quantifier.load()`` loads without a path: one for every 3 T short-TE PRESS scan
DEFAULT_MODEL = "saved_models/press3t_short_te"
#: half-width (ppm) of the frequency offsets :meth:`ModelBundle.infer` averages over with ``shift_average`` > 1
SHIFT_AVERAGE_PPM = 0.04


class ModelBundle:
    """A trained network and the protocol it belongs to."""

    def __init__(self, model, meta: dict, runner=None, folder=None):
        self.model = model
        self.folder = folder  # where it was loaded from (train_config.json may be there)
        self.runner = runner  # a LiteRTModel (backend="litert"): takes full spectra
        self.meta = dict(meta)
        self.names = list(meta["names"])
        self.outputs = list(meta.get("outputs", self.names))  # names, then combinations with their own sigma
        # a protocol-general network reads spectra on a ppm grid (any points, dwell, field in its space): no own
        # points, dwell time or field (None)
        self.general = meta.get("input") == "ppm_grid"
        self.n_points = None if self.general else int(meta["n_points"])
        self.dwell_s = None if self.general else float(meta["dwell_s"])
        self.field_mhz = None if self.general else float(meta["field_mhz"])
        self.ref_ppm = float(meta.get("ref_ppm", 4.65))
        self.ppm_range = tuple(meta["ppm_range"])
        self.uncertainty = bool(meta.get("uncertainty", False))
        self._graph = None
        self._basis = None
        self._fit_basis = None  # fit_basis(): the training basis with free MM components and lipids
        self._protocol_bases = {}  # protocol-general networks: (points, dwell, field, TE) -> basis
        self._train_config = None  # train_config(): ((path, mtime), TrainConfig) of the file last read

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, backend: str = "keras", tflite: str = "model.tflite",
             num_threads: int | None = None, basis=None) -> "ModelBundle":
        """Load ``path/quantifier.json`` and the network (``path`` None: :data:`DEFAULT_MODEL`, the shipped network
        for every 3 T short-TE PRESS scan; ``"saved_models/press3t_te30"`` is the more accurate at its own protocol,
        123.2 MHz, TE 30 ms, 2,048 points at 4 kHz): ``path/model.keras`` (``backend="keras"``) or the LiteRT
        flatbuffer ``tflite`` (``backend="litert"``; a file as given, absolute or relative to the working folder,
        else ``path/<tflite>``, e.g. ``tflite="model_int8.tflite"``), same columns.
        ``basis``: a :class:`~mrs_tf.basis.BasisSet` or basis file for reconstructions and references instead of
        the training basis (see :meth:`use_basis`; checked before the network is loaded)."""
        if backend not in ("keras", "litert"):
            raise MRSError(f"unknown backend {backend!r}; use keras or litert")
        folder = cls._folder(DEFAULT_MODEL if path is None else path)
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
            from mrs_tf.nn.litert import LiteRTModel

            q = cls(None, meta, runner=LiteRTModel(model_file, num_threads=num_threads), folder=folder)
        else:
            from mrs_tf.core.quiet import import_tensorflow, quiet_stderr

            import_tensorflow()  # without its C++ start-up lines on stderr
            import keras

            from mrs_tf.nn import layers  # noqa: F401  (registers the custom layers and losses)

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

    @classmethod
    def read_meta(cls, path) -> "ModelBundle":
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
        required = ("names", "space") if meta.get("input") == "ppm_grid" else ("names", "n_points", "dwell_s",
                                                                              "field_mhz", "ppm_range")
        for key in required:
            if key not in meta:
                raise FileFormatError(f"{meta_file}: no {key!r}; not a quantifier written by mrs-tf train")
        return cls(None, meta, folder=folder)

    @staticmethod
    def _folder(path) -> Path:
        folder = Path(path)
        if not folder.exists() and not folder.is_absolute():  # e.g. "saved_models/press3t_te30" outside the checkout
            shipped = Path(__file__).resolve().parents[2] / folder
            folder = shipped if shipped.exists() else folder
        return folder

    def train_config(self):
        """The :class:`~mrs_tf.train.TrainConfig` of the folder's ``train_config.json`` (None without one); read
        once per version of the file (``quantify`` asks for it several times per call)."""
        from mrs_tf.nn.config import TrainConfig

        path = Path(self.folder) / "train_config.json" if self.folder else None
        if path is None or not path.exists():
            return None
        stamp = (str(path), path.stat().st_mtime_ns)
        if self._train_config is None or self._train_config[0] != stamp:
            self._train_config = (stamp, TrainConfig.from_saved(json.loads(path.read_text())))
        return self._train_config[1]

    def basis_for(self, n_points: int, dwell_s: float, field_mhz: float, te_ms: float | None = None,
                  refocusing: str | None = None):
        """The basis set for data of this protocol (references, reports, the hybrid fit): the training basis, or for
        a protocol-general network mrs-tf's basis of the data's protocol
        (:func:`~mrs_tf.physics.protocols.protocol_basis`) at the data's points and dwell time, simulated with the
        shaped refocusing pulse ``refocusing`` (a name of :data:`~mrs_tf.physics.pulses.REFOCUSING_PULSES`; default
        and ``"ideal"``: ideal pulses)."""
        if not self.general:
            return self.basis()
        if self._basis is not None:
            return self._basis
        from mrs_tf.physics.protocols import protocol_basis

        key = (int(n_points), float(dwell_s), float(field_mhz), te_ms, refocusing)
        if key not in self._protocol_bases:
            basis = protocol_basis(field_mhz, te_ms, space=self.space(), n_points=n_points, dwell_s=dwell_s,
                                   refocusing=refocusing)
            self._protocol_bases[key] = basis.subset(self.names)
        return self._protocol_bases[key]

    def fit_basis(self):
        """The basis the fits start from the network's answer with when none is given (``--method hybrid``, the
        cross-check) for a model of one protocol: the training basis, except that where mrs-tf's single parametric MM
        was added to a user's basis without MM (``mrs-tf train --basis``), the fit gets ``mrs-tf fit --basis``'s
        preparation instead: the LCModel-style MM components and lipid signals as free signals in the basis's units
        (:func:`mrs_tf.basis_prep.mm_and_lipid_signals`). With the single fixed-shape MM and no lipids the in vivo
        fit of the two Philips volunteers was 6-13 % from LCModel on tNAA and Ins, with them as close as
        ``mrs-tf fit --basis`` (benchmarks/RESULTS.md)."""
        from mrs_tf.nn.config import ADDED_PARAMETRIC_MM

        basis = self.basis()
        if self.general or basis.protocol.get("mm_model") != ADDED_PARAMETRIC_MM:
            return basis
        if self._fit_basis is None:
            from mrs_tf.fitting.basis_prep import prepare_basis
            from mrs_tf.physics.metabolites import MM_NAME

            # the training basis is already cleaned, referenced and resampled: only the MM/lipid step remains
            bare = basis.subset([n for n in basis.names if n != MM_NAME])
            self._fit_basis = prepare_basis(bare, remove_references=False, reference=False,
                                            log=lambda line: None).basis
        return self._fit_basis

    def basis(self):
        """The basis set the model was trained on (cached): the user's (``mrs-tf train --basis``) or mrs-tf's
        simulated basis for the model's protocol, points and dwell time. Test sets, references and reports use it."""
        if self._basis is None:
            from mrs_tf.physics.basis import simulate_basis
            from mrs_tf.nn.config import load_training_basis

            cfg = self.train_config()
            if cfg is not None and cfg.basis_path:  # the user's file, which may have changed since training
                self._basis = self.check_basis(load_training_basis(cfg.basis_path, cfg.protocol_from,
                                                                   complete=cfg.complete_basis, omit=cfg.omit),
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
        from mrs_tf.fitting.water import basis_amplitude_per_proton

        return basis_amplitude_per_proton(self.basis())

    def check_basis(self, basis, source: str | None = None, normalise: bool = True):
        """A basis set (``BasisSet`` or file) made fit for this model, or a clear error: it must hold every
        metabolite the model quantifies (:class:`BasisError` naming the missing ones), be for the model's field
        and, where both are known, echo time (:class:`ProtocolError`); other points or dwell time are resampled to
        the model's. Returns the subset in the model's order, scaled (``normalise``) to the model's units when both
        normalisations can be measured."""
        from mrs_tf.physics.basis import BasisSet

        if not isinstance(basis, BasisSet):
            source = source or str(basis)
            basis = BasisSet.load(basis, unknown="keep", field_mhz=self.field_mhz)
        from mrs_tf.physics.metabolites import MM_NAME

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
            from mrs_tf.fitting.water import basis_amplitude_per_proton

            units = self.amplitude_per_proton()[0]
            try:
                factor = units / basis_amplitude_per_proton(basis)[0]
            except BasisError:  # no reference singlet to compare: keep the basis as it is
                factor = 1.0
            if not math.isclose(factor, 1.0, rel_tol=1e-3):
                fids, protocol["rescaled_by"] = fids * factor, factor
        if MM_NAME in self.names and MM_NAME not in names:
            from mrs_tf.fitting.basis_prep import parametric_mm

            fids = np.vstack([fids, parametric_mm(basis, units)])
            names.append(MM_NAME)
            protocol["mm_model"] = "mrs-tf parametric MM (added)"
        return BasisSet(names, fids, basis.dwell_s, basis.field_mhz, basis.ref_ppm, protocol).subset(self.names)

    def protocol_text(self) -> str:
        if self.general:
            sp = self.space()
            return (f"{sp.sequence.upper()} TE {sp.te_ms[0]:g}-{sp.te_ms[1]:g} ms, {sp.field_mhz[0]:g}-"
                    f"{sp.field_mhz[1]:g} MHz, {sp.n_points[0]}-{sp.n_points[1]} points, bandwidth >= "
                    f"{sp.min_bandwidth_hz:g} Hz")
        proto = self.meta.get("protocol", {})
        seq = proto.get("sequence", "")
        te = f" TE {proto['te_ms']:g} ms" if proto.get("te_ms") else ""
        return (f"{seq.upper()}{te}, {self.field_mhz:g} MHz, {self.n_points} points, "
                f"{1 / self.dwell_s:g} Hz bandwidth (dwell {self.dwell_s:.6g} s)")

    def _infer(self, x: np.ndarray) -> np.ndarray:
        """The network on one batch of cropped spectra, through a compiled graph (no per-call Keras overhead)."""
        if self._graph is None:
            import tensorflow as tf

            model = self.model

            @tf.function(reduce_retracing=True)
            def graph(inputs):
                out = model(inputs, training=False)
                return out["concentrations"] if isinstance(out, dict) else out

            self._graph = graph
        return np.asarray(self._graph(x if isinstance(x, dict) else {"spectrum": x}))

    def space(self):
        """The :class:`~mrs_tf.physics.protocols.ProtocolSpace` a protocol-general network serves (None otherwise)."""
        if not self.general:
            return None
        from mrs_tf.physics.protocols import ProtocolSpace

        sp = self.meta["space"]
        return ProtocolSpace(sequence=sp["sequence"], field_mhz=tuple(sp["field_mhz"]), te_ms=tuple(sp["te_ms"]),
                             te1_fraction=tuple(sp["te1_fraction"]), min_bandwidth_hz=float(sp["min_bandwidth_hz"]),
                             n_points=tuple(sp["n_points"]))

    def inputs(self, fids: np.ndarray, dwell_s: float | None = None, field_mhz: float | None = None,
               te_ms: float | None = None):
        """The network's input for FIDs in its protocol: the cropped spectrum, or for a protocol-general network
        ``{"spectrum": grid spectrum, "protocol": field and TE}`` of the data's ``dwell_s``, ``field_mhz``, ``te_ms``."""
        if not self.general:
            return cropped_spectrum(fids, self.dwell_s, self.field_mhz, self.ppm_range, self.ref_ppm)
        from mrs_tf.physics.protocols import protocol_vector
        from mrs_tf.preprocess.grid import grid_spectrum

        # the first point's weight the network learnt (its training FIDs' dwell time; 2 kHz for mrs-tf's), so that
        # a scan of any dwell time gives the input its spectrum gave there (None for older networks: the plain sum)
        offset = (self.meta.get("grid") or {}).get("first_point_offset_s")
        return {"spectrum": grid_spectrum(fids, dwell_s, field_mhz, self.ref_ppm, first_point_offset_s=offset),
                "protocol": np.repeat(protocol_vector(field_mhz, te_ms), len(fids), axis=0)}

    def sd_factors(self, n_outputs: int, te_ms: float | None = None) -> np.ndarray:
        """The calibration factor of each output's sigma (``train.calibrate_sd``,
        ``general.calibrate_general_sd``): a protocol-general network's measured per echo time, interpolated at
        ``te_ms`` (``sd_scale_te``), where it has them; else one per output (``sd_scale``); else 1."""
        per_te = self.meta.get("sd_scale_te")
        if per_te and te_ms is not None:
            nodes, table = np.asarray(per_te["te_ms"], float), np.asarray(per_te["scale"], float)
            return np.array([np.interp(float(te_ms), nodes, table[:, k]) for k in range(table.shape[1])])
        return np.asarray(self.meta.get("sd_scale", np.ones(n_outputs)), float)

    def infer(self, arr: np.ndarray, batch_size: int = 4096, dwell_s: float | None = None,
              field_mhz: float | None = None, te_ms: float | None = None, shift_average: int = 1):
        """The network on FIDs already in its protocol (complex (n, n_points); no checks; ``dwell_s``, ``field_mhz``
        and ``te_ms`` of the data for a protocol-general network): (mean (n, M), sd (n, M) or None) in basis units,
        sd with the calibration of ``quantifier.json`` applied.

        ``shift_average`` > 1: the network also reads each spectrum moved by that many frequency offsets evenly
        spaced over +-:data:`SHIFT_AVERAGE_PPM` (ppm; the network was trained over +-0.2 ppm) and the means and sds
        are averaged (a convolutional network's answer is not exactly shift invariant: on simulated spectra its
        ratios move by 2-3 % sd over +-0.06 ppm, on real scans by up to 9 %). Costs ``shift_average`` passes."""
        if int(shift_average) != shift_average or shift_average < 1:
            raise MRSError(f"shift_average must be a whole number >= 1 (1: one pass), got {shift_average!r}")
        if shift_average > 1:
            dwell = self.dwell_s if dwell_s is None else dwell_s
            field = self.field_mhz if field_mhz is None else field_mhz
            t = np.arange(arr.shape[1]) * dwell
            runs = [self.infer(arr * np.exp(2j * np.pi * ppm * field * t), batch_size, dwell_s, field_mhz, te_ms)
                    for ppm in np.linspace(-SHIFT_AVERAGE_PPM, SHIFT_AVERAGE_PPM, int(shift_average))]
            mean = np.mean([r[0] for r in runs], axis=0)
            return mean, (None if runs[0][1] is None else np.mean([r[1] for r in runs], axis=0))
        parts = []
        for start in range(0, len(arr), batch_size):
            chunk = np.asarray(arr[start:start + batch_size], np.complex64)  # no copy when it is already
            if self.runner is not None:
                parts.append(self.runner.predict(self.inputs(chunk, dwell_s, field_mhz, te_ms) if self.general
                                                  else full_spectrum(chunk)))
                continue
            parts.append(self._infer(self.inputs(chunk, dwell_s, field_mhz, te_ms)))
        pred = np.concatenate(parts).astype(float)
        if pred.shape[-1] != len(self.outputs):
            raise FileFormatError(f"the model has {pred.shape[-1]} outputs but quantifier.json lists "
                                  f"{len(self.outputs)} ({', '.join(self.outputs[:4])}, ...)")
        if pred.ndim == 3:
            return pred[:, 0], pred[:, 1] * self.sd_factors(pred.shape[-1], te_ms)
        return pred, None
