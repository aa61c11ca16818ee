"""Training of mrs-tf's networks on spectra synthesised on the fly (or read from the TFDS data set).

``train(TrainConfig(...), out_dir)`` streams fresh spectra from :func:`mrs_tf.data.synthetic_dataset` (the physics
core's synthesis, no second copy), crops them with the same code as inference (:mod:`mrs_tf.preprocess`), validates on
a fixed seeded set, and uses Keras callbacks for everything around the loop: ``BackupAndRestore`` (``resume=True``
continues an interrupted run from its last finished epoch), ``ModelCheckpoint`` (best validation loss),
``EarlyStopping``, ``LearningRateScheduler`` (a cosine anneal over the epochs; ``lr_schedule="plateau"``:
``ReduceLROnPlateau``), ``CSVLogger`` and optionally ``TensorBoard``; Keras prints the progress bar.

Output folder (written atomically where it matters; an existing finished model is never overwritten silently):
``model.keras`` (the best model), ``quantifier.json`` (protocol, names, preprocessing: what
:class:`mrs_tf.quantify.Quantifier` needs), ``train_config.json``, ``log.csv``, ``backup/`` while running.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from mrs_tf.physics.basis import BasisSet, simulate_basis
from mrs_tf.core.errors import MRSError, OutputExistsError
from mrs_tf.preprocess.spectra import crop_slice, cropped_spectrum
from mrs_tf.physics.synth import concentration_matrix, synthesize
from mrs_tf.nn.config import (TRAINING_PRIOR_WIDENING, TRAINING_SYNTHESIS, UNKNOWN_PRIOR_MM, TrainConfig,  # noqa: F401
                              priors_text, training_synthesis,
                              combination_matrix, evaluation_synthesis, healthy_priors, load_training_basis,
                              output_names, prior_scale, cosine_learning_rate)

__all__ = ["TrainConfig", "TRAINING_SYNTHESIS", "TRAINING_PRIOR_WIDENING", "train", "make_dataset", "prior_scale",
           "output_scale", "output_names", "combination_matrix", "tf_cropped_spectrum", "calibrate_sd",
           "load_training_basis", "training_basis", "UNKNOWN_PRIOR_MM", "healthy_priors", "evaluation_synthesis"]

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


def make_dataset(basis: BasisSet, cfg: TrainConfig, seed: int, n_batches: int | None = None, first_batch: int = 0):
    """Streaming ``tf.data`` of ``({"spectrum": (B, K, 2)}, {"concentrations": (B, M)})`` batches, from batch
    ``first_batch`` of the seed's stream on."""
    from mrs_tf.nn.data import synthetic_dataset

    import tensorflow as tf

    sl = crop_slice(basis.n_points, basis.dwell_s, basis.field_mhz, cfg.ppm_range, basis.ref_ppm)
    mat = tf.constant(combination_matrix(basis.names, output_names(basis.names, cfg.combinations)))
    ds = synthetic_dataset(basis, batch_size=cfg.batch_size, seed=seed, snr=tuple(cfg.snr),
                           config=cfg.synthesis_config(), n_batches=n_batches, first_batch=first_batch)
    return ds.map(lambda b: ({"spectrum": tf_cropped_spectrum(b["fid"], sl)},
                             {"concentrations": tf.matmul(b["concentrations"], mat)}))


def _tfds_dataset(cfg: TrainConfig, split: str, names, first_batch: int = 0):
    """The TFDS split as (inputs, targets); ``names``: the data set's concentration order (its basis's names)."""
    import tensorflow as tf

    from mrs_tf.nn.data import load

    ds = load(cfg.tfds_config, split=split)
    mat = tf.constant(combination_matrix(names, output_names(names, cfg.combinations)))
    ds = ds.map(lambda ex: ({"spectrum": ex["spectrum"]},
                            {"concentrations": tf.linalg.matvec(mat, ex["concentrations"], transpose_a=True)}))
    if split == "train":
        ds = ds.shuffle(10_000, seed=cfg.seed).repeat()
    return ds.batch(cfg.batch_size).skip(first_batch).prefetch(tf.data.AUTOTUNE)


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

    from mrs_tf.nn.layers import GaussianNLL, WeightedMSE

    scale = prior_scale(names)
    loss = GaussianNLL(scale) if uncertainty else WeightedMSE(scale)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                  loss={"concentrations": loss})
    return model


