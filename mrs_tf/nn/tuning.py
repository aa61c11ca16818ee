"""Architecture search with keras-tuner over mrs-tf's CNN families (``mrs-tf tune``).

The search space (:func:`build_hypermodel`), every choice a keyword of :func:`mrs_tf.models.seed_cnn` (plain) or
:func:`mrs_tf.models.resnet_cnn` (residual), so that the best trial is a ``TrainConfig`` that ``mrs-tf train`` can
train at full length:

=================  ==============================================  =========================================
hyperparameter     values                                          meaning
=================  ==============================================  =========================================
``residual``       False / True                                    plain Conv1D stack or residual blocks
``depth``          2-5                                             convolution stages (each pooled)
``filters``        8, 16, 32                                       filters of the first stage (x2 per stage,
                                                                   at most 64)
``kernel_size``    5, 7, 9, 11                                     bins (1 bin = 0.0159 ppm at 3 T, 2048 pts)
``pooling``        max / average, size 2 or 3                      between stages
``dense_units``    64, 128, 256, 512                               regression head
``dropout``        0.0-0.3                                         before the head's output
``magnitude``      False / True                                    input representation: add ``|spectrum|``
``align_phase``    False / True                                    input representation: phase front end
``learning_rate``  1e-4 - 3e-3 (log)                               Adam
=================  ==============================================  =========================================

Data: the same streaming synthesis, validation set and loss (Gaussian NLL with sigma) as :func:`mrs_tf.train.train`;
the objective is the validation loss. Algorithms: ``hyperband`` (keras-tuner ``Hyperband``) and ``bayesian``
(``BayesianOptimization``). A search folder is resumable: ``tune(..., resume=True)`` (``mrs-tf tune --resume``)
reloads finished trials and runs only the missing ones.

Distributed tuning uses keras-tuner's own chief/worker mode: start the same ``mrs-tf tune`` command on every machine
with ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` set to the chief's address, and ``KERASTUNER_TUNER_ID``
set to ``chief`` on one machine and ``tuner0``, ``tuner1``, ... on the workers; the chief runs the oracle and hands
out trials, the workers train them (all must see the same ``--out`` folder or each keeps its own checkpoints).
"""
from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path

from mrs_tf.physics.basis import BasisSet, simulate_basis
from mrs_tf.core.errors import MRSError, OutputExistsError
from mrs_tf.nn.train import (TrainConfig, _write_json, compile_model, make_dataset, output_names, output_scale,
                             progress_verbosity, validation_set)

__all__ = ["ALGORITHMS", "build_hypermodel", "model_kwargs_from_hp", "tune"]

ALGORITHMS = ("hyperband", "bayesian")


def model_kwargs_from_hp(hp) -> tuple[str, dict]:
    """(builder name, builder keywords) of one point of the search space (``hp``: keras-tuner HyperParameters)."""
    depth = hp.Int("depth", 2, 5)
    base = hp.Choice("filters", [8, 16, 32])
    kwargs = {
        "filters": [min(64, base * 2 ** i) for i in range(depth)],
        "kernel_size": hp.Choice("kernel_size", [5, 7, 9, 11]),
        "pooling": hp.Choice("pooling", ["max", "average"]),
        "pool_size": hp.Choice("pool_size", [2, 3]),
        "dense_units": hp.Choice("dense_units", [64, 128, 256, 512]),
        "dropout": hp.Float("dropout", 0.0, 0.3, step=0.1),
        "magnitude": hp.Boolean("magnitude", default=True),
        "align_phase": hp.Boolean("align_phase", default=True),
    }
    family = "resnet_cnn" if hp.Boolean("residual", default=False) else "seed_cnn"
    return family, kwargs


def build_hypermodel(n_outputs: int, names, input_points: int, scale_out, uncertainty: bool = True,
                     fixed: dict | None = None):
    """``build(hp) -> compiled keras.Model`` for keras-tuner, over the search space in the module docstring;
    ``fixed``: builder keywords every trial shares (e.g. ``highpass_bins``), below the searched ones."""
    from mrs_tf.nn.models import build_model

    def build(hp):
        family, kwargs = model_kwargs_from_hp(hp)
        lr = hp.Float("learning_rate", 1e-4, 3e-3, sampling="log")
        model = build_model(family, input_points=input_points, n_outputs=n_outputs, output_scale=scale_out,
                            uncertainty=uncertainty, **{**(fixed or {}), **kwargs})
        return compile_model(model, names, uncertainty, lr)

    return build


def tune(out_dir: str | os.PathLike, algorithm: str = "hyperband", cfg: TrainConfig | None = None,
         max_trials: int = 20, max_epochs: int = 20, resume: bool = False, overwrite: bool = False,
         basis: BasisSet | None = None, verbose: int | str = "auto"):
    """Search the architecture space; returns ``(tuner, best TrainConfig)``.

    ``cfg`` gives the data and training settings (batch size, steps per epoch, SNR range, synthesis, seed); each
    trial trains at most ``max_epochs`` epochs (Hyperband's budget) with early stopping. Writes ``best_config.json``
    (a :class:`~mrs_tf.train.TrainConfig` for ``mrs-tf train --config``) and ``best_hyperparameters.json``.
    """
    import keras
    import keras_tuner as kt

    if algorithm not in ALGORITHMS:
        raise MRSError(f"unknown tuning algorithm {algorithm!r}; use {' or '.join(ALGORITHMS)}")
    cfg = cfg or TrainConfig()
    out = Path(out_dir)
    project = out / "search"
    if project.exists() and not (resume or overwrite):
        raise OutputExistsError(f"{out} already holds a search; continue it with resume=True (--resume) or start "
                                f"again with overwrite=True (--overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    basis = basis or simulate_basis(**cfg.protocol)
    names = output_names(basis.names, cfg.combinations)
    val_x, val_y, _ = validation_set(basis, cfg)
    scale_out = output_scale(val_x, val_y)
    hypermodel = build_hypermodel(len(names), names, val_x.shape[1], scale_out, cfg.uncertainty,
                                  cfg.network_kwargs(basis.n_points, basis.dwell_s))
    common = dict(objective="val_loss", directory=str(out), project_name="search", seed=cfg.seed,
                  overwrite=overwrite and not resume)
    if algorithm == "hyperband":
        tuner = kt.Hyperband(hypermodel, max_epochs=max_epochs, factor=3, max_retries_per_trial=1, **common)
    else:
        tuner = kt.BayesianOptimization(hypermodel, max_trials=max_trials, max_retries_per_trial=1, **common)
    from mrs_tf.core.threads import one_blas_thread

    with one_blas_thread():  # the stream's bits independent of thread scheduling (see mrs_tf.nn.train.train)
        tuner.search(make_dataset(basis, cfg, seed=cfg.seed), epochs=max_epochs,
                     steps_per_epoch=cfg.steps_per_epoch,
                     validation_data=({"spectrum": val_x}, {"concentrations": val_y}), validation_batch_size=512,
                     callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience)],
                     verbose=progress_verbosity(verbose))
    done = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    best = tuner.get_best_hyperparameters(1) if done else []
    if not best:
        raise MRSError(f"no trial of the search in {out} finished; see the trial logs in {project}")
    hp = best[0]
    family, kwargs = model_kwargs_from_hp(hp)
    best_cfg = replace(cfg, model=family, model_kwargs=kwargs, learning_rate=float(hp.get("learning_rate")))
    _write_json(out / "best_hyperparameters.json", hp.values)
    _write_json(out / "best_config.json", asdict(best_cfg))
    return tuner, best_cfg

