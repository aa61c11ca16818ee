"""Training of mrs-tf's networks on spectra synthesised on the fly (or read from the TFDS data set).

``train(TrainConfig(...), out_dir)`` streams fresh spectra from :func:`mrs_tf.data.synthetic_dataset` (the physics
core's synthesis, no second copy), crops them with the same code as inference (:mod:`mrs_tf.preprocess`), validates on
a fixed seeded set, and uses Keras callbacks for everything around the loop: ``BackupAndRestore`` (``resume=True``
continues an interrupted run from its last finished epoch), ``ModelCheckpoint`` (best validation loss),
``EarlyStopping``, ``ReduceLROnPlateau``, ``CSVLogger`` and optionally ``TensorBoard``; Keras prints the progress bar.

Output folder (written atomically where it matters; an existing finished model is never overwritten silently):
``model.keras`` (the best model), ``quantifier.json`` (protocol, names, preprocessing: what
:class:`mrs_tf.quantify.Quantifier` needs), ``train_config.json``, ``log.csv``, ``backup/`` while running.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .basis import DEFAULT_PROTOCOL, BasisSet, simulate_basis
from .errors import MRSError, OutputExistsError
from .metabolites import prior_means
from .preprocess import DEFAULT_PPM_RANGE, crop_slice, cropped_spectrum
from .synth import SynthesisConfig, concentration_matrix, synthesize

__all__ = ["TrainConfig", "TRAINING_SYNTHESIS", "TRAINING_PRIOR_WIDENING", "train", "make_dataset", "prior_scale",
           "output_scale", "output_names", "combination_matrix", "tf_cropped_spectrum", "calibrate_sd",
           "load_training_basis", "UNKNOWN_PRIOR_MM", "healthy_priors", "evaluation_synthesis"]

#: Training concentrations are drawn from the healthy-brain priors widened to [low * a, high * b]: networks then do
#: not pull abnormal values (tumour, stroke, low-NAA) toward healthy ones, and shrink less toward the prior mean.
TRAINING_PRIOR_WIDENING = (0.5, 1.3)


def _widened_priors(widening=TRAINING_PRIOR_WIDENING) -> dict:
    from .metabolites import MM_NAME, METABOLITES, PRIORS_MM

    lo, hi = widening
    ranges = {name: m.prior_mm for name, m in METABOLITES.items()}
    ranges[MM_NAME] = PRIORS_MM
    return {name: (float(r[0]) * lo, float(r[1]) * hi) for name, r in ranges.items()}


#: Broad nuisance ranges for training (the sim-to-real gap: linewidth variability matters most), the parametric MM's
#: shape varied per spectrum (component amplitudes +-30 %, positions +-0.04 ppm, widths +-25 %, Gaussian to
#: Lorentzian: the spread between published MM parametrisations), lipid signals (0.9, 1.3, 2.0 ppm) up to the NAA
#: singlet's height and baselines up to +-0.3 of it (in vivo scans have both: with them a network trained on the
#: Philips basis moved from -13/-20 % to -2/-5 % on Ins/Glu of a real scan, benchmarks/invivo_vs_lcmodel.py), and
#: widened priors.
TRAINING_SYNTHESIS = SynthesisConfig(lorentz_hz=(1.0, 12.0), gauss_hz=(2.0, 14.0), shift_ppm=(-0.2, 0.2),
                                     phase0_deg=(-180.0, 180.0), phase1_deg_per_ppm=(-5.0, 5.0),
                                     baseline_amp=(-0.3, 0.3), lipid_amp=(0.0, 1.0),
                                     mm_amp_spread=0.3, mm_ppm_spread=0.04,
                                     mm_width_spread=0.25, mm_lorentz_fraction=(0.0, 1.0), priors=_widened_priors())


@dataclass
class TrainConfig:
    """What to train and how (units in the names; every random path seeded by ``seed``)."""

    model: str = "seed_cnn"
    model_kwargs: dict = field(default_factory=dict)
    uncertainty: bool = True
    batch_size: int = 128
    steps_per_epoch: int = 200
    epochs: int = 40
    learning_rate: float = 1e-3
    snr: tuple = (5.0, 200.0)
    synthesis: dict = field(default_factory=lambda: asdict(TRAINING_SYNTHESIS))
    ppm_range: tuple = DEFAULT_PPM_RANGE
    val_size: int = 2048
    seed: int = 0
    patience: int = 8
    tensorboard: bool = False
    protocol: dict = field(default_factory=lambda: dict(DEFAULT_PROTOCOL))
    tfds_config: str | None = None  # train on mrs_brain_sim/<config> instead of streaming
    combinations: bool = True  # also output NAA+NAAG, Cr+PCr, GPC+PCh, Glu+Gln (their own calibrated sigma)
    basis_path: str | None = None     # train on this basis file/folder instead of simulating ``protocol``
    protocol_from: str | None = None  # a data file whose points, dwell, field (and TE) the basis is matched to

    def synthesis_config(self) -> SynthesisConfig:
        syn = dict(self.synthesis)
        for key, value in syn.items():
            if isinstance(value, list):
                syn[key] = tuple(value)
        return SynthesisConfig(**syn)


#: concentration prior (mM) of a foreign basis's signals that mrs-tf does not know (override in synthesis priors)
UNKNOWN_PRIOR_MM = (0.0, 2.0)


def evaluation_synthesis(syn: SynthesisConfig) -> SynthesisConfig:
    """Test and calibration sets: ``syn``'s nuisance ranges with healthy-brain priors (:func:`healthy_priors`) and
    the fixed parametric MM shape, the one QUEST's basis and the CRLB assume (so that network, QUEST and bound are
    compared on the same signal model; ``benchmarks/sim_to_real.py`` measures varied and foreign MM shapes)."""
    return healthy_priors(syn).with_(mm_amp_spread=0.0, mm_ppm_spread=0.0, mm_width_spread=0.0,
                                     mm_lorentz_fraction=(0.0, 0.0))


def healthy_priors(syn: SynthesisConfig) -> SynthesisConfig:
    """``syn`` with the default (healthy-brain) concentration priors wherever mrs-tf has one; priors of a foreign
    basis's extra signals are kept. Test and calibration sets are drawn with it."""
    from .metabolites import ALL_NAMES

    return syn.with_(priors={k: v for k, v in syn.priors.items() if k not in ALL_NAMES})