def train(cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False, strategy: str | None = None,
          basis: BasisSet | None = None, verbose: int | str = "auto", overwrite: bool = False, callbacks_extra=()):
    """Train a model; returns ``(model, history_dict)``. See the module docstring for the output folder.
    ``callbacks_extra``: more Keras callbacks (e.g. a wall-clock budget), after mrs-tf's own.

    The same ``cfg`` (seed) trains the same network, bit for bit, on the same machine: BLAS is held at one thread for
    the run (the stream's matrix products sum in another order on two threads, and a limit set from tf.data's own
    threads did not always take effect).

    ``cfg.ensemble`` > 1 trains that many networks from seeds ``seed``, ``seed + 1``, ... and writes them as one
    model (:mod:`mrs_tf.nn.ensemble`; each member a complete, resumable run in ``<out>/members/seed_<s>``)."""
    from mrs_tf.core.threads import one_blas_thread

    saved_path = Path(out_dir) / "train_config.json"
    saved = json.loads(saved_path.read_text()) if resume and saved_path.exists() else {}
    if int(saved.get("ensemble", 1)) > 1:
        cfg = replace(TrainConfig.from_saved(saved), epochs=cfg.epochs)  # the ensemble's own recipe
    if not saved:  # a fresh run: a partial synthesis dict is laid over mrs-tf's training defaults
        synthesis, given = training_synthesis(cfg.synthesis)
        if not set(synthesis) <= set(cfg.synthesis):
            priors = "; priors given (mM): " + priors_text(cfg.synthesis.get("priors", {}))
            print(f"mrs-tf: synthesis: {', '.join(given) or 'nothing'} as given, every other setting mrs-tf's "
                  f"training default (TRAINING_SYNTHESIS){priors if cfg.synthesis.get('priors') else ''}",
                  file=sys.stderr)
            cfg = replace(cfg, synthesis=synthesis)
    if int(getattr(cfg, "ensemble", 1)) > 1:
        return _train_ensemble(cfg, out_dir, resume, strategy, basis, verbose, overwrite, callbacks_extra)
    with one_blas_thread():
        return _train(cfg, out_dir, resume, strategy, basis, verbose, overwrite, callbacks_extra)


def _refuse_finished(out: Path, resume: bool, overwrite: bool) -> None:
    """An existing finished model in ``out`` is never overwritten silently."""
    if (out / "model.keras").exists() and not (resume or overwrite):
        raise OutputExistsError(f"{out} already holds a trained model; use overwrite=True (--overwrite) or another "
                                f"folder")


def training_basis(cfg: TrainConfig, basis: BasisSet | None = None) -> BasisSet:
    """``basis``, else the user's basis file of ``cfg`` (matched to ``protocol_from``), else mrs-tf's simulation of
    ``cfg.protocol``."""
    if basis is None and cfg.basis_path:
        basis = load_training_basis(cfg.basis_path, cfg.protocol_from, complete=cfg.complete_basis, omit=cfg.omit)
    return basis or simulate_basis(**cfg.protocol)


