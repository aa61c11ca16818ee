"""``tf.data`` front end of the synthesis: fresh simulated spectra on the fly, no second copy of the physics.

Each batch is made by :func:`mrs_tf.synth.synthesize` (inside ``tf.numpy_function``) with the seed
``SeedSequence([seed, batch_index])``, so a dataset is reproducible and batches are independent of the order
in which parallel calls finish.
"""
from __future__ import annotations

import numpy as np

from mrs_tf.physics.basis import BasisSet
from mrs_tf.physics.synth import SynthesisConfig, concentration_matrix, synthesize

__all__ = ["synthetic_batch", "synthetic_dataset"]


def synthetic_batch(basis: BasisSet, batch_size: int, seed: int, index: int, snr=(10.0, 100.0),
                    config: SynthesisConfig | None = None, nuisance: tuple[str, ...] = ()):
    """One batch as numpy arrays: (fids complex64 (B, N), concentrations float32 (B, M), nuisance float32 (B, P))."""
    fids, truth = synthesize(basis, n=batch_size, snr=snr, seed=np.random.SeedSequence([int(seed), int(index)]),
                             config=config, n_jobs=1)
    conc = concentration_matrix(truth, basis.names).astype(np.float32)
    extra = np.stack([truth[k] for k in nuisance], axis=1).astype(np.float32) if nuisance else \
        np.zeros((batch_size, 0), np.float32)
    return fids, conc, extra


def synthetic_dataset(basis: BasisSet, batch_size: int = 64, seed: int = 0, snr=(10.0, 100.0),
                      config: SynthesisConfig | None = None, n_batches: int | None = None,
                      nuisance: tuple[str, ...] = (), parallel: int | None = None, first_batch: int = 0):
    """A ``tf.data.Dataset`` of batches ``{"fid": complex64 (B, N), "concentrations": float32 (B, M),
    "nuisance": float32 (B, P)}`` synthesised on the fly.

    Args:
        n_batches: finite length; ``None`` repeats forever (batch index keeps increasing, so nothing repeats).
        nuisance: truth keys (e.g. ``("lw_lorentz_hz", "shift_hz")``) to return beside the concentrations.
        parallel: ``num_parallel_calls`` (default ``tf.data.AUTOTUNE``); output order stays deterministic.
        first_batch: the batch index to start at (batch ``i`` is always the same spectra for a seed): a resumed
            training run continues the stream where it stopped instead of seeing its first batches again.

    Bit for bit, batch ``i`` is :func:`synthetic_batch` ``(..., i)`` when BLAS runs on one thread while the data set is
    iterated (``with mrs_tf.core.threads.one_blas_thread():``, as :func:`mrs_tf.nn.train.train` does); otherwise
    its matrix products may sum in another order (differences ~1e-7 relative).
    """
    import tensorflow as tf

    n_points, n_metab = basis.n_points, basis.n_metabolites
    end = first_batch + n_batches if n_batches is not None else 2 ** 62
    indices = tf.data.Dataset.range(first_batch, end)

    def make(index):
        fids, conc, extra = tf.numpy_function(
            lambda i: synthetic_batch(basis, batch_size, seed, int(i), snr, config, nuisance),
            [index], [tf.complex64, tf.float32, tf.float32], stateful=False)
        fids.set_shape((batch_size, n_points))
        conc.set_shape((batch_size, n_metab))
        extra.set_shape((batch_size, len(nuisance)))
        return {"fid": fids, "concentrations": conc, "nuisance": extra}

    return indices.map(make, num_parallel_calls=parallel or tf.data.AUTOTUNE, deterministic=True).prefetch(2)


# --- the TFDS data set (tfds_mrs/mrs_brain_sim) ---------------------------------------------------------------------
DATASET = "mrs_brain_sim"


def _builder(config: str, data_dir=None):
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.utils import gcs_utils

    import tfds_mrs  # noqa: F401  (registers the builder)
    from tfds_mrs.mrs_brain_sim.mrs_brain_sim_dataset_builder import BUILDER_CONFIGS

    from mrs_tf.core.errors import MRSError

    gcs_utils._is_gcs_disabled = True  # fully offline: never look for prepared data on GCS
    names = [c.name for c in BUILDER_CONFIGS]
    if config not in names:
        raise MRSError(f"unknown mrs_brain_sim config {config!r}; choose one of {', '.join(names)}")
    return tfds.builder(f"{DATASET}/{config}", data_dir=str(data_dir) if data_dir else None)


def build(config: str = "press3t_te30_snr10-100", data_dir=None, beam_runner=None, beam_options=None):
    """Generate (offline) the ``mrs_brain_sim/<config>`` data set into ``data_dir`` (TFDS's default if None).

    ``beam_runner`` (e.g. ``"DirectRunner"``, or an ``apache_beam`` runner object) and/or ``beam_options`` (an
    ``apache_beam.options.pipeline_options.PipelineOptions``) generate the blocks in parallel through Apache Beam
    (the ``beam`` extra); the records are the same as a local build's. TFDS writes into an ``incomplete.*``
    folder and renames it when every split is done, so an interrupted build
    never leaves a data set that loads; running ``build`` again starts it afresh.
    """
    import os
    from pathlib import Path

    from mrs_tf.core.errors import FileFormatError

    if data_dir is not None:
        path = Path(data_dir)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileFormatError(f"cannot create data dir {path}: {exc}") from None
        if not os.access(path, os.W_OK):
            raise FileFormatError(f"data dir {path} is not writable")
    builder = _builder(config, data_dir)
    _remove_stale_incomplete(Path(builder.data_path))
    download_config = None
    if beam_runner is not None or beam_options is not None:
        import tensorflow_datasets as tfds

        try:
            import apache_beam as beam
        except ImportError:
            raise FileFormatError('a Beam build needs apache-beam: pip install "mrs-tf[beam]"') from None
        if isinstance(beam_runner, str):
            beam_runner = beam.runners.create_runner(beam_runner)
        download_config = tfds.download.DownloadConfig(beam_runner=beam_runner, beam_options=beam_options)
    builder.download_and_prepare(download_config=download_config)
    return builder


def _remove_stale_incomplete(data_path, older_than_s: float | None = None) -> list:
    """TFDS builds into ``incomplete.<random>_<version>`` beside ``data_path`` and renames it when done; a killed
    build leaves it behind for good. Those older than :data:`mrs_tf.core.files.STALE_AFTER_S` (a build running now
    keeps its own) are removed; returns what was."""
    import shutil
    import sys
    import time
    from pathlib import Path

    from mrs_tf.core.files import STALE_AFTER_S

    data_path = Path(data_path)
    limit = STALE_AFTER_S if older_than_s is None else older_than_s
    removed = []
    if not data_path.parent.is_dir():
        return removed
    for tmp in data_path.parent.glob(f"incomplete.*_{data_path.name}"):
        if tmp.is_dir() and time.time() - tmp.stat().st_mtime >= limit:
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
            print(f"mrs-tf: removed {tmp}, left by an interrupted build", file=sys.stderr)
    return removed


def load(config: str = "press3t_te30_snr10-100", split: str = "train", data_dir=None, as_supervised: bool = False,
         build_if_missing: bool = True, **kwargs):
    """``tfds.load("mrs_brain_sim/<config>", split=...)``, building the data set offline first when missing."""
    import tensorflow_datasets as tfds

    if build_if_missing:
        build(config, data_dir)
    else:
        _builder(config, data_dir)  # validates the config name and registers the builder
    return tfds.load(f"{DATASET}/{config}", split=split, data_dir=str(data_dir) if data_dir else None,
                     as_supervised=as_supervised, download=False, **kwargs)