def load_training_basis(path, protocol_from=None, add_mm: bool = True) -> BasisSet:
    """A user's basis set for training: read (any format, unknown signals kept), matched to a data file's protocol
    when ``protocol_from`` is given (resampled to its points and dwell time; a different field is an error; the
    data's TE recorded), and given mrs-tf's parametric MM signal when it has none (real spectra always contain
    one)."""
    import math

    from .errors import ProtocolError
    from .io import read_data
    from .metabolites import MM_NAME

    data = read_data(protocol_from) if protocol_from else None
    basis = BasisSet.load(path, unknown="keep", field_mhz=data["field_mhz"] if data else None)
    protocol = dict(basis.protocol)
    if data is not None:
        if not math.isclose(basis.field_mhz, data["field_mhz"], rel_tol=5e-3):
            raise ProtocolError(f"basis {path} is for {basis.field_mhz:g} MHz, data {protocol_from} for "
                                f"{data['field_mhz']:g} MHz: simulate a basis for the data's field")
        if data.get("te_ms"):
            protocol["te_ms"] = float(data["te_ms"])
    from .basis_prep import parametric_mm, prepare_basis

    # the same hygiene as the fit (reference peaks out, ppm re-referenced, resampled to the data); MM below
    basis = prepare_basis(basis, n_points=data["fids"].shape[1] if data else None,
                          dwell_s=data["dwell_s"] if data else None, add_mm=False).basis
    protocol.update({k: v for k, v in basis.protocol.items() if k not in protocol})
    if add_mm and MM_NAME not in basis.names:
        # in the basis's own units (FID amplitude per proton), like the metabolites: unscaled, a basis in units of
        # 1e-4 per proton would get MM peaks 10,000x too tall
        fids = np.vstack([basis.fids, parametric_mm(basis)])
        basis = BasisSet(list(basis.names) + [MM_NAME], fids, basis.dwell_s, basis.field_mhz, basis.ref_ppm,
                         dict(protocol, mm_model="mrs-tf parametric MM (added, scaled to the basis's units)"))
    else:
        basis = BasisSet(list(basis.names), basis.fids, basis.dwell_s, basis.field_mhz, basis.ref_ppm, protocol)
    return basis