def _train(cfg: TrainConfig, out_dir, resume, strategy, basis, verbose, overwrite, callbacks_extra):
    import keras
    import tensorflow as tf

    from mrs_tf.nn.models import build_model

    out = Path(out_dir)
    backup = out / "backup"
    _refuse_finished(out, resume, overwrite)
    if backup.exists() and not resume:
        raise OutputExistsError(f"{out} holds an interrupted training run; continue it with resume=True (--resume) "
                                f"or remove {backup}")
    # a finished run (its model written, no interrupted state) given resume: more epochs train it further from its
    # best weights and optimizer state (best.keras); as many as it was asked for leave nothing to do
    extend = resume and not backup.exists() and (out / "model.keras").exists()
    if resume and (out / "train_config.json").exists():
        saved = json.loads((out / "train_config.json").read_text())
        if extend and cfg.epochs <= int(saved.get("epochs", 0)):
            raise OutputExistsError(
                f"{out} holds a finished run ({logged_run(out)['epochs']} epochs run of the {saved.get('epochs')} "
                f"asked): nothing to resume. To train it further, ask for more: --resume --epochs N (N > "
                f"{saved.get('epochs')}) continues from its best weights; --overwrite trains it afresh")
        cfg = replace(TrainConfig.from_saved(saved), epochs=cfg.epochs)  # the run's own settings; epochs may grow
    if extend and not (out / "best.keras").exists():
        raise OutputExistsError(f"{out} holds a finished run without best.keras (its weights with the optimizer "
                                f"state), which training further needs; --overwrite trains it afresh")
    # the basis first: a refused one (another field, echo time or sequence than the data's) leaves no folder behind
    basis = training_basis(cfg, basis)
    from mrs_tf.physics.metabolites import ALL_NAMES, METABOLITES, MM_NAME

    stray = sorted(k for k in cfg.synthesis.get("priors", {}) if k not in basis.names and k not in ALL_NAMES)
    if stray:  # a prior for a signal the basis lacks (mrs-tf's own names have default priors whatever the basis)
        raise MRSError(f"concentration priors given for {', '.join(stray)}, which the training basis does not hold; "
                       f"its signals: {', '.join(basis.names)}")
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    unknown = [n for n in basis.names if n not in METABOLITES and n != MM_NAME and n not in cfg.synthesis.get(
        "priors", {})]
    if unknown:  # a foreign basis's extra signals need a concentration prior for the synthesis
        cfg.synthesis = {**cfg.synthesis, "priors": {**cfg.synthesis.get("priors", {}),
                                                     **{n: UNKNOWN_PRIOR_MM for n in unknown}}}
    names = output_names(basis.names, cfg.combinations)
    val_x, val_y, _ = validation_set(basis, cfg)
    with _strategy(strategy).scope():
        if extend:  # the finished run's best weights, with its optimizer's moments and learning rate
            model = keras.saving.load_model(out / "best.keras")
        else:
            model = build_model(cfg.model, input_points=val_x.shape[1], n_outputs=len(names),
                                output_scale=output_scale(val_x, val_y), uncertainty=cfg.uncertainty,
                                **cfg.network_kwargs(basis.n_points, basis.dwell_s))
            compile_model(model, names, cfg.uncertainty, cfg.learning_rate)
    earlier = logged_run(out) if resume else {"epochs": 0, "best_val_loss": None, "seconds": 0.0, "val_loss": []}
    if extend:  # its clock file went when it finished: its seconds are in quantifier.json
        done = json.loads((out / "quantifier.json").read_text()).get("training", {})
        earlier["seconds"] = float(done.get("seconds", 0.0))
    # a resumed run continues the same stream: epoch e of an uninterrupted run sees batches e*steps ... (e+1)*steps-1
    initial_epoch = earlier["epochs"] if extend else 0
    first = (initial_epoch or _backed_up_epochs(backup)) * cfg.steps_per_epoch if resume else 0
    train_ds = (_tfds_dataset(cfg, "train", basis.names, first) if cfg.tfds_config
                else make_dataset(basis, cfg, seed=cfg.seed, first_batch=first))
    _write_json(out / "train_config.json", asdict(cfg))
    interrupt = _interrupt_callback()
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience, restore_best_weights=True)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(2, cfg.patience // 3))
    callbacks = [
        interrupt,
        # kept after an interruption (deleted below once the run has finished)
        keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(out / "best.keras"), monitor="val_loss", save_best_only=True,
                                        initial_value_threshold=earlier["best_val_loss"]),
        _clock_callback(out / ".training_seconds.json", earlier["seconds"]),
        early,
        # a cosine anneal sets each epoch's rate from its number alone (a resumed run continues it; a finished run
        # trained further restarts it warm over the new total); the plateau schedule replays the logged losses
        (keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: cosine_learning_rate(epoch, cfg.epochs, cfg.learning_rate))
         if cfg.lr_schedule == "cosine" else plateau),
        # after theirs on_train_begin: their patience counters and best values as the interrupted run left them
        _restore_monitors(early, plateau, earlier["val_loss"]),
        keras.callbacks.CSVLogger(str(out / "log.csv"), append=resume),
    ]
    if cfg.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(out / "tensorboard")))
    callbacks += list(callbacks_extra)
    start = time.perf_counter()
    verbose = progress_verbosity(verbose)
    with interrupt.installed():
        history = model.fit(train_ds, epochs=cfg.epochs, initial_epoch=initial_epoch,
                            steps_per_epoch=cfg.steps_per_epoch,
                            validation_data=({"spectrum": val_x}, {"concentrations": val_y}),
                            validation_batch_size=512, callbacks=callbacks, verbose=verbose,
                            shuffle=False)  # a stream: already in its (seeded) order
    seconds = earlier["seconds"] + time.perf_counter() - start
    if interrupt.stopped:
        from mrs_tf.core.errors import TrainingError

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
        if verbose:
            print("calibrating the network's sigma on fresh spectra ...", flush=True)
        calibrate_sd(out, basis, cfg)
    if backup.exists():  # a finished run needs no backup
        shutil.rmtree(backup, ignore_errors=True)
    (out / ".training_seconds.json").unlink(missing_ok=True)
    return model, history.history