def prior_scale(names) -> np.ndarray:
    """Typical value of each output (prior mid-point, mM; a combination "A+B": the sum of its parts'): the loss
    weighs each output by 1/scale^2."""
    return np.array([prior_means(name.split("+")).sum() for name in names])


def output_names(names, combinations: bool = True) -> list[str]:
    """The network's outputs: the basis ``names``, then each of :data:`mrs_tf.crlb.COMBINATIONS` whose parts are
    all present (a sum's sigma cannot be had from the parts' sigmas: Cr and PCr errors are anti-correlated)."""
    from .crlb import combination_rows

    return list(names) + (list(combination_rows(names)) if combinations else [])


def combination_matrix(names, outputs) -> np.ndarray:
    """(len(names), len(outputs)) float32 matrix: ``concentrations @ C`` = the outputs' targets."""
    names = list(names)
    mat = np.zeros((len(names), len(outputs)), np.float32)
    for j, out in enumerate(outputs):
        for part in out.split("+"):
            mat[names.index(part), j] = 1.0
    return mat


def output_scale(spectra: np.ndarray, conc: np.ndarray) -> np.ndarray:
    """Median of ``concentration / rms(spectrum)`` per output: makes the network's scale-free outputs O(1)."""
    rms = np.sqrt(np.mean(np.square(spectra), axis=(1, 2)))
    return np.median(conc / rms[:, None], axis=0)


def tf_cropped_spectrum(fids, sl: slice):
    """TensorFlow twin of :func:`mrs_tf.preprocess.cropped_spectrum` (the same bins, for tf.data pipelines)."""
    import tensorflow as tf

    n = fids.shape[-1]
    spec = tf.roll(tf.signal.fft(tf.cast(fids, tf.complex64)), shift=n // 2, axis=-1)[..., sl.start:sl.stop]
    return tf.stack([tf.math.real(spec), tf.math.imag(spec)], axis=-1)


def make_dataset(basis: BasisSet, cfg: TrainConfig, seed: int, n_batches: int | None = None):
    """Streaming ``tf.data`` of ``({"spectrum": (B, K, 2)}, {"concentrations": (B, M)})`` batches."""
    from .data import synthetic_dataset

    import tensorflow as tf

    sl = crop_slice(basis.n_points, basis.dwell_s, basis.field_mhz, cfg.ppm_range, basis.ref_ppm)
    mat = tf.constant(combination_matrix(basis.names, output_names(basis.names, cfg.combinations)))
    ds = synthetic_dataset(basis, batch_size=cfg.batch_size, seed=seed, snr=tuple(cfg.snr),
                           config=cfg.synthesis_config(), n_batches=n_batches)
    return ds.map(lambda b: ({"spectrum": tf_cropped_spectrum(b["fid"], sl)},
                             {"concentrations": tf.matmul(b["concentrations"], mat)}))


def _tfds_dataset(cfg: TrainConfig, split: str, names):
    """The TFDS split as (inputs, targets); ``names``: the data set's concentration order (its basis's names)."""
    import tensorflow as tf

    from .data import load

    ds = load(cfg.tfds_config, split=split)
    mat = tf.constant(combination_matrix(names, output_names(names, cfg.combinations)))
    ds = ds.map(lambda ex: ({"spectrum": ex["spectrum"]},
                            {"concentrations": tf.linalg.matvec(mat, ex["concentrations"], transpose_a=True)}))
    if split == "train":
        ds = ds.shuffle(10_000, seed=cfg.seed).repeat()
    return ds.batch(cfg.batch_size).prefetch(tf.data.AUTOTUNE)


def validation_set(basis: BasisSet, cfg: TrainConfig, n: int | None = None, seed_offset: int = 1):
    """Fixed, seeded (spectra (n, K, 2), targets (n, outputs), truth) for validation (offset 1) or test (2); the
    targets are the concentrations and (``cfg.combinations``) their sums, in :func:`output_names` order."""
    fids, truth = synthesize(basis, n or cfg.val_size, snr=tuple(cfg.snr),
                             seed=np.random.SeedSequence([cfg.seed, 1000 + seed_offset]),
                             config=cfg.synthesis_config())
    spectra = cropped_spectrum(fids, basis.dwell_s, basis.field_mhz, cfg.ppm_range, basis.ref_ppm)
    mat = combination_matrix(basis.names, output_names(basis.names, cfg.combinations))
    return spectra, concentration_matrix(truth, basis.names).astype(np.float32) @ mat, truth


def _strategy(name: str | None):
    import tensorflow as tf

    if name in (None, "", "default"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":  # needs TF_CONFIG on every worker
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise MRSError(f"unknown strategy {name!r}; use mirrored or multiworker")


def compile_model(model, names, uncertainty: bool, learning_rate: float):
    import keras

    from .layers import GaussianNLL, WeightedMSE

    scale = prior_scale(names)
    loss = GaussianNLL(scale) if uncertainty else WeightedMSE(scale)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                  loss={"concentrations": loss})
    return model


def train(cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False, strategy: str | None = None,
          basis: BasisSet | None = None, verbose: int | str = "auto", overwrite: bool = False, callbacks_extra=()):
    """Train a model; returns ``(model, history_dict)``. See the module docstring for the output folder.
    ``callbacks_extra``: more Keras callbacks (e.g. a wall-clock budget), after mrs-tf's own."""
    import keras
    import tensorflow as tf

    from .models import build_model

    out = Path(out_dir)
    backup = out / "backup"
    if (out / "model.keras").exists() and not (resume or overwrite):
        raise OutputExistsError(f"{out} already holds a trained model; use overwrite=True (--overwrite) or another "
                                f"folder")
    if backup.exists() and not resume:
        raise OutputExistsError(f"{out} holds an interrupted training run; continue it with resume=True (--resume) "
                                f"or remove {backup}")
    if resume and (out / "train_config.json").exists():
        saved = json.loads((out / "train_config.json").read_text())
        cfg = TrainConfig(**{**saved, "epochs": cfg.epochs})  # the run's own settings; epochs may be extended
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    if basis is None and cfg.basis_path:
        basis = load_training_basis(cfg.basis_path, cfg.protocol_from)
    basis = basis or simulate_basis(**cfg.protocol)
    from .metabolites import METABOLITES, MM_NAME

    unknown = [n for n in basis.names if n not in METABOLITES and n != MM_NAME and n not in cfg.synthesis.get(
        "priors", {})]
    if unknown:  # a foreign basis's extra signals need a concentration prior for the synthesis
        cfg.synthesis = {**cfg.synthesis, "priors": {**cfg.synthesis.get("priors", {}),
                                                     **{n: UNKNOWN_PRIOR_MM for n in unknown}}}
    names = output_names(basis.names, cfg.combinations)
    val_x, val_y, _ = validation_set(basis, cfg)
    scale_out = output_scale(val_x, val_y)
    with _strategy(strategy).scope():
        model = build_model(cfg.model, input_points=val_x.shape[1], n_outputs=len(names),
                            output_scale=scale_out, uncertainty=cfg.uncertainty, **cfg.model_kwargs)
        compile_model(model, names, cfg.uncertainty, cfg.learning_rate)
    train_ds = _tfds_dataset(cfg, "train", basis.names) if cfg.tfds_config else make_dataset(basis, cfg, seed=cfg.seed)
    _write_json(out / "train_config.json", asdict(cfg))
    earlier = logged_run(out) if resume else {"epochs": 0, "best_val_loss": None, "seconds": 0.0}
    interrupt = _interrupt_callback()
    callbacks = [
        interrupt,
        # kept after an interruption (deleted below once the run has finished)
        keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(out / "best.keras"), monitor="val_loss", save_best_only=True,
                                        initial_value_threshold=earlier["best_val_loss"]),
        _clock_callback(out / ".training_seconds.json", earlier["seconds"]),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(2, cfg.patience // 3)),
        keras.callbacks.CSVLogger(str(out / "log.csv"), append=resume),
    ]
    if cfg.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(out / "tensorboard")))
    callbacks += list(callbacks_extra)
    start = time.perf_counter()
    with interrupt.installed():
        history = model.fit(train_ds, epochs=cfg.epochs, steps_per_epoch=cfg.steps_per_epoch,
                            validation_data=({"spectrum": val_x}, {"concentrations": val_y}),
                            validation_batch_size=512, callbacks=callbacks, verbose=verbose)
    seconds = earlier["seconds"] + time.perf_counter() - start
    if interrupt.stopped:
        from .errors import TrainingError

        raise TrainingError(f"interrupted: the run's state is saved in {backup}; continue it with --resume "
                            f"(resume=True)")
    final = out / "model.keras"
    tmp = out / ".model.keras.tmp.keras"
    if (out / "best.keras").exists():  # the best epoch's weights, not the last one's
        model = keras.saving.load_model(out / "best.keras", compile=False)
    model.save(tmp)
    # ship the network without the optimizer state (Adam's moments would triple the file); best.keras keeps it
    keras.saving.load_model(tmp, compile=False).save(tmp)
    os.replace(tmp, final)
    meta = _quantifier_meta(basis, cfg, model)
    epochs_run = earlier["epochs"] + len(history.history.get("loss", []))
    meta["training"] = {"seconds": seconds, "epochs_run": epochs_run,
                        "spectra_seen": epochs_run * cfg.steps_per_epoch * cfg.batch_size}
    _write_json(out / "quantifier.json", meta)
    if cfg.uncertainty:
        calibrate_sd(out, basis, cfg)
    if backup.exists():  # a finished run needs no backup
        shutil.rmtree(backup, ignore_errors=True)
    (out / ".training_seconds.json").unlink(missing_ok=True)
    return model, history.history