def _train_ensemble(cfg, out_dir, resume: bool = False, strategy: str | None = None, basis=None,
                    verbose: int | str = "auto", overwrite: bool = False, callbacks_extra=()):
    """Train ``cfg.ensemble`` members (seeds ``cfg.seed``, ``cfg.seed + 1``, ...; everything else ``cfg``'s) and
    write the combined model into ``out_dir`` (``model.keras``, ``quantifier.json`` with ``ensemble``,
    ``train_config.json``); returns ``(model, history)`` with the members' mean validation loss per epoch.

    ``resume=True`` keeps the members that finished and continues an interrupted one; ``overwrite=True`` trains
    every member afresh (their folders are replaced)."""
    import keras

    import mrs_tf.nn.layers  # noqa: F401  (registers the custom layers the members' files name)
    from mrs_tf.nn.ensemble import combine, finished, member_folders

    k = int(cfg.ensemble)
    if k < 2:
        raise MRSError(f"ensemble={k}: give 2 or more members (1 is a single network: train())")
    out = Path(out_dir)
    _refuse_finished(out, resume, overwrite)
    basis = training_basis(cfg, basis)
    folders = member_folders(out, cfg)
    if overwrite and not resume and (out / "members").exists():
        shutil.rmtree(out / "members")
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "train_config.json", asdict(cfg))  # first: a resumed run finds the ensemble's recipe
    one = replace(cfg, ensemble=1)
    histories, seconds, epochs = [], 0.0, []
    for i, folder in enumerate(folders):
        member_cfg = replace(one, seed=cfg.seed + i)
        if resume and finished(folder, member_cfg):
            if verbose:
                print(f"member {i + 1}/{k} (seed {member_cfg.seed}): finished earlier, kept", flush=True)
            histories.append(logged_run(folder)["val_loss"])
        else:
            if verbose:
                print(f"member {i + 1}/{k} (seed {member_cfg.seed}) -> {folder}", flush=True)
            _, history = train(member_cfg, folder, resume=resume and folder.exists(), strategy=strategy,
                               basis=basis, verbose=verbose, overwrite=overwrite, callbacks_extra=callbacks_extra)
            histories.append(logged_run(folder)["val_loss"] or list(history.get("val_loss", [])))
        done = json.loads((folder / "quantifier.json").read_text())["training"]
        seconds += float(done["seconds"])
        epochs.append(int(done["epochs_run"]))
    members = [keras.saving.load_model(f / "model.keras", compile=False) for f in folders]
    scales = [json.loads((f / "quantifier.json").read_text()).get("sd_scale") for f in folders]
    model = combine(members, sd_scales=scales if cfg.uncertainty and all(scales) else None)
    tmp = out / ".model.keras.tmp.keras"
    model.save(tmp)
    os.replace(tmp, out / "model.keras")
    # the ensemble's own validation loss, on the members' validation set
    val_x, val_y, _ = validation_set(basis, cfg)
    meta = _quantifier_meta(basis, cfg, model)
    compile_model(model, meta["outputs"], cfg.uncertainty, cfg.learning_rate)
    val_loss = float(model.evaluate({"spectrum": val_x}, {"concentrations": val_y}, batch_size=512, verbose=0))
    meta["training"] = {"seconds": seconds, "epochs_run": int(sum(epochs)), "members": k,
                        "member_epochs": epochs, "seeds": [cfg.seed + i for i in range(k)],
                        "spectra_seen": int(sum(epochs)) * cfg.steps_per_epoch * cfg.batch_size,
                        "val_loss": val_loss,
                        "member_best_val_loss": [min(h) if h else None for h in histories]}
    meta["ensemble"] = {"members": k, "folders": [str(f.relative_to(out)) for f in folders]}
    _write_json(out / "quantifier.json", meta)
    if cfg.uncertainty:
        if verbose:
            print("calibrating the ensemble's sigma on fresh spectra ...", flush=True)
        calibrate_sd(out, basis, cfg)
    width = max(len(h) for h in histories)
    mean_val = [float(np.mean([h[e] for h in histories if e < len(h)])) for e in range(width)]
    return model, {"val_loss": mean_val, "ensemble_val_loss": val_loss}