def logged_run(out: str | os.PathLike) -> dict:
    """What a run in ``out`` has done so far, every resumed part included: ``epochs`` and ``best_val_loss`` from
    log.csv (None without one), ``seconds`` of an unfinished run (its clock file; 0 once finished)."""
    out = Path(out)
    import csv

    epochs, best = 0, None
    log = out / "log.csv"
    if log.exists():
        with open(log, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("val_loss")]
        epochs = len(rows)
        if rows:
            best = min(float(r["val_loss"]) for r in rows)
    clock = out / ".training_seconds.json"
    seconds = float(json.loads(clock.read_text()).get("seconds", 0.0)) if clock.exists() else 0.0
    return {"epochs": epochs, "best_val_loss": best, "seconds": seconds}


def _clock_callback(path: Path, earlier: float):
    """Keras callback: training seconds so far (with those of earlier, interrupted runs) written after every epoch."""
    import keras

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            _write_json(path, {"seconds": earlier + time.perf_counter() - self.t0})

    return Clock()


def _interrupt_callback():
    """Keras callback: Ctrl-C (SIGINT) during training ends the current epoch cleanly (its backup is saved) and
    stops; ``stopped`` tells the caller, ``installed()`` holds the handler for the fit. A second Ctrl-C interrupts at
    once."""
    import contextlib
    import signal
    import threading

    import keras

    class InterruptToStop(keras.callbacks.Callback):
        stopped = False

        def _handler(self, signum, frame):
            if self.stopped:
                raise KeyboardInterrupt
            self.stopped = True
            print("\nmrs-tf: interrupted: finishing this epoch and saving the run's state (Ctrl-C again to quit "
                  "at once)", flush=True)

        def on_train_batch_end(self, batch, logs=None):
            if self.stopped:
                self.model.stop_training = True

        @contextlib.contextmanager
        def installed(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = signal.signal(signal.SIGINT, self._handler)
            try:
                yield
            finally:
                signal.signal(signal.SIGINT, previous)

    return InterruptToStop()


def calibrate_sd(folder: str | os.PathLike, basis: BasisSet, cfg: TrainConfig, n: int | None = None) -> np.ndarray:
    """Post-hoc sigma calibration (one factor per output, like temperature scaling): on a fresh calibration set
    (seed offset 3001; training's nuisance ranges and SNR, :func:`evaluation_synthesis`), the factor that
    makes the median |error| / sigma equal that of a standard normal (0.6745). Trained on widened priors, the
    network's raw sigma is the spread for that wider population; brains are narrower. Writes ``sd_scale`` into
    ``quantifier.json`` (the Quantifier applies it, Keras and LiteRT alike) and returns it."""
    from .quantify import Quantifier

    folder = Path(folder)
    q = Quantifier.load(folder)
    q.meta.pop("sd_scale", None)  # measure the raw sigma (predict applies sd_scale from the meta)
    meta = dict(q.meta)
    fids, truth = synthesize(basis, n or max(cfg.val_size, 2048), snr=tuple(cfg.snr),
                             seed=np.random.SeedSequence([cfg.seed, 3001]),
                             config=evaluation_synthesis(cfg.synthesis_config()))
    mean, sd = q.predict(fids, basis.dwell_s, basis.field_mhz)
    target = concentration_matrix(truth, basis.names) @ combination_matrix(basis.names, q.outputs)
    scale = np.median(np.abs(mean - target) / sd, axis=0) / 0.6745
    meta["sd_scale"] = [float(v) for v in scale]
    meta["sd_calibration"] = {"n": int(len(fids)), "seed": [cfg.seed, 3001], "snr": list(cfg.snr),
                              "priors": "healthy-brain defaults"}
    _write_json(folder / "quantifier.json", meta)
    return scale


def _quantifier_meta(basis: BasisSet, cfg: TrainConfig, model) -> dict:
    from .errors import BasisError
    from .water import basis_amplitude_per_proton

    try:  # the units of the outputs, for water scaling (mrs_tf.water)
        per_proton = round(basis_amplitude_per_proton(basis)[0], 6)
    except BasisError:  # a basis without Cr/PCr/NAA: --basis-amplitude-per-proton must say it
        per_proton = None
    return {"basis_amplitude_per_proton": per_proton, "names": list(basis.names), "outputs": output_names(basis.names, cfg.combinations),
            "n_points": basis.n_points, "dwell_s": basis.dwell_s,
            "field_mhz": basis.field_mhz, "ref_ppm": basis.ref_ppm, "ppm_range": list(cfg.ppm_range),
            "protocol": {k: v for k, v in basis.protocol.items() if isinstance(v, (int, float, str))},
            "uncertainty": cfg.uncertainty, "model": cfg.model, "input_points": int(model.inputs[0].shape[1])}


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))
    os.replace(tmp, path)