def logged_run(out: str | os.PathLike) -> dict:
    """What a run in ``out`` has done so far, every resumed part included: ``epochs`` and ``best_val_loss`` from
    log.csv (None without one), ``seconds`` of an unfinished run (its clock file; 0 once finished)."""
    out = Path(out)
    import csv

    losses = []
    log = out / "log.csv"
    if log.exists():
        with open(log, newline="") as fh:
            losses = [float(r["val_loss"]) for r in csv.DictReader(fh) if r.get("val_loss")]
    clock = out / ".training_seconds.json"
    seconds = float(json.loads(clock.read_text()).get("seconds", 0.0)) if clock.exists() else 0.0
    return {"epochs": len(losses), "best_val_loss": min(losses) if losses else None, "seconds": seconds,
            "val_loss": losses}


def _backed_up_epochs(backup: Path) -> int:
    """Epochs finished by the run whose Keras BackupAndRestore state is in ``backup`` (0 without one)."""
    meta = backup / "training_metadata.json"
    return int(json.loads(meta.read_text()).get("epoch", 0)) if meta.exists() else 0


def _restore_monitors(early_stopping, reduce_lr, val_losses):
    """Keras callback that, on a resumed run, gives EarlyStopping and ReduceLROnPlateau the state the logged
    ``val_losses`` left them in (best value, epochs without improvement, cooldown), replaying their own rules; Keras
    starts both afresh at every ``fit``, so a resumed run would otherwise wait a whole patience again."""
    import keras

    class RestoreMonitors(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            replay_monitors(early_stopping, reduce_lr, val_losses)

    return RestoreMonitors()


def replay_monitors(early_stopping, reduce_lr, val_losses) -> None:
    """Set ``early_stopping``'s and ``reduce_lr``'s best/wait/cooldown as if they had seen ``val_losses`` epoch by
    epoch (their own improvement tests; a learning-rate cut where ReduceLROnPlateau's patience ran out, which the
    restored optimizer already holds)."""
    for cb in (early_stopping, reduce_lr):
        if cb.monitor_op is None:
            cb._set_monitor_op()
    for v in val_losses:
        early_stopping.wait += 1
        if early_stopping._is_improvement(v, early_stopping.best):
            early_stopping.best, early_stopping.wait = v, 0
        if reduce_lr.in_cooldown():
            reduce_lr.cooldown_counter -= 1
            reduce_lr.wait = 0
        if reduce_lr._is_improvement(v, reduce_lr.best):
            reduce_lr.best, reduce_lr.wait = v, 0
        elif not reduce_lr.in_cooldown():
            reduce_lr.wait += 1
            if reduce_lr.wait >= reduce_lr.patience:
                reduce_lr.cooldown_counter, reduce_lr.wait = reduce_lr.cooldown, 0


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
    from mrs_tf.nn.bundle import ModelBundle

    folder = Path(folder)
    q = ModelBundle.load(folder)
    q.meta.pop("sd_scale", None)  # measure the raw sigma (predict applies sd_scale from the meta)
    meta = dict(q.meta)
    fids, truth = synthesize(basis, n or max(cfg.val_size, 2048), snr=tuple(cfg.snr),
                             seed=np.random.SeedSequence([cfg.seed, 3001]),
                             config=evaluation_synthesis(cfg.synthesis_config()))
    mean, sd = q.infer(fids)
    target = concentration_matrix(truth, basis.names) @ combination_matrix(basis.names, q.outputs)
    scale = sd_scale(mean, sd, target)
    meta["sd_scale"] = [float(v) for v in scale]
    meta["sd_calibration"] = {"n": int(len(fids)), "seed": [cfg.seed, 3001], "snr": list(cfg.snr),
                              "priors": "healthy-brain defaults"}
    _write_json(folder / "quantifier.json", meta)
    return scale


def sd_scale(mean: np.ndarray, sd: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per output, the factor that makes the median |error| / sigma that of a standard normal (0.6745)."""
    return np.median(np.abs(mean - target) / sd, axis=0) / 0.6745


def training_hardware() -> str:
    """Where a training ran, for the model card: machine, CPU cores, GPUs (by name) and the Keras backend."""
    import os
    import platform

    import keras

    backend = keras.backend.backend()
    gpus: list[str] = []
    try:
        if backend == "jax":
            import jax

            gpus = [d.device_kind for d in jax.devices() if d.platform == "gpu"]
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = [tf.config.experimental.get_device_details(d).get("device_name", d.name)
                    for d in tf.config.list_physical_devices("GPU")]
        elif backend == "torch":
            import torch

            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001  (a description, never a reason to fail a finished training)
        pass
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, " + (" + ".join(gpus) if gpus else "no GPU")
            + f" (Keras backend {backend})")


def progress_verbosity(verbose: int | str = "auto") -> int:
    """Keras's ``verbose`` for where the output goes: ``"auto"`` is 1 (the live progress bar) in a terminal or a
    notebook and 2 (one line per epoch) in a log file or a CI log, where a progress bar is rewritten hundreds of
    times per epoch into one unreadable line."""
    if verbose != "auto":
        return int(verbose)
    import sys

    interactive = "ipykernel" in sys.modules or (hasattr(sys.stdout, "isatty") and sys.stdout.isatty())
    return 1 if interactive else 2


def _quantifier_meta(basis: BasisSet, cfg: TrainConfig, model) -> dict:
    from mrs_tf.core.errors import BasisError
    from mrs_tf.fitting.water import basis_amplitude_per_proton

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
